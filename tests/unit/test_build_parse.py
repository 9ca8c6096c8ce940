"""Build log parsing, error messages and progress display, on recorded logs (no engine)."""
from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import docker.errors
import pytest
import requests

from stagelab import build as B
from stagelab import builders as BD
from stagelab import builderrors as E
from stagelab import buildlog as L
from stagelab import dockerfile as D
from stagelab import progress as P

@pytest.fixture(autouse=True)
def _engine_default_builder(monkeypatch):
    """These tests fake a classic engine: a STAGELAB_BUILDER of the developer's shell must not leak in."""
    monkeypatch.delenv("STAGELAB_BUILDER", raising=False)


# --- recorded logs (Docker Engine 20.10, classic builder through the SDK, decode=True) ----

CLASSIC_MULTISTAGE_TARGET = [  # --target other, with two lab labels added by the API
    {"stream": "Step 1/9 : ARG BASE=scratch"}, {"stream": "\n"},
    {"stream": "Step 2/9 : ARG UNUSED"}, {"stream": "\n"},
    {"stream": "Step 3/9 : FROM scratch AS builder"}, {"stream": "\n"}, {"stream": " ---> \n"},
    {"stream": "Step 4/9 : COPY a.txt /a.txt"}, {"stream": "\n"},
    {"stream": " ---> Using cache\n"}, {"stream": " ---> f770356aa18d\n"},
    {"stream": "Step 5/9 : COPY b.txt /b.txt"}, {"stream": "\n"},
    {"stream": " ---> e80fec855b28\n"},
    {"aux": {"ID": "sha256:e80fec855b2806ae187d951566410e635aad0231e662199ae18df6ad9569b924"}},
    {"stream": "Step 6/9 : FROM scratch AS other"}, {"stream": "\n"}, {"stream": " ---> \n"},
    {"stream": "Step 7/9 : COPY b.txt /x.txt"}, {"stream": "\n"},
    {"stream": " ---> Using cache\n"}, {"stream": " ---> 70ab69283d55\n"},
    {"stream": "Step 8/9 : LABEL org.stagelab.lab=true"}, {"stream": "\n"},
    {"stream": " ---> Running in 93a3338a0f57\n"},
    {"stream": "Removing intermediate container 93a3338a0f57\n"},
    {"stream": " ---> 5be386f84252\n"},
    {"stream": "Step 9/9 : LABEL org.stagelab.namespace=itest"}, {"stream": "\n"},
    {"stream": " ---> Running in aeda470c7f35\n"},
    {"stream": "Removing intermediate container aeda470c7f35\n"},
    {"stream": " ---> edcc328939bd\n"},
    {"aux": {"ID": "sha256:edcc328939bd98ad8e13153b703b0c392f919883267c50ef50bf668187ca10a6"}},
    {"stream": "Successfully built edcc328939bd\n"},
    {"stream": "Successfully tagged stagelab/itest/x:1\n"},
]
LAB_KEYS = ["org.stagelab.lab", "org.stagelab.namespace"]

# The API appends one LABEL step per label after the Dockerfile's own: two here (LAB_KEYS),
# so "Step 3/5" is step 3 of the Dockerfile's 3; OK_CHUNKS below has three labels (+ profile).
CLASSIC_RUN_FAILS = [
    {"stream": "Step 1/5 : FROM debian:bookworm-slim"}, {"stream": "\n"},
    {"stream": " ---> bc33a52d7695\n"},
    {"stream": "Step 2/5 : COPY a.txt /a"}, {"stream": "\n"}, {"stream": " ---> 9cb53a6ad077\n"},
    {"stream": "Step 3/5 : RUN echo about to fail && exit 3"}, {"stream": "\n"},
    {"stream": " ---> Running in 65bef5db6459\n"},
    {"stream": "about to fail\n"},
    {"stream": "Removing intermediate container 65bef5db6459\n"},
    {"errorDetail": {"code": 3, "message": "The command '/bin/sh -c echo about to fail && exit 3' "
                                           "returned a non-zero code: 3"},
     "error": "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3"},
]

CLASSIC_NO_SHELL = [
    {"stream": "Step 1/4 : FROM scratch"}, {"stream": "\n"}, {"stream": " ---> \n"},
    {"stream": "Step 2/4 : RUN echo hi"}, {"stream": "\n"},
    {"stream": " ---> Running in daf11de852ac\n"},
    {"stream": "Removing intermediate container daf11de852ac\n"},
    {"errorDetail": {"message": 'failed to create shim task: OCI runtime create failed: runc create '
                                'failed: unable to start container process: exec: "/bin/sh": stat '
                                '/bin/sh: no such file or directory: unknown'},
     "error": "failed to create shim task: ..."},
]

CLASSIC_MISSING_BASE = [
    {"stream": "Step 1/6 : ARG GOLANG_IMAGE=golang:1.22-alpine"}, {"stream": "\n"},
    {"stream": "Step 2/6 : FROM ${GOLANG_IMAGE} AS builder"}, {"stream": "\n"},
    {"errorDetail": {"message": 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup '
                                "registry-1.docker.io on 10.255.255.53:53: no such host"},
     "error": "Get ..."},
]

