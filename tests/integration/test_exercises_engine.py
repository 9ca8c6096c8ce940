"""Exercise checks on the real engine: a learner's broken starter gets the specific feedback,
the reference solution passes, and every image the check built is removed afterwards."""
from __future__ import annotations

import pytest

from stagelab import exercises

pytestmark = pytest.mark.engine


@pytest.fixture
def learner_folder(tracker, tmp_path, monkeypatch):
    """The tracker's namespace (never the developer's exercise images); the tracker removes what the checks built."""
    monkeypatch.setenv("STAGELAB_EXERCISES", str(tmp_path))
    monkeypatch.setenv("STAGELAB_USE_SOLUTIONS", "0")
    return tmp_path


def test_first_build_starter_is_rejected_with_the_line_and_the_fix(learner_folder):
    result = exercises.check("00-first-build", progress="none")
    assert not result.passed and result.report is None
    text = "\n".join(result.feedback)
    assert "COPPY" in text and "COPY" in text, text
    assert "line" in text, text


def test_first_build_placeholder_label_is_rejected_then_solution_passes(learner_folder):
    folder = exercises.start("00-first-build", quiet=True)
    dockerfile = folder / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPPY", "COPY"))
    result = exercises.check("00-first-build", progress="none")
    assert not result.passed
    assert result.feedback == ["The label org.opencontainers.image.authors is still 'CHANGE-ME': "
                               'put your name in LABEL org.opencontainers.image.authors="..."']
    solved = exercises.check("00-first-build", solution=True, progress="none")
    assert solved.passed and solved.solution, solved.feedback
    assert solved.report.file("/server") is not None


# --- the wrong-answer corpus: answers the Dockerfile alone cannot decide, built once each ------

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from exercise_corpus import mistakes  # noqa: E402

BUILT = [m for m in mistakes() if not m.static]


@pytest.mark.parametrize("mistake", BUILT, ids=[m.id for m in BUILT])
def test_built_wrong_answer_gets_its_feedback(learner_folder, mistake):
    folder = exercises.start(mistake.exercise, quiet=True)
    (folder / "Dockerfile").write_text(mistake.dockerfile.read_text())
    result = exercises.check(mistake.exercise, progress="none")
    assert result.passed is mistake.passes, result.feedback
    text = "\n".join(result.feedback)
    for expected in mistake.feedback:
        assert expected in text, f"{mistake.id}: {expected!r} not in feedback:\n{text}"


MEASURED = {   # the solutions whose rules read more than the report, and what each measured
    "02-go-to-scratch": lambda f: ".text" in f["elf_sections"]["/server"],
    "03-scratch-essentials": lambda f: f["ca_certificates"] > 0 and f["GET /fetch"][0] == 200,
    "04-keep-the-secret": lambda f: f["build_without_secret"] == "failed",
}


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_solution_passes_the_measured_rules(learner_folder, name):
    result = exercises.check(name, solution=True, progress="none")
    assert result.passed, result.feedback
    assert MEASURED[name](result.facts), {k: v for k, v in result.facts.items() if k != "dockerfile"}


@pytest.mark.parametrize("name", ["01-delete-the-toolchain", "02-go-to-scratch", "03-scratch-essentials"])
def test_starter_needing_a_build_fails(learner_folder, name):
    """Starters 04-07 fail on the Dockerfile alone (unit test); these need their image measured."""
    assert exercises.evaluate_dockerfile(name, exercises.get(name).starter).passed   # else: a unit test
    result = exercises.check(name, progress="none")
    assert not result.passed and result.report is not None, result.feedback
