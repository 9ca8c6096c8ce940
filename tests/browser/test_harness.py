"""The browser harness itself, on a small notebook this test writes (no engine needed).

Proves that JupyterLab + Chromium + Playwright render ipywidgets with a matplotlib chart
here, and that the harness sees a click redraw the chart, before the lab's own notebooks
(test_notebook_widgets.py) are checked the same way.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lab_harness import LabPage, chart_src, click_scale_toggle, wait_chart_changes

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CELLS = [
    "import ipywidgets as widgets\nimport matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\nimport io",
    # A stand-in with the same classes as stagelab.widgets.SizeComparison / LayerExplorer.
    "def png(log):\n"
    "    fig, ax = plt.subplots(figsize=(5, 2.5))\n"
    "    ax.barh(['single', 'scratch'], [946e6, 4.8e6]); ax.set_xscale('log' if log else 'linear')\n"
    "    buf = io.BytesIO(); fig.savefig(buf, format='png'); plt.close(fig)\n"
    "    return buf.getvalue()\n"
    "scale = widgets.ToggleButtons(options=['linear', 'log'])\n"
    "chart = widgets.Image(value=png(False), format='png')\n"
    "chart.add_class('stagelab-chart')\n"
    "scale.observe(lambda change: setattr(chart, 'value', png(change['new'] == 'log')), 'value')\n"
    "box = widgets.VBox([scale, chart]); box.add_class('stagelab-size-comparison')\n"
    "box",
    "table = widgets.HTML('<table class=\"stagelab-layers-table\"><tr><th>#</th><th>size</th></tr>"
    "<tr><td>0</td><td>4.8 MB</td></tr></table>')\n"
    "table",
]


def _write_notebook(folder: Path) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nbformat.write(nb, folder / "harness.ipynb")
    return "harness.ipynb"


def test_widgets_render_and_redraw_in_chromium(browser_context, lab_factory, tmp_path: Path) -> None:
    root = tmp_path / "nb"
    root.mkdir()
    name = _write_notebook(root)
    lab = LabPage(browser_context, lab_factory(root), name)
    try:
        lab.open()
        run = lab.run_all(timeout_s=120)
        assert not run.errors, f"cells raised: {run.errors}"
        assert lab.widget_problems() == []
        comparison = lab.page.locator(".stagelab-size-comparison").first
        comparison.wait_for(timeout=30_000)
        before = chart_src(comparison)
        assert before, "the chart has no image"
        lab.screenshot("harness-linear", comparison)
        click_scale_toggle(comparison)
        after = wait_chart_changes(lab, comparison, before, what="clicking log")
        assert after != before
        lab.screenshot("harness-log", comparison)
        assert lab.page.locator(".stagelab-layers-table").count() >= 1
        print(f"harness notebook: {run.cells} cells ran in {run.seconds:.1f} s")
    finally:
        lab.close()
