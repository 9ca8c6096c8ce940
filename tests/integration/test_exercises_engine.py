"""Exercise checks on the real engine: a learner's broken starter gets the specific feedback,
the reference solution passes, and every image the check built is removed afterwards."""
from __future__ import annotations

import pytest

from stagelab import exercises

pytestmark = pytest.mark.engine


@pytest.fixture
def learner_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGELAB_EXERCISES", str(tmp_path))
    monkeypatch.setenv("STAGELAB_USE_SOLUTIONS", "0")
    created: list[str] = []
    yield created
    from stagelab.engine import client

    cli = client()
    for tag in created:
        try:
            cli.images.remove(tag, force=True)
        except Exception:
            pass


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
    learner_folder.append(result.build.tag)
    assert not result.passed
    assert result.feedback == ["The label org.opencontainers.image.authors is still 'CHANGE-ME': "
                               'put your name in LABEL org.opencontainers.image.authors="..."']
    solved = exercises.check("00-first-build", solution=True, progress="none")
    learner_folder.append(solved.build.tag)
    assert solved.passed and solved.solution, solved.feedback
    assert solved.report.file("/server") is not None
