"""Stage diagrams drawn from the parsed Dockerfile (never by hand).

Each stage is a box with its name and base image; arrows are ``FROM <stage>`` and
``COPY --from`` / ``RUN --mount=from=`` edges; the stage that becomes the image has a thick
border, stages the target does not need are grey and dashed, and a box shows the measured
size where the caller knows it (``sizes``). The model comes from ``stagelab.dockerfile``;
this module only lays it out and draws it (matplotlib PNG, inline in the HTML too, so
``make report``'s nbconvert pages carry it). Used by notebooks 02, 05, 06 and 08.
"""
from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dockerfile as dfmodel
from .errors import StagelabError
from .units import human_size


class NoStages(StagelabError):
    """The Dockerfile has no ``FROM``, or the target names no stage."""


@dataclass(frozen=True)
class Box:
    """One stage as the diagram shows it."""

    index: int
    name: str
    base: str            # the base image (build args expanded) or the stage it starts from
    is_image: bool       # the stage the build's image is (the target, else the last stage)
    needed: bool         # the target depends on it (BuildKit builds only these)
    size: int | None     # measured size in bytes, when the caller knows it


@dataclass(frozen=True)
class Edge:
    """``src`` feeds ``dst``: ``FROM`` (dst starts from src) or ``COPY --from`` (files copied)."""

    src: str
    dst: str
    kind: str


@dataclass
class StageDiagram:
    """Boxes and edges of one Dockerfile for one target; shows itself as a PNG in a notebook."""

    boxes: list[Box]
    edges: list[Edge]
    target: str | None
    title: str = ""
    size_note: str = ""   # what the sizes measured (image, profile, uncompressed)
    _png: bytes | None = field(default=None, repr=False)

    def box(self, name: str) -> Box:
        """The box of the stage called ``name``."""
        for b in self.boxes:
            if b.name == name:
                return b
        raise KeyError(name)

    @property
    def image(self) -> Box:
        """The box of the stage that becomes the image."""
        return next(b for b in self.boxes if b.is_image)

    def text(self) -> str:
        """A plain-text rendering (terminals, tests, nbval's text/plain output)."""
        lines = [self.title] if self.title else []
        for b in self.boxes:
            flags = ["the image" if b.is_image else "", "" if b.needed else "not needed for this target"]
            size = f", {human_size(b.size)}" if b.size is not None else ""
            extra = "; ".join(f for f in flags if f)
            lines.append(f"[{b.index}] {b.name}  FROM {b.base}{size}" + (f"  ({extra})" if extra else ""))
        lines += [f"  {e.src} --{e.kind}--> {e.dst}" for e in self.edges]
        if self.size_note and any(b.size is not None for b in self.boxes):
            lines.append(f"sizes: {self.size_note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def figure(self) -> Any:
        """The diagram as a matplotlib Figure (``StagelabFigure``: shows itself in Jupyter)."""
        return draw(self)

    def png(self) -> bytes:
        """The PNG bytes (drawn once); the notebook shows them inline in ``_repr_html_``."""
        if self._png is None:
            from .plots import figure_png

            self._png = figure_png(self.figure())
        return self._png

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png()).decode()
        alt = html.escape(self.text())
        return (f'<div class="stagelab-stage-diagram"><img alt="{alt}" title="{alt}" '
                f'src="data:image/png;base64,{data}"/></div>')


def _edges(df: Any) -> list[Edge]:
    out: list[Edge] = []
    for st in df.stages:
        parent = df.base_stage(st)
        for dep in df.depends_on(st):
            kind = "FROM" if parent is not None and dep.index == parent.index else "COPY --from"
            out.append(Edge(dep.name, st.name, kind))
    return out


