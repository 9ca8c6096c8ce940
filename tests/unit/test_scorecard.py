"""Notebook 08's checks and scorecard, without an engine."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest

from stagelab import scorecard
from stagelab.compare import compare
from stagelab.errors import StagelabError

SINGLE = "ARG GOLANG_IMAGE=golang:1.22\nFROM ${GOLANG_IMAGE}\nCOPY . .\nRUN go build -o /server .\n"
MULTI = ("ARG GOLANG_ALPINE_IMAGE=golang:1.22-alpine\nFROM ${GOLANG_ALPINE_IMAGE} AS builder\nRUN go build\n"
         "FROM builder AS test\nRUN go test\nFROM scratch\nCOPY --from=builder /out/server /server\n")


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile.single").write_text(SINGLE)
    (tmp_path / "Dockerfile").write_text(MULTI)
    return tmp_path


def test_parameters_name_both_images(project: Path) -> None:
    ch = scorecard.Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    assert ch.a.variant == "a-single" and ch.b.variant == "b-dockerfile"
    assert ch.a.tag != ch.b.tag and ch.a.app == f"challenge-{project.name}"
    same_file = scorecard.Challenge.from_parameters(project, "Dockerfile", None, "builder", "test")
    assert same_file.b.title == "Dockerfile --target test"


def test_clear_errors_for_bad_parameters(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(scorecard.NoProject):
        scorecard.Challenge.from_parameters(project / "nope")
    with pytest.raises(scorecard.NoDockerfile) as missing:
        scorecard.Challenge.from_parameters(project, "Dockerfile.multi", "Dockerfile")
    assert "Dockerfile, Dockerfile.single" in missing.value.message and "dockerfile_a" in missing.value.fix
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(scorecard.NoDockerfile) as none:
        scorecard.Challenge.from_parameters(empty)
    assert "no Dockerfile at all" in none.value.message
    with pytest.raises(StagelabError) as same:
        scorecard.Challenge.from_parameters(project, "Dockerfile", "Dockerfile")
    assert "nothing to compare" in same.value.message
    with pytest.raises(StagelabError) as target:
        scorecard.Challenge.from_parameters(project, "Dockerfile", None, "builder", "prod")
    assert "no stage named 'prod'" in target.value.message and "builder, test" in target.value.fix


def test_external_bases_expand_args_and_skip_stages() -> None:
    assert scorecard.external_bases(MULTI) == ["golang:1.22-alpine"]
    assert scorecard.external_bases(MULTI, {"GOLANG_ALPINE_IMAGE": "stagelab-offline/golang:1.22-alpine"}) == [
        "stagelab-offline/golang:1.22-alpine"]


class _Images:
    def __init__(self, local: set[str]) -> None:
        self.local = local
        self.pulled: list[str] = []

    def get(self, name: str) -> object:
        if name not in self.local:
            raise docker.errors.ImageNotFound(name)
        return object()

    def pull(self, name: str) -> object:
        self.pulled.append(name)
        raise docker.errors.APIError("pull access denied")


def test_preflight_says_which_base_needs_a_registry(project: Path) -> None:
    profile = SimpleNamespace(name="offline", build_args=lambda: {"GOLANG_IMAGE": "stagelab-offline/golang:1.22"})
    client = SimpleNamespace(images=_Images({"stagelab-offline/golang:1.22"}))
    ch = scorecard.Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    with pytest.raises(scorecard.NeedsRegistry) as err:
        scorecard.preflight(ch, profile, client=client, pull=False)
    assert "`golang:1.22-alpine`" in err.value.message and "profile offline" in err.value.message
    assert "docker load" in err.value.fix and client.images.pulled == []
    with pytest.raises(scorecard.NeedsRegistry) as pulled:
        scorecard.preflight(ch, profile, client=client, pull=True)
    assert "pull access denied" in pulled.value.message
    client.images.local.add("golang:1.22-alpine")
    found = scorecard.preflight(ch, profile, client=client, pull=False)
    assert [(b.image, b.source) for b in found] == [("stagelab-offline/golang:1.22", "local"),
                                                    ("golang:1.22-alpine", "local")]


def _rep(ref: str, size: int, user: str, compilers: list[str], shell: str | None) -> SimpleNamespace:
    surface = SimpleNamespace(shell=shell, package_managers=["apt"] if shell else [], compilers=compilers,
                              executables=3, setuid=[], os_packages=None, runs_as_root=user == "",
                              from_contents=True)
    return SimpleNamespace(ref=ref, image_id="sha256:" + ref, size=size, compressed_size=None, labels={},
                           profile="offline", surface=surface, layers=[1, 2], user=user, contents=True)


def test_scorecard_has_both_sizes_ratio_and_checklist(project: Path) -> None:
    ch = scorecard.Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    a = _rep(ch.a.tag, 946_000_000, "", ["go", "gcc"], "/bin/sh")
    b = _rep(ch.b.tag, 4_800_000, "65532:65532", [], None)
    text = scorecard.scorecard_markdown(ch, compare([a, b], baseline=a),
                                        when=datetime(2024, 11, 27, tzinfo=timezone.utc))
    assert "946 MB" in text and "4.8 MB" in text and "197.1 x smaller" in text
    assert "- [x] no compiler in B" in text and "- [x] B runs as a non-root user" in text
    worse = scorecard.scorecard_markdown(ch, compare([b, a], baseline=b))
    assert "B is not smaller than A" in worse and "- [ ] no compiler in B" in worse
    out = scorecard.write_scorecard(text, project / "out" / "card.md")
    assert out.read_text() == text


def test_check_names_what_is_left_in_b(project: Path) -> None:
    ch = scorecard.Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    a = _rep(ch.a.tag, 946_000_000, "", ["go", "gcc"], "/bin/sh")
    good = _rep(ch.b.tag, 4_800_000, "65532:65532", [], None)
    assert scorecard.check_scorecard(ch, compare([a, good], baseline=a)).passed
    bad = _rep(ch.b.tag, 950_000_000, "", ["go"], "/bin/sh")
    result = scorecard.check_scorecard(ch, compare([a, bad], baseline=a))
    text = " ".join(result.feedback)
    assert not result.passed and "not smaller than A" in text and "still has go" in text and "runs as root" in text


def test_scorecard_says_what_size_is_and_where_it_was_measured(project: Path) -> None:
    ch = scorecard.Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    a = _rep(ch.a.tag, 946_000_000, "", ["go", "gcc"], "/bin/sh")
    b = _rep(ch.b.tag, 4_800_000, "65532:65532", [], None)
    for rep in (a, b):
        rep.engine = "Docker 28.5.2, containerd image store"
    builds = [SimpleNamespace(image_id=a.image_id, builder="buildkit"), SimpleNamespace(image_id=b.image_id, builder="buildkit")]
    text = scorecard.scorecard_markdown(ch, compare([a, b], baseline=a, builds=builds))
    assert "on Docker 28.5.2, containerd image store, built with the buildkit builder" in text
    assert "uncompressed (sum of the files in all layers)" in text
    assert "as `docker image ls` shows them" not in text   # false on the containerd store
