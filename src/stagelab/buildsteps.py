"""What a build did, step by step: which instructions ran and which came from the cache.

Notebook 07 (the build cache) reads this from the build logs of ``BuildResult``s — never
from wall times — and notebook 06 uses it to show the steps each builder ran for a target.
The steps are ``BuildResult.steps`` (``buildlog`` reads both builders' logs, once).
Also here: a chart of build times (``context_size`` of ``buildcontext`` is re-exported for
notebook 07). Nothing runs on import.
"""
from __future__ import annotations

import html
import re
from typing import Any

from .buildcontext import context_size  # noqa: F401  (notebook 07 imports it from here)
from .buildlog import BuildStep


def steps(result: Any) -> list[BuildStep]:
    """The steps of a ``BuildResult`` (either builder), as its log parser found them."""
    return list(result.steps)


def matching(result_or_steps: Any, pattern: str, *, stage: str | None = None) -> list[BuildStep]:
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
            lines.append(f"  {s.number:>3} {s.stage:<12} {'CACHED' if s.cached else 'ran   '} {s.instruction[:90]}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        body = "".join(
            "<tr><td style='text-align:right'>{}</td><td>{}</td><td style='color:{}'><b>{}</b></td>"
            "<td style='text-align:left'><code>{}</code></td></tr>".format(
                s.number, esc(s.stage), "#1e8449" if s.cached else "#c0392b",
                "cached" if s.cached else "ran", esc(s.instruction[:110]))
            for s in self.steps
        )
        head = (f"<b>{esc(self.title)}</b>: {sum(s.cached for s in self.steps)} of {len(self.steps)} "
                "file-system steps (RUN/COPY/ADD) came from the cache")
        return (f"<div>{head}<table><tr><th>step</th><th>stage</th><th>cache</th>"
                f"<th style='text-align:left'>instruction</th></tr>{body}</table></div>")


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
