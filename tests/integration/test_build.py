"""stagelab.build against the real engine: tiny FROM scratch builds, real failures, BuildKit targets.

Every test builds in its own namespace (STAGELAB_NAMESPACE=itest-<hex>) with unique file
contents, and removes what it created: the tagged images by label (stagelab.cleanup) and the
classic builder's untagged intermediate images by the exact ids its log printed.
"""
from __future__ import annotations

import hashlib
import re
import secrets

import docker.errors
import pytest

from stagelab import build as B
from stagelab import cleanup, engine, naming
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


def created_ids(log: list[str]) -> list[str]:
    """Image ids a classic build created (not the ones it took from the cache)."""
    ids, cached = [], False
    for line in log:
        text = line.strip()
        if text.startswith("Step "):
            # The id printed after a FROM step is the base image: never ours to remove.
            cached = bool(re.match(r"Step \d+/\d+ : FROM ", text, re.IGNORECASE))
        elif text == "---> Using cache":
            cached = True
        else:
            m = re.fullmatch(r"---> ([0-9a-f]{12})", text)
            if m and not cached:
                ids.append(m.group(1))
    return ids


@pytest.fixture
def lab(monkeypatch, tmp_path):
    """A namespace of its own, a unique build context, and cleanup of everything built."""
    ns = f"itest-{secrets.token_hex(4)}"
    monkeypatch.setenv("STAGELAB_NAMESPACE", ns)
    monkeypatch.setenv("STAGELAB_PROFILE", "offline")
    client = engine.client()
    token = secrets.token_hex(16)
    (tmp_path / "token.txt").write_text(token + "\n")
    (tmp_path / "a.txt").write_text("a\n")
    logs: list[list[str]] = []
    yield {"ns": ns, "ctx": tmp_path, "client": client, "token": token, "logs": logs}
    cleanup.clean()
    for log in logs:
        for image_id in reversed(created_ids(log)):
            try:
                client.images.remove(image_id, noprune=False)
            except docker.errors.APIError:
                pass  # already gone with its child, or not ours to force


def run(lab, dockerfile_text: str, name: str = "t", **kwargs) -> B.BuildResult:
    (lab["ctx"] / "Dockerfile").write_text(dockerfile_text)
    tag = f"stagelab/{lab['ns']}/itest:{name}"
    try:
        result = B.build_context(lab["ctx"], "Dockerfile", tag=tag, progress="none", **kwargs)
    except B.BuildFailed as exc:
        lab["logs"].append(list(exc.tail))
        raise
    lab["logs"].append(result.log)
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
    first = run(lab, MULTISTAGE, "ms")
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

    again = run(lab, MULTISTAGE, "ms")
    assert again.image_id == first.image_id
    assert again.steps_total == first.steps_total
    assert again.steps_cached == again.steps_total


def test_classic_target_runs_the_stages_up_to_it(lab):
    result = run(lab, MULTISTAGE, "other", target="other")
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
    assert missing in str(info.value) or "DEBIAN_SLIM_IMAGE" in str(info.value)


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
    variants = pytest.importorskip("stagelab.variants")
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
    lab["logs"].append(result.log)
    assert result.tag == naming.image_tag("go-server", "scratch")
    assert (result.app, result.variant, result.profile) == ("go-server", "scratch", "offline")
    labels = lab["client"].images.get(result.tag).labels
    assert labels[naming.APP_LABEL] == "go-server" and labels[naming.VARIANT_LABEL] == "scratch"
    assert result.stages_run[-1] != result.stages_run[0]  # a multi-stage build
