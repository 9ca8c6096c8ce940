"""matplotlib figures of measured images: pure functions, each returns a new Figure.

No pyplot and no rcParams: every function builds a ``matplotlib.figure.Figure``
directly, so nothing leaks between notebooks or tests, and a notebook shows the
figure by making it the last expression of a cell (or through ``stagelab.widgets``).
Every figure says what was measured (the lab's size, ``stagelab.sizes.SIZE_LABEL``),
which image(s) and on which base-image profile.

Used by notebooks 01-07 (``size_bars``), 03-06 (``breakdown``, ``layers_chart``).
"""
from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .categories import label as category_label
from .compare import compare, display_name, profile_of
from .sizes import SIZE_LABEL
from .units import human_ratio, human_size

SIZE_AXIS = f"size, {SIZE_LABEL}"
BASE_COLOR = "#9aa5b1"      # the baseline bar
BAR_COLOR = "#2b6cb0"
CATEGORY_COLORS = (
    "#2b6cb0", "#38a169", "#d69e2e", "#805ad5", "#e53e3e", "#dd6b20",
    "#319795", "#b83280", "#718096", "#a0aec0", "#4a5568", "#c05621",
)
INSTRUCTION_WIDTH = 60


class StagelabFigure(Figure):
    """A plain matplotlib Figure that also shows itself in Jupyter without pyplot.

    A Figure made without pyplot has no display hook in a kernel (it would print
    ``<Figure size ...>``); ``_repr_png_`` makes it the last expression of a cell.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def _title(fig: Figure, title: str, fontsize: float = 11) -> None:
    """The figure's title across its whole width, left-aligned, wrapped rather than cut off."""
    width = max(40, int(fig.get_figwidth() * 72 / (fontsize * 0.6)))
    fig.suptitle("\n".join(textwrap.wrap(title, width)) or title, x=0.01, ha="left", fontsize=fontsize)


def size_label(report: Any) -> str:
    """What ``report.size`` measured (``ImageReport.size_label``; the lab's size for other reports)."""
    return getattr(report, "size_label", None) or SIZE_LABEL


