"""Exercise checks reject wrong answers with the specific feedback (no engine: rules are pure)."""
from __future__ import annotations

from pathlib import Path

import pytest

from stagelab import exercises
from stagelab.inspect import FileEntry, ImageReport, Surface

MB = 1_000_000


def entry(path: str, size: int = 0, kind: str = "file", mode: int = 0o755, layer: int = 0) -> FileEntry:
    return FileEntry(path, size, mode, 0, 0, kind, layer)


def report(size: int, files: list[FileEntry] = (), *, shell: str | None = None, compilers=(),
           user: str = "", secret_hits=(), labels=None) -> ImageReport:
    surface = Surface(shell=shell, shells=[shell] if shell else [], compilers=list(compilers),
                      runs_as_root=user in ("", "0", "root", "0:0"), secret_hits=list(secret_hits))
    return ImageReport(ref="stagelab/test/go-server:exercise", image_id="sha256:" + "0" * 64, size=size,
                       user=user, labels=dict(labels or {}), surface=surface,
                       files={f.path: f for f in files}, profile="offline")


GOOD_SCRATCH = report(4_900_000, [entry("/server", 4_890_000)], user="65532:65532")
HEALTHY = {"start_error": None, "GET /healthz": (200, {"status": "ok"})}


def test_registry_lists_the_go_exercises_and_rejects_unknown_names():
    assert {"00-first-build", "01-delete-the-toolchain", "02-go-to-scratch",
            "03-scratch-essentials", "04-keep-the-secret"} <= set(exercises.names())
    with pytest.raises(exercises.UnknownExercise) as err:
        exercises.get("99-nope")
    assert "02-go-to-scratch" in err.value.fix


def test_every_go_exercise_has_a_reference_solution():
    for name in exercises.names():
        ex = exercises.get(name)
        if ex.app != "go-server":
            continue
        assert (exercises.solution_dir(name) / "Dockerfile").is_file(), name
        assert ex.starter != (exercises.solution_dir(name) / "Dockerfile").read_text()


def test_scratch_exercise_passes_a_good_answer():
    result = exercises.evaluate("02-go-to-scratch", GOOD_SCRATCH, None, HEALTHY)
    assert result.passed, result.feedback
    result.raise_if_failed()


def test_scratch_exercise_rejects_the_toolchain_left_in_the_final_stage():
    single = report(812 * MB, [entry("/server", 7 * MB), entry("/usr/local/go/bin/go", 14 * MB)],
                    shell="/bin/sh", compilers=["go", "gcc"])
    result = exercises.evaluate("02-go-to-scratch", single, None, HEALTHY)
    assert not result.passed
    first = result.feedback[0]
    assert "812 MB" in first and "go, gcc" in first and "COPY --from=builder" in first
    assert any("shell (/bin/sh)" in line and "FROM scratch" in line for line in result.feedback)
    assert any("runs as root" in line for line in result.feedback)
    with pytest.raises(AssertionError, match="812 MB"):
        result.raise_if_failed()


def test_scratch_exercise_rejects_extra_files_and_a_missing_binary():
    fat = report(9 * MB, [entry("/server", 4 * MB), entry("/app/server", 5 * MB)], user="65532")
    result = exercises.evaluate("02-go-to-scratch", fat, None, HEALTHY)
    assert any("at most 1.05 x" in line and "2.2 x" in line for line in result.feedback)
    empty = report(5 * MB, [entry("/app/server", 5 * MB)], user="65532")
    result = exercises.evaluate("02-go-to-scratch", empty, None, HEALTHY)
    assert any("no file /server" in line for line in result.feedback)


def test_scratch_exercise_explains_a_cgo_binary_that_cannot_start():
    facts = {"start_error": 'exec /server: no such file or directory'}
    result = exercises.evaluate("02-go-to-scratch", GOOD_SCRATCH, None, facts)
    assert not result.passed
    assert any("CGO_ENABLED=0" in line and "ld-linux" in line for line in result.feedback)
    # the HTTP rule stays quiet when the container did not start: one cause, one message
    assert not any(line.startswith("GET ") for line in result.feedback)


def test_essentials_exercise_names_the_missing_zone_data_and_user():
    bare = report(5 * MB, [entry("/server", 5 * MB)], user="65532:65532")
    facts = {"start_error": None,
             "GET /time?tz=Europe/Paris": (500, {"error": "unknown time zone Europe/Paris"}),
             "GET /whoami": (200, {"uid": 65532, "user": ""})}
    result = exercises.evaluate("03-scratch-essentials", bare, None, facts)
    text = "\n".join(result.feedback)
    assert "/etc/ssl/certs/ca-certificates.crt is not in your image" in text
    assert "answered 500 (unknown time zone Europe/Paris)" in text and "ZONEINFO" in text
    assert "user=''" in text and "nonroot" in text
    good = report(5_400_000, [entry("/server", 5 * MB), entry("/etc/passwd", 80),
                              entry("/etc/ssl/certs/ca-certificates.crt", 200_000)], user="65532:65532")
    facts_ok = {"start_error": None, "GET /time?tz=Europe/Paris": (200, {"tz": "Europe/Paris"}),
                "GET /whoami": (200, {"user": "nonroot"})}
    assert exercises.evaluate("03-scratch-essentials", good, None, facts_ok).passed


