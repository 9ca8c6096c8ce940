"""What every part of ``stagelab.bases`` shares: constants, errors, the stand-in records, engine access.

Also the prepare events, fed to the lab's one progress display (``stagelab.progress``),
and the record of pulled upstream images.
"""
from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import naming
from .. import catalogue as _catalogue
from .. import profiles as _profiles
from ..errors import StagelabError
from ..progress import Progress, open_progress
from ..units import human_size


MIRROR_ENV = "STAGELAB_DEBIAN_MIRROR"


DEFAULT_MIRROR = "http://deb.debian.org/debian"


EXTRA_CA_ENV = "STAGELAB_EXTRA_CA"


RECIPE_VERSION = "1"          # bump to force every stand-in to be rebuilt


BASE_LABEL = naming.BASE_LABEL     # "org.stagelab.base"


IMITATES_LABEL = "org.stagelab.imitates"


SOURCES_LABEL = "org.stagelab.sources"


DIFFERS_LABEL = "org.stagelab.differs"


EXTRA_CA_LABEL = "org.stagelab.extra-ca"


RECIPE_LABEL = "org.stagelab.recipe"


STANDIN_LABEL = "org.stagelab.standin"


PREPARE_FIX = "make bases   (or: stagelab bases prepare --profile offline)"


BUNDLE_FORMAT = "stagelab-bases-bundle"


_CHUNK = 1 << 20


class MissingBaseImage(StagelabError):
    """A build needs a base image that is not on the engine."""


class BasePrepareFailed(StagelabError):
    """debootstrap, a wheel download or a stand-in build failed (a re-run resumes)."""


class PullFailed(StagelabError):
    """An official image could not be pulled (profile upstream)."""


class NoStandIn(StagelabError):
    """A project asks for a Go/Node.js version no PyPI wheel has (so no offline stand-in)."""


class BundleError(StagelabError):
    """A workshop bundle is missing, truncated, corrupt or does not match its manifest."""


StandIn = _catalogue.Base   # one record per image: see stagelab.catalogue


_EXTRA: dict[str, StandIn] = {}   # a project's records while build_records builds them


@contextlib.contextmanager
def extra_standins(records: Iterable[StandIn]) -> Iterator[None]:
    """Let ``standin`` find ``records`` (a project's versions) too, for the ``with`` block."""
    added = {s.tag: s for s in records if s.tag not in _EXTRA}
    _EXTRA.update(added)
    try:
        yield
    finally:
        for tag in added:
            _EXTRA.pop(tag, None)


def standin(tag: str) -> StandIn:
    """The stand-in recipe for an offline tag (the catalogue's, or a project's being built)."""
    if tag in _EXTRA:
        return _EXTRA[tag]
    return _catalogue.by_tag(tag)


def _bpd() -> str:
    """The helper stand-in every other builds on (buildpack-deps)."""
    return next(s.tag for s in _catalogue.standins() if s.upstream.startswith("buildpack-deps:"))


def bases_dir() -> Path:
    """The recipes folder (``<repo>/bases``)."""
    return naming.repo_root() / "bases"


def base_cache() -> Path:
    """Downloads and build trees: ``naming.cache_dir() / "bases"``."""
    return naming.cache_dir() / "bases"


def _resolve(profile: Any) -> _profiles.Profile:
    if isinstance(profile, _profiles.Profile):
        return profile
    return _profiles.active_profile(profile)


def _client(timeout: int | None = None):
    from .. import engine

    if timeout is None:
        return engine.client()
    return engine.connect(timeout=timeout)


def _get_image(client, ref: str):
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


@dataclass
class PrepareEvent:
    """One progress report of ``prepare``: an input step or an image started/finished."""

    index: int            # 1-based position among the images (0 for input steps)
    total: int
    image: str            # image tag, or the input step ("debootstrap", "go wheel", ...)
    state: str            # start | built | present | pulled | failed | step
    seconds: float | None = None
    size: int | None = None
    message: str = ""
    size_label: str = "uncompressed"   # what ``size`` measured (stagelab.sizes.stored_size says it per store)


ProgressCallback = Callable[[PrepareEvent], None]


def describe_event(ev: PrepareEvent) -> str:
    """One line for a prepare event: ``✓ stagelab-offline/x:1: built (3.0 s, 2 MB uncompressed)``."""
    mark = {"failed": "✗", "step": "·"}.get(ev.state, "✓")
    extra = []
    if ev.seconds is not None:
        extra.append(f"{ev.seconds:.1f} s")
    if ev.size is not None:
        extra.append(f"{human_size(ev.size)} {ev.size_label}")
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"{mark} {ev.image}: {ev.message or ev.state}{tail}"


class _ProgressEvents:
    """Feeds prepare events to the lab's one progress display (``stagelab.progress``):
    the notebook bar with its log, terminal lines, or nothing."""

    def __init__(self, bar: Progress, total: int) -> None:
        self.bar = bar
        self.total = total
        self.done = 0

    def __call__(self, ev: PrepareEvent) -> None:
        if ev.state == "start":
            return
        if ev.state in ("built", "present", "pulled"):
            self.done += 1
        text = describe_event(ev)
        self.bar.step(self.done, self.total, text)
        self.bar.log(text)

    def close(self, summary: str, ok: bool) -> None:
        self.bar.close(summary, ok=ok)


def _make_progress(progress: Any, title: str, total: int) -> tuple[ProgressCallback, Callable[[str, bool], None]]:
    """(callback, close) for a callable or a mode (None/auto, terminal, notebook, none)."""
    if callable(progress):
        return progress, lambda summary, ok: None
    bar = open_progress(title, total, progress if isinstance(progress, str) else "auto",
                        log_title="Preparation log")
    events = _ProgressEvents(bar, total)
    return events, events.close


def _upstream_record_path() -> Path:
    return base_cache() / "upstream.json"


def _read_upstream_record() -> dict[str, dict]:
    try:
        return json.loads(_upstream_record_path().read_text())
    except (OSError, ValueError):
        return {}
