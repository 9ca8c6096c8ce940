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
    assert "/root/.netrc" in first and "--mount=type=secret" in first and "ARG GIT_TOKEN" in first
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


def test_every_exercise_is_data_a_starter_and_a_solution():
    for name in exercises.names():
        ex = exercises.get(name)
        assert ex.title and ex.app in ("go-server", "ts-server"), name
        assert set(ex.hints) == set(exercises.HINT_TIERS), name
        assert (exercises.starter_dir(name) / "Dockerfile").is_file(), name
        assert (exercises.solution_dir(name) / "Dockerfile").is_file(), name


def test_a_broken_exercise_toml_is_one_clear_error(tmp_path: Path, monkeypatch):
    import shutil

    from stagelab import naming

    root = tmp_path / "lab"
    shutil.copytree(naming.repo_root() / "notebooks" / "starters", root / "notebooks" / "starters")
    toml = root / "notebooks" / "starters" / "02-go-to-scratch" / "exercise.toml"
    toml.write_text(toml.read_text().replace("nudge =", "nudge_typo ="))
    monkeypatch.setenv("STAGELAB_ROOT", str(root))
    with pytest.raises(exercises.ExerciseDataError) as err:
        exercises.get("02-go-to-scratch")
    assert "hints.nudge" in err.value.message and "exercise.toml" in err.value.fix
    toml.write_text('probe_paths = ["/healthz"]\n' + toml.read_text().replace("nudge_typo =", "nudge ="))
    with pytest.raises(exercises.ExerciseDataError) as err:
        exercises.get("02-go-to-scratch")
    assert "does not read: probe_paths" in err.value.message and "RULES" in err.value.fix


