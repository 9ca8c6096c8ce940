"""Builder choice, BuildKit-only features on classic, one step numbering, patched contexts (no engine)."""
from __future__ import annotations

import types

import pytest

from stagelab import builders as BD
from stagelab import builderrors as E
from stagelab import buildcontext as C
from stagelab import buildlog as L
from stagelab import dockerfile as D
from stagelab.errors import StagelabError


class PingAPI:
    def __init__(self, headers):
        self.headers = headers

    def _url(self, path):
        return f"http+docker://localhost{path}"

    def _get(self, url):
        assert url.endswith("/_ping")
        return types.SimpleNamespace(headers=self.headers)


def client(headers):
    return types.SimpleNamespace(api=PingAPI(headers))


@pytest.mark.parametrize("headers, cli, expected", [
    ({"Builder-Version": "2"}, ("/usr/bin/docker", True), "buildkit"),
    ({"Builder-Version": "1"}, ("/usr/bin/docker", True), "classic"),
    ({}, ("/usr/bin/docker", False), "classic"),            # 20.10 sends no header: classic
    ({"Builder-Version": "2"}, None, "classic"),            # BuildKit engine, no CLI to drive it
])
def test_auto_follows_the_engines_ping(monkeypatch, headers, cli, expected):
    monkeypatch.delenv("STAGELAB_BUILDER", raising=False)
    monkeypatch.setattr(BD, "buildkit_cli", lambda: cli)
    assert BD.choose_builder(None, client(headers)) == expected


def test_env_and_argument_override_auto(monkeypatch):
    monkeypatch.setattr(BD, "buildkit_cli", lambda: ("/usr/bin/docker", False))
    monkeypatch.setenv("STAGELAB_BUILDER", "buildkit")
    assert BD.choose_builder(None, client({})) == "buildkit"
    assert BD.choose_builder("classic", client({"Builder-Version": "2"})) == "classic"
    monkeypatch.setenv("STAGELAB_BUILDER", "kaniko")
    with pytest.raises(StagelabError, match="STAGELAB_BUILDER='kaniko'"):
        BD.wanted_builder()


def test_describe_names_the_builder_and_how(monkeypatch):
    monkeypatch.delenv("STAGELAB_BUILDER", raising=False)
    monkeypatch.setattr(BD, "buildkit_cli", lambda: ("/usr/bin/docker", False))
    assert BD.describe(client({})).startswith("classic (the engine's default")
    shown = BD.describe(client({"Builder-Version": "2"}))
    assert shown.startswith("BuildKit") and "DOCKER_BUILDKIT=1 /usr/bin/docker build" in shown
    monkeypatch.setattr(BD, "buildkit_cli", lambda: ("/usr/bin/docker", True))
    assert "/usr/bin/docker buildx build" in BD.describe(client({"Builder-Version": "2"}))


def test_buildx_command_loads_the_image():
    from pathlib import Path

    cmd = BD.buildkit_command("/d", ctx=Path("/c"), df_path=Path("/c/Dockerfile"), tag="t:1", target=None,
                              labels={}, build_args={}, nocache=False, buildx=True)
    assert cmd[:5] == ["/d", "buildx", "build", "--load", "--progress=plain"]


CACHE_MOUNT = ("FROM alpine AS deps\n"
               "RUN --mount=type=cache,target=/root/.cache go build\n"
               "FROM scratch\nCOPY --link --from=deps /a /a\n")


def test_classic_stops_on_buildkit_features_naming_them_and_the_fix():
    with pytest.raises(E.NeedsBuildkit) as info:
        E.check_classic(D.parse(CACHE_MOUNT), "Dockerfile")
    msg = info.value.message
    assert "`RUN --mount=type=cache`" in msg and "`COPY --link`" in msg and "lines 2, 4" in msg
    assert "STAGELAB_BUILDER=buildkit" in info.value.fix
    E.check_classic(D.parse("# syntax=docker/dockerfile:1\nFROM scratch\n"), "Dockerfile")  # classic ignores it


SYNTAX_OFFLINE = """\
#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
#2 resolve image config for docker.io/docker/dockerfile:1.3
#2 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/docker/dockerfile/manifests/1.3": dial tcp: lookup registry-1.docker.io: no such host
------
 > resolve image config for docker.io/docker/dockerfile:1.3:
------
failed to solve with frontend dockerfile.v0: failed to solve with frontend gateway.v0: failed to do request: dial tcp: lookup registry-1.docker.io: no such host
"""


def test_syntax_frontend_offline_says_so_with_the_fix():
    model = D.parse("# syntax = docker/dockerfile:1.3\nFROM scratch\n")
    log = L.BuildkitLog.from_lines(SYNTAX_OFFLINE.splitlines(), model)
    exc = E.failure_from(log, log.final_error, "Dockerfile", "/ctx", {}, model, "t:1")
    assert isinstance(exc, E.FrontendUnavailable)
    assert "line 1" in exc.message and "docker/dockerfile:1.3" in exc.message
    assert "delete the `# syntax=` line" in exc.fix
    plain = D.parse("FROM scratch\n")  # without the directive the same error is not blamed on it
    assert not isinstance(E.failure_from(log, log.final_error, "Dockerfile", "/ctx", {}, plain, "t:1"),
                          E.FrontendUnavailable)


MODEL = D.parse("ARG BASE=alpine\n"          # 1
                "FROM ${BASE} AS builder\n"  # 2
                "RUN make\n"                 # 3
                "\n"
                "FROM scratch AS final\n"    # 5 (instruction 4)
                "COPY --from=builder /a /a\n")  # 6 (instruction 5)


