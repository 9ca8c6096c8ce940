"""A learner's progress across notebooks: exercises checked, hints taken, predictions made.

One JSON file next to the learner's exercise folders: ``notebooks/exercises/.progress.json``
(``STAGELAB_EXERCISES`` moves the folder, ``STAGELAB_JOURNAL`` names another file). This module is
the file's one reader and writer: the exercises' checks (``record_exercise``) and tiered hints
(``hints.hint`` through ``hint_level``/``record_hint``) keep the ``exercises`` key (per exercise
``{"hints": n, "checks": n, "passed": bool}``); ``stagelab.predict`` adds the ``predictions`` key.
Written atomically (temp file + rename), keeping keys it does not know, so a notebook and the
CLI never see half a file. ``stagelab progress`` and notebook 00's table read it (``progress_rows``).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import StagelabError

class BadJournal(StagelabError):
    """The progress file exists but is not the lab's JSON."""


def journal_path() -> Path:
    """The learner's progress file: ``STAGELAB_JOURNAL``, else ``<exercises folder>/.progress.json``."""
    env = os.environ.get("STAGELAB_JOURNAL", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    from .exercises import exercises_root

    return exercises_root() / ".progress.json"


def _empty() -> dict[str, Any]:
    return {"exercises": {}, "predictions": {}}


def load(path: Path | None = None) -> dict[str, Any]:
    """The whole journal (an empty one when the file does not exist yet)."""
    path = path or journal_path()
    if not path.is_file():
        return _empty()
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BadJournal(f"The progress file {path} cannot be read ({exc}).",
                         f"move it away (`mv {path} {path}.bak`); the lab starts a new one") from None
    if not isinstance(data, dict):
        raise BadJournal(f"The progress file {path} is not a JSON object.", f"move it away: `mv {path} {path}.bak`")
    for key, empty in _empty().items():
        if not isinstance(data.get(key), dict):
            data[key] = empty
    return data


def _save(data: Mapping[str, Any], path: Path | None = None) -> Path:
    path = path or journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".journal-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _exercise(data: dict[str, Any], name: str) -> dict[str, Any]:
    return data["exercises"].setdefault(name, {"hints": 0, "checks": 0, "passed": False})


def read_progress(*, path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per exercise: ``{"hints": n, "checks": n, "passed": bool}`` (empty when nothing was done yet)."""
    return load(path)["exercises"]


def record_exercise(name: str, passed: bool, *, path: Path | None = None) -> None:
    """An exercise check ran: one more check, ``passed`` is the latest result."""
    data = load(path)
    entry = _exercise(data, name)
    entry.update(checks=int(entry.get("checks", 0)) + 1, passed=bool(passed), at=_now())
    _save(data, path)


def hint_level(name: str, *, path: Path | None = None) -> int:
    """How many hint tiers of exercise ``name`` the learner has seen (0 = none)."""
    return int(load(path)["exercises"].get(name, {}).get("hints", 0))


def record_hint(name: str, level: int, *, path: Path | None = None) -> None:
    """The learner saw hint tier ``level`` (1 = nudge, 2 = concept, 3 = solution path)."""
    data = load(path)
    entry = _exercise(data, name)
    entry["hints"] = max(int(level), int(entry.get("hints", 0)))
    _save(data, path)


def record_prediction(key: str, entry: Mapping[str, Any], *, path: Path | None = None) -> None:
    """A prediction (``stagelab.predict``): question, guess, measured value, unit, notebook."""
    data = load(path)
    data["predictions"][key] = {**entry, "at": _now()}
    _save(data, path)


@dataclass(frozen=True)
class ProgressRow:
    """One line of ``stagelab progress``: an exercise, a hint or a prediction."""

    kind: str      # "exercise" | "prediction"
    name: str
    state: str     # e.g. "passed (2 checks, 1 hint)", "guessed 2 MB, measured 1.4 MB"


def progress_rows(data: Mapping[str, Any] | None = None) -> list[ProgressRow]:
    """The journal as rows, exercises first (notebook 00's table and ``stagelab progress``)."""
    data = data if data is not None else load()
    rows: list[ProgressRow] = []
    for name, ex in sorted(data.get("exercises", {}).items()):
        state = "passed" if ex.get("passed") else "not passed yet"
        rows.append(ProgressRow("exercise", name,
                                f"{state} ({ex.get('checks', 0)} checks, {ex.get('hints', 0)} hints seen)"))
    for key, pred in sorted(data.get("predictions", {}).items()):
        guess = pred.get("guess_text", pred.get("guess"))
        measured = pred.get("measured_text", pred.get("measured"))
        state = f"guessed {guess}, measured {measured}" if measured is not None else f"guessed {guess}, not measured yet"
        rows.append(ProgressRow("prediction", key, state))
    return rows


def rows_html(rows: list[ProgressRow]) -> str:
    """The rows as an HTML table (notebook 00)."""
    import html

    if not rows:
        return "<p>No exercises checked and no predictions made yet.</p>"
    body = "".join(f"<tr><td>{html.escape(r.kind)}</td><td><code>{html.escape(r.name)}</code></td>"
                   f"<td>{html.escape(r.state)}</td></tr>" for r in rows)
    return f"<table><tr><th>kind</th><th>name</th><th>state</th></tr>{body}</table>"


class ProgressTable:
    """Notebook 00's progress table (HTML in a notebook, text elsewhere)."""

    def __init__(self, rows: list[ProgressRow] | None = None) -> None:
        self.rows = progress_rows() if rows is None else rows

    def _repr_html_(self) -> str:
        return rows_html(self.rows)

    def __str__(self) -> str:
        return _rows_text(self.rows)

    def __repr__(self) -> str:
        return str(self)


def _rows_text(rows: list[ProgressRow]) -> str:
    if not rows:
        return "No exercises checked and no predictions made yet."
    width = max(len(r.name) for r in rows)
    return "\n".join(f"{r.kind:<10} {r.name:<{width}}  {r.state}" for r in rows)


def cmd_progress(args: argparse.Namespace) -> int:
    """``stagelab progress [--json]``."""
    data = load()
    if args.json:
        print(json.dumps(data, indent=1, sort_keys=True))
        return 0
    print(f"progress file: {journal_path()}")
    print(_rows_text(progress_rows(data)))
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``stagelab progress``."""
    p = sub.add_parser("progress", help="the exercises, hints and predictions you have done, across notebooks")
    p.add_argument("--json", action="store_true", help="print the whole progress file")
    p.set_defaults(func=cmd_progress)
