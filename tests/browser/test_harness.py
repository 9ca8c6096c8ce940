"""The browser harness itself, on a small notebook this test writes (no engine needed).

The notebook shows ``stagelab.widgets.SizeComparison`` and ``LayerExplorer`` on made-up
ImageReports, so this proves JupyterLab + Chromium + Playwright render the lab's widgets
here and that a click redraws the chart, independently of the engine and of notebooks
02 and 05 (test_notebook_widgets.py checks those the same way).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lab_harness import LabPage, check_layer_explorer, check_size_comparison

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

FAKE_REPORTS = '''\
from stagelab.inspect import ImageReport, LayerInfo
from stagelab.layers import FileEntry
from stagelab.widgets import LayerExplorer, SizeComparison

def fake(variant, size, nlayers):
    per = size // nlayers
    return ImageReport(
        ref=f"stagelab/browser-test/go-server:{variant}", image_id="sha256:" + variant[:2].encode().hex() * 16,
        size=size, profile="offline",
        labels={"org.stagelab.app": "go-server", "org.stagelab.variant": variant, "org.stagelab.profile": "offline"},
        layers=[LayerInfo(index=i, size=per, created_by=f"/bin/sh -c #(nop) COPY part{i} /usr/lib/f{i}", files=1)
                for i in range(nlayers)],
        files={f"/usr/lib/f{i}": FileEntry(f"/usr/lib/f{i}", per, 0o644, 0, 0, "file", i) for i in range(nlayers)},
    )

reports = [fake("single", 946_000_000, 6), fake("distroless", 9_100_000, 3), fake("scratch", 4_800_000, 1)]'''


def _write_notebook(folder: Path) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in
                (FAKE_REPORTS, "SizeComparison(reports)", "LayerExplorer(reports)")]
    nbformat.write(nb, folder / "harness.ipynb")
    return "harness.ipynb"


def test_lab_widgets_render_and_redraw_in_chromium(browser_context, lab_factory, tmp_path: Path) -> None:
    root = tmp_path / "nb"
    root.mkdir()
    lab = LabPage(browser_context, lab_factory(root), _write_notebook(root))
    try:
        lab.open()
        run = lab.run_all(timeout_s=180)
        assert not run.errors, f"cells raised: {run.errors}"
        assert lab.widget_problems() == []
        check_size_comparison(lab, "harness")
        check_layer_explorer(lab, "harness")
        assert lab.widget_problems() == [], "a widget broke after the clicks"
        print(f"harness notebook: {run.cells} cells ran in {run.seconds:.1f} s")
    finally:
        lab.close()
