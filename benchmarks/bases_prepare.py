"""How long does the offline profile take to prepare from nothing, and how big is each stand-in?

Usage::

    STAGELAB_EXTRA_CA=/etc/ssl/certs/ca-certificates.crt python benchmarks/bases_prepare.py [--cache DIR] [--keep-cache] [--check]

It points ``STAGELAB_CACHE`` at a new, empty folder (so debootstrap and both wheel downloads
really run), then times ``stagelab.bases.prepare("offline", rebuild=True)`` (every stand-in
built again, without the build cache) and then a second ``prepare`` that has nothing to do.
It prints the wall time of each input step and each image, the total, and the size of every
stand-in (as ``docker image ls`` counts it).

Note: ``rebuild=True`` re-tags the real ``stagelab-offline/...`` images with the fresh builds
(same recipes); images built on the old ones keep working. The temporary cache is removed
afterwards unless ``--keep-cache``. Other work on the machine (load average is printed)
slows it down: on an idle 2-core machine the target is under 4 minutes.
``--check`` exits 1 when the target is missed (it is a benchmark, not a timed test).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 240.0
NOOP_TARGET_SECONDS = 2.0


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="empty cache folder to use (default: a new temp dir)")
    parser.add_argument("--keep-cache", action="store_true", help="do not delete the cache folder afterwards")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if it takes over {TARGET_SECONDS:.0f} s")
    args = parser.parse_args(argv)

    cache = args.cache or Path(tempfile.mkdtemp(prefix="stagelab-bench-cache-"))
    if cache.exists() and any(cache.iterdir()):
        parser.error(f"{cache} is not empty: the benchmark measures preparation from nothing")
    os.environ["STAGELAB_CACHE"] = str(cache)

    from stagelab import bases

    print(f"cache: {cache} (empty)   extra CA: {os.environ.get('STAGELAB_EXTRA_CA') or 'none'}")
    print(f"load average before: {_load()}   cpus: {os.cpu_count()}")
    events: list[bases.PrepareEvent] = []
    terminal = bases._TerminalLines()

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
    print("\nstand-in                                              size (MB, as docker image ls)")
    for row in bases.status("offline", helpers=True):
        size = f"{row.size / 1e6:8.1f}" if row.size else "       -"
        print(f"  {row.image:<52} {size}")
    if args.check and (total > TARGET_SECONDS or noop > NOOP_TARGET_SECONDS):
        print("✗ target missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
