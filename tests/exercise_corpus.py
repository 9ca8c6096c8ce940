"""The wrong-answer corpus of the exercises: ``tests/exercises/<exercise>/<mistake>/``.

Each mistake folder holds a ``Dockerfile`` and ``expect.toml``: ``static`` (true when the
Dockerfile alone decides, so the unit test checks it; false when it needs a build, so
``tests/integration/test_exercises_engine.py`` builds it once), ``feedback`` (texts the
feedback must contain) and ``passes`` (true for a right answer kept to show it is accepted).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "exercises"


@dataclass(frozen=True)
class Mistake:
    exercise: str
    name: str
    dockerfile: Path
    static: bool
    feedback: tuple[str, ...]
    passes: bool

    @property
    def id(self) -> str:
        return f"{self.exercise}/{self.name}"


def mistakes() -> list[Mistake]:
    """Every corpus entry, sorted by exercise and name."""
    out = []
    for folder in sorted(p for p in CORPUS.glob("*/*") if p.is_dir()):
        data = tomllib.loads((folder / "expect.toml").read_text())
        out.append(Mistake(folder.parent.name, folder.name, folder / "Dockerfile", bool(data["static"]),
                           tuple(data.get("feedback", ())), bool(data.get("passes", False))))
    return out
