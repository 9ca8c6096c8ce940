"""What notebook 05 reads of a TypeScript image: dev-only packages and .ts sources in the final tree.

Kept for the notebooks' imports (``from stagelab.exercises_ts import dev_packages_found,
ts_sources_found``); the functions live with the other exercise rules in ``stagelab.rules``,
and the TypeScript exercises (05-07) are data in ``notebooks/starters/``.
"""
from __future__ import annotations

from .rules import DEV_ONLY_PACKAGES, INSTALL_INPUTS, dev_packages_found, ts_sources_found

__all__ = ["DEV_ONLY_PACKAGES", "INSTALL_INPUTS", "dev_packages_found", "ts_sources_found"]
