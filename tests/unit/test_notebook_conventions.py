"""The notebooks keep the lab's conventions: the shape a learner relies on from one to the next.

Reads the committed .ipynb files as JSON (no kernel, no engine).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stagelab.naming import repo_root

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_notebooks_numbered_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers and numbers == list(range(len(numbers))), f"notebook numbers {numbers} have a gap"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_and_opening(path: Path):
    assert re.fullmatch(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*\.ipynb", path.name), f"{path.name} is not NN-kebab-title.ipynb"
    first = _cells(path)[0]
    text = _src(first)
    assert first["cell_type"] == "markdown" and text.startswith(f"# {path.name[:2]} "), (
        f"{path.name}: the first cell should be the title '# {path.name[:2]} · ...', found {text[:40]!r}")
    for part in ("**You will learn**", "**Time:**"):
        assert part in text, f"{path.name}: the opening cell has no {part}"
    summary = text.splitlines()[2] if len(text.splitlines()) > 2 else ""
    assert summary.startswith("*") and summary.endswith("*"), f"{path.name}: no one-line summary under the title"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(path: Path):
    dirty = [i for i, c in enumerate(_cells(path)) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts (strip them before committing)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_imports_stagelab_by_name(path: Path):
    code = [_src(c) for c in _cells(path) if c["cell_type"] == "code"]
    assert any(re.search(r"^from stagelab(\.\w+)* import \w", s, re.M) for s in code[:3]), (
        f"{path.name}: none of the first three code cells imports from stagelab")
    stars = [s.splitlines()[0] for s in code if re.search(r"import \*", s)]
    assert not stars, f"{path.name}: star imports {stars}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_are_short(path: Path):
    lengths = [len(_src(c).splitlines()) for c in _cells(path) if c["cell_type"] == "code"]
    short = sum(n <= 15 for n in lengths)
    assert short >= 0.9 * len(lengths), (
        f"{path.name}: only {short} of {len(lengths)} code cells have 15 lines or fewer (expected 90%)")
    assert max(lengths) <= 25, f"{path.name}: a code cell of {max(lengths)} lines (split it, 25 at most)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_asserts_say_what_was_expected(path: Path):
    code = "\n".join(_src(c) for c in _cells(path) if c["cell_type"] == "code")
    asserts = re.findall(r"^\s*assert .*$", code, re.M)
    assert asserts, f"{path.name}: no assert cell checks the lesson on measured values"
    bare = [a.strip() for a in asserts if "," not in a and not a.rstrip().endswith("(")]
    assert not bare, f"{path.name}: asserts without a message saying what was expected: {bare}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_an_exercise_its_check_and_a_recap(path: Path):
    cells = _cells(path)
    headings = [(i, line) for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                for line in _src(c).splitlines() if line.startswith("## ")]
    exercise = [i for i, h in headings if re.match(r"## (.* )?exercise", h, re.I)]
    assert exercise, f"{path.name}: no '## Exercise' section"
    assert headings[-1][1].startswith("## Recap"), (
        f"{path.name}: the last section should be '## Recap', it is {headings[-1][1]!r}")
    after = "\n".join(_src(c) for c in cells[exercise[-1]:headings[-1][0]] if c["cell_type"] == "code")
    assert re.search(r"\bcheck(_\w+)?\(", after), f"{path.name}: the exercise has no check cell"


def _notebook_numbers(spec: str) -> set[str]:
    """'02, 04-06' -> {'02', '04', '05', '06'}."""
    numbers: set[str] = set()
    for part in re.split(r",\s*", spec.strip()):
        first, _, last = part.partition("-")
        numbers |= {f"{n:02d}" for n in range(int(first), int(last or first) + 1)}
    return numbers


def test_docstrings_name_the_notebooks_that_really_import_the_name():
    """A docstring saying "``Name`` (notebooks 02, 05)" must list exactly the notebooks importing Name."""
    claims = []
    for module in sorted((repo_root() / "src" / "stagelab").glob("*.py")):
        for name, spec in re.findall(r"``(\w+)`` \(notebooks? ([0-9][0-9, \-]*[0-9])\)", module.read_text()):
            claims.append((module.name, name, _notebook_numbers(spec)))
    assert claims, "no docstring names notebooks in the '``Name`` (notebooks NN, ...)' form any more"
    for module, name, said in claims:
        importing = {p.name[:2] for p in NOTEBOOKS
                     if any(re.search(rf"^from stagelab(\.\w+)* import .*\b{name}\b", _src(c), re.M)
                            for c in _cells(p) if c["cell_type"] == "code")}
        assert said == importing, (f"{module}: ``{name}`` says notebooks {sorted(said)}, "
                                   f"but {sorted(importing)} import it")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_time_line_says_what_it_measured_and_matches_the_readme(path: Path):
    """benchmarks/learner_time.py --write keeps the two in step; a hand edit of one breaks this."""
    text = _src(_cells(path)[0])
    line = re.search(r"\*\*Time:\*\* about (\d+) minutes \(([^)]*)\)", text)
    assert line, f"{path.name}: no '**Time:** about N minutes (how it was measured)' line"
    assert "measured on Docker" in line.group(2), f"{path.name}: the Time line does not say where it was measured"
    readme = (repo_root() / "README.md").read_text(encoding="utf-8")
    row = next((r for r in readme.splitlines() if r.startswith("|") and path.name in r), "")
    assert row.rstrip().endswith(f"| {line.group(1)} min |"), (
        f"{path.name}: the notebook says {line.group(1)} minutes, the README's map row ends {row[-12:]!r}")


def test_notebook_prose_names_the_debian_of_versions_toml():
    """`stagelab versions sync` does not rewrite notebook prose; this catches a stale 'Debian N'."""
    from stagelab import versions

    current = str(versions.current().debian)
    stale = [f"{p.name}: Debian {n}" for p in NOTEBOOKS for c in _cells(p) if c["cell_type"] == "markdown"
             for n in re.findall(r"\bDebian (\d+)\b", _src(c)) if n != current]
    assert not stale, f"versions.toml says Debian {current}; the notebooks say: {stale}"
