"""Stand-ins for a learner's project (``stagelab bases prepare --for DIR``): no engine, no network."""
from __future__ import annotations

import json

import pytest

from stagelab import catalogue, cli, versions
from stagelab.bases import project
from stagelab.bases.common import NoStandIn, extra_standins
from stagelab.bases.inputs import _recipe_hash


def _available() -> dict[str, list[str]]:
    """What the wheels "have" in these tests: a few patches per minor, plus the lab's own versions."""
    v = versions.current()
    return {
        "golang": ["1.21.13", "1.25.0", "1.25.5", "1.25.3", "1.26.6", v.go],
        "node": ["20.18.0", "22.11.0", "22.20.0", "22.9.1", v.node],
    }


def _write(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_asked_images_reads_dockerfiles_with_args_expanded_and_skips_stages(tmp_path):
    _write(tmp_path, {
        "Dockerfile": "ARG RUNTIME=gcr.io/distroless/static-debian13:nonroot\n"
                      "FROM golang:1.25-alpine AS build\nRUN true\n"
                      "FROM build AS test\n"
                      "FROM ${RUNTIME}\nCOPY --from=build /x /x\n",
        "Dockerfile.single": "FROM docker.io/library/golang:1.25-alpine\n",
        "go.mod": "module x\n\ngo 1.23.4\n",
    })
    asked = project.asked_images(tmp_path)
    assert [a.image for a in asked] == ["golang:1.25-alpine", "gcr.io/distroless/static-debian13:nonroot"]
    # go.mod only adds a version when no Dockerfile names a golang image
    (tmp_path / "Dockerfile.single").unlink()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert [(a.image, a.where) for a in project.asked_images(tmp_path)] == [("golang:1.23-alpine", "go.mod")]


def test_package_json_engines_node_asks_for_a_slim_node(tmp_path):
    _write(tmp_path, {"package.json": json.dumps({"engines": {"node": "^22.3.0"}})})
    assert [a.image for a in project.asked_images(tmp_path)] == ["node:22-slim"]


def test_plan_picks_the_newest_patch_and_never_an_official_name(tmp_path):
    asked = [project.Asked("golang:1.25-alpine", "Dockerfile"), project.Asked("node:22-alpine", "Dockerfile"),
             project.Asked("gcr.io/distroless/static-debian13:nonroot", "Dockerfile")]
    mapping, records = project.plan_for(asked, _available())
    assert mapping["golang:1.25-alpine"] == catalogue.OFFLINE_PREFIX + "golang:1.25-alpine"
    assert mapping["node:22-alpine"] == catalogue.OFFLINE_PREFIX + "node:22-alpine"
    static = catalogue.by_arg("DISTROLESS_STATIC_IMAGE")
    assert mapping["gcr.io/distroless/static-debian13:nonroot"] == static.offline
    by_tag = {r.tag: r for r in records}
    go = by_tag[mapping["golang:1.25-alpine"]]
    assert go.go == max(["1.25.0", "1.25.5", "1.25.3"], key=lambda s: tuple(map(int, s.split("."))))
    assert go.recipe == catalogue.by_arg("GOLANG_ALPINE_IMAGE").recipe
    assert go.go in go.sources and versions.current().go not in go.sources
    node_alpine = by_tag[mapping["node:22-alpine"]]
    assert node_alpine.node == "22.20.0"
    # node:X-alpine is built on the node:X-slim stand-in of the same version, planned before it
    assert node_alpine.base in by_tag and by_tag[node_alpine.base].node == "22.20.0"
    assert list(by_tag).index(node_alpine.base) < list(by_tag).index(node_alpine.tag)
    for rec in records:
        assert rec.tag.startswith(catalogue.OFFLINE_PREFIX), rec.tag


def test_the_lab_default_version_reuses_the_lab_stand_in():
    v = versions.current()
    role = catalogue.by_arg("NODE_SLIM_IMAGE")
    image = f"node:{v.node_major}-slim"
    mapping, records = project.plan_for([project.Asked(image, "Dockerfile")], _available())
    assert mapping[image] == role.offline == project.standin_tag(image)
    assert records == [role]


def test_each_version_has_its_own_recipe_hash():
    (a,) = catalogue.toolchain_standins("golang", "alpine", "1.25", "1.25.5")
    (b,) = catalogue.toolchain_standins("golang", "alpine", "1.25", "1.25.3")
    with extra_standins([a]):
        ha = _recipe_hash(a)
    with extra_standins([b]):
        hb = _recipe_hash(b)
    assert ha != hb


def test_a_version_no_wheel_has_names_the_nearest_and_the_bundle_route():
    with pytest.raises(NoStandIn) as err:
        project.plan_for([project.Asked("golang:1.19-alpine", "Dockerfile")], _available())
    text = str(err.value)
    assert "golang:1.19" in text and "1.21.13" in text
    assert "stagelab bases import" in text and "docker pull golang:1.19-alpine" in text
    nearest = text.split("Nearest versions available:")[1].split(".\n")[0]
    assert "1.21.13" in nearest and versions.current().go not in nearest


def test_cli_prepare_for_a_missing_version_prints_one_message(tmp_path, monkeypatch, capsys):
    _write(tmp_path, {"Dockerfile": "FROM node:18-slim\n"})
    monkeypatch.setattr(project, "available_versions", lambda name: _available()[name])
    code = cli.main(["bases", "prepare", "--for", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "node:18" in err and "22.20.0" in err and "stagelab bases import" in err
    assert "Traceback" not in err


def test_build_with_standins_builds_a_patched_copy_and_says_so(tmp_path, monkeypatch):
    from stagelab import build as build_mod

    text = ("# syntax=docker/dockerfile:1.7\nARG RUN=gcr.io/distroless/static-debian13:nonroot\n"
            "FROM golang:1.25-alpine AS build\nRUN go build\nFROM ${RUN}\nCOPY --from=build /a /a\n")
    _write(tmp_path, {"Dockerfile": text, "main.go": "package main\n"})
    seen = {}

    def fake_build(ctx, df, **kwargs):
        seen.update(ctx=ctx, text=open(df).read(), files=sorted(p.name for p in ctx.iterdir()), **kwargs)
        return build_mod.BuildResult(None, None, kwargs["tag"], "sha256:0", 0.0, 0, 0, [], "offline", {},
                                     "buildkit", [])

    monkeypatch.setattr(build_mod, "build_context", fake_build)
    monkeypatch.setattr(project, "_syntax_fetchable", lambda ref: False)
    static = catalogue.by_arg("DISTROLESS_STATIC_IMAGE").offline
    go_tag = catalogue.OFFLINE_PREFIX + "golang:1.25-alpine"
    result = project.build_with_standins(
        tmp_path, "Dockerfile", {"golang:1.25-alpine": go_tag, "gcr.io/distroless/static-debian13:nonroot": static},
        tag="t:1")
    assert seen["ctx"] != tmp_path and "main.go" in seen["files"]
    assert f"FROM {go_tag} AS build" in seen["text"] and "FROM golang:1.25-alpine" not in seen["text"]
    assert "# syntax=" not in seen["text"]
    assert seen["build_args"] == {"RUN": static}              # an ARG default reaches its stand-in too
    assert (tmp_path / "Dockerfile").read_text() == text      # the project itself is unchanged
    assert project.standin_note("golang:1.25-alpine", go_tag) in result.notes
    assert any("# syntax=docker/dockerfile:1.7 set aside" in n for n in result.notes)
    assert "golang:1.25-alpine → " in str(result)


def test_preflight_and_scorecard_name_the_stand_ins(tmp_path):
    from types import SimpleNamespace

    import docker.errors

    from stagelab import scorecard
    from stagelab.compare import compare

    go_tag = catalogue.OFFLINE_PREFIX + "golang:1.25-alpine"
    _write(tmp_path, {"Dockerfile.single": "FROM golang:1.25-alpine\n",
                      "Dockerfile": "FROM golang:1.25-alpine AS b\nFROM scratch\nCOPY --from=b /a /a\n"})

    class Images:
        def get(self, name):
            if name != go_tag:
                raise docker.errors.ImageNotFound(name)
            return object()

    ch = scorecard.Challenge.from_parameters(tmp_path, "Dockerfile.single", "Dockerfile")
    prof = SimpleNamespace(name="offline", build_args=lambda: {})
    (check,) = scorecard.preflight(ch, prof, client=SimpleNamespace(images=Images()), pull=False)
    assert (check.source, check.standin) == ("stand-in", go_tag)
    assert check.text == f"golang:1.25-alpine → {go_tag}, a stand-in"
    rep = SimpleNamespace(ref="x", image_id="sha256:x", size=10, compressed_size=None, labels={}, profile="offline",
                          surface=None, layers=[1], user="", contents=False)
    note = project.standin_note("golang:1.25-alpine", go_tag)
    results = [SimpleNamespace(seconds=1.0, steps_cached=0, steps_total=1, builder="buildkit", notes=[note])] * 2
    card = scorecard.scorecard_markdown(ch, compare([rep, rep], baseline=rep), results)
    assert f"- {note}" in card


def test_export_for_several_projects_carries_every_version_once(tmp_path, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    _write(one, {"Dockerfile": "FROM golang:1.25-alpine\nFROM gcr.io/distroless/static-debian13:nonroot\n"})
    _write(two, {"Dockerfile": "FROM golang:1.26-alpine\nFROM golang:1.25-alpine\n"})
    built = []

    def fake_build(records, **kwargs):
        built.append([r.tag for r in records])
        return list(records)

    import importlib

    # the module, not the function ``stagelab.bases.prepare`` that the package exports
    monkeypatch.setattr(importlib.import_module("stagelab.bases.prepare"), "build_records", fake_build)
    monkeypatch.setattr(project, "available_versions", lambda name: _available()[name])
    tags = project.bundle_tags([one, two])
    lab = [s.tag for s in catalogue.standins()]
    assert tags[: len(lab)] == lab and len(tags) == len(set(tags))
    for version in ("1.25", "1.26"):
        assert catalogue.OFFLINE_PREFIX + f"golang:{version}-alpine" in tags
    assert len(built) == 2