def diagram(source: str | os.PathLike, target: str | None = None, *, sizes: Mapping[str, int] | None = None,
            build_args: Mapping[str, str] | None = None, title: str = "", size_note: str = "") -> StageDiagram:
    """The diagram of a Dockerfile (a path, or its text when it contains a newline).

    ``sizes`` maps stage names to measured bytes (say what they measured in ``size_note``);
    ``build_args`` expand ``FROM ${ARG}`` (default: the file's own ARG defaults).
    """
    if "\n" in str(source):
        text = str(source)
    elif Path(source).is_file():
        text = Path(source).read_text(errors="replace")
    else:
        raise NoStages(f"No Dockerfile at {source} (a one-line text is read as a path).",
                       "pass the Dockerfile's path, or its text ending with a newline")
    df = dfmodel.parse(text)
    if not df.stages:
        raise NoStages("This Dockerfile has no FROM line, so it has no stages to draw.",
                       "start it with `FROM <image> AS <name>`")
    try:
        image_stage = df.stage(target)
        needed = {st.index for st in df.needed(target)}
    except KeyError:
        names = ", ".join(st.name for st in df.stages)
        raise NoStages(f"No stage called {target!r} in this Dockerfile (stages: {names}).",
                       "pass one of those names as target") from None
    args: dict[str, str | None] = dict(df.global_args)
    args.update(build_args or {})
    boxes = []
    for st in df.stages:
        parent = df.base_stage(st)
        base = parent.name if parent is not None else dfmodel.expand(st.base, args)
        boxes.append(Box(st.index, st.name, base, st.index == image_stage.index, st.index in needed,
                         (sizes or {}).get(st.name)))
    return StageDiagram(boxes, _edges(df), target, title, size_note)


def for_variant(app: str, variant: str, *, sizes: Mapping[str, int] | None = None,
                build_args: Mapping[str, str] | None = None, size_note: str = "") -> StageDiagram:
    """The diagram of an app variant (its Dockerfile and ``--target``; notebooks 02, 05, 06)."""
    from .variants import get_variant

    var = get_variant(app, variant)
    target = var.target or None
    title = f"{app}:{variant} — {var.dockerfile.name}" + (f" --target {target}" if target else "")
    return diagram(var.dockerfile, target, sizes=sizes, build_args=build_args, title=title, size_note=size_note)


def _short(text: str, width: int = 26) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def draw(d: StageDiagram) -> Any:
    """Boxes left to right in file order; FROM arrows below, COPY --from arrows above the row."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from .plots import StagelabFigure

    n = len(d.boxes)
    w, h, gap = 2.4, 1.3, 1.0
    fig = StagelabFigure(figsize=(max(4.5, n * 2.3), 3.2))
    ax = fig.add_axes((0.01, 0.12, 0.98, 0.74))
    ax.set_xlim(-0.3, n * (w + gap) - gap + 0.3)
    ax.set_ylim(-1.4, h + 1.4)
    ax.axis("off")
    pos = {b.name: (b.index * (w + gap), 0.0) for b in d.boxes}
    for b in d.boxes:
        x, y = pos[b.name]
        color = "#1f4e79" if b.needed else "#9a9a9a"
        face = "#dbe9f6" if b.is_image else ("#ffffff" if b.needed else "#f2f2f2")
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", linewidth=3 if b.is_image else 1.2,
                                    edgecolor=color, facecolor=face, linestyle="-" if b.needed else "--"))
        label = [b.name, f"FROM {_short(b.base)}"]
        if b.size is not None:
            label.append(human_size(b.size))
        if b.is_image:
            label.append("= the image")
        elif not b.needed:
            label.append("not needed")
        ax.text(x + w / 2, y + h / 2, "\n".join(label), ha="center", va="center", fontsize=8,
                color="#111" if b.needed else "#777")
    for e in d.edges:
        (x1, y1), (x2, y2) = pos[e.src], pos[e.dst]
        above = e.kind != "FROM"
        ya = y1 + h if above else y1
        rad = -0.35 if above else 0.35
        ax.add_patch(FancyArrowPatch((x1 + w * 0.6, ya), (x2 + w * 0.4, ya), arrowstyle="-|>", mutation_scale=12,
                                     connectionstyle=f"arc3,rad={rad}", color="#c0392b" if above else "#555",
                                     linewidth=1.4, linestyle="-" if above else ":"))
        ax.text((x1 + x2 + w) / 2, ya + (0.75 if above else -0.75), e.kind, ha="center", va="center", fontsize=7,
                color="#c0392b" if above else "#555")
    note = ("thick border: the image · grey dashed: a stage the image does not need "
            "(BuildKit skips it; the classic builder builds it anyway)")
    if d.size_note and any(b.size is not None for b in d.boxes):
        note += f" · sizes: {d.size_note}"
    fig.text(0.01, 0.02, note, fontsize=7, color="#444")
    if d.title:
        fig.suptitle(d.title, x=0.01, ha="left", fontsize=10)
    return fig