CLASSIC_COPY_MISSING = [
    {"stream": "Step 1/4 : FROM scratch"}, {"stream": "\n"}, {"stream": " ---> \n"},
    {"stream": "Step 2/4 : COPY nope.txt /a"}, {"stream": "\n"},
    {"errorDetail": {"message": "COPY failed: file not found in build context or excluded by "
                                ".dockerignore: stat nope.txt: file does not exist"},
     "error": "COPY failed: ..."},
]

# --- recorded BuildKit plain progress (docker 20.10 CLI, DOCKER_BUILDKIT=1) ----------------

BUILDKIT_TARGET_OK = """\
#1 [internal] load build definition from Dockerfile
#1 sha256:d6ec3e13e538e7b4724130fcb8ff038a2e276002363dc239486d2dc1bf47e87e
#1 transferring dockerfile: 214B 0.0s done
#1 DONE 0.0s

#3 [internal] load metadata for docker.io/stagelab-offline/golang:1.22-alpine
#3 DONE 0.0s

#4 [builder 1/3] FROM docker.io/stagelab-offline/golang:1.22-alpine
#4 DONE 0.0s

#5 [builder 2/3] COPY go.mod ./
#5 CACHED

#6 [builder 3/3] RUN go build -o /server .
#6 0.512 compiling
#6 DONE 9.1s

#7 [final 1/1] COPY --from=builder /server /server
#7 DONE 0.1s

#8 exporting to image
#8 exporting layers done
#8 writing image sha256:e3961a97cfdf18123ced6d6d67ff8cab34a8e28fce318851f0b6803b72bf2711 done
#8 naming to docker.io/stagelab/itest/go:scratch done
#8 DONE 0.0s
"""

BUILDKIT_RUN_FAILS = """\
#1 [internal] load build definition from Dockerfile.bad2
#1 DONE 0.0s

#4 [1/2] COPY a.txt /a
#4 DONE 0.0s

#5 [2/2] RUN ["/nope"]
#5 0.272 runc run failed: unable to start container process: exec: "/nope": stat /nope: no such file or directory
#5 ERROR: executor failed running [/nope]: exit code: 1
------
 > [2/2] RUN ["/nope"]:
------
executor failed running [/nope]: exit code: 1
"""

BUILDKIT_EXIT_CODE = """\
#4 [build 2/2] RUN echo about to fail && exit 3
#4 0.517 about to fail
#4 ERROR: executor failed running [/bin/sh -c echo about to fail && exit 3]: exit code: 3
------
 > [build 2/2] RUN echo about to fail && exit 3:
------
executor failed running [/bin/sh -c echo about to fail && exit 3]: exit code: 3
"""

BUILDKIT_TYPO = """\
#1 [internal] load build definition from Dockerfile.bad2
#1 DONE 0.0s
failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 3: unknown instruction: RUNN
"""

BUILDKIT_MISSING_BASE = """\
#3 [internal] load metadata for docker.io/library/nonexistent-img:1
#3 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/library/nonexistent-img/manifests/1": dial tcp: lookup registry-1.docker.io: no such host
------
 > [internal] load metadata for docker.io/library/nonexistent-img:1:
------
failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request: Head "https://registry-1.docker.io/v2/library/nonexistent-img/manifests/1": dial tcp: lookup registry-1.docker.io: no such host
"""


def classic(chunks, labels=LAB_KEYS) -> L.ClassicLog:
    log = L.ClassicLog(added_labels=labels)
    for chunk in chunks:
        log.feed(chunk)
    log.flush()
    return log


def buildkit(text: str) -> L.BuildkitLog:
    log = L.BuildkitLog()
    for line in text.splitlines(keepends=True):
        log.feed(line)
    return log


def fail(log, df_text: str = "FROM scratch\n", args=None) -> B.BuildFailed:
    error = log.error if isinstance(log, L.ClassicLog) else log.final_error
    assert error, "the recorded log must carry an error"
    return E.failure_from(log, error, "Dockerfile", "/ctx", dict(args or {}), D.parse(df_text), "t:1")


# --- Dockerfile reading -------------------------------------------------------------------

def test_parse_dockerfile_joins_continuations_and_skips_comments():
    text = (
        "# syntax comment\n"
        "ARG A=1\n"
        "FROM scratch AS base\n"
        "RUN echo one \\\n"
        "    # a comment inside\n"
        "    && echo two\n"
        "\n"
        "copy a /a\n"
    )
    ins = D.parse_dockerfile(text)
    assert [i.keyword for i in ins] == ["ARG", "FROM", "RUN", "COPY"]
    assert ins[2].args == "echo one && echo two"
    assert ins[2].line == 4
    assert ins[3].line == 8


def test_parse_dockerfile_escape_directive():
    ins = D.parse_dockerfile("# escape=`\nFROM scratch\nRUN a `\n  b\n")
    assert ins[-1].args == "a b"


def test_declared_args_names_defaults_and_several_per_line():
    text = ('ARG GOLANG_IMAGE=golang:1.22-alpine\narg NODE_IMAGE\nARG A=1 B="two words"\n'
            "FROM ${GOLANG_IMAGE}\nARG LATE=x\nRUN echo ARG NOT_AN_ARG=1\n")
    assert D.declared_args(text) == {
        "GOLANG_IMAGE": "golang:1.22-alpine", "NODE_IMAGE": None, "A": "1", "B": "two words", "LATE": "x",
    }


