"""The install policy (issue 12): as root on Debian/Ubuntu the set-up installs what is missing,
unless STAGELAB_NO_INSTALL=1; anywhere else it only prints the fix. No engine, no apt."""
from __future__ import annotations

import subprocess

import pytest

from stagelab import engine
from stagelab.bases import inputs as bases_inputs
from stagelab.errors import EngineUnavailable


def _machine(monkeypatch, *, system="Linux", uid=0, apt=True, dockerd=False, ci=None, no_install=None):
    monkeypatch.setattr(engine.platform, "system", lambda: system)
    monkeypatch.setattr(engine.os, "geteuid", lambda: uid)
    tools = {"apt-get": apt, "dockerd": dockerd}
    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/bin/{name}" if tools.get(name) else None)
    for var, value in (("CI", ci), (engine.NO_INSTALL_ENV, no_install)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)


@pytest.mark.parametrize("case, expected", [
    (dict(), True),                                  # root on Debian/Ubuntu, CI not set
    (dict(ci="true"), True),
    (dict(no_install="1"), False),                   # the user's refusal wins
    (dict(ci="true", no_install="1"), False),
    (dict(no_install="0"), True),
    (dict(uid=1000), False),                         # not root: the one-line fix instead
    (dict(system="Darwin"), False),
    (dict(apt=False), False),                        # Linux without apt-get (Fedora, Alpine)
])
def test_may_install_is_root_linux_apt_and_no_refusal(monkeypatch, case, expected):
    _machine(monkeypatch, **case)
    assert engine.may_install() is expected


def test_bases_follow_the_same_policy_for_debootstrap(monkeypatch):
    _machine(monkeypatch)
    assert bases_inputs._may_install() is True
    _machine(monkeypatch, no_install="1", ci="true")
    assert bases_inputs._may_install() is False


def _no_engine(monkeypatch):
    def refuse(timeout=120):
        raise EngineUnavailable("Docker engine not reachable at unix:///nowhere")
    monkeypatch.setattr(engine, "connect", refuse)
    monkeypatch.delenv("DOCKER_HOST", raising=False)


def test_start_engine_refuses_to_install_when_told_not_to(monkeypatch):
    _machine(monkeypatch, no_install="1")
    _no_engine(monkeypatch)
    calls: list[list[str]] = []
    monkeypatch.setattr(engine.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    with pytest.raises(EngineUnavailable) as err:
        engine.start_engine(wait_seconds=0)
    assert engine.NO_INSTALL_ENV in err.value.message and "apt-get install" in (err.value.fix or "")
    assert calls == []


def test_start_engine_says_what_it_installs_before_apt_runs(monkeypatch, capsys):
    _machine(monkeypatch)
    _no_engine(monkeypatch)
    seen: list[tuple[list[str], str]] = []

    def fake_run(cmd, **kw):
        seen.append((cmd, capsys.readouterr().err))
        if cmd[:2] == ["apt-get", "install"]:
            raise subprocess.CalledProcessError(100, cmd)   # stop before starting anything
    monkeypatch.setattr(engine.subprocess, "run", fake_run)
    with pytest.raises(subprocess.CalledProcessError):
        engine.start_engine(wait_seconds=0)
    commands = [cmd for cmd, _ in seen]
    assert ["apt-get", "install", "-y", "-qq", "docker.io"] in commands
    said_before = "".join(err for _, err in seen)
    assert "installing docker.io" in said_before

