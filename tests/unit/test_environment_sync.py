"""pyproject.toml and environment.yml must list the same packages with the same lower bounds."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# PyPI name -> conda-forge name, where they differ.
CONDA_NAME = {"docker": "docker-py"}


def _parse(spec: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:>=\s*([0-9][^,;\s]*))?", spec)
    assert match, f"cannot parse requirement {spec!r}"
    return match.group(1).lower(), match.group(2) or ""


def pyproject_requirements(path: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    data = tomllib.loads(path.read_text())
    specs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        specs.extend(extra)
    return {CONDA_NAME.get(name, name): bound for name, bound in map(_parse, specs)}


def environment_requirements(path: Path = ROOT / "environment.yml") -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    out: dict[str, str] = {}
    for item in env["dependencies"]:
        if isinstance(item, str):
            name, bound = _parse(item.replace("=", ">=", 1) if "=" in item and ">=" not in item else item)
            if name not in {"python", "pip"}:
                out[name] = bound
    return out


def drift(py: dict[str, str], env: dict[str, str]) -> list[str]:
    """What differs between the two files' requirements, one line per difference (empty: in sync)."""
    lines = [f"only in pyproject.toml: {name}" for name in sorted(set(py) - set(env))]
    lines += [f"only in environment.yml: {name}" for name in sorted(set(env) - set(py))]
    lines += [f"{name}: pyproject >={py[name]}, environment.yml >={env[name]}"
              for name in sorted(set(py) & set(env)) if py[name] != env[name]]
    return lines


def test_every_pyproject_package_is_in_environment_yml_with_the_same_bound() -> None:
    found = drift(pyproject_requirements(), environment_requirements())
    assert found == [], "pyproject.toml and environment.yml disagree:\n  " + "\n  ".join(found)


def test_environment_yml_uses_conda_forge_python_311_and_installs_the_package() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections and "-e ." in pip_sections[0]


def test_every_environment_line_says_which_notebooks_use_it() -> None:
    lines = [ln for ln in (ROOT / "environment.yml").read_text().splitlines() if ln.strip().startswith("- ")]
    undocumented = [ln for ln in lines if "#" not in ln and ln.strip() not in {"- conda-forge", "- pip", "- pip:"}]
    assert not undocumented, f"environment.yml lines without a comment: {undocumented}"


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.replace("docker-py>=7.0", "docker-py>=6.0"), "docker-py: pyproject >=7.0, environment.yml >=6.0"),
    (lambda t: re.sub(r"(?m)^\s*- tqdm>=.*\n", "", t), "only in pyproject.toml: tqdm"),
    (lambda t: t.replace("  - pip\n", "  - rich>=13.0  # x\n  - pip\n"), "only in environment.yml: rich"),
], ids=["changed-bound", "line-removed", "line-added"])
def test_a_changed_environment_yml_is_reported(tmp_path: Path, edit, expected: str) -> None:
    """The real environment.yml with one line changed: the check must name that line's package."""
    text = (ROOT / "environment.yml").read_text()
    changed = edit(text)
    assert changed != text, "the edit no longer matches environment.yml: update this test"
    (tmp_path / "environment.yml").write_text(changed)
    found = drift(pyproject_requirements(), environment_requirements(tmp_path / "environment.yml"))
    assert found == [expected], found