def test_dockerfile_stages_names_unnamed_and_platform():
    text = "FROM --platform=$BUILDPLATFORM golang AS build\nFROM scratch\nFROM build as again\n"
    stages = D.dockerfile_stages(text)
    assert [(s.index, s.name, s.base) for s in stages] == [
        (0, "build", "golang"), (1, "stage-1", "scratch"), (2, "again", "build")]


def test_expand_forms():
    args = {"A": "x:1", "EMPTY": None}
    assert D.expand("${A}", args) == "x:1"
    assert D.expand("$A-y", args) == "x:1-y"
    assert D.expand("${EMPTY:-dflt}", args) == "dflt"
    assert D.expand("${MISSING}", args) == ""


# --- classic log --------------------------------------------------------------------------

def test_classic_counts_steps_cache_stages_and_image():
    log = classic(CLASSIC_MULTISTAGE_TARGET)
    # FROM, global ARGs and the two LABEL steps the API appended are not steps of the Dockerfile
    assert [s.instruction for s in log.steps] == ["COPY a.txt /a.txt", "COPY b.txt /b.txt", "COPY b.txt /x.txt"]
    assert log.steps_total == 3
    assert log.steps_cached == 2
    assert [s.cached for s in log.steps] == [True, False, True]
    assert [s.stage for s in log.steps] == ["builder", "builder", "other"]
    assert log.stages_run == ["builder", "other"]
    assert log.builder_total == 9
    assert log.image_id == "sha256:edcc328939bd98ad8e13153b703b0c392f919883267c50ef50bf668187ca10a6"
    assert log.error is None


def test_classic_log_lines_have_no_blank_step_tails():
    log = classic(CLASSIC_MULTISTAGE_TARGET)
    assert log.lines[0] == "Step 1/9 : ARG BASE=scratch"
    assert log.lines[1] == "Step 2/9 : ARG UNUSED"
    assert "" not in log.lines
    assert log.lines[-1] == "Successfully tagged stagelab/itest/x:1"


def test_classic_chunks_split_mid_line():
    text = "".join(c.get("stream", "") for c in CLASSIC_MULTISTAGE_TARGET)
    pieces = [{"stream": text[i:i + 7]} for i in range(0, len(text), 7)]
    log = classic(pieces + [c for c in CLASSIC_MULTISTAGE_TARGET if "aux" in c][-1:])
    assert log.steps_total == 3 and log.steps_cached == 2
    assert log.short_id == "edcc328939bd"
    assert "Successfully built edcc328939bd" in log.lines


def test_classic_new_steps_feed_progress():
    log = L.ClassicLog()
    seen = []
    for chunk in CLASSIC_RUN_FAILS:
        log.feed(chunk)
        seen += log.take_new_steps()
    assert seen == [(1, 5, "FROM debian:bookworm-slim"), (2, 5, "COPY a.txt /a"),
                    (3, 5, "RUN echo about to fail && exit 3")]


def test_unlabelled_label_steps_count_when_not_added_by_api():
    chunks = [{"stream": "Step 1/2 : FROM scratch\n"}, {"stream": "Step 2/2 : LABEL a=b\n"},
              {"stream": "Successfully built abc\n"}]
    assert classic(chunks, labels=[]).steps_total == 1


# --- failures -----------------------------------------------------------------------------

def test_failing_run_names_step_instruction_code_and_tail():
    exc = fail(classic(CLASSIC_RUN_FAILS))
    assert exc.step == 3
    assert exc.steps_total == 3
    assert exc.instruction == "RUN echo about to fail && exit 3"
    assert "step 3/3" in exc.message and "code 3" in exc.message
    assert exc.tail[-1].startswith("ERROR: The command")
    assert "about to fail" in exc.tail
    assert "fix:" in str(exc) and "about to fail" in str(exc)


def test_tail_title_explains_the_logs_larger_step_count():
    """The log says "Step 3/5" for a 3-step Dockerfile: the box says why (2 LABEL steps added)."""
    exc = fail(classic(CLASSIC_RUN_FAILS))
    assert (exc.steps_total, exc.log_total) == (3, 5)
    assert "the log counts 5 steps: the Dockerfile's 3 + 2 LABEL steps the lab appends" in exc.tail_title
    assert exc.tail_title in str(exc) and B.html.escape(exc.tail_title) in exc._repr_html_()
    plain = fail(classic(CLASSIC_RUN_FAILS, labels=[]))
    assert plain.tail_title == f"last {len(plain.tail)} log lines"


def test_tail_keeps_last_30_lines():
    chunks = CLASSIC_RUN_FAILS[:8] + [{"stream": f"line {i}\n"} for i in range(100)] + CLASSIC_RUN_FAILS[-1:]
    exc = fail(classic(chunks))
    assert len(exc.tail) == E.TAIL_LINES == 30
    assert exc.tail[0] == "line 71"


def test_run_without_shell_says_so():
    exc = fail(classic(CLASSIC_NO_SHELL))
    assert exc.step == 2 and exc.instruction == "RUN echo hi"
    assert "no /bin/sh" in exc.message


