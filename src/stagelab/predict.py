"""Predict, then measure: the learner guesses a value before a cell measures it.

A notebook asks (``q = ask("02-scratch-size", "How big ...?", kind="size")``) and shows ``q``:
a text box with a "Save my guess" button (ipywidgets), or the learner sets ``guess=`` in the
cell. After the measurement ``q.reveal(measured, what="...")`` shows the guess beside the
measured value and stores both in the learner's progress (``stagelab.journal``). A question
nobody answered is skipped with a note, never an error, so nbval runs the notebooks unattended.
Used by notebooks 00-08.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import journal
from .errors import StagelabError
from .units import human_size, parse_size

KINDS = ("size", "number", "names")


class BadGuess(StagelabError):
    """A guess that cannot be read as the kind of value the question asks for."""


def parse_guess(kind: str, text: Any) -> Any:
    """A guess as a value: bytes for ``size``, a float for ``number``, a sorted list for ``names``."""
    if kind not in KINDS:
        raise StagelabError(f"Unknown prediction kind {kind!r}.", f"use one of {', '.join(KINDS)}")
    if kind == "names":
        words = text if isinstance(text, (list, tuple, set)) else re.split(r"[\s,;]+", str(text))
        names = sorted({str(w).strip() for w in words if str(w).strip()})
        if not names:
            raise BadGuess("The guess names nothing.", "type the names separated by commas, e.g. builder, test")
        return names
    if kind == "size":
        try:
            return parse_size(text)
        except StagelabError:
            raise BadGuess(f"{text!r} is not a size.", "type a number with a unit, e.g. 5 MB or 300 kB") from None
    try:
        return float(str(text).replace(",", "").strip())
    except ValueError:
        raise BadGuess(f"{text!r} is not a number.", "type a number, e.g. 12") from None


def show_value(kind: str, value: Any) -> str:
    """A value as the learner reads it (sizes in decimal units, as ``docker image ls``)."""
    if value is None:
        return "-"
    if kind == "size":
        return human_size(value)
    if kind == "names":
        return ", ".join(value) if value else "(none)"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class Reveal:
    """The guess beside the measured value (``skipped`` when there was no guess)."""

    prediction: Prediction
    measured: Any
    what: str
    verdict: str = ""
    skipped: bool = False

    def text(self) -> str:
        p = self.prediction
        if self.skipped:
            return (f"Prediction {p.key} skipped: no guess was given. Measured: {show_value(p.kind, self.measured)}"
                    f" ({self.what}). Type a guess above and run again to compare.")
        return (f"{p.question}\n  your guess : {show_value(p.kind, p.guess)}\n"
                f"  measured   : {show_value(p.kind, self.measured)} ({self.what})\n  {self.verdict}")

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        p = self.prediction
        esc = html.escape
        if self.skipped:
            return (f'<div class="stagelab-prediction skipped" style="color:#555"><i>Prediction skipped: no guess '
                    f"was given.</i> Measured: <b>{esc(show_value(p.kind, self.measured))}</b> ({esc(self.what)}).</div>")
        return ('<div class="stagelab-prediction revealed" style="border-left:4px solid #8e44ad;padding:4px 10px">'
                f"<b>{esc(p.question)}</b><table><tr><td>your guess</td><td>{esc(show_value(p.kind, p.guess))}</td></tr>"
                f"<tr><td>measured</td><td><b>{esc(show_value(p.kind, self.measured))}</b> ({esc(self.what)})</td></tr>"
                f"</table><div>{esc(self.verdict)}</div></div>")


def _verdict(kind: str, guess: Any, measured: Any) -> str:
    if kind == "names":
        got, want = set(guess), set(measured)
        if got == want:
            return "Exactly right."
        parts = []
        if want - got:
            parts.append("missed: " + ", ".join(sorted(want - got)))
        if got - want:
            parts.append("not in the measurement: " + ", ".join(sorted(got - want)))
        return "; ".join(parts) + "."
    if not guess or not measured:
        return "Exact." if guess == measured else "One of the two is zero, so no ratio."
    ratio = float(measured) / float(guess)
    if 0.8 <= ratio <= 1.25:
        return f"Within 25 %: measured / guess = {ratio:.2f}."
    return f"The measurement is {ratio:.2g}× your guess." if ratio > 1 else f"The measurement is {1 / ratio:.2g}× smaller than your guess."


@dataclass
class Prediction:
    """One question of a notebook; ``guess`` comes from ``ask(guess=...)``, the box, or the journal."""

    key: str
    question: str
    kind: str = "size"
    guess: Any = None
    notebook: str = ""
    _widget: Any = field(default=None, repr=False)

    def save_guess(self, text: Any) -> Any:
        """Parse and store a guess (the box's button calls this); returns the parsed value."""
        self.guess = parse_guess(self.kind, text)
        journal.record_prediction(self.key, self._entry(None))
        return self.guess

    def _entry(self, measured: Any, what: str = "") -> dict[str, Any]:
        return {"notebook": self.notebook, "question": self.question, "kind": self.kind,
                "guess": self.guess, "guess_text": show_value(self.kind, self.guess),
                "measured": measured,
                "measured_text": None if measured is None else show_value(self.kind, measured),
                "what": what}

    def reveal(self, measured: Any, *, what: str) -> Reveal:
        """Show the guess beside ``measured``; ``what`` says what was measured (image, profile, unit)."""
        if isinstance(measured, Iterable) and not isinstance(measured, (str, bytes)) and self.kind == "names":
            measured = sorted({str(m) for m in measured})
        if self.guess is None:
            return Reveal(self, measured, what, skipped=True)
        out = Reveal(self, measured, what, _verdict(self.kind, self.guess, measured))
        journal.record_prediction(self.key, self._entry(measured, what))
        return out

    def widget(self) -> Any:
        """The question, a text box and a "Save my guess" button (ipywidgets)."""
        import ipywidgets as widgets

        box = widgets.Text(value="" if self.guess is None else show_value(self.kind, self.guess),
                           placeholder={"size": "e.g. 5 MB", "number": "e.g. 12", "names": "e.g. builder, test"}[self.kind],
                           description="Your guess:")
        button = widgets.Button(description="Save my guess", button_style="primary")
        status = widgets.HTML(value=self._status_html())

        def on_click(_: Any) -> None:
            try:
                self.save_guess(box.value)
            except StagelabError as exc:
                status.value = f"<span style='color:#c0392b'>{html.escape(exc.message)} {html.escape(exc.fix or '')}</span>"
                return
            status.value = self._status_html()

        button.on_click(on_click)
        self._widget = widgets.VBox([widgets.HTML(f"<b>Predict:</b> {html.escape(self.question)}"),
                                     widgets.HBox([box, button]), status])
        self._widget.add_class("stagelab-predict")
        return self._widget

    def _status_html(self) -> str:
        if self.guess is None:
            return "<i>No guess saved yet (unanswered questions are skipped).</i>"
        return f"Saved: <b>{html.escape(show_value(self.kind, self.guess))}</b>. Now run the cells below."

    def __str__(self) -> str:
        return f"Predict: {self.question}\n  your guess: {show_value(self.kind, self.guess)}"

    def _static_html(self) -> str:
        guess = "no guess yet" if self.guess is None else f"your guess: <b>{html.escape(show_value(self.kind, self.guess))}</b>"
        return (f'<div class="stagelab-predict stagelab-static"><b>Predict:</b> {html.escape(self.question)} '
                f"({guess})</div>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The box (a live widget in JupyterLab) plus a static text/html for nbconvert and reports."""
        data: dict[str, Any] = {}
        try:
            data.update(self.widget()._repr_mimebundle_() or {})
        except ImportError:
            pass
        data["text/plain"] = str(self)
        data["text/html"] = self._static_html()
        return data


def ask(key: str, question: str, *, kind: str = "size", guess: Any = None, notebook: str = "") -> Prediction:
    """A prediction question. ``guess`` (a value or text) wins; else a guess saved earlier is reused.

    ``key`` names the question across notebooks (``"02-scratch-size"``); ``notebook`` defaults to
    the key's ``NN`` prefix.
    """
    if kind not in KINDS:
        raise StagelabError(f"Unknown prediction kind {kind!r}.", f"use one of {', '.join(KINDS)}")
    notebook = notebook or key.split("-", 1)[0]
    pred = Prediction(key, question, kind, None, notebook)
    if guess is not None:
        pred.save_guess(guess)
    else:
        saved = journal.load()["predictions"].get(key)
        if saved and saved.get("guess") is not None:
            pred.guess = saved["guess"]
    return pred
