"""Real-browser harness (tests/browser): JupyterLab on 127.0.0.1 driven by headless Chromium (Playwright).

Test-only set-up, nothing of it touches the user's Jupyter configuration:
- JupyterLab runs token-less on a free port of 127.0.0.1 with its config, runtime, settings
  and workspace folders in a temp dir, serving a temp COPY of the notebooks (JupyterLab
  autosaves; the committed notebooks must stay without outputs);
- Chromium is Debian's ``chromium`` (``/usr/bin/chromium``) or ``STAGELAB_CHROMIUM``, or
  Playwright's own download where ``playwright install chromium`` worked. If none is found
  the tests FAIL with the install command; they never skip.

Screenshots go to ``reports/screenshots/`` (``STAGELAB_SCREENSHOTS`` overrides).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SCREENSHOTS = Path(os.environ.get("STAGELAB_SCREENSHOTS", REPO / "reports" / "screenshots"))

# Flags that make Chromium start cleanly on a closed network (no background calls home).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MISSING_CHROMIUM = (
    "Chromium not found: the browser test needs it and does not skip.\n"
    "  fix: `sudo apt-get install chromium` (Debian; `make test CHROMIUM_FIX=1` does it as root), "
    "or set STAGELAB_CHROMIUM=/path/to/chromium, or `python -m playwright install chromium` "
    "where that download works."
)

SERVER_START_S = 90      # JupyterLab answering /api/status
PAGE_LOAD_S = 90         # the notebook panel and its kernel connected
WIDGET_UPDATE_S = 60     # a chart redrawn after a click (the kernel renders the PNG)
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"   # the notebook on screen


# --- Chromium ------------------------------------------------------------------------------

def find_chromium() -> str | None:
    """The Chromium to drive: STAGELAB_CHROMIUM, Debian's, one on PATH, or Playwright's own."""
    override = os.environ.get("STAGELAB_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in CHROMIUM_CANDIDATES:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.access(path, os.X_OK):
            return path
    try:  # a laptop where `playwright install chromium` worked
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            bundled = p.chromium.executable_path
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    except Exception:
        pass
    return None




# --- JupyterLab ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: its URL, the folder it serves and its log."""

    url: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _write_test_settings(settings: Path, config: Path) -> None:
    """Test-only lab settings: every cell rendered (no windowing), no news or update pop-ups."""
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    notes = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    page_config = config / "labconfig" / "page_config.json"
    page_config.parent.mkdir(parents=True, exist_ok=True)
    page_config.write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
    ))


def start_lab(root: Path, workdir: Path, env_extra: dict[str, str] | None = None) -> LabServer:
    """Start a token-less JupyterLab on 127.0.0.1 serving ``root``; wait (bounded) until it answers."""
    config, runtime, settings, workspaces = (workdir / d for d in ("config", "runtime", "settings", "workspaces"))
    for d in (config, runtime, settings, workspaces):
        d.mkdir(parents=True, exist_ok=True)
    _write_test_settings(settings, config)
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k != "STAGELAB_JOURNAL"}  # progress goes next to the exercises
    env = dict(
        inherited,
        JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_PLATFORM_DIRS="1", STAGELAB_ROOT=str(REPO), PYTHONUNBUFFERED="1",
        # a learner's own exercise and cache folders; exercises checked against the solutions
        STAGELAB_EXERCISES=str(workdir / "exercises"), STAGELAB_CACHE=str(workdir / "cache"),
        STAGELAB_USE_SOLUTIONS="1",
        **(env_extra or {}),
    )
    log = workdir / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
        "--ServerApp.allow_root=True", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workspaces}",
        "--LabApp.extension_manager=readonly",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=root, start_new_session=True)
    server = LabServer(url=f"http://127.0.0.1:{port}", root=root, log=log, process=proc)
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/status", timeout=5) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.5)
    stop_lab(server)
    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{server.log_tail()}")


def stop_lab(server: LabServer) -> None:
    """Stop the server and its kernels (its own process group only)."""
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, 15)
            server.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(server.process.pid, 9)
            except ProcessLookupError:
                pass


def copy_notebooks(dest: Path) -> Path:
    """A throw-away copy of notebooks/ (no checkpoints, no learners' exercise folders)."""
    shutil.copytree(NOTEBOOKS, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "exercises"))
    return dest




# --- driving a notebook --------------------------------------------------------------------

@dataclass
class NotebookRun:
    """What one "Run All Cells" produced, for assertions and the failure message."""

    seconds: float = 0.0
    cells: int = 0
    errors: list[str] = field(default_factory=list)          # error outputs (tracebacks)
    stderr: list[str] = field(default_factory=list)          # stderr outputs
    console_errors: list[str] = field(default_factory=list)  # the page's console errors


