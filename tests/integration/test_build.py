"""stagelab.build against the real engine: tiny FROM scratch builds, real failures, BuildKit targets.

Every test builds in its own namespace (the shared ``tracker`` fixture, tests/integration/conftest.py)
with unique file contents; the tracker removes what it created, even after a failure: the tagged
images by namespace label and the classic builder's untagged stage images by the exact ids each
build log printed (registered with ``tracker.build_log``).
"""
from __future__ import annotations

import hashlib
import secrets

import docker.errors
import pytest

from stagelab import build as B
from stagelab import builders, engine, naming, variants
from stagelab.dockerfile import parse
from stagelab.errors import StagelabError

pytestmark = pytest.mark.engine

MULTISTAGE = """\
ARG UNUSED_HERE=1
FROM scratch AS builder
COPY token.txt /token.txt
COPY a.txt /a.txt

FROM scratch AS other
COPY token.txt /other-token.txt

FROM scratch AS final
COPY --from=builder /a.txt /a.txt
LABEL org.example.final=yes
"""


@pytest.fixture
def lab(tracker, monkeypatch, tmp_path):
    """The tracker's namespace and client, a unique build context; the tracker removes what was built."""
    monkeypatch.setenv("STAGELAB_PROFILE", "offline")
    token = secrets.token_hex(16)
    (tmp_path / "token.txt").write_text(token + "\n")
    (tmp_path / "a.txt").write_text("a\n")
    return {"ns": tracker.namespace, "ctx": tmp_path, "client": tracker.client, "token": token,
            "tracker": tracker}


def run(lab, dockerfile_text: str, name: str = "t", **kwargs) -> B.BuildResult:
    (lab["ctx"] / "Dockerfile").write_text(dockerfile_text)
    tag = f"stagelab/{lab['ns']}/itest:{name}"
    try:
        result = B.build_context(lab["ctx"], "Dockerfile", tag=tag, progress="none", **kwargs)
    except B.BuildFailed as exc:
        lab["tracker"].build_log(exc.tail)  # the stage images made before the failing step
        raise
    lab["tracker"].build_log(result.log)
    return result


def stand_in_with_shell(client) -> str:
    return stand_in(client, "DEBIAN_SLIM_IMAGE")


def stand_in(client, role: str) -> str:
    from stagelab.profiles import active_profile

    image = active_profile("offline").build_args()[role]
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{image} is not built here (`stagelab bases prepare`)")
    return image


def test_classic_multistage_result_labels_and_cache(lab):
    first = run(lab, MULTISTAGE, "ms", builder="classic")
    image = lab["client"].images.get(first.tag)
    assert image.id == first.image_id
    assert image.labels[naming.LAB_LABEL] == "true"
    assert image.labels[naming.NAMESPACE_LABEL] == lab["ns"]
    assert image.labels["org.example.final"] == "yes"
    assert first.builder == "classic"
    assert first.stages_run == ["builder", "other", "final"]  # classic runs every stage before the last
    assert [s.instruction for s in first.steps][:2] == ["COPY token.txt /token.txt", "COPY a.txt /a.txt"]
    assert first.steps_cached == 0
    assert first.context_bytes and first.context_bytes > 0
    assert first.profile is None and first.base_images == {}  # FROM scratch needs no profile
    assert "UNUSED_HERE" not in first.build_args

    again = run(lab, MULTISTAGE, "ms", builder="classic")
    assert again.image_id == first.image_id
    assert again.steps_total == first.steps_total
    assert again.steps_cached == again.steps_total


def test_classic_target_runs_the_stages_up_to_it(lab):
    result = run(lab, MULTISTAGE, "other", target="other", builder="classic")
    assert result.target == "other"
    assert result.stages_run == ["builder", "other"]
    files = {s.instruction for s in result.steps}
    assert "COPY --from=builder /a.txt /a.txt" not in files