def test_missing_base_names_image_and_bases_fix():
    args = {"GOLANG_IMAGE": "stagelab-offline/golang:1.22-alpine"}
    exc = fail(classic(CLASSIC_MISSING_BASE), args=args)
    assert "stagelab-offline/golang:1.22-alpine" in exc.message
    assert "is not on this engine" in exc.message
    assert "stagelab bases prepare" in exc.fix and "GOLANG_IMAGE" in exc.fix


def test_missing_non_role_image_suggests_pull():
    exc = fail(classic(CLASSIC_MISSING_BASE), args={"GOLANG_IMAGE": "golang:1.22-alpine", "X": "y"})
    assert "golang:1.22-alpine" in exc.message
    exc2 = E.failure_from(classic(CLASSIC_MISSING_BASE), "pull access denied for foo", "Dockerfile",
                          "/ctx", {}, D.parse(""), "t:1")
    assert "docker pull" in exc2.fix


def test_copy_of_missing_file_points_at_context():
    exc = fail(classic(CLASSIC_COPY_MISSING))
    assert exc.step == 2 and "COPY nope.txt /a" in exc.message
    assert "/ctx" in exc.fix and ".dockerignore" in exc.fix


def test_typo_is_found_in_dockerfile_with_suggestion():
    message, fix, step, instruction = E.explain(
        "dockerfile parse error line 3: unknown instruction: RUNN", step=None, steps_total=None,
        instruction=None, dockerfile="Dockerfile", context="/ctx",
        dockerfile_text="FROM scratch\nCOPY a /a\nRUNN echo hi\n")
    assert "line 3" in message and "RUNN" in message
    assert instruction == "RUNN echo hi"
    assert "RUN" in fix and "line 3" in fix
    assert step is None


def test_unknown_target_is_explained():
    message, fix, _, _ = E.explain("failed to reach build target nope in Dockerfile", step=None,
                                   steps_total=None, instruction=None, dockerfile="Dockerfile", context="/c")
    assert "nope" in message and "FROM ... AS" in fix


def test_buildfailed_html_box_is_escaped_and_collapsible():
    exc = B.BuildFailed("step 2 failed: `RUN <x>`", "fix it", step=2, instruction="RUN <x>",
                        tail=["<b>not bold</b>"])
    html = exc._repr_html_()
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert "<details>" in html and "Fix:" in html
    assert "<b>not bold</b>" not in html


def test_buildfailed_is_a_stagelab_error():
    from stagelab.errors import StagelabError

    assert issubclass(B.BuildFailed, StagelabError)
    assert issubclass(B.BuildkitUnavailable, StagelabError)


# --- BuildKit log -------------------------------------------------------------------------

def test_buildkit_success_steps_cache_stages_image():
    log = buildkit(BUILDKIT_TARGET_OK)
    assert log.stages_run == ["builder", "final"]
    assert [s.instruction for s in log.steps] == [
        "COPY go.mod ./", "RUN go build -o /server .", "COPY --from=builder /server /server"]
    assert log.steps_total == 3 and log.steps_cached == 1
    assert log.image_id == "sha256:e3961a97cfdf18123ced6d6d67ff8cab34a8e28fce318851f0b6803b72bf2711"
    assert log.named == ["docker.io/stagelab/itest/go:scratch"]
    assert log.final_error is None


def test_buildkit_failing_exec_names_program():
    exc = fail(buildkit(BUILDKIT_RUN_FAILS))
    assert exc.instruction == 'RUN ["/nope"]'
    assert "[2/2]" in exc.message
    assert "/nope does not exist" in exc.message


def test_buildkit_exit_code():
    exc = fail(buildkit(BUILDKIT_EXIT_CODE))
    assert "[build 2/2]" in exc.message and "code 3" in exc.message
    assert exc.instruction == "RUN echo about to fail && exit 3"
    assert "about to fail" in "\n".join(exc.tail)


def test_buildkit_typo():
    exc = fail(buildkit(BUILDKIT_TYPO), df_text="FROM scratch\nCOPY a /a\nRUNN echo hi\n")
    assert "unknown instruction `RUNN`" in exc.message
    assert exc.instruction == "RUNN echo hi"


def test_buildkit_missing_base():
    exc = fail(buildkit(BUILDKIT_MISSING_BASE), args={"BASE": "nonexistent-img:1"})
    assert "`nonexistent-img:1` is not on this engine" in exc.message


def test_buildkit_unnamed_single_stage_is_stage_0():
    log = buildkit("#4 [1/2] COPY a /a\n#4 DONE 0.0s\n")
    assert log.stages_run == ["stage-0"]


def test_buildkit_command_line():
    cmd = BD.buildkit_command("/usr/bin/docker", ctx=Path("/c"), df_path=Path("/c/Dockerfile"),
                             tag="t:1", target="builder", labels={"org.stagelab.lab": "true"},
                             build_args={"GOLANG_IMAGE": "g:1"}, nocache=True)
    assert cmd[:3] == ["/usr/bin/docker", "build", "--progress=plain"]
    assert ["--label", "org.stagelab.lab=true"] == cmd[3:5]
    assert "--build-arg" in cmd and "GOLANG_IMAGE=g:1" in cmd
    assert cmd[cmd.index("--target") + 1] == "builder"
    assert cmd[-3:] == ["-f", "/c/Dockerfile", "/c"]
    assert "--no-cache" in cmd


