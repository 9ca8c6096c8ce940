"""Tiered hints for the exercises.

Used by every notebook's exercise (00-07) through ``stagelab.exercises.hint(name)``: each call
gives the next tier of the exercise's hints (``exercise.toml``: nudge, concept, solution path);
after the last tier it also names the reference solution's folder, so solutions are shown
only after trying. The tiers seen are kept in the learner's progress file, which
``stagelab.journal`` owns (``hint_level``, ``record_hint``).
"""
from __future__ import annotations

import html
from dataclasses import dataclass

from .journal import hint_level, record_hint

HINT_TIERS = ("nudge", "concept", "solution")


@dataclass(frozen=True)
class Hint:
    """One hint tier, shown as a box (``hint(name)`` returns it)."""

    name: str
    tier: int            # 1-based
    kind: str            # nudge | concept | solution
    text: str

    def __str__(self) -> str:
        return f"Hint {self.tier} of {len(HINT_TIERS)} ({self.kind}) for {self.name}: {self.text}"

    def _repr_html_(self) -> str:
        return ('<div class="stagelab-hint" style="border-left:4px solid #2874a6;background:#eaf2f8;'
                'padding:8px 12px;margin:4px 0;font-family:sans-serif">'
                f"<b>Hint {self.tier} of {len(HINT_TIERS)}</b> ({html.escape(self.kind)}): {html.escape(self.text)}</div>")


def hint(name: str) -> Hint:
    """The next hint tier for exercise ``name``: a nudge, then the concept, then the solution path.

    Each call moves one tier on (remembered in the progress file, ``journal.record_hint``);
    after the last tier it also names the reference solution's folder.
    """
    from .exercises import get

    ex = get(name)
    taken = hint_level(ex.name)
    tier = min(taken + 1, len(HINT_TIERS))
    text = ex.hints[HINT_TIERS[tier - 1]]
    if tier == len(HINT_TIERS):
        text += f" (The reference solution is in notebooks/solutions/{ex.name}/.)"
    record_hint(ex.name, tier)
    return Hint(ex.name, tier, HINT_TIERS[tier - 1], text)
