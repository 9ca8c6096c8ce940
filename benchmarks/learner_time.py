"""How long does each notebook take a learner? Measured, not guessed.

Usage::

    python benchmarks/learner_time.py [NOTEBOOK ...] [--write] [--timeout S]

For each notebook (default: every ``notebooks/NN-*.ipynb``) it prints three parts:

- **reading**: the words of the markdown cells at 200 words a minute, plus the code
  cells' words at 100 words a minute (code is read more slowly than prose);
- **running**: the wall time of every code cell, measured by executing the notebook with
  nbclient on the engine that answers now (the engine, its builder and the base-image
  profile are printed with the result). A learner's first run builds everything: measure on
  an engine (or a ``STAGELAB_NAMESPACE``) where the lab's images and build cache are not there
  yet, or the figure shows only the re-run (close to 0 when everything is cached);
- **exercise**: a stated model, not a measurement: 2 minutes per instruction line the learner
  writes or rewrites (a line of the reference solution that is not in the starter, by
  ``difflib``; comments and blank lines left out; a deleted line costs nothing), plus 3
  minutes to read the task and the feedback. Notebooks without a starter get 5 minutes.

``--write`` rounds each total up to 5 minutes and rewrites the notebook's ``**Time:**``
line and the README's notebook map with it. It is a benchmark: the figures depend on the
machine, so they are printed with what they measured, never asserted in a test.
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PROSE_WPM = 200
CODE_WPM = 100
MIN_PER_WRITTEN_LINE = 2
MIN_TASK_AND_FEEDBACK = 3
MIN_NO_STARTER = 5
TIME_LINE = re.compile(r"\*\*Time:\*\*[^\n]*")


def words(text: str) -> int:
    return len(re.findall(r"\S+", text))


def reading_minutes(nb: nbformat.NotebookNode) -> float:
    prose = sum(words(c.source) for c in nb.cells if c.cell_type == "markdown")
    code = sum(words(c.source) for c in nb.cells if c.cell_type == "code")
    return prose / PROSE_WPM + code / CODE_WPM


def exercise_minutes(path: Path) -> tuple[float, str]:
    """The exercise model for one notebook: (minutes, which files it compared)."""
    number = path.name[:2]
    starters = sorted((NOTEBOOKS / "starters").glob(f"{number}-*/Dockerfile"))
    if not starters:
        return MIN_NO_STARTER, "no starter file: flat 5 min"
    starter = starters[0]
    solution = NOTEBOOKS / "solutions" / starter.parent.name / "Dockerfile"
    if not solution.exists():
        return MIN_NO_STARTER, f"{starter.parent.name}: no solution file: flat 5 min"
    def instructions(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]

    diff = difflib.unified_diff(instructions(starter), instructions(solution), lineterm="", n=0)
    written = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    return (MIN_TASK_AND_FEEDBACK + MIN_PER_WRITTEN_LINE * written,
            f"{starter.parent.name}: {written} line(s) to write")


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def running_minutes(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return sum(cell_seconds(c) for c in nb.cells if c.cell_type == "code") / 60


def measured_on() -> tuple[str, str]:
    """(a full line for the log, a short 'where' for the **Time:** lines).

    The short one says "a first run" only when this namespace has no lab image on the engine
    yet; otherwise the cells' figure is a re-run's, and it says so.
    """
    from stagelab import builders, engine, naming, profiles

    c = engine.client()
    version = c.version().get("Version", "?")
    profile = profiles.active_profile().name
    builder = "BuildKit" if builders.choose_builder(None, c) == "buildkit" else "the classic builder"
    ours = c.images.list(filters={"label": f"{naming.NAMESPACE_LABEL}={naming.namespace()}"})
    run = "a re-run (the lab's images were there already)" if ours else "a first run"
    full = f"Docker {version}, builder {builders.describe(c)}, profile {profile}"
    short = (f"{run} measured on Docker {version.split('+')[0]} with {builder}, {os.cpu_count()} cores, "
             f"{profile} base images")
    return full, short


def round_up_5(minutes: float) -> int:
    return max(5, int(math.ceil(minutes / 5.0)) * 5)


def write_time(path: Path, total: int, parts: str) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and TIME_LINE.search(cell.source):
            cell.source = TIME_LINE.sub(f"**Time:** about {total} minutes ({parts}).", cell.source, count=1)
            break
    nbformat.write(nb, path)


def write_readme(totals: dict[str, int]) -> None:
    readme = ROOT / "README.md"
    lines = readme.read_text().splitlines()
    for i, line in enumerate(lines):
        for name, total in totals.items():
            if line.startswith("|") and name in line:
                cells = line.split("|")
                for j, cell in enumerate(cells):
                    if re.fullmatch(r"\s*(about\s*)?\d+\s*min\w*\s*", cell):
                        cells[j] = f" {total} min "
                lines[i] = "|".join(cells)
    readme.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--write", action="store_true", help="update the **Time:** lines and the README map")
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    full, where = measured_on()
    print(f"measured on: {full}; {where}")
    totals: dict[str, int] = {}
    report = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        read = reading_minutes(nb)
        t0 = time.monotonic()
        run = running_minutes(path, args.timeout)
        wall = (time.monotonic() - t0) / 60
        exercise, basis = exercise_minutes(path)
        total = round_up_5(read + run + exercise)
        totals[path.name] = total
        parts = (f"{where}: reading ~{read:.0f} min, running the cells ~{run:.0f} min, "
                 f"the exercise ~{exercise:.0f} min")
        report.append({"notebook": path.name, "reading_min": round(read, 1), "running_min": round(run, 1),
                       "kernel_wall_min": round(wall, 1), "exercise_min": exercise, "exercise_basis": basis,
                       "total_rounded_min": total})
        print(f"{path.name}: {parts} ({basis}) -> about {total} min")
        if args.write:
            write_time(path, total, parts)
    print(f"all notebooks: about {sum(totals.values())} min")
    print(json.dumps(report, indent=1))
    if args.write:
        write_readme(totals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