def test_buildkit_target_runs_only_what_it_needs(lab):
    if engine.buildkit_cli() is None:
        pytest.skip("no BuildKit-capable docker CLI here")
    result = run(lab, MULTISTAGE, "bk-other", builder="buildkit", target="other")
    assert result.builder == "buildkit"
    assert result.stages_run == ["other"]  # BuildKit skips `builder`: `other` does not need it
    image = lab["client"].images.get(result.tag)
    assert image.id == result.image_id
    assert image.labels[naming.NAMESPACE_LABEL] == lab["ns"]

    final = run(lab, MULTISTAGE, "bk-final", builder="buildkit")
    assert final.stages_run == ["builder", "final"]  # `other` is not needed by the final stage
    assert final.steps_total >= 2


def test_buildkit_secret_reaches_the_run_and_no_layer(lab):
    if engine.buildkit_cli() is None:
        pytest.skip("no BuildKit-capable docker CLI here")
    base = stand_in_with_shell(lab["client"])
    value = f"secret-{secrets.token_hex(8)}"
    digest = hashlib.sha256(value.encode()).hexdigest()
    # The RUN fails unless the mounted file holds exactly the value (compared by its hash, so the
    # Dockerfile and the history never hold it); it writes only the value's length.
    text = (f"FROM {base}\nCOPY token.txt /t\n"
            "RUN --mount=type=secret,id=tok,required=true "
            f"test \"$(sha256sum < /run/secrets/tok | cut -d' ' -f1)\" = {digest} "
            "&& wc -c < /run/secrets/tok > /len\n")
    result = run(lab, text, "secret", builder="buildkit", secrets={"tok": value})
    from stagelab.inspect import inspect

    report = inspect(result.tag, secret=value)
    assert report.file("/len") is not None and not report.surface.secret_hits, report.surface.secret_hits
    # Without --secret a required mount stops the build (no cache: BuildKit's cache key of a RUN
    # does not include its secrets, so the first build's step would be reused).
    with pytest.raises(B.BuildFailed) as info:
        run(lab, text, "no-secret", builder="buildkit", nocache=True)
    assert "tok" in str(info.value), str(info.value)


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_typo_in_dockerfile(lab, builder):
    if builder == "buildkit" and engine.buildkit_cli() is None:
        pytest.skip("no BuildKit-capable docker CLI here")
    with pytest.raises(B.BuildFailed) as info:
        run(lab, "FROM scratch\nCOPY token.txt /t\nCOPPY a.txt /a\n", "typo", builder=builder)
    err = info.value
    assert "line 3" in err.message and "COPPY" in err.message
    assert err.instruction == "COPPY a.txt /a"
    assert "COPY" in err.fix


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_failing_run_shows_step_instruction_and_output(lab, builder):
    if builder == "buildkit" and engine.buildkit_cli() is None:
        pytest.skip("no BuildKit-capable docker CLI here")
    base = stand_in_with_shell(lab["client"])
    marker = f"marker-{secrets.token_hex(4)}"
    text = f"FROM {base}\nCOPY token.txt /t\nRUN echo {marker} && exit 3\n"
    with pytest.raises(B.BuildFailed) as info:
        run(lab, text, "run", builder=builder)
    err = info.value
    assert err.instruction == f"RUN echo {marker} && exit 3"
    assert "code 3" in err.message
    assert any(marker in line for line in err.tail)
    assert 0 < len(err.tail) <= 30
    if builder == "classic":
        assert err.step == 3 and "step 3/3" in err.message
    assert "<details>" in err._repr_html_()


def test_run_on_scratch_says_there_is_no_shell(lab):
    with pytest.raises(B.BuildFailed) as info:
        run(lab, "FROM scratch\nCOPY token.txt /t\nRUN echo hi\n", "noshell")
    assert info.value.step == 3
    assert "no /bin/sh" in info.value.message