def test_buildkit_command_passes_secrets_as_files_never_as_values():
    cmd = BD.buildkit_command("/usr/bin/docker", ctx=Path("/c"), df_path=Path("/c/Dockerfile"),
                             tag="t:1", target=None, labels={}, build_args={}, nocache=False,
                             secret_files={"git_token": Path("/tmp/s/git_token")})
    assert cmd[cmd.index("--secret") + 1] == "id=git_token,src=/tmp/s/git_token"


def test_run_buildkit_writes_each_secret_to_a_private_file_for_the_build_only(monkeypatch):
    seen = {}

    def fake_cli(job, secret_files):
        (secret_id, path), = secret_files.items()
        seen.update(id=secret_id, path=path, text=path.read_text(), mode=path.stat().st_mode & 0o777)
        return "parsed", "sha256:x", None

    monkeypatch.setattr(BD, "_run_buildkit_cli", fake_cli)
    job = BD.BuildJob(ctx=Path("/c"), df_path=Path("/c/Dockerfile"), df_shown="Dockerfile",
                      model=D.parse("FROM scratch\n"), tag="t:1", target=None, labels={}, build_args={},
                      arg_values={}, secrets={"git_token": "s3cret"})
    assert BD.run_buildkit(job) == ("parsed", "sha256:x", None)
    assert (seen["id"], seen["text"], seen["mode"]) == ("git_token", "s3cret", 0o600)
    assert not seen["path"].exists(), "the secret file outlived the build"