def test_secret_exercise_says_where_the_token_leaked():
    leaky = report(900 * MB, [entry("/server", 5 * MB), entry("/root/.netrc", 60)], shell="/bin/sh",
                   compilers=["go"], secret_hits=["/root/.netrc",
                                                   f"history[28]: |1 GIT_TOKEN={exercises.DEMO_TOKEN} /bin/sh -c printf"])
    result = exercises.evaluate("04-keep-the-secret", leaky, None, HEALTHY)
    first = result.feedback[0]
    assert first.startswith("The token is in your final image")
    assert "/root/.netrc" in first and "builder" in first and "ARG GIT_TOKEN" in first
    assert exercises.DEMO_TOKEN not in first and "GIT_TOKEN=***" in first   # feedback never shows it
    clean = report(7 * MB, [entry("/server", 5 * MB)], user="65532:65532")
    assert exercises.evaluate("04-keep-the-secret", clean, None, HEALTHY).passed


def test_delete_exercise_wants_the_toolchain_gone_but_the_binary_kept():
    untouched = report(900 * MB, [entry("/app/server", 7 * MB), entry("/usr/local/go/bin/go", 14 * MB)])
    result = exercises.evaluate("01-delete-the-toolchain", untouched, None, {})
    assert any("/usr/local/go/bin/go is still in your image" in line and "rm -rf" in line
               for line in result.feedback)
    overdone = report(890 * MB, [])
    result = exercises.evaluate("01-delete-the-toolchain", overdone, None, {})
    assert any("no file /app/server" in line for line in result.feedback)


def test_first_build_wants_a_real_author():
    placeholder = report(5 * MB, [entry("/server", 5 * MB)],
                         labels={"org.opencontainers.image.authors": "CHANGE-ME"})
    result = exercises.evaluate("00-first-build", placeholder)
    assert result.feedback == ["The label org.opencontainers.image.authors is still 'CHANGE-ME': "
                               'put your name in LABEL org.opencontainers.image.authors="..."']
    named = report(5 * MB, [entry("/server", 5 * MB)], labels={"org.opencontainers.image.authors": "Ada"})
    assert exercises.evaluate("00-first-build", named).passed


def test_start_copies_sources_and_never_overwrites_an_edit(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("STAGELAB_EXERCISES", str(tmp_path))
    folder = exercises.start("02-go-to-scratch")
    assert (folder / "main.go").is_file() and (folder / "go.mod").is_file()
    assert not any(p.name.startswith("Dockerfile.") for p in folder.iterdir())
    assert (folder / "Dockerfile").read_text() == exercises.get("02-go-to-scratch").starter
    (folder / "Dockerfile").write_text("FROM scratch\n# my edit\n")
    (folder / "main.go").write_text("package main // edited\n")
    exercises.start("02-go-to-scratch")
    assert (folder / "Dockerfile").read_text().endswith("# my edit\n")
    assert "edited" in (folder / "main.go").read_text()
    assert "kept your edits" in capsys.readouterr().out


def test_use_solutions_follows_ci_and_the_override(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("STAGELAB_USE_SOLUTIONS", raising=False)
    assert exercises.use_solutions() is False
    monkeypatch.setenv("CI", "true")
    assert exercises.use_solutions() is True
    monkeypatch.setenv("STAGELAB_USE_SOLUTIONS", "0")
    assert exercises.use_solutions() is False
    monkeypatch.delenv("CI")
    monkeypatch.setenv("STAGELAB_USE_SOLUTIONS", "1")
    assert exercises.use_solutions() is True


def test_check_result_renders_pass_and_fail():
    failed = exercises.evaluate("02-go-to-scratch", report(812 * MB, [], compilers=["go"]), None, HEALTHY)
    assert "Not yet" in failed._repr_html_() and "812 MB" in failed._repr_html_()
    assert str(failed).startswith("NOT YET")
    passed = exercises.evaluate("02-go-to-scratch", GOOD_SCRATCH, None, HEALTHY)
    assert "Passed" in passed._repr_html_() and "4.9 MB" in passed.summary


def test_each_solution_check_gets_its_own_build_folder(tmp_path: Path, monkeypatch):
    """Two checks of one exercise at once (two notebooks, two test workers) never share a folder."""
    monkeypatch.setenv("STAGELAB_CACHE", str(tmp_path))
    ex = exercises.get("02-go-to-scratch")
    first = exercises._solution_context(ex)
    second = exercises._solution_context(ex)
    assert first != second and first.parent == second.parent
    assert tmp_path in first.parents, f"solution folder {first} is not under the cache {tmp_path}"
    for folder in (first, second):
        assert (folder / "Dockerfile").read_text() == (exercises.solution_dir(ex.name) / "Dockerfile").read_text()
        assert (folder / "main.go").is_file()
