"""Predict, then measure, and a hint, clicked through in JupyterLab; `stagelab progress` shows both.

A throw-away notebook (no engine needed): cell 1 asks how many stages go-server's default
Dockerfile has (``stagelab.predict`` box), cell 2 reveals the guess beside the count read from
the parsed Dockerfile, cell 3 asks for an exercise hint (``exercises.hint``). In Chromium the test runs cell 1,
types a guess into the box and presses *Save my guess*, then runs all cells. Afterwards
``stagelab progress --json`` (with the lab's exercises folder, where the progress file lives)
must list the guess, the measured value and the hint tier, and ``stagelab progress`` both rows.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lab_harness import REPO, LabPage, LabServer

from stagelab import diagrams, exercises

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NOTEBOOK = "predict-and-hint.ipynb"
KEY = "browser-go-stages"
HINT_EXERCISE = "02-go-to-scratch"
GUESS = "5"
RUN_S = 180


def _write_notebook(root: Path) -> None:
    cells = [
        nbformat.v4.new_code_cell(
            "from stagelab.predict import ask\n"
            f"q = ask({KEY!r}, 'How many stages has go-server\\'s default Dockerfile?', kind='number')\nq"),
        nbformat.v4.new_code_cell(
            "from stagelab import diagrams\n"
            "q.reveal(len(diagrams.for_variant('go-server', 'scratch').boxes), what='stages in the parsed Dockerfile')"),
        nbformat.v4.new_code_cell(f"from stagelab import exercises\nexercises.hint({HINT_EXERCISE!r})"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), root / NOTEBOOK)


@pytest.fixture(scope="module")
def clicked(lab_factory, browser_context, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("served-predict")
    _write_notebook(root)
    server: LabServer = lab_factory(root)
    lab = LabPage(browser_context, server, NOTEBOOK)
    try:
        lab.open()
        lab.panel.locator(".jp-CodeCell").first.locator(".jp-InputArea-editor").click()
        lab.page.keyboard.press("Shift+Enter")
        box = lab.panel.locator(".stagelab-predict:not(.stagelab-static)")   # the live box, not the fallback
        box.wait_for(timeout=60_000)
        box.locator("input").first.fill(GUESS)
        box.locator("button", has_text="Save my guess").click()
        box.get_by_text("Saved:").wait_for(timeout=30_000)
        lab.screenshot("predict-saved", box)
        run = lab.run_all(timeout_s=RUN_S)
        text = lab.panel.inner_text()
        lab.screenshot("predict-revealed")
    finally:
        lab.close()
    env = {k: v for k, v in os.environ.items() if k != "STAGELAB_JOURNAL"}
    env.update(STAGELAB_EXERCISES=str(server.log.parent / "exercises"), STAGELAB_ROOT=str(REPO))  # as start_lab
    cli = subprocess.run([sys.executable, "-m", "stagelab.cli", "progress", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    table = subprocess.run([sys.executable, "-m", "stagelab.cli", "progress"], env=env,
                           capture_output=True, text=True, timeout=60)
    return {"run": run, "text": text, "cli": cli, "table": table}


def test_the_guess_made_in_the_box_is_revealed_and_listed(clicked) -> None:
    run, cli = clicked["run"], clicked["cli"]
    assert not run.errors, "a cell raised in the browser:\n" + "\n---\n".join(run.errors)
    measured = len(diagrams.for_variant("go-server", "scratch").boxes)
    assert "your guess" in clicked["text"] and "stages in the parsed Dockerfile" in clicked["text"], clicked["text"][-2000:]
    assert cli.returncode == 0, cli.stderr
    entry = json.loads(cli.stdout)["predictions"][KEY]
    assert (entry["guess"], entry["measured"]) == (float(GUESS), measured), entry
    assert KEY in clicked["table"].stdout and f"measured {measured}" in clicked["table"].stdout, clicked["table"].stdout


def test_the_hint_taken_in_the_notebook_is_listed(clicked) -> None:
    run, cli, table = clicked["run"], clicked["cli"], clicked["table"]
    assert not run.errors, "a cell raised in the browser:\n" + "\n---\n".join(run.errors)
    nudge = exercises.get(HINT_EXERCISE).hints["nudge"]
    assert "Hint 1 of 3" in clicked["text"] and nudge in clicked["text"], clicked["text"][-2000:]
    assert cli.returncode == 0, cli.stderr
    data = json.loads(cli.stdout)
    assert data["exercises"].get(HINT_EXERCISE, {}).get("hints") == 1, data["exercises"]
    rows = [line for line in table.stdout.splitlines() if HINT_EXERCISE in line]
    assert rows and "1 hints seen" in rows[0], table.stdout
    assert KEY in table.stdout, table.stdout   # the prediction is listed beside the hint
