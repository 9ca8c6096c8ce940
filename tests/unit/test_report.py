"""`stagelab report` picks the numbered notebooks, rejects unknown names, writes an index (no engine)."""
from __future__ import annotations

from pathlib import Path

import pytest

from stagelab import report


def test_find_notebooks_in_order_and_by_number():
    every = report.find_notebooks()
    names = [p.name for p in every]
    assert names == sorted(names) and all(report.NOTEBOOK_RE.match(n) for n in names)
    assert "00-start-here.ipynb" in names
    assert [p.name for p in report.find_notebooks(["00"])] == ["00-start-here.ipynb"]


def test_unknown_notebook_name_is_one_clear_error():
    with pytest.raises(report.ReportError) as err:
        report.find_notebooks(["99-nope"])
    assert "00-start-here" in err.value.fix


def test_index_lists_each_notebook_with_its_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from stagelab import claims

    monkeypatch.setattr(claims, "measure_claims", lambda client=None: [])   # no engine in unit tests
    entries = [
        report.ReportEntry(Path("00-start-here.ipynb"), tmp_path / "00-start-here.html", True, 12.0),
        report.ReportEntry(Path("01-x.ipynb"), tmp_path / "01-x.html", False, 3.0, "AssertionError: expected <3%"),
    ]
    page = report.write_index(entries, tmp_path).read_text()
    assert "href='00-start-here.html'" in page and "✓ ran through" in page
    assert "✗ failed" in page and "AssertionError: expected &lt;3%" in page


def test_cli_registers_report():
    from stagelab.cli import build_parser

    args = build_parser().parse_args(["report", "01", "--timeout", "60"])
    assert args.notebooks == ["01"] and args.timeout == 60 and args.func is report.cmd_report