def test_secrets_with_the_classic_builder_is_one_clear_error(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(B.StagelabError) as err:
        B.build_context(tmp_path, tag="t:1", secrets={"a": "b"}, builder="classic")
    assert "BuildKit" in err.value.message and 'builder="buildkit"' in err.value.fix


# --- the build functions with a fake engine -----------------------------------------------

class FakeImages:
    def __init__(self, present=()):
        self.present = set(present)

    def get(self, ref):
        if ref in self.present:
            return types.SimpleNamespace(id="sha256:" + "a" * 64)
        raise docker.errors.ImageNotFound(ref)


class FakeAPI:
    """A classic builder: ``{M}`` in a chunk becomes its step count, the Dockerfile's
    ``instructions`` plus one LABEL step per label passed (as the engine counts them);
    a ``{"labels": True}`` chunk becomes those LABEL steps."""

    def __init__(self, chunks, exc=None, instructions=4):
        self.chunks, self.exc, self.kwargs, self.instructions = chunks, exc, None, instructions

    def build(self, **kwargs):
        self.kwargs = kwargs
        labels = sorted((kwargs.get("labels") or {}).items())
        total = self.instructions + len(labels)

        def gen():
            for chunk in self.chunks:
                if chunk.get("labels"):
                    for n, (key, value) in enumerate(labels, self.instructions + 1):
                        yield {"stream": f"Step {n}/{total} : LABEL {key}={value}\n"}
                elif "stream" in chunk:
                    yield {"stream": chunk["stream"].replace("{M}", str(total))}
                else:
                    yield chunk
            if self.exc is not None:
                raise self.exc
        return gen()


class FakeClient:
    def __init__(self, chunks, exc=None, present=()):
        self.api = FakeAPI(chunks, exc)
        self.images = FakeImages(present)


@pytest.fixture
def context(tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG GOLANG_IMAGE=golang:1.22\nARG OTHER=1\nFROM ${GOLANG_IMAGE}\nCOPY a /a\n")
    (tmp_path / "a").write_text("a\n")
    (tmp_path / ".dockerignore").write_text("# comment\nsecret.txt\n")
    (tmp_path / "secret.txt").write_text("x" * 50_000)
    return tmp_path


@pytest.fixture
def fake_profiles(monkeypatch):
    roles = [types.SimpleNamespace(arg=a) for a in ("GOLANG_IMAGE", "NODE_IMAGE")]

    class Prof:
        name = "offline"

        def build_args(self):
            return {"GOLANG_IMAGE": "stagelab-offline/golang:1.22", "NODE_IMAGE": "stagelab-offline/node:20"}

    mod = types.ModuleType("stagelab.profiles")
    mod.ROLES = roles
    mod.active_profile = lambda name=None: Prof()
    monkeypatch.setitem(sys.modules, "stagelab.profiles", mod)
    bases = types.ModuleType("stagelab.bases")
    checked = []
    bases.check_bases = lambda build_args, profile: checked.append(dict(build_args))
    monkeypatch.setitem(sys.modules, "stagelab.bases", bases)
    return checked


def use_client(monkeypatch, client):
    import stagelab.engine

    monkeypatch.setattr(stagelab.engine, "client", lambda: client)


OK_CHUNKS = [
    {"stream": "Step 1/{M} : ARG GOLANG_IMAGE=golang:1.22"}, {"stream": "\n"},
    {"stream": "Step 2/{M} : FROM ${GOLANG_IMAGE}"}, {"stream": "\n"}, {"stream": " ---> 1234\n"},
    {"stream": "Step 3/{M} : COPY a /a"}, {"stream": "\n"}, {"stream": " ---> Using cache\n"},
    {"stream": " ---> abcd\n"},
    {"aux": {"ID": "sha256:" + "b" * 64}},
    {"stream": "Successfully built " + "b" * 12 + "\n"},
]


def test_build_context_passes_only_declared_base_args(monkeypatch, context, fake_profiles):
    client = FakeClient(OK_CHUNKS)
    use_client(monkeypatch, client)
    monkeypatch.setenv("STAGELAB_NAMESPACE", "unit")
    result = B.build_context(context, "Dockerfile", tag="t:1", progress="none", build_args={"EXTRA": "1"})
    kwargs = client.api.kwargs
    assert kwargs["buildargs"] == {"GOLANG_IMAGE": "stagelab-offline/golang:1.22", "EXTRA": "1"}
    assert fake_profiles == [{"GOLANG_IMAGE": "stagelab-offline/golang:1.22"}]
    assert kwargs["labels"]["org.stagelab.lab"] == "true"
    assert kwargs["labels"]["org.stagelab.namespace"] == "unit"
    assert kwargs["labels"]["org.stagelab.profile"] == "offline"
    assert kwargs["rm"] and kwargs["forcerm"] and kwargs["decode"]
    assert result.image_id == "sha256:" + "b" * 64
    assert result.profile == "offline"
    assert result.base_images == {"GOLANG_IMAGE": "stagelab-offline/golang:1.22"}
    assert result.steps_total == 1 and result.steps_cached == 1
    assert result.context_bytes and result.context_bytes < 50_000  # .dockerignore honoured
    assert result.dockerfile == "Dockerfile"
    assert "t:1" in result.summary() and "<table>" in result._repr_html_()


def test_build_context_without_base_args_needs_no_profile(monkeypatch, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (tmp_path / "a").write_text("a")
    monkeypatch.setitem(sys.modules, "stagelab.profiles", None)  # importing it would fail
    client = FakeClient([{"stream": "Step 1/2 : FROM scratch\n"}, {"stream": "Step 2/2 : COPY a /a\n"},
                         {"stream": "Successfully built " + "a" * 12 + "\n"}], present=["t:1"])
    use_client(monkeypatch, client)
    result = B.build_context(tmp_path, "Dockerfile", tag="t:1", progress="none")
    assert result.profile is None and result.base_images == {}
    assert result.image_id == "sha256:" + "a" * 64
    assert client.api.kwargs["buildargs"] is None


@pytest.mark.parametrize("exc", [
    requests.exceptions.ConnectionError("Connection aborted."),
    docker.errors.APIError("500 Server Error: Internal Server Error"),
])
def test_engine_stopping_mid_build_gives_one_clear_error(monkeypatch, context, fake_profiles, exc):
    client = FakeClient(OK_CHUNKS[:7], exc=exc)
    use_client(monkeypatch, client)
    with pytest.raises(B.BuildFailed) as info:
        B.build_context(context, "Dockerfile", tag="t:1", progress="none")
    err = info.value
    assert "engine stopped answering during step 3/4" in err.message
    assert err.instruction == "COPY a /a"
    assert "stagelab doctor" in err.fix
    n = len(client.api.kwargs["labels"])
    assert f"the log counts {4 + n} steps: the Dockerfile's 4 + {n} LABEL steps" in err.tail_title, err.tail_title


def test_stream_that_just_ends_is_not_a_success(monkeypatch, context, fake_profiles):
    use_client(monkeypatch, FakeClient(OK_CHUNKS[:7], present=["t:1"]))  # an older t:1 exists
    with pytest.raises(B.BuildFailed) as info:
        B.build_context(context, "Dockerfile", tag="t:1", progress="none")
    assert "stopped answering" in info.value.message


def test_refused_dockerfile_is_a_dockerfile_error(monkeypatch, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\nRUNN x\n")
    monkeypatch.setitem(sys.modules, "stagelab.profiles", None)
    err = docker.errors.APIError("400", explanation="dockerfile parse error line 2: unknown instruction: RUNN")
    use_client(monkeypatch, FakeClient([], exc=err))
    with pytest.raises(B.BuildFailed) as info:
        B.build_context(tmp_path, "Dockerfile", tag="t:1", progress="none")
    assert "line 2" in info.value.message and info.value.instruction == "RUNN x"


def test_missing_base_checked_before_building(monkeypatch, context):
    roles = [types.SimpleNamespace(arg="GOLANG_IMAGE")]
    prof = types.SimpleNamespace(name="offline", build_args=lambda: {"GOLANG_IMAGE": "missing:1"})
    mod = types.ModuleType("stagelab.profiles")
    mod.ROLES, mod.active_profile = roles, (lambda name=None: prof)
    monkeypatch.setitem(sys.modules, "stagelab.profiles", mod)
    bases = types.ModuleType("stagelab.bases")
    from stagelab.errors import StagelabError

    def check_bases(build_args, p):
        raise StagelabError(f"{next(iter(build_args))} missing in {p.name}", "stagelab bases prepare")

    bases.check_bases = check_bases
    monkeypatch.setitem(sys.modules, "stagelab.bases", bases)
    client = FakeClient(OK_CHUNKS)
    use_client(monkeypatch, client)
    with pytest.raises(StagelabError, match="GOLANG_IMAGE missing in offline"):
        B.build_context(context, "Dockerfile", tag="t:1", progress="none")
    assert client.api.kwargs is None  # never started the build


def test_missing_context_and_dockerfile(tmp_path):
    with pytest.raises(B.BuildFailed, match="not a folder"):
        B.build_context(tmp_path / "nope", "Dockerfile", tag="t:1", progress="none")
    with pytest.raises(B.BuildFailed, match="No Dockerfile"):
        B.build_context(tmp_path, "Dockerfile", tag="t:1", progress="none")


def test_buildkit_unavailable_names_what_to_install(monkeypatch, tmp_path):
    import stagelab.engine

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setitem(sys.modules, "stagelab.profiles", None)
    use_client(monkeypatch, FakeClient([]))
    monkeypatch.setattr(stagelab.engine, "buildkit_cli_found", lambda: None)
    with pytest.raises(B.BuildkitUnavailable) as info:
        B.build_context(tmp_path, "Dockerfile", tag="t:1", builder="buildkit", progress="none")
    assert "buildx" in info.value.fix and "docker.io" in info.value.fix


def test_unknown_builder():
    from stagelab.errors import StagelabError

    with pytest.raises(StagelabError, match="Unknown builder"):
        B.build_context(".", "Dockerfile", tag="t", builder="kaniko")


# --- progress -----------------------------------------------------------------------------

class TTY(io.StringIO):
    def isatty(self):
        return True


def test_terminal_progress_plain_lines_when_not_a_tty():
    out = io.StringIO()
    prog = P.TerminalProgress("build x", None, stream=out)
    prog.step(1, 3, "FROM   scratch")
    prog.log("ignored in the terminal")
    prog.step(2, 3, "COPY a /a")
    prog.close("done")
    lines = out.getvalue().splitlines()
    assert lines == ["[stagelab] build x: step 1/3  FROM scratch", "[stagelab] build x: step 2/3  COPY a /a",
                     "[stagelab] build x: ✓ done"]


def test_terminal_progress_rewrites_one_line_on_a_tty():
    out = TTY()
    prog = P.TerminalProgress("b", None, stream=out)
    prog.step(1, 2, "A")
    prog.step(2, 2, "B")
    prog.close("failed", ok=False)
    text = out.getvalue()
    assert text.count("\n") == 1 and text.count("\r") == 3
    assert text.endswith("✗ failed\n")


def test_progress_modes(monkeypatch):
    monkeypatch.delenv("STAGELAB_PROGRESS", raising=False)
    assert P.resolve_mode("auto") == "terminal"  # pytest is not a kernel
    assert P.resolve_mode(None) == "none"
    monkeypatch.setenv("STAGELAB_PROGRESS", "none")
    assert P.resolve_mode("auto") == "none"
    assert type(P.open_progress("x", mode="auto")) is P.Progress
    with pytest.raises(ValueError):
        P.resolve_mode("loud")


def test_notebook_progress_widgets(monkeypatch):
    pytest.importorskip("ipywidgets")
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: None)
    prog = P.NotebookProgress("build x", None, log_title="Build log")
    assert prog.accordion.selected_index is None  # collapsed
    prog.step(2, 5, "RUN make")
    assert prog.bar.value == 2 and prog.bar.max == 5
    for i in range(P.LOG_LINES_SHOWN + 10):
        prog.log(f"line {i}")
    prog.close("built")
    assert prog.bar.value == 5 and prog.bar.bar_style == "success"
    assert prog.text.value.startswith("... (10 earlier lines)")
    assert prog.text.value.endswith(f"line {P.LOG_LINES_SHOWN + 9}")
    assert "410 lines" in prog.accordion.titles[0]


def test_cli_build_passes_options_and_prints_json(monkeypatch, capsys):
    import json

    from stagelab import cli

    seen = {}

    def fake_build(app, variant, **kwargs):
        seen.update(kwargs, app=app, variant=variant)
        return B.BuildResult(app=app, variant=variant, tag="stagelab/n/go-server:scratch",
                             image_id="sha256:" + "c" * 64, seconds=1.5, steps_total=2, steps_cached=1,
                             log=["x"], profile="offline", base_images={"GOLANG_IMAGE": "g"},
                             builder=kwargs["builder"], stages_run=["builder", "final"],
                             steps=[L.BuildStep(3, "builder", "RUN go build", True)])

    monkeypatch.setattr(B, "build", fake_build)
    assert cli.main(["build", "go-server", "scratch", "--builder", "buildkit", "--build-arg", "A=1",
                     "--no-cache", "--progress", "none", "--json"]) == 0
    assert seen["extra_args"] == {"A": "1"} and seen["nocache"] and seen["builder"] == "buildkit"
    data = json.loads(capsys.readouterr().out)
    assert data["stages_run"] == ["builder", "final"] and "log" not in data
    assert data["steps"][0]["cached"] is True
    assert cli.main(["build", "go-server", "scratch"]) == 0
    out = capsys.readouterr().out
    assert "stagelab/n/go-server:scratch" in out and "GOLANG_IMAGE = g" in out


def test_cli_build_error_is_two_lines_not_a_traceback(monkeypatch, capsys):
    from stagelab import cli

    def failing(app, variant, **kwargs):
        raise B.BuildFailed("step 3/5 failed: `RUN x` exited with code 1", "fix RUN x",
                            step=3, instruction="RUN x", tail=["out"])

    monkeypatch.setattr(B, "build", failing)
    assert cli.main(["build", "a", "b"]) == 1
    err = capsys.readouterr().err
    assert "step 3/5 failed" in err and "fix: fix RUN x" in err and "Traceback" not in err


class RecordingProgress(P.Progress):
    def __init__(self, title, total=None, mode=None, log_title="Log"):
        super().__init__(title, total)
        self.events: list[tuple] = []

    def step(self, n, total=None, text=""):
        self.events.append(("step", n, total, text))

    def log(self, line):
        self.events.append(("log", line))

    def close(self, summary="", ok=True):
        self.events.append(("close", ok, summary))


def _recording(monkeypatch) -> list[RecordingProgress]:
    made: list[RecordingProgress] = []

    def factory(*args, **kwargs):
        made.append(RecordingProgress(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(P, "open_progress", factory)
    return made


def test_progress_sees_dockerfile_steps_and_one_label_line(monkeypatch, context, fake_profiles):
    made = _recording(monkeypatch)
    chunks = OK_CHUNKS[:-2] + [{"labels": True}] + OK_CHUNKS[-2:]
    use_client(monkeypatch, FakeClient(chunks))
    result = B.build_context(context, "Dockerfile", tag="t:1")
    assert result.steps_total == 1 and result.steps_cached == 1
    steps = [e for e in made[0].events if e[0] == "step"]
    assert steps[:3] == [("step", 1, 4, "ARG GOLANG_IMAGE=golang:1.22"), ("step", 2, 4, "FROM ${GOLANG_IMAGE}"),
                         ("step", 3, 4, "COPY a /a")]
    assert steps[3:] == [("step", 4, 4, "adding the lab's labels")]
    assert made[0].events[-1][:2] == ("close", True)
    assert ("log", " ---> Using cache") in made[0].events


def test_interrupted_build_closes_its_progress(monkeypatch, context, fake_profiles):
    made = _recording(monkeypatch)
    use_client(monkeypatch, FakeClient(OK_CHUNKS[:7], exc=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        B.build_context(context, "Dockerfile", tag="t:1")
    assert made[0].events[-1] == ("close", False, "interrupted at step 3")


def test_output_of_a_step_is_what_its_command_printed_under_either_builder():
    classic = L.ClassicLog.from_lines([
        "Step 1/4 : FROM golang AS builder", " ---> 1a2b3c4d5e6f",
        "Step 2/4 : RUN go test ./...", " ---> Running in 93a3338a0f57", "ok  \tstagelab.example/go-server\t0.01s",
        " ---> 5be386f84252", "Step 3/4 : RUN echo later", " ---> Running in aeda470c7f35", "later"])
    assert "ok  \tstagelab.example/go-server\t0.01s" in classic.output_of(2)
    assert "later" not in classic.output_of(2) and "later" in classic.output_of(3)
    bk = L.parse_log(BUILDKIT_TARGET_OK.splitlines())
    step = next(s for s in bk.steps if "go build" in s.instruction)
    assert bk.output_of(step.number) == ["compiling"]
    cached = next(s for s in bk.steps if s.instruction.startswith("COPY go.mod"))
    assert cached.cached and bk.output_of(cached.number) == []


def test_buildkit_steps_of_a_mixed_case_stage_get_their_dockerfile_numbers():
    """BuildKit prints `AS Builder` as [builder n/m]: the step still maps to its Dockerfile line."""
    df = D.parse("FROM golang:1.27 AS Builder\nRUN go version\nFROM scratch\nCOPY --from=Builder /x /x\n")
    log = L.BuildkitLog(df)
    log.feed("#5 [builder 2/2] RUN go version\n")
    assert log.take_new_steps() == [(2, "RUN go version")]


def test_classic_target_counts_only_the_stages_up_to_it():
    """With --target the classic builder numbers the stages up to the target only (then one LABEL
    per label): the Dockerfile's own total is the log's M minus the labels, not the file's count."""
    model = D.parse("FROM scratch AS base\nCOPY a /a\nFROM base AS test\nRUN x\nCOPY b /b\n")
    log = L.ClassicLog(added_labels=["k1", "k2"], dockerfile=model)
    for line in ["Step 1/4 : FROM scratch AS base", " ---> 1", "Step 2/4 : COPY a /a", " ---> 2",
                 "Step 3/4 : LABEL k1=v", " ---> 3"]:
        log.feed({"stream": line + "\n"})
    assert log.dockerfile_total == 2          # base's two instructions, not the file's five
    assert log.in_added_labels                # step 3 is the lab's LABEL, after the target's last step
    assert E.learner_step(log)[3] == "the lab's labelling of the image, after step 2/2"
