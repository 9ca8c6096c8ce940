"""Interactive views of measured images, built on :mod:`stagelab.plots` and :mod:`stagelab.compare`.

``SizeComparison`` (notebooks 02, 04, 05, 06, 08): pick images, a baseline and a linear/log scale;
the size chart and the comparison table redraw on every change.
``LayerExplorer`` (notebooks 05, 08): pick an image; see its layers, what fills it
(by category or directory) and its largest files.

Both are ``ipywidgets.VBox`` subclasses whose ``_repr_mimebundle_`` adds a static
``text/html`` (table + embedded PNG) and ``image/png`` of the current state next to the
widget view, so nbconvert, nbval and HTML reports (no widget frontend) still show the
figure and the table. Their state is plain Python attributes (``.selected``,
``.baseline``, ``.scale``, ``.figure``, ``.table_html``) for tests, and CSS classes
(``stagelab-size-comparison``, ``stagelab-layer-explorer``, ``stagelab-chart``,
``stagelab-layers-table``) for browser checks.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from . import plots
from .compare import Comparison, compare, display_name, profile_of
from .units import human_size

__all__ = ["LayerExplorer", "SizeComparison"]

SCALES = ("linear", "log")
BREAKDOWNS = ("category", "directory")


def _unique_names(reports: Sequence[Any]) -> list[str]:
    """Display names, made unique (the ref, then a counter) when two images share one."""
    names: list[str] = []
    for rep in reports:
        name = display_name(rep)
        if name in names:
            name = str(getattr(rep, "ref", "") or name)
        base, n = name, 2
        while name in names:
            name = f"{base} ({n})"
            n += 1
        names.append(name)
    return names


def _png_output(png: bytes, alt: str) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": alt},
        "metadata": {},
    }


def _message_output(text: str) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "data": {"text/plain": text, "text/html": f"<p><i>{html.escape(text)}</i></p>"},
        "metadata": {},
    }


def _img_tag(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="stagelab-chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'


class _StaticFallback:
    """Adds ``text/html`` and ``image/png`` of the current state to a widget's mime bundle."""

    _png: bytes | None = None

    def _static_html(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _static_text(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs) or {}  # type: ignore[misc]
        data["text/plain"] = self._static_text()
        data["text/html"] = self._static_html()
        if self._png:
            data["image/png"] = base64.b64encode(self._png).decode("ascii")
        return data


class SizeComparison(_StaticFallback, widgets.VBox):
    """Pick images, a baseline and a scale; the size bars and the comparison table follow.

    ``SizeComparison(reports, baseline=None, log=False)``; ``reports`` are ImageReports,
    ``baseline`` one of them or its name (default: the largest).
    """

    def __init__(self, reports: Sequence[Any], baseline: Any = None, *, log: bool = False, **kwargs: Any) -> None:
        reports = list(reports)
        if not reports:
            raise ValueError("SizeComparison needs at least one ImageReport")
        self.reports = reports
        self.names = _unique_names(reports)
        self._by_name = dict(zip(self.names, reports))
        first = compare(reports, baseline=baseline)
        base_name = self.names[0]
        for name, rep in self._by_name.items():
            if first.baseline is not None and str(getattr(rep, "ref", "")) == first.baseline:
                base_name = name
                break
        self._figure: Figure | None = None
        self._comparison: Comparison | None = None
        self._png = None

        self.picker = widgets.SelectMultiple(
            options=self.names, value=tuple(self.names), description="images",
            rows=min(max(len(self.names), 2), 8), layout=widgets.Layout(width="24em"),
        )
        self.picker.add_class("stagelab-image-picker")
        self.baseline_picker = widgets.Dropdown(options=self.names, value=base_name, description="baseline")
        self.baseline_picker.add_class("stagelab-baseline-picker")
        self.scale_buttons = widgets.ToggleButtons(options=SCALES, value="log" if log else "linear",
                                                   description="scale")
        self.scale_buttons.add_class("stagelab-scale")
        self.chart = widgets.Output()
        self.chart.add_class("stagelab-chart")
        self.table = widgets.HTML()
        self.table.add_class("stagelab-comparison-table")
        controls = widgets.HBox([self.picker, widgets.VBox([self.baseline_picker, self.scale_buttons])])
        super().__init__(children=[controls, self.chart, self.table], **kwargs)
        self.add_class("stagelab-size-comparison")
        for control in (self.picker, self.baseline_picker, self.scale_buttons):
            control.observe(self._on_change, names="value")
        self.refresh()

    # -- state, readable and settable from Python
    @property
    def selected(self) -> list[str]:
        """Names of the images shown, in the order given."""
        chosen = set(self.picker.value)
        return [n for n in self.names if n in chosen]

    @selected.setter
    def selected(self, names: Sequence[str]) -> None:
        self.picker.value = tuple(n for n in self.names if n in set(names))

    @property
    def baseline(self) -> str:
        return str(self.baseline_picker.value)

    @baseline.setter
    def baseline(self, name: str) -> None:
        self.baseline_picker.value = name

    @property
    def scale(self) -> str:
        return str(self.scale_buttons.value)

    @scale.setter
    def scale(self, value: str) -> None:
        self.scale_buttons.value = value

    @property
    def figure(self) -> Figure | None:
        """The size bars currently shown (None when no image is picked)."""
        return self._figure

    @property
    def comparison(self) -> Comparison | None:
        return self._comparison

    @property
    def table_html(self) -> str:
        return str(self.table.value)

    # -- drawing
    def _on_change(self, _change: Any = None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Recompute the comparison and redraw the chart and the table from the controls."""
        chosen = [self._by_name[n] for n in self.selected]
        if not chosen:
            self._figure = self._comparison = self._png = None
            self.chart.outputs = (_message_output("Pick at least one image."),)
            self.table.value = '<p class="stagelab-comparison-empty"><i>No image picked.</i></p>'
            return
        self._comparison = compare(chosen, baseline=self._by_name[self.baseline])
        self._figure = plots.size_bars(self._comparison, log=self.scale == "log")
        self._png = plots.figure_png(self._figure)
        alt = f"size bars ({self.scale} scale), baseline {self.baseline}"
        self.chart.outputs = (_png_output(self._png, alt),)
        self.table.value = self._comparison._repr_html_()

    def _static_text(self) -> str:
        return self._comparison.to_text() if self._comparison else "SizeComparison: no image picked"

    def _static_html(self) -> str:
        alt = f"size bars ({self.scale} scale), baseline {self.baseline}"
        return (
            '<div class="stagelab-size-comparison stagelab-static">'
            f"{_img_tag(self._png, alt)}{self.table_html}</div>"
        )


class LayerExplorer(_StaticFallback, widgets.VBox):
    """Pick an image: its layers table, a breakdown chart (category/directory) and its largest files."""

    def __init__(self, reports: Sequence[Any], *, by: str = "category", depth: int = 2, top: int = 10,
                 **kwargs: Any) -> None:
        reports = list(reports)
        if not reports:
            raise ValueError("LayerExplorer needs at least one ImageReport")
        if by not in BREAKDOWNS:
            raise ValueError(f"by must be one of {BREAKDOWNS}, not {by!r}")
        self.reports = reports
        self.names = _unique_names(reports)
        self._by_name = dict(zip(self.names, reports))
        self.depth = depth
        self.top = top
        self._figure: Figure | None = None
        self._png = None

        self.image_picker = widgets.Dropdown(options=self.names, value=self.names[0], description="image")
        self.image_picker.add_class("stagelab-image-picker")
        self.by_buttons = widgets.ToggleButtons(options=BREAKDOWNS, value=by, description="by")
        self.by_buttons.add_class("stagelab-breakdown-by")
        self.layers = widgets.HTML()
        self.layers.add_class("stagelab-layers")
        self.chart = widgets.Output()
        self.chart.add_class("stagelab-chart")
        self.largest_files = widgets.HTML()
        self.largest_files.add_class("stagelab-largest")
        super().__init__(
            children=[widgets.HBox([self.image_picker, self.by_buttons]), self.layers, self.chart, self.largest_files],
            **kwargs,
        )
        self.add_class("stagelab-layer-explorer")
        for control in (self.image_picker, self.by_buttons):
            control.observe(self._on_change, names="value")
        self.refresh()

    @property
    def image(self) -> str:
        return str(self.image_picker.value)

    @image.setter
    def image(self, name: str) -> None:
        self.image_picker.value = name

    @property
    def by(self) -> str:
        return str(self.by_buttons.value)

    @by.setter
    def by(self, value: str) -> None:
        self.by_buttons.value = value

    @property
    def report(self) -> Any:
        return self._by_name[self.image]

    @property
    def figure(self) -> Figure | None:
        return self._figure

    @property
    def table_html(self) -> str:
        """The layers table of the image shown."""
        return str(self.layers.value)

    @property
    def largest_html(self) -> str:
        return str(self.largest_files.value)

    def _on_change(self, _change: Any = None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Redraw the layers table, the breakdown chart and the largest files for the picked image."""
        rep = self.report
        self.layers.value = layers_table_html(rep)
        self._figure = plots.breakdown(rep, by=self.by, depth=self.depth)
        self._png = plots.figure_png(self._figure)
        self.chart.outputs = (_png_output(self._png, f"{self.image}: contents by {self.by}"),)
        self.largest_files.value = largest_files_html(rep, self.top)

    def _static_text(self) -> str:
        rep = self.report
        lines = [f"{self.image}: {len(rep.layers)} layers, {human_size(rep.size)} {plots.size_label(rep)}, "
                 f"profile: {profile_of(rep) or 'unknown'}"]
        for layer in rep.layers:
            lines.append(f"  {layer.index:>2}  {human_size(layer.size):>9}  {plots.truncate(layer.instruction, 70)}")
        return "\n".join(lines)

    def _static_html(self) -> str:
        return (
            '<div class="stagelab-layer-explorer stagelab-static">'
            f"{self.table_html}{_img_tag(self._png, f'{self.image}: contents by {self.by}')}{self.largest_html}</div>"
        )


# --- HTML tables (also usable on their own in notebooks) ------------------------------------

_CELL = "padding:2px 8px;white-space:nowrap;text-align:{}"
_TABLE = 'style="border-collapse:collapse;font-family:sans-serif;font-size:0.9em"'
_CAPTION = 'style="caption-side:top;text-align:left;padding:4px 0;color:#444;white-space:nowrap"'


def layers_table_html(report: Any, *, width: int = 120) -> str:
    """The layers of one image as an HTML table (class ``stagelab-layers-table``), bottom layer first."""
    esc = html.escape
    name = display_name(report)
    layers = list(getattr(report, "layers", []) or [])
    caption = (f"{name}: {len(layers)} layers, {human_size(report.size)} {plots.size_label(report)}; "
               f"profile: {profile_of(report) or 'unknown'}; user: {getattr(report, 'user', '') or 'root'}")
    rows = []
    for layer in layers:
        full = layer.instruction or "(no history)"
        rows.append(
            "<tr>"
            f'<td style="{_CELL.format("right")}">{layer.index}</td>'
            f'<td style="{_CELL.format("right")}" title="{layer.size:,} bytes">{esc(human_size(layer.size))}</td>'
            f'<td style="{_CELL.format("right")}">{"–" if layer.files is None else f"{layer.files:,}"}</td>'
            f'<td style="{_CELL.format("right")}">{esc(human_size(layer.wasted, unknown="–")) if layer.wasted else "–"}</td>'
            f'<td style="{_CELL.format("left")}" title="{esc(full)}"><code>{esc(plots.truncate(full, width))}</code></td>'
            "</tr>"
        )
    head = "".join(
        f'<th style="{_CELL.format(align)}">{h}</th>'
        for h, align in (("#", "right"), ("size", "right"), ("files", "right"), ("wasted", "right"),
                         ("instruction", "left"))
    )
    return (
        f'<table class="stagelab-layers-table" {_TABLE}><caption {_CAPTION}>{esc(caption)}</caption>'
        f'<thead><tr style="border-bottom:1px solid #999">{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def largest_files_html(report: Any, n: int = 10) -> str:
    """The ``n`` largest files of one image as an HTML table (class ``stagelab-largest-files``)."""
    esc = html.escape
    name = display_name(report)
    if not getattr(report, "contents", True) or not getattr(report, "files", None):
        return (f'<p class="stagelab-largest-files"><i>{esc(name)}: contents not read; '
                "use inspect(image, contents=True) to list the largest files.</i></p>")
    rows = "".join(
        "<tr>"
        f'<td style="{_CELL.format("left")}"><code>{esc(f.path)}</code></td>'
        f'<td style="{_CELL.format("right")}" title="{f.size:,} bytes">{esc(human_size(f.size))}</td>'
        f'<td style="{_CELL.format("right")}">{f.layer}</td>'
        "</tr>"
        for f in report.largest(n)
    )
    head = "".join(f'<th style="{_CELL.format(a)}">{h}</th>' for h, a in (("path", "left"), ("size", "right"),
                                                                          ("layer", "right")))
    return (
        f'<table class="stagelab-largest-files" {_TABLE}><caption {_CAPTION}>'
        f"{esc(name)}: the {n} largest files (bytes in the final tree)</caption>"
        f'<thead><tr style="border-bottom:1px solid #999">{head}</tr></thead><tbody>{rows}</tbody></table>'
    )
