"""``stagelab ... | head``: when the reader closes the pipe, the command stops quietly."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import stagelab

# cli.main with one subcommand that prints a long listing (as `stagelab inspect IMAGE` does),
# so no engine is needed; everything else is the real main().
SCRIPT = textwrap.dedent("""
    import argparse, sys
    from stagelab import cli

    def long_listing(args):
        for i in range(args.lines):
            print(f"line {i}")
        return 0

    def parser():
        p = argparse.ArgumentParser(prog="stagelab")
        sub = p.add_subparsers(required=True)
        cmd = sub.add_parser("listing")
        cmd.add_argument("--lines", type=int, default=3)
        cmd.set_defaults(func=long_listing)
        return p

    cli.build_parser = parser
    sys.exit(cli.main(sys.argv[1:]))
""")


def _run_into_closed_pipe(lines: int) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: every write fails with EPIPE
    env = dict(os.environ, PYTHONPATH=str(Path(stagelab.__file__).parents[1]))
    try:
        return subprocess.run([sys.executable, "-c", SCRIPT, "listing", "--lines", str(lines)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    finally:
        os.close(write_end)


def test_a_closed_pipe_ends_the_command_without_a_traceback() -> None:
    for lines in (3, 100_000):  # a short listing and one far beyond any buffer
        done = _run_into_closed_pipe(lines)
        assert done.stderr == "", f"{lines} lines: {done.stderr}"
        assert done.returncode == 1, (lines, done.returncode)


def test_an_open_pipe_gets_the_whole_output() -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(stagelab.__file__).parents[1]))
    done = subprocess.run([sys.executable, "-c", SCRIPT, "listing", "--lines", "5"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [f"line {i}" for i in range(5)]
