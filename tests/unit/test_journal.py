"""journal + predict: a learner's progress file and the predict-then-measure questions (no engine)."""
from __future__ import annotations

import json

import pytest

from stagelab import journal, predict
from stagelab.cli import main


@pytest.fixture(autouse=True)
def _own_journal(tmp_path, monkeypatch):
    path = tmp_path / "progress" / "me.json"
    monkeypatch.setenv("STAGELAB_JOURNAL", str(path))
    return path


def test_exercises_and_hints_are_remembered(_own_journal) -> None:
    journal.record_exercise("go-scratch", False)
    journal.record_exercise("go-scratch", True)
    journal.record_hint("go-scratch", 2)
    journal.record_hint("go-scratch", 1)           # seeing tier 1 again keeps tier 2
    data = json.loads(_own_journal.read_text())
    entry = data["exercises"]["go-scratch"]
    assert (entry["passed"], entry["checks"], entry["hints"]) == (True, 2, 2)
    journal.record_exercise("go-scratch", False)   # the latest check counts, as in the exercises' own writer
    assert journal.load()["exercises"]["go-scratch"]["passed"] is False
    assert journal.hint_level("go-scratch") == 2 and journal.hint_level("other") == 0


def test_one_file_beside_the_exercises_keeps_keys_it_does_not_know(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("STAGELAB_JOURNAL")
    monkeypatch.setenv("STAGELAB_EXERCISES", str(tmp_path / "ex"))
    assert journal.journal_path() == (tmp_path / "ex" / ".progress.json").resolve()
    journal.journal_path().parent.mkdir()
    journal.journal_path().write_text(json.dumps({"exercises": {"a": {"hints": 1, "checks": 0, "passed": False}},
                                                  "other": 1}))
    predict.ask("02-x", "How big?", guess="1 MB")
    data = json.loads(journal.journal_path().read_text())
    assert data["other"] == 1 and data["exercises"]["a"]["hints"] == 1 and data["predictions"]["02-x"]["guess"] == 1e6


def test_a_broken_file_gives_one_message_with_the_fix(_own_journal) -> None:
    _own_journal.parent.mkdir(parents=True)
    _own_journal.write_text("{not json")
    with pytest.raises(journal.BadJournal, match="cannot be read") as info:
        journal.load()
    assert "mv " in info.value.fix


@pytest.mark.parametrize("kind,text,value", [
    ("size", "5 MB", 5_000_000), ("size", "300kB", 300_000), ("number", "1,200", 1200.0),
    ("names", "test, builder builder", ["builder", "test"]),
])
def test_guesses_parse(kind, text, value) -> None:
    assert predict.parse_guess(kind, text) == value


@pytest.mark.parametrize("kind,text", [("size", "big"), ("number", "twelve"), ("names", " , ")])
def test_bad_guesses_say_what_to_type(kind, text) -> None:
    with pytest.raises(predict.BadGuess) as info:
        predict.parse_guess(kind, text)
    assert info.value.fix.startswith("type")


def test_unanswered_question_is_skipped_and_not_stored(_own_journal) -> None:
    q = predict.ask("02-scratch-size", "How big?", kind="size")
    shown = q.reveal(1_400_000, what="scratch image, uncompressed")
    assert shown.skipped and "skipped" in str(shown) and "1.4 MB" in str(shown)
    assert journal.load()["predictions"] == {}


def test_guess_beside_measured_value_is_stored(_own_journal) -> None:
    q = predict.ask("02-scratch-size", "How big?", kind="size", guess="2 MB")
    shown = q.reveal(1_000_000, what="scratch image, uncompressed")
    assert not shown.skipped
    assert "2 MB" in shown.text() and "1 MB" in shown.text() and "2× smaller" in shown.verdict
    entry = journal.load()["predictions"]["02-scratch-size"]
    assert (entry["guess"], entry["measured"], entry["notebook"]) == (2_000_000, 1_000_000, "02")
    # the saved guess is found again by the next run of the notebook (e.g. after the box was used)
    assert predict.ask("02-scratch-size", "How big?").guess == 2_000_000


def test_names_verdict_lists_missed_and_extra() -> None:
    q = predict.Prediction("06-stages", "Which stages run?", kind="names", guess=["builder", "final"])
    verdict = q.reveal(["deps", "builder"], what="BuildKit log").verdict
    assert "missed: deps" in verdict and "not in the measurement: final" in verdict
    assert predict.Prediction("06-x", "?", kind="names", guess=["a"]).reveal({"a"}, what="log").verdict == "Exactly right."


def test_the_box_saves_a_guess(_own_journal) -> None:
    pytest.importorskip("ipywidgets")
    q = predict.ask("03-ca-size", "How big is the CA bundle?", kind="size")
    box = q.widget()
    text, button = box.children[1].children
    text.value = "nonsense"
    button.click()
    assert q.guess is None and "not a size" in box.children[2].value
    text.value = "250 kB"
    button.click()
    assert q.guess == 250_000 and journal.load()["predictions"]["03-ca-size"]["guess"] == 250_000


def test_cli_progress_lists_what_was_done(capsys) -> None:
    journal.record_exercise("go-scratch", True)
    predict.ask("02-scratch-size", "How big?", guess="2 MB").reveal(1_500_000, what="scratch")
    assert main(["progress"]) == 0
    out = capsys.readouterr().out
    assert "go-scratch" in out and "passed (1 checks, 0 hints seen)" in out
    assert "02-scratch-size" in out and "guessed 2 MB, measured 1.5 MB" in out
    assert main(["progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exercises"]["go-scratch"]["passed"] is True


def test_the_box_has_a_static_fallback_for_reports() -> None:
    pytest.importorskip("ipywidgets")
    q = predict.Prediction("02-x", "How big?", guess=2_000_000)
    bundle = q._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "stagelab-static" in bundle["text/html"] and "2 MB" in bundle["text/html"]
    assert "no guess yet" in predict.Prediction("02-y", "How big?")._repr_mimebundle_()["text/html"]


def test_hints_and_checks_go_to_the_journals_file(_own_journal, capsys) -> None:
    from stagelab import exercises

    exercises.hint("02-go-to-scratch")
    exercises.hint("02-go-to-scratch")
    assert journal.hint_level("02-go-to-scratch") == 2
    assert exercises.read_progress()["02-go-to-scratch"]["hints"] == 2
    assert main(["progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exercises"]["02-go-to-scratch"]["hints"] == 2
