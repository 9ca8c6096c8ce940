"""Fixtures of the real-browser tests (helpers live in ``lab_harness.py``).

Chromium missing is a FAILURE with the install command, never a skip.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# pytest runs with --import-mode=importlib (pyproject): make the helper module importable
# for this conftest and the test files of this folder.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from lab_harness import (  # noqa: E402
    CHROMIUM_ARGS, MISSING_CHROMIUM, LabServer, find_chromium, start_lab, stop_lab,
)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = find_chromium()
    if path is None:
        pytest.fail(MISSING_CHROMIUM, pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser_context(chromium_executable: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (fresh, empty profile dir) for the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `pip install -e '.[test]'` (make test does it)", pytrace=False)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_executable, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Path], LabServer]]:
    """``lab_factory(root)`` starts a JupyterLab serving ``root``; all are stopped at the end."""
    servers: list[LabServer] = []

    def make(root: Path, env_extra: dict[str, str] | None = None) -> LabServer:
        server = start_lab(root, tmp_path_factory.mktemp("jupyterlab"), env_extra)
        servers.append(server)
        return server

    yield make
    for server in servers:
        stop_lab(server)
