"""`stagelab compare` in CI mode on the real go-server images (issue 5's acceptance)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stagelab.build import build

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def go_images(module_tracker):
    """go-server `single` and `scratch`, built in the module tracker's namespace and removed after."""
    single = build("go-server", "single", progress="none")
    module_tracker.build_log(single.log)
    scratch = build("go-server", "scratch", progress="none")
    module_tracker.build_log(scratch.log)
    return single.tag, scratch.tag


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stagelab.cli", "compare", *args],
                          capture_output=True, text=True, timeout=600)


def test_json_shows_scratch_under_two_percent_of_single(go_images):
    single, scratch = go_images
    out = _compare(single, scratch, "--baseline", single, "--json")
    assert out.returncode == 0, out.stderr
    rows = {row["variant"]: row for row in json.loads(out.stdout)["images"]}
    pct = rows["scratch"]["percent_of_baseline"]
    assert pct < 2.0, f"expected scratch under 2% of single; measured {pct:.2f}%"
    assert rows["single"]["is_baseline"] and rows["scratch"]["size"] < rows["single"]["size"]


def test_max_size_passes_for_scratch_and_fails_for_single(go_images):
    single, scratch = go_images
    ok = _compare(scratch, "--max-size", "20MB")
    assert ok.returncode == 0, ok.stderr
    bad = _compare(single, "--max-size", "20MB")
    assert bad.returncode == 1
    assert "20" in bad.stderr and "single" in bad.stderr, bad.stderr
