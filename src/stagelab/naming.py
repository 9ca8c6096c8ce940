"""Names and labels of everything the lab creates (images, containers, networks).

One place for these conventions (README: "Cleaning up", "Running a workshop"): every object
carries ``org.stagelab.lab=true`` plus a namespace label, so ``stagelab clean`` removes only
the lab's own objects, and several learners can share one engine (``STAGELAB_NAMESPACE``).
"""
from __future__ import annotations

import getpass
import os
import re
import secrets
from pathlib import Path

LAB_LABEL = "org.stagelab.lab"
APP_LABEL = "org.stagelab.app"
VARIANT_LABEL = "org.stagelab.variant"
PROFILE_LABEL = "org.stagelab.profile"
NAMESPACE_LABEL = "org.stagelab.namespace"
BASE_LABEL = "org.stagelab.base"

_PREFIX = "org.stagelab."


def _sanitise(value: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    return cleaned[:40] or "learner"


def namespace() -> str:
    """The learner's namespace: ``STAGELAB_NAMESPACE``, else the user name (all notebooks)."""
    raw = os.environ.get("STAGELAB_NAMESPACE", "").strip()
    if not raw:
        try:
            raw = getpass.getuser()
        except Exception:  # no user name in some containers
            raw = "learner"
    return _sanitise(raw)


def lab_labels(**extra: str) -> dict[str, str]:
    """Labels for a lab object; ``extra`` keys are given without the ``org.stagelab.`` prefix."""
    labels = {LAB_LABEL: "true", NAMESPACE_LABEL: namespace()}
    for key, value in extra.items():
        if value is not None:
            labels[_PREFIX + key] = str(value)
    return labels


def image_tag(app: str, variant: str) -> str:
    """The tag of a lab image: ``stagelab/<namespace>/<app>:<variant>``."""
    return f"stagelab/{namespace()}/{_sanitise(app)}:{_sanitise(variant)}"


def resource_name(purpose: str) -> str:
    """A unique container or network name: ``stagelab-<namespace>-<purpose>-<hex>``."""
    return f"stagelab-{namespace()}-{_sanitise(purpose)}-{secrets.token_hex(3)}"


def repo_root() -> Path:
    """The lab's checkout (the folder holding ``apps/``); ``STAGELAB_ROOT`` overrides."""
    env = os.environ.get("STAGELAB_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "apps").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd().resolve()


def cache_dir() -> Path:
    """Where downloads and build trees are cached: ``STAGELAB_CACHE`` or ``<repo>/.cache/stagelab``."""
    env = os.environ.get("STAGELAB_CACHE")
    return Path(env).resolve() if env else repo_root() / ".cache" / "stagelab"