def test_buildkit_steps_use_the_dockerfiles_numbering_and_lines():
    lines = ["#5 [builder 1/2] FROM docker.io/library/alpine", "#6 [final 1/1] COPY --from=builder /a /a",
             "#7 [builder 2/2] RUN make", "#7 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2"]
    log = L.BuildkitLog.from_lines(lines, MODEL)
    assert [(s.number, s.line, s.instruction) for s in log.steps] == [
        (3, 3, "RUN make"), (5, 6, "COPY --from=builder /a /a")]
    assert log.step == 3 and log.where == "step 3/5 (line 3, [builder 2/2])"


def test_a_failure_in_the_labs_label_steps_is_not_step_11_of_10():
    chunks = [{"stream": "Step 1/4 : FROM scratch\n"}, {"stream": "Step 2/4 : COPY a /a\n"},
              {"stream": " ---> abc123abc123\n"}, {"stream": "Step 3/4 : LABEL org.stagelab.lab=true\n"}]
    log = L.ClassicLog(added_labels=["org.stagelab.lab", "org.stagelab.builder"],
                       dockerfile=D.parse("FROM scratch\nCOPY a /a\n"))
    for chunk in chunks:
        log.feed(chunk)
    exc = E.stopped_during(log, "connection reset", "Dockerfile", "t:1")
    assert "3/2" not in exc.message and "LABEL" not in exc.message
    assert "after step 2/2" in exc.message
    assert log.created_ids == ["abc123abc123"]


def test_rewrite_dockerfile_substitutes_from_and_drops_syntax():
    text = "# syntax=docker/dockerfile:1\nFROM golang:1.25 AS b\nCOPY --from=golang:1.25 /x /x\nFROM golang:1.25-alpine\n"
    out = C.rewrite_dockerfile(text, {"golang:1.25": "stagelab-offline/golang:1.25"}, drop_syntax=True)
    assert out.splitlines() == ["", "FROM stagelab-offline/golang:1.25 AS b",
                                "COPY --from=stagelab-offline/golang:1.25 /x /x", "FROM golang:1.25-alpine"]


def test_rewrite_dockerfile_substitutes_a_run_mounts_image():
    text = ("FROM scratch\nRUN --mount=type=bind,from=golang:1.25,source=/x,target=/x true\n"
            "RUN --mount=from=golang:1.25,target=/y true\n")
    out = C.rewrite_dockerfile(text, {"golang:1.25": "local/go:1"})
    assert out.splitlines()[1:] == ["RUN --mount=type=bind,from=local/go:1,source=/x,target=/x true",
                                    "RUN --mount=from=local/go:1,target=/y true"]


def test_patched_copy_honours_dockerignore_and_goes_away(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM golang:1.25\nCOPY . .\n")
    (tmp_path / "main.go").write_text("package main\n")
    (tmp_path / "secret.txt").write_text("x")
    (tmp_path / ".dockerignore").write_text("secret.txt\n")
    with C.patched_copy(tmp_path, "Dockerfile", {"golang:1.25": "local/go:1"}) as (ctx, df):
        assert df.read_text().startswith("FROM local/go:1\n")
        assert (ctx / "main.go").is_file() and not (ctx / "secret.txt").exists()
    assert not ctx.exists()
    assert (tmp_path / "Dockerfile").read_text().startswith("FROM golang:1.25")  # the original is untouched


def test_buildkit_missing_base_is_placed_at_its_from_step():
    model = D.parse("ARG BASE=nonexistent-img:1\nFROM scratch AS a\nFROM ${BASE}\nCOPY a /a\n")
    lines = ["#3 [internal] load metadata for docker.io/library/nonexistent-img:1",
             "#3 ERROR: failed to do request: dial tcp: lookup registry-1.docker.io: no such host",
             "failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do "
             "request: Head \"https://registry-1.docker.io/v2/library/nonexistent-img/manifests/1\": dial tcp: "
             "lookup registry-1.docker.io: no such host"]
    log = L.BuildkitLog.from_lines(lines, model)
    exc = E.failure_from(log, log.final_error, "Dockerfile", "/ctx", {"BASE": "nonexistent-img:1"}, model, "t:1")
    assert "`nonexistent-img:1` is not on this engine" in exc.message
    assert exc.step == 3


def test_heredoc_on_an_old_builtin_frontend_names_the_feature_not_the_body_line():
    # Docker 20.10 with DOCKER_BUILDKIT=1 (its built-in frontend predates heredocs and COPY --link)
    model = D.parse("FROM debian\nRUN <<EOF\necho hi > /x\nEOF\nCOPY --link a /a\n")
    for error, line, feature in [
        ("failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
         "dockerfile parse error line 3: unknown instruction: ECHO", 2, "`heredoc`"),
        ("failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
         "dockerfile parse error line 5: Unknown flag: link", 5, "`COPY --link`"),
    ]:
        log = L.BuildkitLog.from_lines([error], model)
        exc = E.failure_from(log, log.final_error, "Dockerfile", "/ctx", {}, model, "t:1")
        assert isinstance(exc, E.FrontendTooOld), exc.message
        assert f"line {line} uses {feature}" in exc.message and "Docker 23" in exc.fix
    plain = D.parse("FROM debian\nRUN true\nECHO hi\n")  # a real typo stays a typo
    log = L.BuildkitLog.from_lines(["failed to solve with frontend dockerfile.v0: failed to create LLB "
                                    "definition: dockerfile parse error line 3: unknown instruction: ECHO"], plain)
    assert not isinstance(E.failure_from(log, log.final_error, "Dockerfile", "/ctx", {}, plain, "t:1"),
                          E.FrontendTooOld)