def test_missing_base_image_is_named_before_building(lab):
    (lab["ctx"] / "Dockerfile").write_text(
        "ARG DEBIAN_SLIM_IMAGE=debian:bookworm-slim\nFROM ${DEBIAN_SLIM_IMAGE}\nCOPY a.txt /a\n")
    missing = f"stagelab-missing/{secrets.token_hex(4)}:1"
    with pytest.raises(StagelabError) as info:
        B.build_context(lab["ctx"], "Dockerfile", tag=f"stagelab/{lab['ns']}/itest:mb", progress="none",
                        build_args={"DEBIAN_SLIM_IMAGE": missing})
    # the message names both the image that is missing and the role it stands for
    assert missing in str(info.value), str(info.value)
    assert "DEBIAN_SLIM_IMAGE" in str(info.value), str(info.value)


def test_literal_missing_from_fails_at_the_from_step(lab):
    missing = f"stagelab-missing/{secrets.token_hex(4)}:1"
    with pytest.raises(B.BuildFailed) as info:
        run(lab, f"FROM {missing}\nCOPY a.txt /a\n", "lit")
    assert f"`{missing}` is not on this engine" in info.value.message
    assert info.value.step == 1


def test_profile_base_args_are_passed_and_recorded(lab):
    base = stand_in_with_shell(lab["client"])
    text = ("ARG DEBIAN_SLIM_IMAGE=debian:bookworm-slim\nARG NODE_IMAGE=node:20\n"
            "FROM ${DEBIAN_SLIM_IMAGE}\nCOPY token.txt /t\nRUN test -f /t\n")
    node = stand_in(lab["client"], "NODE_IMAGE")
    result = run(lab, text, "prof")
    assert result.profile == "offline"
    assert result.base_images == {"DEBIAN_SLIM_IMAGE": base, "NODE_IMAGE": node}
    assert set(result.build_args) == {"DEBIAN_SLIM_IMAGE", "NODE_IMAGE"}  # only the declared ARGs
    labels = lab["client"].images.get(result.tag).labels
    assert labels[naming.PROFILE_LABEL] == "offline"
    assert not any("were not consumed" in line for line in result.log)


def test_build_app_variant(lab):
    var = variants.get_variant("go-server", "scratch")
    from stagelab.profiles import active_profile

    missing = []
    for arg, image in active_profile("offline").build_args().items():
        if arg in B.declared_args(var.dockerfile.read_text()):
            try:
                lab["client"].images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
    if missing:
        pytest.skip(f"base images not built here: {missing}")
    result = B.build("go-server", "scratch", progress="none")
    lab["tracker"].build_log(result.log)
    assert result.tag == naming.image_tag("go-server", "scratch")
    assert (result.app, result.variant, result.profile) == ("go-server", "scratch", "offline")
    labels = lab["client"].images.get(result.tag).labels
    assert labels[naming.APP_LABEL] == "go-server" and labels[naming.VARIANT_LABEL] == "scratch"
    assert result.stages_run[-1] != result.stages_run[0]  # a multi-stage build


# --- the builder follows the engine; BuildKit-only Dockerfile features (issue 12) --------------


def need_buildkit_cli() -> None:
    if builders.buildkit_cli() is None:
        pytest.skip("no BuildKit-capable docker CLI here")


def test_auto_uses_the_engines_default_builder_and_labels_it(lab, monkeypatch):
    monkeypatch.delenv("STAGELAB_BUILDER", raising=False)
    expected = builders.choose_builder(None, lab["client"])
    ping = lab["client"].api._get(lab["client"].api._url("/_ping")).headers.get("Builder-Version")
    assert expected == ("buildkit" if ping == "2" and builders.buildkit_cli() else "classic")
    result = run(lab, "FROM scratch\nCOPY token.txt /t\n", "auto")
    assert result.builder == expected
    assert lab["client"].images.get(result.tag).labels[builders.BUILDER_LABEL] == expected


CACHE_MOUNT = "FROM {base}\nCOPY token.txt /t\nRUN --mount=type=cache,target=/cache cp /t /cache/t && cp /t /copied\n"


def test_run_mount_cache_on_classic_is_one_clear_message(lab):
    base = stand_in_with_shell(lab["client"])
    with pytest.raises(B.NeedsBuildkit) as info:
        run(lab, CACHE_MOUNT.format(base=base), "mount-classic", builder="classic")
    assert "`RUN --mount=type=cache`" in info.value.message and "line 3" in info.value.message
    assert "STAGELAB_BUILDER=buildkit" in info.value.fix


