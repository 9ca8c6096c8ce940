"""Scratch copies of an app that a notebook may edit without touching the lab's own files.

Notebook 06 breaks a test and edits a source for hot reload, notebook 07 edits a source
to measure the cache: each works on a fresh copy under ``<cache>/notebooks/<name>``.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from .errors import StagelabError
from .naming import cache_dir
from .variants import load_app

# Host artefacts a build must never see (a local npm install, compiled output) and the
# lessons folder, which holds the lab's deliberately broken Dockerfiles.
SKIPPED = ("node_modules", "dist", "bundle", "lessons", ".git")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class WorkspaceError(StagelabError):
    """A working copy was asked for with a bad name, or with a file the app does not have."""


def copy_root() -> Path:
    """The folder that holds every working copy: ``<cache>/notebooks``."""
    return cache_dir() / "notebooks"


def app_copy(app: str, name: str, *, also: Iterable[str] = ()) -> Path:
    """A fresh copy of ``apps/<app>`` at ``<cache>/notebooks/<name>`` (notebooks 06 and 07).

    ``also`` names files of the app (``lessons/Dockerfile.x``) that are copied to the top of
    the copy, next to its Dockerfiles. See :func:`working_copy`.
    """
    return working_copy(load_app(app).path, name, also=also)


def working_copy(source: str | Path, name: str, *, also: Iterable[str] = ()) -> Path:
    """A fresh copy of the folder ``source`` at ``<cache>/notebooks/<name>`` (notebook 09's patterns).

    An earlier copy of the same name is replaced, so each run starts from the folder as it is.
    ``SKIPPED`` folders are left out; ``also`` names files inside ``source`` copied to the top.
    """
    if not _NAME.match(name):
        raise WorkspaceError(f"{name!r} is not a plain folder name for a working copy.",
                             "use letters, digits, '.', '_' or '-', e.g. app_copy('ts-server', '07-cache')")
    source = Path(source).resolve()
    if not source.is_dir():
        raise WorkspaceError(f"There is no folder {source} to copy.", "pass an existing folder")
    extra = [(source / rel).resolve() for rel in also]
    for path in extra:
        if not path.is_relative_to(source) or not path.is_file():
            raise WorkspaceError(f"{source.name} has no file {path} to copy.",
                                 f"check the name: `ls {path.parent}`")
    target = copy_root() / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*SKIPPED))
    for path in extra:
        shutil.copy2(path, target / path.name)
    return target
