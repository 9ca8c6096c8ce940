"""Prepare, list, export and import the base images of a profile (``stagelab bases ...``).

- ``upstream``: pull the official images, record their digests and sizes.
- ``offline``: build the stand-ins ``stagelab-offline/...`` from what this machine reaches:
  Debian via ``debootstrap --variant=minbase`` (slimmed like debian:<codename>-slim and
  ``docker import``-ed), Go and Node.js from their PyPI wheels, and the Dockerfiles under
  ``bases/``; versions from versions.toml, one record per image in ``stagelab.catalogue``.

Stand-ins carry ``org.stagelab.base=true`` (never the lab label, so ``stagelab clean`` keeps
them) and labels naming the image they imitate, their sources and how they differ.

One module per job: ``common`` (constants, errors, engine access, prepare events), ``inputs``
(extra CA, wheels, Debian tree), ``prepare``, ``bundle`` (export/import), ``status`` (status,
missing-base errors, README table). The CLI (``stagelab bases status|prepare|export|import``)
is registered in ``stagelab.cli``. Used by notebook 00 (prepare), every Setup cell (status)
and the build module (``check_bases``).
"""
from __future__ import annotations

from .bundle import export_bundle, import_bundle, read_manifest
from .common import (
    BASE_LABEL, BUNDLE_FORMAT, DIFFERS_LABEL, EXTRA_CA_ENV, EXTRA_CA_LABEL, IMITATES_LABEL, PREPARE_FIX,
    RECIPE_LABEL, SOURCES_LABEL, STANDIN_LABEL, BasePrepareFailed, BundleError, MissingBaseImage,
    PrepareEvent, PullFailed, StandIn, _make_progress, _ProgressEvents, base_cache, bases_dir, standin,
)
from .inputs import _download_wheel, _extra_ca_info, _recipe_hash, _up_to_date, _uses_ca
from .prepare import _labels, _plan, prepare, pull_image
from .status import (
    BaseStatus, check_bases, missing_base_error, status, status_text, table_markdown, table_sizes,
)

__all__ = [
    "BASE_LABEL", "BUNDLE_FORMAT", "DIFFERS_LABEL", "EXTRA_CA_ENV", "EXTRA_CA_LABEL", "IMITATES_LABEL",
    "PREPARE_FIX", "RECIPE_LABEL", "SOURCES_LABEL", "STANDIN_LABEL", "BasePrepareFailed", "BaseStatus",
    "BundleError", "MissingBaseImage", "PrepareEvent", "PullFailed", "StandIn", "_ProgressEvents",
    "_download_wheel", "_extra_ca_info", "_labels", "_make_progress", "_plan", "_recipe_hash", "_up_to_date",
    "_uses_ca", "base_cache", "bases_dir", "check_bases", "export_bundle", "import_bundle", "missing_base_error",
    "prepare", "pull_image", "read_manifest", "standin", "status", "status_text", "table_markdown", "table_sizes",
]