def _short_name(name: str, width: int = 44) -> str:
    """Long image names keep their end (the tag): ``…/distroless-base:debian12``."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _size_axis(ax: Any) -> None:
    """Ticks in human units; few of them, so labels like "175 MB" never collide."""
    if ax.get_xscale() == "linear":
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(_human_tick))


def _human_tick(value: float, _pos: Any = None) -> str:
    return "0" if value <= 0 else human_size(value)


def truncate(text: str, width: int = INSTRUCTION_WIDTH) -> str:
    """One line of at most ``width`` characters, ``…`` when cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The PNG bytes of a figure (static notebook outputs, HTML reports, widgets' fallback)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)   # constrained layout already fits the labels
    return buf.getvalue()


def _message_figure(title: str, message: str) -> Figure:
    fig = StagelabFigure(figsize=(8, 1.6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    _title(fig, title, 10)
    ax.text(0.0, 0.5, message, transform=ax.transAxes, va="center", fontsize=10, color="#744210")
    return fig


def size_bars(reports: Sequence[Any], *, log: bool = False, baseline: Any = None) -> Figure:
    """Horizontal bars of image sizes, each labelled "4.8 MB (197x smaller)" (notebooks 01-07).

    ``baseline``: as in :func:`stagelab.compare.compare` (default: the largest image);
    its bar is grey. ``log=True`` uses a log scale so a 5 MB bar stays visible next to 1 GB.
    Accepts ImageReports or a :class:`~stagelab.compare.Comparison`.
    """
    comp = reports if hasattr(reports, "rows") else compare(list(reports), baseline=baseline)
    rows = list(comp.rows)
    profile = comp.profile_text
    height = 1.0 + 0.45 * len(rows)
    fig = StagelabFigure(figsize=(8.5, max(2.2, height)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_label("size_bars")
    names = [r.name for r in rows]
    sizes = [max(r.size, 1) for r in rows]
    colors = [BASE_COLOR if r.is_baseline else BAR_COLOR for r in rows]
    y = list(range(len(rows)))
    bars = ax.barh(y, sizes, color=colors, height=0.6)
    for bar, r in zip(bars, rows):
        bar.set_gid(r.name)
    ax.set_yticks(y, labels=[_short_name(n) for n in names])
    ax.invert_yaxis()   # first image at the top, as in the table
    if log:
        ax.set_xscale("log")
        ax.set_xlim(min(sizes) / 2, max(sizes) * 10)
    else:
        ax.set_xlim(0, max(sizes) * 1.45)
    _size_axis(ax)
    for bar, r in zip(bars, rows):
        label = human_size(r.size)
        if r.is_baseline:
            label += " (baseline)"
        elif r.ratio is not None:
            label += f" ({human_ratio(r.ratio)})"
        ax.annotate(label, (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(4, 0),
                    textcoords="offset points", va="center", ha="left", fontsize=9)
    scale = "log scale" if log else "linear scale"
    ax.set_xlabel(f"{SIZE_AXIS}, {scale}")
    _title(fig, f"Image {SIZE_AXIS}, profile: {profile}")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    return fig


def breakdown(report: Any, by: str = "category", depth: int = 2, *, top: int = 8) -> Figure:
    """One stacked bar of an image's files by category (or by directory to ``depth``), legend with sizes.

    Sizes are the bytes of the files in the final tree (what ``docker run`` sees), which
    is close to, not equal to, the image size. Notebooks 03-06 and ``LayerExplorer``.
    """
    if by not in ("category", "directory"):
        raise ValueError(f"by must be 'category' or 'directory', not {by!r}")
    name, profile = display_name(report), profile_of(report) or "unknown"
    title = f"{name}: contents by {by}" + (f" (depth {depth})" if by == "directory" else "") + f", profile: {profile}"
    if not getattr(report, "contents", True) or not getattr(report, "files", None):
        return _message_figure(title, "contents not read: use inspect(image, contents=True) to see what fills the image")
    if by == "category":
        parts = [(category_label(k), v) for k, v in report.categories().items() if v > 0]
    else:
        items = [(k, v) for k, v in report.by_directory(depth) if v > 0]
        parts = items[:top]
        rest = sum(v for _, v in items[top:])
        if rest:
            parts.append(("(other directories)", rest))
    total = sum(v for _, v in parts)
    fig = StagelabFigure(figsize=(9, 1.9 + 0.2 * ((len(parts) + 1) // 2)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_label("breakdown")
    left = 0
    for i, (label, value) in enumerate(parts):
        share = value / total if total else 0
        bar = ax.barh([0], [value], left=left, height=0.6, color=CATEGORY_COLORS[i % len(CATEGORY_COLORS)],
                      label=f"{label}: {human_size(value)} ({share:.0%})" if share >= 0.005
                      else f"{label}: {human_size(value)} (<1%)")
        bar.patches[0].set_gid(label)
        if share >= 0.12:
            ax.text(left + value / 2, 0, truncate(label, max(8, int(share * 100))) + "\n" + human_size(value), ha="center",
                    va="center", fontsize=8, color="white")
        left += value
    ax.set_xlim(0, max(total, 1))
    ax.set_yticks([])
    _size_axis(ax)
    ax.set_xlabel(f"bytes of files in the final tree: {human_size(total)} "
                  f"(image: {human_size(getattr(report, 'size', None))} {size_label(report)})")
    _title(fig, title)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return fig


def layers_chart(report: Any, *, width: int = INSTRUCTION_WIDTH) -> Figure:
    """One bar per filesystem layer (bottom layer first), labelled with its instruction (notebooks 03-04).

    A layer whose files a later layer deletes or overwrites shows the wasted bytes too.
    """
    name, profile = display_name(report), profile_of(report) or "unknown"
    layers = list(getattr(report, "layers", []) or [])
    title = (f"{name}: {len(layers)} layers, {human_size(getattr(report, 'size', None))} "
             f"{size_label(report)}, profile: {profile}")
    if not layers:
        return _message_figure(title, "this image has no filesystem layers")
    fig = StagelabFigure(figsize=(9.5, 1.2 + 0.38 * len(layers)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_label("layers_chart")
    y = list(range(len(layers)))
    sizes = [max(layer.size, 0) for layer in layers]
    labels = [f"{layer.index}: {truncate(layer.instruction or '(no history)', width)}" for layer in layers]
    bars = ax.barh(y, sizes, color=BAR_COLOR, height=0.6)
    for bar, layer in zip(bars, layers):
        bar.set_gid(f"layer-{layer.index}")
    wasted = [min(layer.wasted or 0, layer.size) for layer in layers]
    if any(wasted):
        ax.barh(y, wasted, color="#e53e3e", height=0.6, label="wasted: bytes a later layer deletes or overwrites")
        fig.legend(loc="outside lower right", fontsize=8, frameon=False)
    ax.set_yticks(y, labels=labels, fontsize=8, family="monospace")
    ax.invert_yaxis()
    biggest = max(sizes) if max(sizes) > 0 else 1
    ax.set_xlim(0, biggest * 1.3)
    _size_axis(ax)
    for bar, layer, w in zip(bars, layers, wasted):
        text = human_size(layer.size) + (f" ({human_size(w)} wasted)" if w else "")
        ax.annotate(text, (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("bytes the layer adds (uncompressed)")
    _title(fig, title)
    ax.spines[["top", "right"]].set_visible(False)
    return fig