class LabPage:
    """One notebook open in JupyterLab in a Chromium tab."""

    def __init__(self, context: Any, server: LabServer, notebook: str) -> None:
        self.server = server
        self.notebook = notebook
        self.page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    def open(self) -> None:
        """Open the notebook and wait (bounded) until its kernel is connected and idle."""
        # ?reset: a fresh workspace, so notebooks opened by earlier tests are not restored beside it
        self.page.goto(f"{self.server.url}/lab/tree/{self.notebook}?reset", timeout=PAGE_LOAD_S * 1000)
        self.page.wait_for_selector(f"{PANEL} .jp-Cell", timeout=PAGE_LOAD_S * 1000)
        self._accept_kernel_dialog()
        self.wait_idle(PAGE_LOAD_S, what="kernel start")

    def _accept_kernel_dialog(self) -> None:
        dialog = self.page.locator(".jp-Dialog")
        try:
            dialog.wait_for(timeout=2000)
        except Exception:
            return
        self.page.locator(".jp-Dialog .jp-mod-accept").first.click()

    @property
    def panel(self) -> Any:
        """The notebook panel on screen (hidden tabs excluded)."""
        return self.page.locator(PANEL).first

    def status(self) -> str:
        indicator = self.page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator")
        if indicator.count() == 0:
            return "unknown"
        return indicator.first.get_attribute("data-status") or "unknown"

    def busy_prompts(self) -> int:
        return int(self.page.evaluate(
            f"() => Array.from(document.querySelectorAll('{PANEL} .jp-InputPrompt'))"
            ".filter(e => e.textContent.includes('[*]')).length"
        ))

    def wait_idle(self, timeout_s: float, *, what: str) -> float:
        """Wait until the kernel is idle with no cell queued, stable for one second; return seconds."""
        start = time.monotonic()
        deadline = start + timeout_s
        idle_since: float | None = None
        while time.monotonic() < deadline:
            if self.status() == "idle" and self.busy_prompts() == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= 1.0:
                    return time.monotonic() - start
            else:
                idle_since = None
            self.page.wait_for_timeout(500)
        running = self.panel.locator(".jp-CodeCell", has=self.page.locator(".jp-InputPrompt", has_text="[*]"))
        stuck = ""
        if running.count():
            first = running.first
            first.scroll_into_view_if_needed(timeout=10_000)
            stuck = first.locator(".jp-InputArea-editor").inner_text()[:300]
        self.screenshot(f"{Path(self.notebook).stem}-timeout")
        raise AssertionError(
            f"{self.notebook}: {what} not finished within {timeout_s:.0f} s "
            f"(kernel {self.status()}, {self.busy_prompts()} cell(s) still queued or running; "
            f"the first of them:\n{stuck})"
        )

    def run_all(self, timeout_s: float) -> NotebookRun:
        """Run > Run All Cells from the menu bar, then wait (bounded) for the kernel to be idle."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()
        # The first cell turns [*] within a moment; give the queue time to appear.
        self.page.wait_for_timeout(1000)
        run = NotebookRun()
        run.seconds = 1.0 + self.wait_idle(timeout_s, what="Run All Cells")
        run.cells = self.panel.locator(".jp-CodeCell").count()
        run.errors = self._texts('.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')
        run.stderr = self._texts('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')
        run.console_errors = list(self.console)
        return run

    def _texts(self, selector: str) -> list[str]:
        return [t.strip()[:2000] for t in self.panel.locator(selector).all_inner_texts()]

    def widget_problems(self) -> list[str]:
        """Every sign of a widget that failed to render (empty list: all rendered)."""
        problems = []
        error_views = self.panel.locator(".jupyter-widgets-error-widget").count()
        if error_views:
            problems.append(f"{error_views} widget error view(s) (.jupyter-widgets-error-widget)")
        text = self.panel.inner_text()
        if "Error displaying widget" in text:
            problems.append('"Error displaying widget" shown in an output')
        for err in self._texts('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'):
            if re.search(r"widget|traceback", err, re.IGNORECASE):
                problems.append(f"stderr output: {err[:500]}")
        return problems

    def screenshot(self, name: str, locator: Any = None) -> Path:
        """Save a PNG under reports/screenshots/ (of one element when ``locator`` is given)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if locator is not None:
            locator.scroll_into_view_if_needed(timeout=10_000)
            box, size = locator.bounding_box(), self.page.viewport_size
            if box and size and box["height"] + 250 > size["height"]:
                # a widget taller than the window: grow the window so the notebook shows all of it
                self.page.set_viewport_size({"width": size["width"], "height": int(box["height"]) + 400})
                try:
                    locator.scroll_into_view_if_needed(timeout=10_000)
                    locator.screenshot(path=str(path), timeout=30_000)
                finally:
                    self.page.set_viewport_size(size)
            else:
                locator.screenshot(path=str(path), timeout=30_000)
        else:
            self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        """Close the tab and shut the notebook's kernel down (the server's sessions API)."""
        try:
            self.page.close()
        except Exception:
            pass
        try:
            with urllib.request.urlopen(f"{self.server.url}/api/sessions", timeout=10) as resp:
                sessions = json.loads(resp.read())
            for session in sessions:
                if session.get("path") == self.notebook:
                    request = urllib.request.Request(f"{self.server.url}/api/sessions/{session['id']}",
                                                     method="DELETE")
                    urllib.request.urlopen(request, timeout=30).close()
        except (OSError, ValueError):
            pass  # the server stops at the end of the session anyway, with its kernels


