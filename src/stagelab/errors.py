"""Errors a learner can meet, each with one clear message and the command that fixes it.

Every notebook's Setup cell (``stagelab.notebook.setup``) shows these as a short box
instead of a traceback; the CLI prints them as two lines and exits 1.
"""
from __future__ import annotations

import html


class StagelabError(Exception):
    """Base class: ``message`` says what went wrong, ``fix`` what to do about it."""

    title = "stagelab"

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"

    def _repr_html_(self) -> str:
        fix = (
            f"<div><b>Fix:</b> <code>{html.escape(self.fix)}</code></div>" if self.fix else ""
        )
        return (
            '<div class="stagelab-error" style="border-left:4px solid #c0392b;'
            'background:#fdecea;padding:8px 12px;margin:4px 0;font-family:sans-serif">'
            f"<b>{html.escape(type(self).__name__)}</b>: "
            f"<span style='white-space:pre-wrap'>{html.escape(self.message)}</span>{fix}</div>"
        )


class EngineUnavailable(StagelabError):
    """No Docker engine answers at the configured address."""


class EngineTooOld(StagelabError):
    """The engine answers but its API is older than the lab needs."""
