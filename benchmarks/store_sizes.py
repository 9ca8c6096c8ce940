"""What ``docker history`` adds up to on this engine's image store, next to the lab's size.

Usage::

    python benchmarks/store_sizes.py [APP:VARIANT ...]

Builds each app variant (default: go-server scratch, distroless, single; ts-server multi,
single) with ``stagelab build`` on the engine that answers now, reads its layers, and
prints one Markdown row per image: the lab's size (the files' bytes), the sum of
``docker history`` with its excess over that size, and the history against the same layers
unpacked into 4 KiB blocks (``stagelab.sizes.entry_disk_usage``). On the classic store the
history is the bytes; on the containerd store it is the blocks. The README's table "What an
image's size means on each store" was printed by this script; it is a measurement of one
engine, printed with the engine, never asserted in a test (``check_size`` holds the 1% bounds).
"""
from __future__ import annotations

import argparse

from stagelab.build import build
from stagelab.inspect import inspect
from stagelab.sizes import check_size
from stagelab.units import human_size

DEFAULT = ("go-server:scratch", "go-server:distroless", "go-server:single", "ts-server:multi", "ts-server:single")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", default=list(DEFAULT), help="APP:VARIANT (default: %(default)s)")
    args = parser.parse_args()
    header = False
    for item in args.images:
        app, _, variant = item.partition(":")
        report = inspect(build(app, variant, progress=None).tag)
        check = check_size(report)
        if not header:
            print(f"{report.engine}, profile {report.profile}\n")
            print("| image | the lab's size | sum of `docker history` | history / blocks |\n|---|---|---|---|")
            header = True
        over = check.history / check.size - 1
        blocks = check.history / check.disk_usage - 1
        print(f"| `{app}:{variant}` | {human_size(check.size)} | {human_size(check.history)} ({over:+.1%}) "
              f"| {blocks:+.2%} |", flush=True)


if __name__ == "__main__":
    main()
