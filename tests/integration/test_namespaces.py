"""Many learners, one engine: two runs of notebook 02 at the same time in two namespaces.

Each learner is a papermill run of notebook 02 in its own process with its own
``STAGELAB_NAMESPACE`` (and its own exercises folder), started together on the same engine.
Then:
- both runs pass, and every image each one tagged is ``stagelab/<its namespace>/...``;
- a later learner (a third namespace) builds go-server ``scratch``: the build cache the
  others filled serves most of its steps (steps_cached / steps_total is printed);
- ``stagelab clean`` in namespace A removes A's images and nothing of B's (same ids after),
  then the same for B; ``stagelab doctor`` shows the measured need per learner.
Whatever the test created in its namespaces is removed at the end by the tracker
(tests/integration/conftest.py), also when a step failed.
The builder stages' untagged cache images are the same ones every run of notebook 02
creates (identical Dockerfiles and bases), so they stay: they are the shared build cache.

``STAGELAB_NS_NOTEBOOK=path`` runs another notebook instead (to try the harness).
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stagelab import naming, workshop

pytestmark = [pytest.mark.engine, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = Path(os.environ.get("STAGELAB_NS_NOTEBOOK", REPO / "notebooks" / "02-multi-stage-go-to-scratch.ipynb"))
RUN_S = 1500          # two notebooks at once on 2 cores, builds usually cached
MOSTLY_CACHED = 0.5   # "mostly cache hits": more than half of the Dockerfile's steps


def _env(ns: str, workdir: Path, **extra: str) -> dict[str, str]:
    """A learner's environment: namespace, and exercise and cache folders of their own (as a clone each)."""
    env = dict(os.environ)
    env.update(STAGELAB_NAMESPACE=ns, STAGELAB_ROOT=str(REPO), STAGELAB_USE_SOLUTIONS="1",
               STAGELAB_EXERCISES=str(workdir / "exercises"), STAGELAB_CACHE=str(workdir / "cache"),
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _clean(ns: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stagelab.cli", "clean"], env=_env(ns, tmp),
                          capture_output=True, text=True, timeout=300)


def _lab_images(client, ns: str) -> dict[str, list[str]]:
    """Image id -> tags of the lab images labelled with namespace ``ns``."""
    images = client.images.list(filters={"label": [f"{naming.LAB_LABEL}=true", f"{naming.NAMESPACE_LABEL}={ns}"]})
    return {img.id: list(img.tags) for img in images if img.labels.get(naming.NAMESPACE_LABEL) == ns}


def _lab_containers(client, ns: str) -> list[str]:
    return [c.name for c in client.containers.list(all=True, filters={"label": f"{naming.NAMESPACE_LABEL}={ns}"})]


@pytest.fixture
def learners(tracker) -> list[str]:
    """Three fresh namespaces; the tracker removes everything labelled with them at the end."""
    tag = secrets.token_hex(3)
    return [tracker.also_namespace(f"itest-ws-{who}-{tag}") for who in ("a", "b", "c")]


def _start_run(ns: str, tmp: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    workdir = tmp / ns
    workdir.mkdir()
    out, log = workdir / NOTEBOOK.name, workdir / "papermill.log"
    cmd = [sys.executable, "-m", "papermill", str(NOTEBOOK), str(out), "--cwd", str(NOTEBOOK.parent),
           "-k", "python3", "--no-progress-bar", "--log-output"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=_env(ns, workdir), start_new_session=True)
    return proc, out, log


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> int:
    try:
        return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)
        return -9


def _tail(log: Path, n: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def test_two_learners_at_once_then_clean_one_namespace(learners: list[str], tmp_path: Path, docker_client,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert NOTEBOOK.is_file(), f"{NOTEBOOK} is missing (this test runs it for two learners at once)"
    ns_a, ns_b, ns_c = learners

    # 1. two learners run notebook 02 at the same time on the same engine
    start = time.monotonic()
    runs = {ns: _start_run(ns, tmp_path) for ns in (ns_a, ns_b)}
    deadline = start + RUN_S
    codes = {ns: _wait(proc, deadline) for ns, (proc, _, _) in runs.items()}
    seconds = time.monotonic() - start
    for ns, code in codes.items():
        assert code == 0, f"learner {ns}: {NOTEBOOK.name} failed (exit {code}):\n{_tail(runs[ns][2])}"
    print(f"\ntwo concurrent runs of {NOTEBOOK.name}: both passed in {seconds:.0f} s")

    images = {ns: _lab_images(docker_client, ns) for ns in (ns_a, ns_b)}
    for ns, found in images.items():
        assert found, f"learner {ns}: the notebook created no lab image labelled with its namespace"
        tags = [t for ts in found.values() for t in ts]
        assert tags and all(t.startswith(f"stagelab/{ns}/") for t in tags), f"{ns}: tags outside its namespace: {tags}"
        running = _lab_containers(docker_client, ns)
        assert not running, f"{ns}: containers left running: {running}"
    assert not set(images[ns_a]) & set(images[ns_b]), "the two namespaces share an image id (labels differ)"

    # 2. a later learner's build of go-server scratch is served by the shared build cache
    monkeypatch.setenv("STAGELAB_NAMESPACE", ns_c)
    from stagelab.build import build

    result = build("go-server", "scratch", progress="none")
    share = result.steps_cached / max(result.steps_total, 1)
    print(f"later learner {ns_c}: go-server scratch {result.steps_cached}/{result.steps_total} steps from "
          f"the cache ({share:.0%}), {result.seconds:.1f} s")
    assert result.tag.startswith(f"stagelab/{ns_c}/")
    assert share > MOSTLY_CACHED, f"only {result.steps_cached}/{result.steps_total} steps cached:\n" + "\n".join(
        result.log[-20:])

    # 3. doctor measures the need per learner from namespace A's images
    doctor = subprocess.run([sys.executable, "-m", "stagelab.cli", "doctor", "--quick"],
                            env=_env(ns_a, tmp_path, STAGELAB_CACHE=str(tmp_path / "cache")),
                            capture_output=True, text=True, timeout=300)
    line = next((ln for ln in doctor.stdout.splitlines() if ln.startswith("per learner")), "")
    print(f"doctor for {ns_a}: {line}")
    usage = workshop.namespace_usage(ns_a)
    tagged = sum(1 for tags in images[ns_a].values() if tags)
    assert usage is not None and usage.images == tagged and usage.own_bytes > 0, (usage, images[ns_a])
    assert f"namespace '{ns_a}'" in line and "not measured" not in line, doctor.stdout + doctor.stderr

    # 4. cleanup in namespace A leaves B's images (same ids) and C's in place
    cleaned = _clean(ns_a, tmp_path)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert _lab_images(docker_client, ns_a) == {}, f"namespace A still has images after its clean:\n{cleaned.stdout}"
    assert set(_lab_images(docker_client, ns_b)) == set(images[ns_b]), \
        "cleaning namespace A removed images of namespace B"
    assert _lab_images(docker_client, ns_c), "cleaning namespace A removed the later learner's image"
    for image_id in images[ns_b]:
        docker_client.images.get(image_id)  # still there, still inspectable
    # ... and the other way round
    cleaned = _clean(ns_b, tmp_path)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert _lab_images(docker_client, ns_b) == {}
    assert _lab_images(docker_client, ns_c), "cleaning namespace B removed the later learner's image"