LIVE = ":not(.stagelab-static)"   # the widget view, not the static HTML fallback of its mime bundle


def chart_src(root: Any) -> str:
    """The ``src`` of the chart image inside ``root`` (``.stagelab-chart img`` or ``img.stagelab-chart``)."""
    img = root.locator(".stagelab-chart img, img.stagelab-chart").first
    img.wait_for(state="attached", timeout=WIDGET_UPDATE_S * 1000)
    return img.get_attribute("src") or ""


def wait_chart_changes(lab: LabPage, root: Any, before: str, *, what: str) -> str:
    """Wait (bounded) until the chart image's ``src`` differs from ``before``; return the new one."""
    deadline = time.monotonic() + WIDGET_UPDATE_S
    now = before
    while time.monotonic() < deadline:
        try:
            now = chart_src(root)
        except Exception:  # the Output widget is between two images
            now = ""
        if now and now != before:
            return now
        lab.page.wait_for_timeout(250)
    raise AssertionError(f"{lab.notebook}: the chart did not change within {WIDGET_UPDATE_S} s after {what}")


def click_scale_toggle(root: Any) -> str:
    """Click the log/linear toggle of a SizeComparison (the one not selected); return its label."""
    buttons = root.locator("button", has_text=re.compile(r"^\s*(log|linear)\s*$", re.IGNORECASE))
    for i in range(buttons.count()):
        button = buttons.nth(i)
        if "mod-active" not in (button.get_attribute("class") or ""):
            label = button.inner_text().strip()
            button.click()
            return label
    raise AssertionError("no log/linear toggle found in the SizeComparison widget")


def pick_other_baseline(root: Any) -> str | None:
    """Choose another image in the baseline dropdown of a SizeComparison; its name (None: only one)."""
    select = root.locator(".stagelab-baseline-picker select").first
    current = select.input_value()
    options = [o.strip() for o in select.locator("option").all_inner_texts() if o.strip() and o.strip() != current]
    if not options:
        return None
    select.select_option(label=options[-1])
    return options[-1]


def check_size_comparison(lab: LabPage, shot: str, index: int = 0) -> dict[str, str]:
    """Assert one live SizeComparison: rendered, redraws on scale and on baseline; save screenshots."""
    widget = lab.panel.locator(f".stagelab-size-comparison{LIVE}").nth(index)
    widget.wait_for(timeout=WIDGET_UPDATE_S * 1000)
    classes = widget.get_attribute("class") or ""
    assert "jupyter-widgets" in classes, f"{lab.notebook}: SizeComparison is not a live widget view ({classes})"
    first = chart_src(widget)
    assert first.startswith(("data:image/png", "blob:")), f"{lab.notebook}: no chart image ({first[:40]!r})"
    shots = {"initial": str(lab.screenshot(f"{shot}-size-comparison", widget))}
    scale = click_scale_toggle(widget)
    second = wait_chart_changes(lab, widget, first, what=f"clicking '{scale}'")
    shots[scale] = str(lab.screenshot(f"{shot}-size-comparison-{scale}", widget))
    baseline = pick_other_baseline(widget)
    if baseline is not None:  # a comparison of a single image has no other baseline
        wait_chart_changes(lab, widget, second, what=f"choosing baseline {baseline}")
        shots["baseline"] = str(lab.screenshot(f"{shot}-size-comparison-baseline", widget))
    return shots


def check_layer_explorer(lab: LabPage, shot: str, index: int = 0) -> str:
    """Assert one live LayerExplorer shows a layers table with rows; save a screenshot."""
    widget = lab.panel.locator(f".stagelab-layer-explorer{LIVE}").nth(index)
    widget.wait_for(timeout=WIDGET_UPDATE_S * 1000)
    assert "jupyter-widgets" in (widget.get_attribute("class") or "")
    table = widget.locator(".stagelab-layers-table").first
    table.wait_for(timeout=WIDGET_UPDATE_S * 1000)
    rows = table.locator("tbody tr").count()
    assert rows >= 1, f"{lab.notebook}: the LayerExplorer's layers table has no rows"
    return str(lab.screenshot(f"{shot}-layer-explorer", widget))
