"""Every static wrong answer of the corpus (tests/exercises/) gets its feedback from the Dockerfile alone;
starters fail and reference solutions pass the static rules. Answers that need a build are checked in
tests/integration/test_exercises_engine.py."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from exercise_corpus import mistakes  # noqa: E402

from stagelab import exercises  # noqa: E402

ALL = mistakes()
STATIC = [m for m in ALL if m.static]


def test_every_exercise_has_at_least_four_wrong_answers():
    wrong = Counter(m.exercise for m in ALL if not m.passes)
    assert {name: wrong[name] for name in exercises.names() if wrong[name] < 4} == {}


@pytest.mark.parametrize("mistake", STATIC, ids=[m.id for m in STATIC])
def test_static_answer_gets_its_feedback_without_a_build(mistake):
    result = exercises.evaluate_dockerfile(mistake.exercise, mistake.dockerfile.read_text())
    assert result.passed is mistake.passes, result.feedback
    text = "\n".join(result.feedback)
    for expected in mistake.feedback:
        assert expected in text, f"{mistake.id}: {expected!r} not in feedback:\n{text}"


@pytest.mark.parametrize("mistake", [m for m in ALL if not m.static], ids=[m.id for m in ALL if not m.static])
def test_answers_marked_for_a_build_pass_the_static_rules(mistake):
    """Otherwise the corpus entry is mislabelled: the Dockerfile alone would reject it, no build needed."""
    result = exercises.evaluate_dockerfile(mistake.exercise, mistake.dockerfile.read_text())
    assert result.passed, f"{mistake.id} is rejected statically ({result.feedback}): mark it static = true"


@pytest.mark.parametrize("name", exercises.names())
def test_reference_solution_passes_the_static_rules(name):
    text = (exercises.solution_dir(name) / "Dockerfile").read_text()
    assert exercises.evaluate_dockerfile(name, text).passed


@pytest.mark.parametrize("name", ["04-keep-the-secret", "05-ts-multi-stage", "06-production-last",
                                  "07-cache-friendly-order"])
def test_starter_fails_the_static_rules(name):
    result = exercises.evaluate_dockerfile(name, exercises.get(name).starter)
    assert not result.passed and result.feedback
