"""`stagelab doctor` on an engine reached through DOCKER_HOST=tcp://, as a workshop's remote engine.

The "remote" engine is this machine's own, behind a small TCP -> unix-socket relay on
127.0.0.1 (no other address is used). Doctor must name the transport, measure the engine
host's free disk from inside a throw-away container (it cannot see that disk itself), and
print the namespace and the need per learner; the df container must not stay behind (the
test checks that; the tracker removes it anyway if it did).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagelab import naming, workshop

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]

SOCKET = "/var/run/docker.sock"


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def tcp_engine() -> Iterator[str]:
    """tcp://127.0.0.1:<port> relaying to the local engine's unix socket, for this test only."""
    if not Path(SOCKET).exists():
        pytest.fail(f"this test relays to {SOCKET}; no engine socket there")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.5)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                continue
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(SOCKET)
            conns.extend((client, upstream))
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    server.close()
    for conn in conns:
        conn.close()


def test_doctor_reports_a_tcp_engine_its_disk_and_the_need_per_learner(tcp_engine: str, tmp_path: Path,
                                                                     tracker) -> None:
    ns = tracker.namespace  # a fresh one: "never ran a notebook" below holds for it
    env = dict(os.environ, DOCKER_HOST=tcp_engine, STAGELAB_NAMESPACE=ns, STAGELAB_CACHE=str(tmp_path))
    env.pop("DOCKER_TLS_VERIFY", None)
    out = subprocess.run([sys.executable, "-m", "stagelab.cli", "doctor", "--quick"], env=env,
                         capture_output=True, text=True, timeout=240)
    text = out.stdout + out.stderr
    print(out.stdout)
    assert out.returncode == 0, text
    assert f"engine address : {tcp_engine} (remote over TCP WITHOUT TLS)" in text
    assert f"namespace      : {ns}" in text
    assert "per learner    : not measured yet" in text          # this namespace never ran a notebook
    free_line = next(line for line in out.stdout.splitlines() if line.startswith("free disk"))
    if "df in a throw-away container" in free_line:
        local_free = shutil.disk_usage(tracker.client.info()["DockerRootDir"]).free
        measured = workshop.engine_free_bytes()
        assert measured is not None and abs(measured - local_free) < 0.05 * local_free + 10**9, (measured, local_free)
    else:  # no base image to run df in: doctor must say how to find out instead
        assert "ssh HOST df -h" in free_line, free_line
    leftovers = tracker.client.containers.list(all=True, filters={"label": f"{naming.NAMESPACE_LABEL}={ns}"})
    assert not leftovers, f"doctor left containers behind: {[c.name for c in leftovers]}"