def test_run_mount_cache_builds_under_buildkit(lab):
    need_buildkit_cli()
    base = stand_in_with_shell(lab["client"])
    result = run(lab, CACHE_MOUNT.format(base=base), "mount-bk", builder="buildkit")
    assert result.builder == "buildkit"
    assert lab["client"].images.get(result.tag).id == result.image_id
    assert [s.instruction.split(" ", 1)[0] for s in result.steps] == ["COPY", "RUN"]


def test_syntax_directive_offline_says_the_frontend_cannot_be_fetched(lab):
    need_buildkit_cli()
    text = "# syntax=docker/dockerfile:1.3\nFROM scratch\nCOPY token.txt /t\n"
    try:
        lab["client"].images.get("docker/dockerfile:1.3")
        pytest.skip("the frontend image is on this engine: nothing to fetch")
    except docker.errors.ImageNotFound:
        pass
    with pytest.raises(B.FrontendUnavailable) as info:
        run(lab, text, "syntax", builder="buildkit")
    assert "line 1" in info.value.message and "docker/dockerfile:1.3" in info.value.message
    assert "`# syntax=`" in info.value.fix
    # the classic builder reads the directive as a comment, as `docker build` does there
    assert run(lab, text, "syntax-classic", builder="classic").builder == "classic"


def test_buildkit_skips_a_stage_the_target_does_not_need_measured_from_its_log(lab):
    need_buildkit_cli()
    model = parse(MULTISTAGE)
    needed = [st.name for st in model.needed()]
    result = run(lab, MULTISTAGE, "bk-skip", builder="buildkit")
    assert result.stages_run == needed, result.log  # read from BuildKit's own log lines
    assert "other" not in result.stages_run
    assert not any("[other " in line for line in result.log)
    classic = run(lab, MULTISTAGE, "classic-skip", builder="classic")
    assert "other" in classic.stages_run  # the classic builder runs every stage before the target


FAILS_IN_STAGE = """\
ARG BASE={base}
FROM ${{BASE}} AS build
COPY token.txt /t

RUN echo {marker} && exit 4

FROM scratch
COPY --from=build /t /t
"""


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_failure_names_the_dockerfiles_step_and_line(lab, builder):
    if builder == "buildkit":
        need_buildkit_cli()
    base = stand_in_with_shell(lab["client"])
    marker = f"marker-{secrets.token_hex(4)}"
    text = FAILS_IN_STAGE.format(base=base, marker=marker)
    with pytest.raises(B.BuildFailed) as info:
        run(lab, text, f"fail-{builder}", builder=builder)
    err = info.value
    number = [i.line for i in parse(text).instructions].index(5) + 1  # the RUN, on line 5
    assert err.step == number, (err.step, err.message)
    assert err.instruction == f"RUN echo {marker} && exit 4"
    assert f"step {number}/6" in err.message, err.message
    assert "LABEL" not in err.message


def test_heredoc_under_buildkit_builds_or_names_the_old_frontend(lab):
    """Docker 23+ builds heredocs with its built-in frontend; 20.10's predates them: one clear message."""
    need_buildkit_cli()
    base = stand_in_with_shell(lab["client"])
    text = f"FROM {base}\nCOPY token.txt /t\nRUN <<EOF\ncp /t /x\nEOF\n"
    major = int(str(lab["client"].version().get("Version", "0")).split(".")[0])
    if major >= 23:
        result = run(lab, text, "heredoc", builder="buildkit")
        assert [s.instruction.split(" ", 1)[0] for s in result.steps] == ["COPY", "RUN"]
    else:
        with pytest.raises(B.FrontendTooOld) as info:
            run(lab, text, "heredoc", builder="buildkit")
        assert "line 3 uses `heredoc`" in info.value.message, info.value.message
        assert info.value.step == 3
