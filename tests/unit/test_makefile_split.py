"""make test splits the integration tests between the two engines' passes (Makefile): every
integration test file must be in exactly one of the three lists, or a new file would silently run
on no engine in CI."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def listed(name: str) -> list[str]:
    text = ROOT.joinpath("Makefile").read_text().replace("\\\n", " ")
    m = re.search(rf"^{name} = \$\(addprefix tests/integration/,(.*?)\)$", text, re.M)
    assert m, f"{name} not found in the Makefile"
    return m.group(1).split()


def test_every_integration_test_file_runs_in_exactly_one_list() -> None:
    lists = {name: listed(name) for name in ("BUILDER_TESTS", "ENGINE_FREE_TESTS", "ENGINE_FREE_MODERN")}
    files = sorted(p.name for p in (ROOT / "tests" / "integration").glob("test_*.py"))
    everywhere = [f for names in lists.values() for f in names]
    twice = sorted({f for f in everywhere if everywhere.count(f) > 1})
    assert not twice, f"in more than one list: {twice}"
    assert sorted(everywhere) == files, (
        f"missing from the Makefile's split: {sorted(set(files) - set(everywhere))}; "
        f"listed but absent: {sorted(set(everywhere) - set(files))}")


def test_each_list_runs_in_a_pass() -> None:
    """A list no pass names would run nowhere: the system pass runs BUILDER + ENGINE_FREE, the
    modern pass BUILDER + ENGINE_FREE_MODERN."""
    text = ROOT.joinpath("Makefile").read_text().replace("\\\n", " ")
    system = re.search(r"^PYTEST_SYSTEM = (.*)$", text, re.M).group(1)
    modern = re.search(r"^PYTEST_MODERN_SPLIT = (.*)$", text, re.M).group(1)
    assert "$(BUILDER_TESTS)" in system and "$(ENGINE_FREE_TESTS)" in system, system
    assert "$(BUILDER_TESTS)" in modern and "$(ENGINE_FREE_MODERN)" in modern, modern


def test_make_test_recipe_is_valid_shell_with_every_pass_command() -> None:
    """`make -n test` prints the recipe without running it: it must parse as shell, and no pass may
    have lost its command (an empty `if ; then`, as when a variable it uses is deleted)."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "test", "MODERN=1", "MODERN_PARALLEL=1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60).stdout
    recipe = out[out.index('failed=""'):]
    assert "if ;" not in recipe, recipe
    for pass_name in ("unit", "system-engine", "modern", "browser"):
        assert f"[make test] {pass_name}" in recipe, pass_name
    check = subprocess.run(["bash", "-n"], input=recipe, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
