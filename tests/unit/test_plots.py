"""stagelab.plots on made-up ImageReports: bars, labels, titles; no pyplot state touched."""
from __future__ import annotations

import matplotlib
import pytest
from matplotlib.figure import Figure

from stagelab import plots
from stagelab.compare import compare
from stagelab.inspect import ImageReport, LayerInfo, Surface
from stagelab.layers import FileEntry
from stagelab.naming import APP_LABEL, PROFILE_LABEL, VARIANT_LABEL
from stagelab.sizes import SIZE_LABEL

CATS = {"the app": 4_700_000, "Go toolchain": 230_000_000, "OS libraries and files": 300_000_000,
        "node_modules (dev-only)": 0, "other": 900}
DIRS = [("/usr/local/go", 230_000_000), ("/usr/lib", 200_000_000), ("/usr/share", 80_000_000),
        ("/etc", 2_000_000), ("/server", 4_700_000)]


class FakeReport(ImageReport):
    """An ImageReport whose content summaries are fixed (the plots only draw them)."""

    def categories(self) -> dict[str, int]:
        return dict(CATS)

    def by_directory(self, depth: int = 2) -> list[tuple[str, int]]:
        return list(DIRS)


def make(variant: str, size: int, *, profile: str = "offline", nlayers: int = 3) -> FakeReport:
    per = size // nlayers
    layers = [LayerInfo(index=i, size=per, created_by=f"/bin/sh -c #(nop) COPY file{i} /dest{i}")
              for i in range(nlayers)]
    layers[0].created_by = "/bin/sh -c apt-get update && apt-get install -y gcc make git " + "x" * 80
    return FakeReport(
        ref=f"stagelab/test/go-server:{variant}", image_id="sha256:" + f"{variant:0>12}" * 4 + "0" * 16,
        size=size, layers=layers, profile=profile,
        labels={APP_LABEL: "go-server", VARIANT_LABEL: variant, PROFILE_LABEL: profile},
        surface=Surface(shell="/bin/sh"),
        files={"/server": FileEntry("/server", 4_700_000, 0o755, 0, 0, "file", nlayers - 1)},
    )


@pytest.fixture
def reports() -> list[FakeReport]:
    return [make("single", 946_000_000, nlayers=6), make("alpine", 18_500_000), make("scratch", 4_800_000, nlayers=1)]


def _all_text(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def test_size_bars_one_bar_per_image_with_human_labels(reports: list[FakeReport]) -> None:
    rc_before = dict(matplotlib.rcParams)
    fig = plots.size_bars(reports, baseline="single")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_gid()]
    assert [b.get_gid() for b in bars] == ["go-server:single", "go-server:alpine", "go-server:scratch"]
    assert [b.get_width() for b in bars] == [946_000_000, 18_500_000, 4_800_000]
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["946 MB (baseline)", "18.5 MB (51x smaller)", "4.8 MB (197x smaller)"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["go-server:single", "go-server:alpine", "go-server:scratch"]
    assert f"{SIZE_LABEL}, profile: offline" in " ".join(fig.get_suptitle().split())
    assert SIZE_LABEL in ax.get_xlabel() and ax.get_xscale() == "linear"
    assert "docker image ls" not in ax.get_xlabel() + fig.get_suptitle()   # not what it shows on every store
    assert bars[0].get_facecolor() != bars[1].get_facecolor()   # the baseline stands out
    assert dict(matplotlib.rcParams) == rc_before
    assert plots.figure_png(fig).startswith(b"\x89PNG")


def test_size_bars_log_scale_and_other_baseline(reports: list[FakeReport]) -> None:
    fig = plots.size_bars(reports, log=True, baseline="alpine")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.texts]
    assert labels[0].endswith("(51x larger)") and labels[1].endswith("(baseline)") and "3.9x smaller" in labels[2]
    assert ax.get_xlim()[0] < 4_800_000   # the smallest bar is visible


def test_size_bars_accepts_a_comparison_and_flags_mixed_profiles(reports: list[FakeReport]) -> None:
    reports[2] = make("scratch", 4_800_000, profile="upstream")
    fig = plots.size_bars(compare(reports))
    assert "MIXED offline + upstream" in " ".join(fig.get_suptitle().split())


def test_breakdown_by_category_is_a_stacked_bar(reports: list[FakeReport]) -> None:
    fig = plots.breakdown(reports[0])
    ax = fig.axes[0]
    segments = [p for p in ax.patches if p.get_gid()]
    nonzero = {k: v for k, v in CATS.items() if v}
    assert [s.get_gid() for s in segments] == list(nonzero)
    assert [s.get_width() for s in segments] == list(nonzero.values())
    lefts = [s.get_x() for s in segments]
    assert lefts == sorted(lefts) and lefts[0] == 0   # stacked end to end
    text = _all_text(fig)
    assert "go-server:single" in text and "profile: offline" in text and "by category" in text
    assert "Go toolchain: 230 MB (43%)" in text and "other: 900 B (<1%)" in text
    assert "946 MB" in text   # the image size for reference


def test_breakdown_by_directory_keeps_top_and_groups_the_rest(reports: list[FakeReport]) -> None:
    fig = plots.breakdown(reports[0], by="directory", depth=2, top=3)
    segments = [p.get_gid() for p in fig.axes[0].patches if p.get_gid()]
    assert segments == ["/usr/local/go", "/usr/lib", "/usr/share", "(other directories)"]
    assert "by directory (depth 2)" in _all_text(fig)
    with pytest.raises(ValueError):
        plots.breakdown(reports[0], by="colour")


def test_breakdown_without_contents_says_so(reports: list[FakeReport]) -> None:
    rep = reports[1]
    rep.files = {}
    rep.contents = False
    text = _all_text(plots.breakdown(rep))
    assert "contents=True" in text and "go-server:alpine" in text


def test_layers_chart_bars_with_truncated_instructions(reports: list[FakeReport]) -> None:
    rep = reports[0]
    rep.layers[2].wasted = 10_000_000
    fig = plots.layers_chart(rep)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if (p.get_gid() or "").startswith("layer-")]
    assert len(bars) == len(rep.layers) == 6
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[1] == "1: COPY file1 /dest1"
    assert ticks[0].startswith("0: RUN apt-get update") and ticks[0].endswith("…")
    assert len(ticks[0]) <= len("0: ") + plots.INSTRUCTION_WIDTH
    text = _all_text(fig)
    assert "go-server:single: 6 layers, 946 MB" in text and "profile: offline" in text
    assert "10 MB wasted" in text


def test_layers_chart_without_layers(reports: list[FakeReport]) -> None:
    rep = reports[2]
    rep.layers = []
    assert "no filesystem layers" in _all_text(plots.layers_chart(rep))


def test_truncate() -> None:
    assert plots.truncate("a  b\n c", 10) == "a b c"
    assert plots.truncate("x" * 20, 10) == "x" * 9 + "…"


def test_figures_show_themselves_in_a_kernel_without_pyplot(reports: list[FakeReport]) -> None:
    from IPython.core.formatters import PNGFormatter

    for fig in (plots.size_bars(reports), plots.breakdown(reports[0]), plots.layers_chart(reports[0])):
        assert isinstance(fig, Figure)
        png = PNGFormatter()(fig)   # what IPython's display machinery asks for
        assert png is not None and png.startswith(b"\x89PNG")
