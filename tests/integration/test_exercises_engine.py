"""Exercise checks on the real engine: a learner's broken starter gets the specific feedback,
the reference solution passes, and every image the check built is removed afterwards."""
from __future__ import annotations

import secrets

import pytest

from stagelab import cleanup, exercises

pytestmark = pytest.mark.engine


@pytest.fixture
def learner_folder(tmp_path, monkeypatch):
    """A namespace of its own (never the developer's exercise images) and its cleanup."""
    monkeypatch.setenv("STAGELAB_NAMESPACE", f"itest-{secrets.token_hex(4)}")
    monkeypatch.setenv("STAGELAB_EXERCISES", str(tmp_path))
    monkeypatch.setenv("STAGELAB_USE_SOLUTIONS", "0")
    yield tmp_path
    cleanup.clean()          # every image and container labelled with this test's namespace


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
