"""How long does the offline profile take to prepare from nothing, and how big is each stand-in?

Usage::

    STAGELAB_EXTRA_CA=/etc/ssl/certs/ca-certificates.crt python benchmarks/bases_prepare.py \
        [--fresh-engine] [--cache DIR] [--keep-cache] [--check]

It points ``STAGELAB_CACHE`` at a new, empty folder (so debootstrap and both wheel downloads
really run), then times ``stagelab.bases.prepare("offline", rebuild=True)`` (every stand-in
built again, without the build cache) and then a second ``prepare`` that has nothing to do.
It prints the wall time of each input step and each image, the total, and the size of every
stand-in (as ``docker image ls`` counts it).

``--fresh-engine`` (root, Linux, ``dockerd`` installed) measures the acceptance case
literally: no images at all. It starts a throwaway ``dockerd`` with its own data root,
containerd, socket and bridge (``stagelab-bench0``, 172.31.250.0/24, NAT through two
iptables rules it removes afterwards), prepares there, then stops it and deletes its
folder. Your own engine and its images are not touched.

Without it, ``rebuild=True`` re-tags the real ``stagelab-offline/...`` images of your engine
with the fresh builds (same recipes); images built on the old ones keep working. The
temporary cache is removed afterwards unless ``--keep-cache``. Other work on the machine
(load average is printed) slows it down: on an idle 2-core machine the target is under
4 minutes. ``--check`` exits 1 when the target is missed (a benchmark, not a timed test).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TARGET_SECONDS = 240.0
NOOP_TARGET_SECONDS = 2.0


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


BRIDGE = "stagelab-bench0"
SUBNET = "172.31.250.0/24"
# iptables rules the throwaway engine needs for its builds to reach Debian's mirror
# (it runs with --iptables=false so that it never rewrites the chains of your engine).
RULES: list[tuple[str, str, list[str]]] = [  # (table, chain, rule)
    ("nat", "POSTROUTING", ["-s", SUBNET, "!", "-o", BRIDGE, "-j", "MASQUERADE"]),
    ("filter", "FORWARD", ["-i", BRIDGE, "-j", "ACCEPT"]),
    ("filter", "FORWARD", ["-o", BRIDGE, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]),
]


def _run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"--fresh-engine: `{' '.join(cmd)}` failed: {done.stderr.strip()}")


@contextlib.contextmanager
def throwaway_engine() -> Iterator[str]:
    """Start an empty dockerd beside yours; yield its DOCKER_HOST; stop it and delete its files."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("iptables") is None:
        raise SystemExit("--fresh-engine needs root, dockerd and iptables (run it where `make engine` works)")
    from stagelab.engine import EngineUnavailable, wait_for_engine

    root = Path(tempfile.mkdtemp(prefix="stagelab-bench-engine-"))
    host = f"unix://{root / 'docker.sock'}"
    added: list[tuple[str, str, list[str]]] = []
    proc = None
    bridge = False
    try:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        bridge = True
        _run("ip", "addr", "add", SUBNET.replace("0/24", "1/24"), "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        for table, chain, rule in RULES:
            _run("iptables", "-t", table, "-I", chain, "1", *rule)
            added.append((table, chain, rule))
        with (root / "dockerd.log").open("w") as log:
            proc = subprocess.Popen(
                ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
                 "--pidfile", str(root / "dockerd.pid"), "-H", host, f"--bridge={BRIDGE}",
                 "--iptables=false", "--ip-masq=false"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        os.environ["DOCKER_HOST"] = host
        try:
            images = wait_for_engine(60, log=root / "dockerd.log").images.list(all=True)
        except EngineUnavailable as exc:   # its fix names the system engine: say this one's
            raise SystemExit(f"--fresh-engine: the throwaway dockerd did not answer.\n{exc.message}")
        print(f"throwaway engine: {host} ({len(images)} images)")
        yield host
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for table, chain, rule in reversed(added):
            subprocess.run(["iptables", "-t", table, "-D", chain, *rule], capture_output=True)
        if bridge:
            subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="empty cache folder to use (default: a new temp dir)")
    parser.add_argument("--keep-cache", action="store_true", help="do not delete the cache folder afterwards")
    parser.add_argument("--fresh-engine", action="store_true",
                        help="measure on a throwaway empty dockerd (no images at all); root only")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if it takes over {TARGET_SECONDS:.0f} s (or a second prepare over {NOOP_TARGET_SECONDS:.0f} s)")
    args = parser.parse_args(argv)

    cache = args.cache or Path(tempfile.mkdtemp(prefix="stagelab-bench-cache-"))
    if cache.exists() and any(cache.iterdir()):
        parser.error(f"{cache} is not empty: the benchmark measures preparation from nothing")
    os.environ["STAGELAB_CACHE"] = str(cache)
    with contextlib.ExitStack() as stack:
        if args.fresh_engine:
            stack.enter_context(throwaway_engine())     # sets DOCKER_HOST for what follows
        return _measure(cache, args)


def _measure(cache: Path, args: argparse.Namespace) -> int:
    """Prepare the offline profile twice on the engine of DOCKER_HOST and print the report."""
    from stagelab import bases
    from stagelab.progress import TerminalProgress

    print(f"engine: {os.environ.get('DOCKER_HOST') or 'your default engine (images re-tagged)'}")

    print(f"cache: {cache} (empty)   extra CA: {os.environ.get('STAGELAB_EXTRA_CA') or 'none'}")
    print(f"load average before: {_load()}   cpus: {os.cpu_count()}")
    events: list[bases.PrepareEvent] = []
    terminal = bases._ProgressEvents(TerminalProgress("prepare offline"), 0)   # the lab's terminal lines

    def progress(ev: bases.PrepareEvent) -> None:
        events.append(ev)
        terminal(ev)

    started = time.monotonic()
    try:
        bases.prepare("offline", rebuild=True, progress=progress)
        total = time.monotonic() - started
        started = time.monotonic()
        bases.prepare("offline", progress=lambda ev: None)
        noop = time.monotonic() - started
    finally:
        if not args.keep_cache:
            shutil.rmtree(cache, ignore_errors=True)

    print(f"\nload average after: {_load()}")
    print("\nstep / image                                            seconds")
    for ev in events:
        if ev.state in ("step", "built") and ev.seconds is not None:
            print(f"  {ev.image:<52} {ev.seconds:7.1f}")
    print(f"\noffline preparation from nothing: {total:.1f} s (target < {TARGET_SECONDS:.0f} s on an idle 2-core machine)")
    print(f"second prepare (nothing to do):   {noop:.2f} s (target < {NOOP_TARGET_SECONDS:.0f} s)")
    print("\nstand-in                                              size (MB, uncompressed: sum of docker history)")
    for row in bases.status("offline", helpers=True):
        size = f"{row.size / 1e6:8.1f}" if row.size else "       -"
        print(f"  {row.image:<52} {size}")
    if args.check and (total > TARGET_SECONDS or noop > NOOP_TARGET_SECONDS):
        print("✗ target missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from stagelab.errors import StagelabError

    try:
        sys.exit(main())
    except StagelabError as exc:      # engine or base-image trouble: one message and its fix
        sys.exit(f"✗ {exc}")
