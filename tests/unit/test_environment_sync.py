"""pyproject.toml and environment.yml must list the same packages with the same lower bounds."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# PyPI name -> conda-forge name, where they differ.
CONDA_NAME = {"docker": "docker-py"}


def _parse(spec: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:>=\s*([0-9][^,;\s]*))?", spec)
    assert match, f"cannot parse requirement {spec!r}"
    return match.group(1).lower(), match.group(2) or ""


def pyproject_requirements() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    specs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        specs.extend(extra)
    return {CONDA_NAME.get(name, name): bound for name, bound in map(_parse, specs)}


def environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out: dict[str, str] = {}
    for item in env["dependencies"]:
        if isinstance(item, str):
            name, bound = _parse(item.replace("=", ">=", 1) if "=" in item and ">=" not in item else item)
            if name not in {"python", "pip"}:
                out[name] = bound
    return out


def test_every_pyproject_package_is_in_environment_yml_with_the_same_bound() -> None:
    py, env = pyproject_requirements(), environment_requirements()
    assert py == env, (
        "pyproject.toml and environment.yml disagree:\n"
        f"  only in pyproject: {sorted(set(py) - set(env))}\n"
        f"  only in environment.yml: {sorted(set(env) - set(py))}\n"
        f"  different bounds: {sorted(k for k in set(py) & set(env) if py[k] != env[k])}"
    )


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


def test_parser_catches_a_drift() -> None:
    assert _parse("docker>=7.0") == ("docker", "7.0")
    assert _parse("docker>=6.0") != _parse("docker>=7.0")
