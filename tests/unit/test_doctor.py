"""`stagelab doctor` and the engine errors, without any engine (unreachable DOCKER_HOST)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from stagelab import engine
from stagelab.errors import EngineTooOld, EngineUnavailable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _doctor(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "stagelab.cli", "doctor", "--quick", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


def test_unreachable_engine_gives_one_message_with_the_fix_and_exit_1() -> None:
    host = f"tcp://127.0.0.1:{_closed_port()}"
    out = _doctor({"DOCKER_HOST": host})
    assert out.returncode == 1
    assert f"Docker engine not reachable at {host} (connection refused)" in out.stderr
    assert "sudo systemctl start docker" in out.stderr
    assert "stagelab doctor --fix" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_missing_socket_is_named() -> None:
    out = _doctor({"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert out.returncode == 1
    assert "not reachable at unix:///nonexistent/docker.sock (no socket there)" in out.stderr
    assert "Traceback" not in out.stderr


def test_fix_never_replaces_a_remote_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{_closed_port()}")
    with pytest.raises(EngineUnavailable, match="will not start a local engine"):
        engine.start_engine(wait_seconds=1)


def test_connect_raises_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{_closed_port()}")
    with pytest.raises(EngineUnavailable) as info:
        engine.connect(timeout=5)
    assert "start Docker Desktop" in str(info.value)


@pytest.mark.parametrize("api, ok", [("1.40", False), ("1.24", False), ("1.41", True), ("1.47", True)])
def test_api_version_check_names_the_version(api: str, ok: bool) -> None:
    if ok:
        engine.check_api(api, "x")
    else:
        with pytest.raises(EngineTooOld, match=f"API {api}; the lab needs API 1.41"):
            engine.check_api(api, "19.03.5")


def test_low_disk_warning_names_the_needed_size(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeClient:
        def version(self) -> dict:
            return {"Version": "27.0", "ApiVersion": "1.46", "Os": "linux", "Arch": "amd64"}

        def info(self) -> dict:
            return {"Driver": "overlay2", "DockerRootDir": "/"}

    monkeypatch.setattr(engine, "connect", lambda timeout=20: FakeClient())
    monkeypatch.setattr(engine, "engine_address", lambda: "unix:///var/run/docker.sock")
    monkeypatch.setattr(engine.shutil, "disk_usage", lambda path: type("U", (), {"free": 2 * 10**9})())
    diag = engine.diagnose()
    assert diag.ok
    assert any("Only 2.0 GB free" in msg and "needs about 8 GB" in msg for msg, _ in diag.warnings)
