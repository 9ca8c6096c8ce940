"""A StagelabError in a notebook cell must fail nbval and papermill (issue: nbval could not see it).

The probe notebook installs the lab's error display, then raises a StagelabError subclass in a
later cell. The box is still shown, and the cell is an error for every kernel client.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def probe(path: Path, raising: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import sys; sys.path.insert(0, {str(SRC)!r})\n"
            "from stagelab.notebook import install_error_display\n"
            "from stagelab import errors, containers\n"
            "install_error_display()"
        ),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(raising),
        nbformat.v4.new_code_cell("y = 2"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


RAISES = [
    'raise errors.StagelabError("the engine is not running", fix="make engine")',
    'raise containers.ContainerError("the container exited")',
]


@pytest.mark.parametrize("raising", RAISES, ids=["StagelabError", "ContainerError"])
def test_nbval_fails_a_cell_that_raises_a_stagelab_error(tmp_path, raising):
    nb = probe(tmp_path / "probe.ipynb", raising)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", str(nb)],
        capture_output=True, text=True, cwd=tmp_path, timeout=240,
    )
    assert run.returncode != 0, f"nbval passed a cell that raised:\n{run.stdout[-2000:]}"
    assert "1 failed" in run.stdout, run.stdout[-2000:]
    # The failure is the lab's own error, not a NameError from a later cell.
    assert raising.split("(")[0].split(".")[-1] in run.stdout, run.stdout[-2000:]


def test_papermill_fails_and_the_box_is_still_shown(tmp_path):
    nb = probe(tmp_path / "probe.ipynb", RAISES[0])
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), progress_bar=False, kernel_name="python3")
    assert failure.value.ename == "StagelabError"
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    # papermill puts an error banner cell first; find the raising cell by its source.
    outputs = next(c for c in out.cells if c.source == RAISES[0]).outputs
    kinds = [o.output_type for o in outputs]
    assert "error" in kinds, kinds
    html = [o for o in outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert html and "the engine is not running" in html[0].data["text/html"], outputs
