"""The "try it in a terminal" lines run in a real shell and give the lab's image.

The lab builds go-server ``scratch`` (offline profile, its own namespace); then the shell runs
``commands.build_command(result)`` as a learner would paste it (with a tag of the test's own),
and ``docker image ls`` / ``docker history`` on the result. The shell's image must have the
same file tree (every path with its type, size, mode and owner), the same bytes in /server
(Go builds with -trimpath are reproducible, so this holds with or without the build cache)
and the same config; its labels differ only by the lab's own labels.
"""
from __future__ import annotations

import secrets
import subprocess

import docker.errors
import pytest

from stagelab import cleanup, commands, engine, naming
from stagelab.build import build
from stagelab.inspect import inspect
from stagelab.lessons import read_file

pytestmark = [pytest.mark.engine, pytest.mark.timeout(2400)]

CONFIG_KEYS = ("Cmd", "Entrypoint", "User", "Env", "ExposedPorts", "WorkingDir", "Healthcheck")


@pytest.fixture
def lab(monkeypatch):
    monkeypatch.setenv("STAGELAB_NAMESPACE", f"itest-cmd-{secrets.token_hex(3)}")
    monkeypatch.setenv("STAGELAB_PROFILE", "offline")
    created: list[str] = []
    yield created
    client = engine.client()
    for tag in created:   # the shell-built image carries no lab label: remove it by its tag
        try:
            client.images.remove(tag, noprune=False)
        except docker.errors.ImageNotFound:
            pass
    cleanup.clean()


def _shell(cmd: commands.Command) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", cmd.shell()], env=cmd.run_env(), capture_output=True, text=True,
                          timeout=1800)   # a cold build on a busy 2-core machine


def test_the_build_line_gives_the_same_image(lab) -> None:
    result = build("go-server", "scratch", progress="none")
    tag = f"stagelab-itest-{secrets.token_hex(3)}/go-server:scratch"
    cmd = commands.build_command(result, tag=tag)
    lab.append(tag)
    done = _shell(cmd)
    assert done.returncode == 0, f"`{cmd.shell()}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"

    client = engine.client()
    ours, theirs = client.images.get(result.image_id), client.images.get(tag)
    tree = {name: {e.path: (e.type, e.size, e.mode, e.uid, e.gid) for e in inspect(ref).files.values()}
            for name, ref in (("lab", result.image_id), ("shell", tag))}
    assert tree["shell"] == tree["lab"], f"file trees differ: {sorted(set(tree['lab'].items()) ^ set(tree['shell'].items()))[:10]}"
    assert read_file(tag, "/server") == read_file(result.image_id, "/server"), "/server differs"
    for key in CONFIG_KEYS:
        assert theirs.attrs["Config"].get(key) == ours.attrs["Config"].get(key), f"Config.{key} differs"
    ours_labels, theirs_labels = ours.labels, theirs.labels
    extra = set(ours_labels) - set(theirs_labels)
    assert naming.LAB_LABEL in extra and all(k.startswith("org.stagelab.") for k in extra), sorted(extra)
    assert {k: v for k, v in ours_labels.items() if k not in extra} == theirs_labels, "the Dockerfile's labels differ"

    listed = _shell(commands.image_ls(tag))
    assert listed.returncode == 0 and theirs.id.split(":")[1][:12] in listed.stdout, listed.stdout
    rows = _shell(commands.history(tag))
    assert rows.returncode == 0
    assert len(rows.stdout.strip().splitlines()) - 1 == len(theirs.history()), rows.stdout
