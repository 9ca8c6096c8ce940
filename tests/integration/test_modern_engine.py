"""tools/modern_engine.py on the real machine (issue 12): the second engine comes up beside the
system engine and goes again without harming it.

An instance of its own (own folders, socket, bridge, address ranges): started and stopped
twice, since a second start on the same data root once deleted ``docker0``. Then the system
engine must still run a container on its default bridge. Needs root on Linux; the engine's
.debs are downloaded once into the lab's cache.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stagelab import naming

pytestmark = pytest.mark.engine

TOOL = naming.repo_root() / "tools" / "modern_engine.py"
SYSTEM_SOCKET = "/var/run/docker.sock"
INSTANCE = "itest"


def _tool_module():
    spec = importlib.util.spec_from_file_location("modern_engine", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("modern_engine", module)
    spec.loader.exec_module(module)
    return module


def _run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), "--instance", INSTANCE, *args],
                          capture_output=True, text=True, timeout=600)


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def tool():
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the modern engine needs root on Linux (bridge, firewall rules)")
    if "stagelab-engine-modern" in os.environ.get("DOCKER_HOST", ""):
        pytest.skip("runs in the system-engine pass only (this pass already uses the modern engine)")
    if not Path(SYSTEM_SOCKET).exists():
        pytest.skip(f"no system engine at {SYSTEM_SOCKET}")
    module = _tool_module()
    yield module
    _run_tool("stop", "--purge")


def test_starts_and_stops_twice_with_buildkit_and_containerd_store_then_docker0_still_works(tool):
    inst = tool.Instance(INSTANCE)
    assert _link_exists("docker0"), "the system engine's docker0 is missing before the test"
    for round_ in (1, 2):
        started = _run_tool("start")
        assert started.returncode == 0, f"start #{round_} failed:\n{started.stderr[-2000:]}"
        assert started.stdout.strip().splitlines()[-1] == f"DOCKER_HOST=unix://{inst.socket}"
        again = _run_tool("start")   # idempotent: a second start leaves the same daemon
        assert again.returncode == 0 and "already running" in again.stderr

        headers = tool.ping(inst)
        assert headers is not None and headers.get("builder-version") == "2", headers
        _, _, body = tool.api(inst.socket, "/info")
        info = json.loads(body)
        store = dict(info.get("DriverStatus") or []).get("driver-type", "")
        assert "containerd.snapshotter" in store, f"image store: {info.get('Driver')} {store}"
        assert _link_exists(inst.bridge)

        stopped = _run_tool("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert tool.ping(inst) is None, f"still answering after stop #{round_}"
        assert not _link_exists(inst.bridge), f"{inst.bridge} left behind after stop #{round_}"
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        assert f"{tool.RULE_TAG}-{INSTANCE}" not in rules, "firewall rules left behind"
        assert _link_exists("docker0"), f"docker0 deleted by start/stop #{round_}"

    import docker

    system = docker.DockerClient(base_url=f"unix://{SYSTEM_SOCKET}", timeout=120)
    image = next((tag for image in system.images.list(name="stagelab-offline/debian")
                  for tag in image.tags), None)
    if image is None:
        pytest.skip("no stagelab-offline/debian image on the system engine (run `stagelab bases prepare`)")
    container = system.containers.run(image, ["cat", "/sys/class/net/eth0/operstate"],
                                      detach=True, labels={naming.NAMESPACE_LABEL: "itest-modern"})
    try:
        result = container.wait(timeout=120)
        output = container.logs().decode().strip()
    finally:
        container.remove(force=True)
    # eth0 exists and is up only when the engine could attach the container to docker0
    assert result["StatusCode"] == 0 and output == "up", (result, output)
