"""The README's maintainer map lists every module of src/stagelab, and only those."""
from __future__ import annotations

import re
from pathlib import Path

import stagelab
from stagelab.naming import repo_root

PACKAGE = Path(stagelab.__file__).parent
ROW = re.compile(r"^\|\s*`((?:[A-Za-z_][A-Za-z0-9_]*/)?[A-Za-z_][A-Za-z0-9_]*\.py)`\s*\|\s*(.*?)\s*\|\s*$")


def map_rows(readme_text: str) -> dict[str, str]:
    """module file name -> its job, from the README's "## Maintainer map" table."""
    match = re.search(r"^## Maintainer map\n(.*?)(?=^## |\Z)", readme_text, re.M | re.S)
    assert match, "README.md has no '## Maintainer map' section"
    rows: dict[str, str] = {}
    for line in match.group(1).splitlines():
        row = ROW.match(line)
        if row:
            assert row.group(1) not in rows, f"{row.group(1)} is listed twice in the maintainer map"
            rows[row.group(1)] = row.group(2)
    return rows


def package_modules() -> set[str]:
    # modules of the package and of its sub-packages (``bases/prepare.py``); a package's
    # ``__init__.py`` only re-exports
    return {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}


def test_the_map_lists_exactly_the_package_modules() -> None:
    listed = set(map_rows((repo_root() / "README.md").read_text(encoding="utf-8")))
    modules = package_modules()
    assert modules, f"no modules found in {PACKAGE}"
    assert not modules - listed, f"modules missing from README's maintainer map: {sorted(modules - listed)}"
    assert not listed - modules, f"README's maintainer map names modules that do not exist: {sorted(listed - modules)}"


def test_every_module_has_a_job() -> None:
    rows = map_rows((repo_root() / "README.md").read_text(encoding="utf-8"))
    assert all(len(job.split()) >= 3 for job in rows.values()), {m: j for m, j in rows.items() if len(j.split()) < 3}


def test_the_reader_sees_a_row_that_is_missing_or_extra() -> None:
    """The check itself: a README without one module's row, or with a made-up one, is caught."""
    text = (repo_root() / "README.md").read_text(encoding="utf-8")
    rows = map_rows(text)
    dropped = text.replace("| `units.py` |", "| units |", 1)
    assert "units.py" in rows and "units.py" not in map_rows(dropped)
    added = text.replace("| `units.py` |", "| `nowhere.py` | a module that is gone |\n| `units.py` |", 1)
    assert set(map_rows(added)) - package_modules() == {"nowhere.py"}
