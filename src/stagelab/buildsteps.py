"""What a build did, step by step: which instructions ran and which came from the cache.

Notebook 07 (the build cache) reads this from the build logs of ``BuildResult``s — never
from wall times — and notebook 06 uses it to show the steps each builder ran for a target.
Both log formats are read: the classic builder's ``Step N/M : ...`` + ``---> Using cache``
and BuildKit's plain progress (``#7 [builder 3/5] RUN npm ci`` + ``#7 CACHED``).
Also here: the size of the build context a folder sends (with or without .dockerignore)
and a chart of build times. Nothing runs on import.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLASSIC_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BK_STEP = re.compile(r"^#(\d+) \[(?:(.+?) )?(\d+)/(\d+)\] (.*)$")
_BK_CACHED = re.compile(r"^#(\d+) CACHED\s*$")


@dataclass(frozen=True)
class Step:
    """One instruction of a build: its number, stage, text and whether the cache supplied it."""

    n: int
    stage: str
    instruction: str
    cached: bool

    @property
    def keyword(self) -> str:
        return self.instruction.split(" ", 1)[0].upper()

    @property
    def makes_layer(self) -> bool:
        """RUN, COPY and ADD change the file system (the steps a cache hit saves work on)."""
        return self.keyword in ("RUN", "COPY", "ADD")


def _from_stage(instruction: str, index: int) -> str:
    words = instruction.split()
    words = [w for w in words if not w.startswith("--")]
    if len(words) >= 4 and words[2].upper() == "AS":
        return words[3]
    return f"stage-{index}"


def classic_steps(log: list[str]) -> list[Step]:
    """Steps of a classic build log (``FROM`` lines included; ``cached`` for ``Using cache``)."""
    steps: list[Step] = []
    cached: set[int] = set()
    stage, index, current = "stage-0", -1, None
    rows: list[tuple[int, str, str]] = []
    for raw in log:
        line = raw.strip()
        m = _CLASSIC_STEP.match(line)
        if m:
            current = int(m.group(1))
            instruction = m.group(3).strip()
            if instruction.split(" ", 1)[0].upper() == "FROM":
                index += 1
                stage = _from_stage(instruction, index)
            rows.append((current, stage, instruction))
            continue
        if line == "---> Using cache" and current is not None:
            cached.add(current)
    for n, st, instruction in rows:
        steps.append(Step(n, st, instruction, n in cached))
    return steps


def buildkit_steps(log: list[str]) -> list[Step]:
    """Steps of a BuildKit ``--progress=plain`` log (only the stages BuildKit actually built)."""
    seen: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    cached: set[str] = set()
    for raw in log:
        line = raw.strip()
        m = _BK_STEP.match(line)
        if m:
            vertex = m.group(1)
            if vertex not in seen:
                seen[vertex] = (m.group(2) or "stage-0", m.group(5).strip())
                order.append(vertex)
            continue
        c = _BK_CACHED.match(line)
        if c:
            cached.add(c.group(1))
    return [Step(i + 1, seen[v][0], seen[v][1], v in cached) for i, v in enumerate(order)]


def steps(result: Any) -> list[Step]:
    """The steps of a ``BuildResult`` (either builder)."""
    log = list(getattr(result, "log", None) or [])
    if getattr(result, "builder", "classic") == "buildkit":
        return buildkit_steps(log)
    return classic_steps(log)


def matching(result_or_steps: Any, pattern: str, *, stage: str | None = None) -> list[Step]:
    """Steps whose instruction matches the regular expression ``pattern`` (case-insensitive)."""
    found = result_or_steps if isinstance(result_or_steps, list) else steps(result_or_steps)
    rx = re.compile(pattern, re.I)
    return [s for s in found if rx.search(s.instruction) and (stage is None or s.stage == stage)]


class StepTable:
    """A build's steps as a table (``StepTable(result)`` in a notebook cell)."""

    def __init__(self, result: Any, *, only_layers: bool = True, title: str | None = None) -> None:
        self.result = result
        self.title = title or getattr(result, "tag", "build")
        all_steps = steps(result)
        self.steps = [s for s in all_steps if s.makes_layer] if only_layers else all_steps

    def __repr__(self) -> str:
        lines = [f"{self.title}: {sum(s.cached for s in self.steps)} of {len(self.steps)} steps from the cache"]
        for s in self.steps:
            lines.append(f"  {s.n:>3} {s.stage:<12} {'CACHED' if s.cached else 'ran   '} {s.instruction[:90]}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        body = "".join(
            "<tr><td style='text-align:right'>{}</td><td>{}</td><td style='color:{}'><b>{}</b></td>"
            "<td style='text-align:left'><code>{}</code></td></tr>".format(
                s.n, esc(s.stage), "#1e8449" if s.cached else "#c0392b",
                "cached" if s.cached else "ran", esc(s.instruction[:110]))
            for s in self.steps
        )
        head = (f"<b>{esc(self.title)}</b>: {sum(s.cached for s in self.steps)} of {len(self.steps)} "
                "file-system steps (RUN/COPY/ADD) came from the cache")
        return (f"<div>{head}<table><tr><th>step</th><th>stage</th><th>cache</th>"
                f"<th style='text-align:left'>instruction</th></tr>{body}</table></div>")


# --- the build context ----------------------------------------------------------------------------


def dockerignore_patterns(folder: str | os.PathLike) -> list[str]:
    """The patterns of ``folder/.dockerignore`` (empty when there is none)."""
    path = Path(folder) / ".dockerignore"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def context_size(folder: str | os.PathLike, *, dockerignore: bool = True) -> int:
    """Bytes of the tar a build sends for ``folder`` (as the classic builder packs it)."""
    from docker import utils

    exclude = dockerignore_patterns(folder) if dockerignore else []
    with utils.tar(str(folder), exclude=exclude) as tarball:
        tarball.seek(0, os.SEEK_END)
        return tarball.tell()


# --- a chart ------------------------------------------------------------------------------------------


def timings_chart(builds: dict[str, Any]):  # -> plots.StagelabFigure
    """Horizontal bars of build seconds, each labelled with its cache use (notebook 07).

    A ``StagelabFigure``, so it shows itself as the last expression of a cell (no pyplot).
    """
    from .plots import StagelabFigure

    names = list(builds)
    fig = StagelabFigure(figsize=(8, 0.6 * len(names) + 1.2))
    ax = fig.add_subplot()
    seconds = [float(builds[n].seconds) for n in names]
    bars = ax.barh(names, seconds, color="#5b8def")
    ax.invert_yaxis()
    for bar, name in zip(bars, names):
        layer_steps = [s for s in steps(builds[name]) if s.makes_layer]
        cached = sum(s.cached for s in layer_steps)
        ax.annotate(f" {bar.get_width():.1f} s · {cached}/{len(layer_steps)} steps cached",
                    (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center", fontsize=9)
    ax.set_xlabel("wall time of the build (s) — varies with the machine; the cache counts do not")
    ax.set_xlim(0, max(seconds + [1.0]) * 1.6)
    ax.set_title("Build time and cache use")
    fig.tight_layout()
    return fig
