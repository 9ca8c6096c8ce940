"""The Dockerfile model (stagelab.dockerfile): instructions, heredocs, stages, needed stages, features."""
from __future__ import annotations

import pytest

from stagelab import dockerfile as D

MULTI = """\
# syntax = docker/dockerfile:1.7
# escape=\\
ARG GO_IMAGE=golang:1.25
ARG FINAL=scratch

FROM ${GO_IMAGE} AS deps
RUN --mount=type=cache,target=/root/.cache/go-build \\
    go mod download

FROM deps AS build
COPY <<EOF /hello.txt
FROM not-an-instruction
EOF
RUN go build -o /out/server .

FROM build AS test
RUN go test ./...

FROM busybox AS tools
RUN --mount=type=bind,from=build,source=/out,target=/in cp /in/server /srv

FROM ${FINAL} AS final
COPY --link --from=tools /srv /server
CMD ["/server"]
"""


def test_instructions_lines_heredoc_bodies_skipped():
    df = D.parse(MULTI)
    kinds = [i.keyword for i in df.instructions]
    assert kinds.count("FROM") == 5  # the heredoc body's "FROM" line is not an instruction
    copy = next(i for i in df.instructions if i.heredocs)
    assert (copy.keyword, copy.line, copy.end_line, copy.heredocs) == ("COPY", 11, 13, ("EOF",))
    run = df.instructions[3]
    assert (run.line, run.end_line) == (7, 8)
    assert run.args.endswith("go mod download")


def test_directives_and_global_args():
    df = D.parse(MULTI)
    assert df.syntax == "docker/dockerfile:1.7"
    assert df.global_args == {"GO_IMAGE": "golang:1.25", "FINAL": "scratch"}
    # a directive after an instruction is a plain comment
    assert D.parse("FROM scratch\n# syntax=x\n").syntax is None


def test_stages_names_bases_and_instructions():
    df = D.parse(MULTI)
    assert [(s.index, s.name, s.base) for s in df.stages] == [
        (0, "deps", "${GO_IMAGE}"), (1, "build", "deps"), (2, "test", "build"),
        (3, "tools", "busybox"), (4, "final", "${FINAL}")]
    assert df.stage("build").all("RUN") == ["go build -o /out/server ."]
    assert [s.name for s in df.chain(df.stage("test"))] == ["test", "build", "deps"]
    with pytest.raises(KeyError):
        df.stage("nope")


def test_needed_follows_from_copy_from_and_mount_from():
    df = D.parse(MULTI)
    assert [s.name for s in df.needed()] == ["deps", "build", "tools", "final"]  # test is skipped
    assert [s.name for s in df.needed("test")] == ["deps", "build", "test"]
    assert [s.name for s in df.needed("tools")] == ["deps", "build", "tools"]
    # numeric --from and unnamed stages
    df2 = D.parse("FROM alpine\nRUN true\nFROM alpine AS unused\nFROM scratch\nCOPY --from=0 /x /x\n")
    assert [s.name for s in df2.needed()] == ["stage-0", "stage-2"]


def test_buildkit_features():
    found = [(f.name, f.line, f.classic_fails) for f in D.parse(MULTI).buildkit_features()]
    assert found == [
        ("# syntax=", 1, False),
        ("RUN --mount=type=cache", 7, True),
        ("heredoc", 11, True),
        ("RUN --mount=type=bind", 20, True),
        ("COPY --link", 23, True),
    ]
    assert D.parse("FROM scratch\nCOPY a /a\n").buildkit_features() == []


def test_heredoc_with_dash_and_quotes_and_not_in_cmd():
    df = D.parse("FROM alpine\nRUN <<-'END'\n\techo hi\n\tEND\nCMD echo <<X\nUSER 1\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "RUN", "CMD", "USER"]
    assert df.instructions[1].heredocs == ("END",)
