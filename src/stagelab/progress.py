"""One progress display for long jobs (builds, base-image preparation): notebook or terminal.

In a Jupyter kernel: a progress bar ("step N of M") and the live log in a collapsed
Accordion (ipywidgets). In a terminal: one line per step, updated in place when stderr
is a TTY, plain lines otherwise. ``mode="none"`` shows nothing.

Used by ``stagelab.build`` (every notebook that builds) and ``stagelab.bases``.
``STAGELAB_PROGRESS`` (auto | notebook | terminal | none) overrides ``mode="auto"``.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from collections import deque
from typing import TextIO

MODES = ("auto", "notebook", "terminal", "none")
LOG_LINES_SHOWN = 400   # the notebook's live log keeps the last lines only
_REFRESH_SECONDS = 0.25  # at most four widget updates per second


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel, where widgets can be shown."""
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:
        return False
    try:
        shell = ipython_mod.get_ipython()
    except Exception:
        return False
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or "IPKernelApp" in getattr(shell, "config", {})


def resolve_mode(mode: str | None = "auto") -> str:
    """``auto`` -> ``notebook`` in a kernel (with ipywidgets installed), else ``terminal``."""
    mode = (mode or "none").lower()
    if mode not in MODES:
        raise ValueError(f"progress must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto":
        env = os.environ.get("STAGELAB_PROGRESS", "").strip().lower()
        if env in MODES and env != "auto":
            return env
        if in_kernel():
            try:
                import ipywidgets  # noqa: F401
            except ImportError:
                return "terminal"
            return "notebook"
        return "terminal"
    return mode


class Progress:
    """Shows nothing; the base of the real displays (``mode="none"``)."""

    def __init__(self, title: str, total: int | None = None) -> None:
        self.title = title
        self.total = total
        self.current = 0

    def step(self, n: int, total: int | None = None, text: str = "") -> None:
        """Step ``n`` (1-based) of ``total`` started; ``text`` says what it does."""
        self.current = n
        if total:
            self.total = total

    def log(self, line: str) -> None:
        """One line of the job's own log."""

    def close(self, summary: str = "", ok: bool = True) -> None:
        """The job ended; ``summary`` is one line (e.g. "built in 11.2 s, 3 of 9 steps cached")."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.close(f"failed: {exc_type.__name__}", ok=False)


class TerminalProgress(Progress):
    """One line per step on stderr; rewritten in place with a carriage return on a TTY."""

    def __init__(self, title: str, total: int | None = None, stream: TextIO | None = None) -> None:
        super().__init__(title, total)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._closed = False
        self._line_open = False

    def _write_step(self, text: str) -> None:
        total = f"/{self.total}" if self.total else ""
        line = f"[stagelab] {self.title}: step {self.current}{total}  {text}".rstrip()
        if self.tty:
            width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
            self.stream.write("\r\x1b[K" + line[:width])
            self._line_open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def step(self, n: int, total: int | None = None, text: str = "") -> None:
        super().step(n, total, text)
        self._write_step(" ".join(text.split()))

    def close(self, summary: str = "", ok: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        mark = "✓" if ok else "✗"
        line = f"[stagelab] {self.title}: {mark} {summary}".rstrip()
        if self.tty and self._line_open:
            self.stream.write("\r\x1b[K")
        self.stream.write(line + "\n")
        self.stream.flush()


class NotebookProgress(Progress):
    """``IntProgress`` (step N of M) + a collapsed ``Accordion`` holding the live log."""

    def __init__(self, title: str, total: int | None = None, log_title: str = "Log") -> None:
        super().__init__(title, total)
        import ipywidgets as widgets
        from IPython.display import display

        self._lines: deque[str] = deque(maxlen=LOG_LINES_SHOWN)
        self._count = 0
        self._last_flush = 0.0
        self._dirty = False
        self._closed = False
        self.bar = widgets.IntProgress(
            value=0, min=0, max=max(total or 1, 1), description="",
            bar_style="info", layout=widgets.Layout(width="60%"),
        )
        self.label = widgets.HTML(value=self._label_html(""))
        self.text = widgets.Textarea(
            value="", disabled=True,
            layout=widgets.Layout(width="100%", height="300px"),
        )
        self.accordion = widgets.Accordion(children=[self.text], selected_index=None)
        self.log_title = log_title
        self.accordion.set_title(0, f"{log_title} (live)")
        self.box = widgets.VBox([self.label, self.bar, self.accordion])
        display(self.box)

    def _label_html(self, text: str) -> str:
        import html

        total = f" of {self.total}" if self.total else ""
        step = f"step {self.current}{total}" if self.current else "starting"
        return (f"<b>{html.escape(self.title)}</b> — {step}"
                + (f": <code>{html.escape(text[:120])}</code>" if text else ""))

    def step(self, n: int, total: int | None = None, text: str = "") -> None:
        super().step(n, total, text)
        if self.total:
            self.bar.max = max(self.total, 1)
        self.bar.value = min(n, self.bar.max)
        self.label.value = self._label_html(" ".join(text.split()))

    def log(self, line: str) -> None:
        self._lines.append(line.rstrip("\n"))
        self._count += 1
        self._dirty = True
        now = time.monotonic()
        if now - self._last_flush >= _REFRESH_SECONDS:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        if not self._dirty:
            return
        hidden = self._count - len(self._lines)
        head = [f"... ({hidden} earlier lines)"] if hidden > 0 else []
        self.text.value = "\n".join(head + list(self._lines))
        self._dirty = False
        self._last_flush = time.monotonic() if now is None else now

    def close(self, summary: str = "", ok: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        self._flush()
        import html

        if ok:
            self.bar.value = self.bar.max
        self.bar.bar_style = "success" if ok else "danger"
        mark = "✓" if ok else "✗"
        self.label.value = f"<b>{html.escape(self.title)}</b> — {mark} {html.escape(summary)}"
        self.accordion.set_title(0, f"{self.log_title} ({self._count} lines)")


def open_progress(title: str, total: int | None = None, mode: str | None = "auto",
                  *, log_title: str = "Log") -> Progress:
    """A progress display for ``mode`` (auto | notebook | terminal | none)."""
    resolved = resolve_mode(mode)
    if resolved == "notebook":
        try:
            return NotebookProgress(title, total, log_title=log_title)
        except ImportError:
            resolved = "terminal"
    if resolved == "terminal":
        return TerminalProgress(title, total)
    return Progress(title, total)