def test_hint_gives_the_next_tier_each_call_and_remembers_it(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STAGELAB_EXERCISES", str(tmp_path))
    ex = exercises.get("02-go-to-scratch")
    shown = [exercises.hint("02-go-to-scratch") for _ in range(4)]
    assert [h.kind for h in shown] == ["nudge", "concept", "solution", "solution"]
    assert shown[0].text == ex.hints["nudge"] and shown[1].text == ex.hints["concept"]
    assert ["solutions/02-go-to-scratch" in h.text for h in shown] == [False, False, True, True]  # third tier names it
    assert exercises.read_progress()["02-go-to-scratch"]["hints"] == 3
    assert "Hint 2 of 3" in shown[1]._repr_html_()
    assert exercises.read_progress().get("03-scratch-essentials") is None   # per exercise


def test_hints_go_to_the_journal_that_stagelab_progress_reads(tmp_path: Path, monkeypatch):
    from stagelab import journal

    monkeypatch.setenv("STAGELAB_EXERCISES", str(tmp_path / "exercises"))
    monkeypatch.setenv("STAGELAB_JOURNAL", str(tmp_path / "elsewhere.json"))
    exercises.hint("03-scratch-essentials")
    exercises.hint("03-scratch-essentials")
    assert journal.hint_level("03-scratch-essentials") == 2
    assert not (tmp_path / "exercises" / ".progress.json").exists()
    rows = {r.name: r.state for r in journal.progress_rows()}
    assert "2 hints seen" in rows["03-scratch-essentials"], rows


def test_start_copies_the_starter_file_not_its_data(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STAGELAB_EXERCISES", str(tmp_path))
    folder = exercises.start("05-ts-multi-stage", quiet=True)
    assert (folder / "Dockerfile").read_text() == (exercises.starter_dir("05-ts-multi-stage") / "Dockerfile").read_text()
    assert not (folder / "exercise.toml").exists()
    assert (folder / "package-lock.json").is_file()


def test_01_names_the_multi_stage_mix_up_from_the_dockerfile():
    two = "FROM golang AS builder\nRUN go build -o /server .\nFROM scratch\nCOPY --from=builder /server /server\n"
    result = exercises.evaluate_dockerfile("01-delete-the-toolchain", two)
    assert not result.passed and "2 stages (builder, stage-1)" in result.feedback[0]
    assert "notebook 02" in result.feedback[0] and "rm -rf" in result.feedback[0]
    assert exercises.evaluate_dockerfile("01-delete-the-toolchain", exercises.get("01-delete-the-toolchain").starter).passed


def test_02_rejects_an_unstripped_binary_by_its_sections():
    facts = {**HEALTHY, "elf_sections": {"/server": [".text", ".rodata", ".symtab", ".debug_info", ".debug_line"]}}
    result = exercises.evaluate("02-go-to-scratch", GOOD_SCRATCH, None, facts)
    assert len(result.feedback) == 1 and "a symbol table (.symtab) and 2 DWARF debug section(s) (.debug_info, .debug_line)" in result.feedback[0]
    assert '-ldflags="-w -s"' in result.feedback[0]
    facts["elf_sections"] = {"/server": [".text", ".rodata", ".shstrtab"]}
    assert exercises.evaluate("02-go-to-scratch", GOOD_SCRATCH, None, facts).passed


def test_03_rejects_an_empty_bundle_and_a_failing_fetch():
    good = report(5_400_000, [entry("/server", 5 * MB), entry("/etc/passwd", 80),
                              entry("/etc/ssl/certs/ca-certificates.crt", 0)], user="65532:65532")
    facts = {"start_error": None, "GET /time?tz=Europe/Paris": (200, {"tz": "Europe/Paris"}),
             "GET /whoami": (200, {"user": "nonroot"}), "ca_certificates": "the file is empty",
             "GET /fetch": (502, {"error": "x509: certificate signed by unknown authority"})}
    feedback = exercises.evaluate("03-scratch-essentials", good, None, facts).feedback
    text = "\n".join(feedback)
    assert "holds no certificate (the file is empty)" in text
    assert "answered 502" not in text, feedback   # one cause, one message: the bundle
    facts["ca_certificates"] = 140   # a real bundle at the wrong path: the fetch is what fails
    text = "\n".join(exercises.evaluate("03-scratch-essentials", good, None, facts).feedback)
    assert "answered 502 (x509: certificate signed by unknown authority)" in text
    facts.update({"ca_certificates": 140, "GET /fetch": (200, {"status": 200})})
    assert exercises.evaluate("03-scratch-essentials", good, None, facts).passed


def test_04_wants_a_build_without_the_secret_to_fail():
    clean = report(7 * MB, [entry("/server", 5 * MB)], user="65532:65532")
    result = exercises.evaluate("04-keep-the-secret", clean, None, {**HEALTHY, "build_without_secret": "succeeded"})
    assert not result.passed and "WITHOUT --secret id=git_token succeeded" in result.feedback[0]
    assert exercises.evaluate("04-keep-the-secret", clean, None, {**HEALTHY, "build_without_secret": "failed"}).passed


def test_08_on_the_labs_own_example_says_point_it_at_your_project(monkeypatch):
    from types import SimpleNamespace

    from stagelab import naming, scorecard
    from stagelab.compare import compare

    def rep(ref, size, user, compilers):
        surface = SimpleNamespace(shell=None, package_managers=[], compilers=compilers, executables=3, setuid=[],
                                  os_packages=None, runs_as_root=user == "", from_contents=True)
        return SimpleNamespace(ref=ref, image_id="sha256:" + ref, size=size, compressed_size=None, labels={},
                               profile="offline", surface=surface, layers=[1], user=user, contents=True)

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("STAGELAB_USE_SOLUTIONS", raising=False)
    ch = scorecard.Challenge.from_parameters(naming.repo_root() / "apps" / "go-server", "Dockerfile.single", "Dockerfile")
    a, b = rep(ch.a.tag, 900 * MB, "", ["go"]), rep(ch.b.tag, 5 * MB, "65532", [])
    result = scorecard.check_scorecard(ch, compare([a, b], baseline=a))
    assert not result.passed and "point it at your project" in result.feedback[0]
    assert scorecard.check_scorecard(ch, compare([a, b], baseline=a), worked_example=True).passed
    monkeypatch.setenv("CI", "true")   # the notebook run as a test: the worked example
    worked = scorecard.check_scorecard(ch, compare([a, b], baseline=a))
    assert worked.passed and "worked example" in worked.summary


def test_the_missing_loader_is_named_for_the_images_architecture():
    facts = {"start_error": "exec /server: no such file or directory"}
    for arch, loader in (("amd64", "/lib64/ld-linux-x86-64.so.2"), ("arm64", "/lib/ld-linux-aarch64.so.1")):
        rep = report(5 * MB, [entry("/server", 5 * MB)], user="65532")
        rep.architecture = arch
        text = "\n".join(exercises.evaluate("02-go-to-scratch", rep, None, facts).feedback)
        assert loader in text and "CGO_ENABLED=0" in text, (arch, text)


def test_02_names_debug_sections_alone_when_the_symbol_table_is_gone():
    facts = {**HEALTHY, "elf_sections": {"/server": [".text", ".debug_info", ".debug_line", ".debug_frame", ".debug_loc"]}}
    text = exercises.evaluate("02-go-to-scratch", GOOD_SCRATCH, None, facts).feedback[0]
    assert "4 DWARF debug section(s) (.debug_info, .debug_line, .debug_frame ...)" in text and ".symtab" not in text
