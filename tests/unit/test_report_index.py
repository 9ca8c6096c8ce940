"""The report's index page: notebook map from the notebooks' headers, claims vs measured table."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from stagelab import claims, report
from stagelab.units import human_size

HEADER = ("# 07 · The build cache and speed\n\n*Why the order of instructions matters.*\n\n"
          "**You will learn**\n\n- a\n- b\n\n**Time:** about 15 minutes\n\n← previous: [06](06-x.ipynb)")


def _notebook(folder: Path, name: str, header: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(header), nbformat.v4.new_code_cell("1 + 1")]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def test_map_reads_title_summary_and_time(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "07-build-cache-and-speed", HEADER)
    (entry,) = report.notebook_map([path])
    assert entry.title == "07 · The build cache and speed"
    assert entry.summary == "Why the order of instructions matters."
    assert entry.time == "about 15 minutes"


def test_index_has_map_and_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _notebook(tmp_path, "07-build-cache-and-speed", HEADER)
    monkeypatch.setattr(report, "find_notebooks", lambda names=None: [path])
    measured = [claims.ClaimRow(c, f"stagelab/x/{c.app}:{c.variant}", 5_000_000 if c.variant == "scratch" else None,
                                "offline", "2024-11-27 05:10 UTC") for c in claims.CLAIMS]
    monkeypatch.setattr(claims, "measure_claims", lambda client=None: measured)
    entry = report.ReportEntry(path, tmp_path / "07-build-cache-and-speed.html", True, 42.0)
    page = report.write_index([entry], tmp_path).read_text()
    assert "Notebook map" in page and "Why the order of instructions matters." in page
    assert "href='07-build-cache-and-speed.html'" in page and "about 15 minutes" in page
    assert "Claims vs measured" in page and "823MB" in page and human_size(5_000_000) in page and "not built yet" in page
    assert "offline" in page
