"""stagelab.widgets without a frontend: state follows the controls; static fallback has figure and table."""
from __future__ import annotations

import base64

import pytest

from stagelab import plots
from stagelab.inspect import ImageReport, LayerInfo, Surface
from stagelab.layers import FileEntry
from stagelab.naming import APP_LABEL, PROFILE_LABEL, VARIANT_LABEL
from stagelab.widgets import LayerExplorer, SizeComparison, largest_files_html, layers_table_html

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class FakeReport(ImageReport):
    """Content summaries fixed per report (the widgets only show them)."""

    def categories(self) -> dict[str, int]:
        return {"the app": self.size // 10, "OS libraries and files": self.size - self.size // 10}

    def by_directory(self, depth: int = 2) -> list[tuple[str, int]]:
        return [("/usr/lib", self.size - self.size // 10), ("/app", self.size // 10)]

    def largest(self, n: int = 10) -> list[FileEntry]:
        return sorted((f for f in self.files.values() if f.type == "file"), key=lambda f: -f.size)[:n]


def make(variant: str, size: int, *, nlayers: int = 3, app: str = "go-server") -> FakeReport:
    per = size // nlayers
    return FakeReport(
        ref=f"stagelab/test/{app}:{variant}", image_id="sha256:" + "ab" * 32, size=size,
        layers=[LayerInfo(index=i, size=per, created_by=f"/bin/sh -c #(nop) COPY {variant}{i} /x{i}", files=i + 1)
                for i in range(nlayers)],
        labels={APP_LABEL: app, VARIANT_LABEL: variant, PROFILE_LABEL: "offline"}, profile="offline",
        user="65532" if variant == "scratch" else "",
        surface=Surface(shell=None if variant == "scratch" else "/bin/sh"),
        files={f"/{variant}/f{i}": FileEntry(f"/{variant}/f{i}", (i + 1) * 1000, 0o644, 0, 0, "file", 0)
               for i in range(15)},
    )


@pytest.fixture
def reports() -> list[FakeReport]:
    return [make("single", 946_000_000, nlayers=6), make("alpine", 18_500_000), make("scratch", 4_800_000, nlayers=1)]


def _bar_labels(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_size_comparison_initial_state(reports: list[FakeReport]) -> None:
    w = SizeComparison(reports)
    assert w.selected == ["go-server:single", "go-server:alpine", "go-server:scratch"]
    assert w.baseline == "go-server:single" and w.scale == "linear"
    assert "stagelab-size-comparison" in w._dom_classes and "stagelab-chart" in w.chart._dom_classes
    assert _bar_labels(w.figure)[0] == "946 MB (baseline)"
    assert w.table_html.count("<tr") == 4 and "stagelab-comparison" in w.table_html
    (out,) = w.chart.outputs
    assert base64.b64decode(out["data"]["image/png"]).startswith(b"\x89PNG")


def test_size_comparison_baseline_argument(reports: list[FakeReport]) -> None:
    assert SizeComparison(reports, baseline="alpine").baseline == "go-server:alpine"
    assert SizeComparison(reports, baseline=reports[2], log=True).scale == "log"


def test_changing_the_baseline_redraws_figure_and_table(reports: list[FakeReport]) -> None:
    w = SizeComparison(reports)
    before_fig, before_png, before_table = w.figure, w.chart.outputs, w.table_html
    w.baseline_picker.value = "go-server:alpine"
    assert w.baseline == "go-server:alpine"
    assert w.figure is not before_fig and w.chart.outputs != before_png and w.table_html != before_table
    assert _bar_labels(w.figure) == ["946 MB (51x larger)", "18.5 MB (baseline)", "4.8 MB (3.9x smaller)"]
    assert "baseline: go-server:alpine" in w.table_html
    assert w.comparison.row("alpine").is_baseline


def test_changing_the_scale_redraws(reports: list[FakeReport]) -> None:
    w = SizeComparison(reports)
    assert w.figure.axes[0].get_xscale() == "linear"
    w.scale_buttons.value = "log"
    assert w.scale == "log" and w.figure.axes[0].get_xscale() == "log"
    w.scale = "linear"
    assert w.scale_buttons.value == "linear" and w.figure.axes[0].get_xscale() == "linear"


def test_picking_images(reports: list[FakeReport]) -> None:
    w = SizeComparison(reports)
    w.picker.value = ("go-server:scratch",)
    # the baseline stays as a reference even when not picked
    assert [r.name for r in w.comparison.rows] == ["go-server:single", "go-server:scratch"]
    assert len([p for p in w.figure.axes[0].patches if p.get_gid()]) == 2
    w.selected = []
    assert w.figure is None and "No image picked" in w.table_html
    assert "text/html" in w._repr_mimebundle_() and "image/png" not in w._repr_mimebundle_()
    w.selected = ["go-server:alpine", "go-server:single"]
    assert w.selected == ["go-server:single", "go-server:alpine"]   # given order kept


def test_size_comparison_mimebundle_has_widget_html_and_png(reports: list[FakeReport]) -> None:
    w = SizeComparison(reports)
    w.scale = "log"
    bundle = w._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and bundle[WIDGET_VIEW]["model_id"] == w.model_id
    png = base64.b64decode(bundle["image/png"])
    assert png == plots.figure_png(w.figure)
    page = bundle["text/html"]
    assert '<img class="stagelab-chart"' in page and "data:image/png;base64," in page
    assert w.table_html in page and "docker image ls" in page
    assert "197x smaller" in bundle["text/plain"]


def test_duplicate_names_are_made_unique() -> None:
    a, b = make("x", 100), make("x", 50)
    b.ref = "other/x:latest"
    assert SizeComparison([a, b]).names == ["go-server:x", "other/x:latest"]


def test_layer_explorer_state_and_classes(reports: list[FakeReport]) -> None:
    w = LayerExplorer(reports, top=5)
    assert w.image == "go-server:single" and w.by == "category"
    assert "stagelab-layer-explorer" in w._dom_classes and "stagelab-chart" in w.chart._dom_classes
    assert 'class="stagelab-layers-table"' in w.table_html
    assert w.table_html.count("<tr") == 1 + 6 and "COPY single5 /x5" in w.table_html
    assert "go-server:single: contents by category" in w.figure.get_suptitle()
    assert w.largest_html.count("<tr") == 1 + 5 and "/single/f14" in w.largest_html


def test_layer_explorer_follows_the_picker(reports: list[FakeReport]) -> None:
    w = LayerExplorer(reports)
    old = w.chart.outputs
    w.image_picker.value = "go-server:scratch"
    assert w.report is reports[2]
    assert w.table_html.count("<tr") == 1 + 1 and "4.8 MB" in w.table_html and "user: 65532" in w.table_html
    assert "go-server:scratch" in w.figure.get_suptitle() and w.chart.outputs != old
    assert "/scratch/f14" in w.largest_html and "/single/" not in w.largest_html
    w.by = "directory"
    assert w.by_buttons.value == "directory"
    assert [p.get_gid() for p in w.figure.axes[0].patches if p.get_gid()] == ["/usr/lib", "/app"]


def test_layer_explorer_mimebundle(reports: list[FakeReport]) -> None:
    w = LayerExplorer(reports)
    w.image = "go-server:alpine"
    bundle = w._repr_mimebundle_()
    assert {WIDGET_VIEW, "text/html", "image/png", "text/plain"} <= set(bundle)
    assert base64.b64decode(bundle["image/png"]) == plots.figure_png(w.figure)
    assert 'class="stagelab-layers-table"' in bundle["text/html"] and "<img" in bundle["text/html"]
    assert bundle["text/plain"].startswith("go-server:alpine: 3 layers")


def test_tables_escape_and_handle_missing_contents(reports: list[FakeReport]) -> None:
    rep = reports[0]
    rep.layers[0].created_by = "/bin/sh -c echo '<b>' && " + "y" * 300
    page = layers_table_html(rep)
    assert "<b>" not in page and "&lt;b&gt;" in page
    rep.contents, rep.files = False, {}
    assert "contents=True" in largest_files_html(rep)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        SizeComparison([])
    with pytest.raises(ValueError):
        LayerExplorer([make("x", 10)], by="size")


def test_no_figure_leaks_into_pyplot(reports: list[FakeReport]) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    SizeComparison(reports).scale = "log"
    LayerExplorer(reports).by = "directory"
    assert plt.get_fignums() == before


def test_layer_captions_say_what_the_size_measured(reports: list[FakeReport]) -> None:
    from stagelab.sizes import HISTORY_LABEL, SIZE_LABEL

    rep = reports[0]
    assert SIZE_LABEL in layers_table_html(rep) and "docker image ls" not in layers_table_html(rep)
    rep.size_label = HISTORY_LABEL     # metadata only (contents=False): the caption follows the report
    assert HISTORY_LABEL in layers_table_html(rep)
