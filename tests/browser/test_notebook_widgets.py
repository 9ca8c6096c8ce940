"""Notebooks 02 and 05 in a real browser: every cell runs, and their widgets work.

JupyterLab serves a temp COPY of notebooks/ (it autosaves; the committed notebooks keep no
outputs). For each notebook: Run > Run All Cells, wait (bounded) for the kernel, then
- no cell raised, no "Error displaying widget", no widget error view, no widget stderr;
- each SizeComparison the notebook creates is a live widget view whose chart redraws when
  the scale toggle is clicked and when another baseline is chosen;
- each LayerExplorer shows a layers table with rows.
Screenshots: reports/screenshots/<notebook>-*.png. Needs the engine and the bases (builds are
cached when this runs after the notebook tests, as in `make test`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lab_harness import NOTEBOOKS, LabPage, LabServer, check_layer_explorer, check_size_comparison, copy_notebooks

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.timeout(1200)]

NOTEBOOKS_UNDER_TEST = ("02-multi-stage-go-to-scratch.ipynb", "05-typescript-multi-stage.ipynb")
RUN_ALL_S = 900   # each notebook runs in < 3 min with a warm build cache; cold builds take longer


def _widget_calls(path: Path) -> dict[str, int]:
    """How many SizeComparison(...) / LayerExplorer(...) the notebook's code cells create."""
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    code = re.sub(r"(?m)#.*$", "", code)
    return {name: len(re.findall(rf"\b{name}\(", code)) for name in ("SizeComparison", "LayerExplorer")}


@pytest.fixture(scope="module")
def notebooks_lab(lab_factory, tmp_path_factory: pytest.TempPathFactory) -> LabServer:
    missing = [n for n in NOTEBOOKS_UNDER_TEST if not (NOTEBOOKS / n).is_file()]
    if missing:
        pytest.fail(f"notebook(s) missing: {', '.join(missing)} (the browser test checks their widgets)",
                    pytrace=False)
    return lab_factory(copy_notebooks(tmp_path_factory.mktemp("served") / "notebooks"))


def test_the_notebooks_create_both_widgets() -> None:
    """Together 02 and 05 show a SizeComparison and a LayerExplorer (else this test proves little)."""
    totals = {"SizeComparison": 0, "LayerExplorer": 0}
    for name in NOTEBOOKS_UNDER_TEST:
        path = NOTEBOOKS / name
        assert path.is_file(), f"{name} is missing"
        for widget, count in _widget_calls(path).items():
            totals[widget] += count
    assert totals["SizeComparison"] >= 1 and totals["LayerExplorer"] >= 1, totals


@pytest.mark.parametrize("notebook", NOTEBOOKS_UNDER_TEST)
def test_notebook_widgets_work_in_chromium(notebook: str, notebooks_lab: LabServer, browser_context) -> None:
    expected = _widget_calls(NOTEBOOKS / notebook)
    shot = Path(notebook).stem
    lab = LabPage(browser_context, notebooks_lab, notebook)
    try:
        lab.open()
        run = lab.run_all(timeout_s=RUN_ALL_S)
        lab.screenshot(f"{shot}-page")
        assert not run.errors, f"{notebook}: a cell raised in the browser run:\n" + "\n---\n".join(run.errors)
        assert lab.widget_problems() == [], f"{notebook}: widgets did not render"
        live_sc = lab.panel.locator(".stagelab-size-comparison:not(.stagelab-static)").count()
        live_le = lab.panel.locator(".stagelab-layer-explorer:not(.stagelab-static)").count()
        assert live_sc >= min(expected["SizeComparison"], 1), f"{notebook}: no live SizeComparison ({expected})"
        assert live_le >= min(expected["LayerExplorer"], 1), f"{notebook}: no live LayerExplorer ({expected})"
        for i in range(live_sc):
            check_size_comparison(lab, f"{shot}-{i}" if i else shot, index=i)
        for i in range(live_le):
            check_layer_explorer(lab, f"{shot}-{i}" if i else shot, index=i)
        assert lab.widget_problems() == [], f"{notebook}: a widget broke after the clicks"
        print(f"{notebook}: {run.cells} code cells ran in {run.seconds:.0f} s in Chromium; "
              f"{live_sc} SizeComparison, {live_le} LayerExplorer checked")
    finally:
        lab.close()
