"""Notebook 08 run headless with papermill against projects this test creates (not the lab's apps).

The happy path builds a tiny stdlib Go server twice (single stage, builder -> scratch) and checks
that the scorecard states both images' measured sizes; the error paths check that a learner
gets the one clear message (no Dockerfile, a failing build, a base image that needs a registry).
Every image the test builds is removed at the end by the tracker (its namespace's lab images,
and the two tags by name).
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import papermill  # a dependency of the lab (notebook 08): missing is a failure, not a skip
import pytest

from stagelab.inspect import inspect
from stagelab.naming import repo_root
from stagelab.units import human_size


# every test runs in a namespace of its own (the kernel inherits STAGELAB_NAMESPACE); the
# tracker removes what it built, also when the notebook failed (tests/integration/conftest.py)
pytestmark = [pytest.mark.engine, pytest.mark.timeout(1200), pytest.mark.usefixtures("tracker")]

NOTEBOOK = repo_root() / "notebooks" / "08-challenge-your-own-project.ipynb"

GO_MOD = "module example.com/hello\n\ngo 1.27\n"
MAIN_GO = """\
package main

import (
\t"fmt"
\t"net/http"
)

func main() {
\thttp.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
\t_ = http.ListenAndServe(":8080", nil)
}
"""
SINGLE = """\
ARG GOLANG_IMAGE=golang:1.27
FROM ${GOLANG_IMAGE}
WORKDIR /src
COPY go.mod main.go ./
RUN go build -o /usr/local/bin/hello .
EXPOSE 8080
CMD ["hello"]
"""
MULTI = """\
ARG GOLANG_ALPINE_IMAGE=golang:1.27-alpine
FROM ${GOLANG_ALPINE_IMAGE} AS builder
WORKDIR /src
COPY go.mod main.go ./
RUN CGO_ENABLED=0 go build -ldflags="-w -s" -o /out/hello .

FROM scratch
COPY --from=builder /out/hello /hello
USER 65532:65532
EXPOSE 8080
CMD ["/hello"]
"""


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _run(tmp_path: Path, **parameters: object) -> Path:
    out = tmp_path / "executed-08.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters=parameters, cwd=str(NOTEBOOK.parent),
                               kernel_name="python3", progress_bar=False)
    return out


def _failure(tmp_path: Path, **parameters: object) -> str:
    """Run the notebook expecting it to stop; return what the learner sees: the error (box) text."""
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(tmp_path, **parameters)
    shown = [f"{err.value.ename}: {err.value.evalue}"]
    # The Setup cell shows a StagelabError as one HTML box (no traceback): read it from the output.
    executed = nbformat.read(tmp_path / "executed-08.ipynb", as_version=4)
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/html", "")
            if "stagelab-error" in text:
                shown.append(html.unescape(re.sub(r"<[^>]+>", " ", text)))
    return "\n".join(shown)


def _scorecard_run(tmp_path: Path, tracker, folder: str, files: dict[str, str]) -> tuple[str, object]:
    """Write a project, run notebook 08 on it (A: Dockerfile.single, B: Dockerfile); (scorecard, Challenge)."""
    from stagelab.scorecard import Challenge

    project = _write(tmp_path / folder, files)
    challenge = Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    tracker.image(challenge.a.tag)
    tracker.image(challenge.b.tag)
    card_file = tmp_path / "scorecard.md"
    _run(tmp_path, project_dir=str(project), dockerfile_a="Dockerfile.single", dockerfile_b="Dockerfile",
         scorecard_path=str(card_file), measure_compressed=False)
    return card_file.read_text(), challenge


def test_scorecard_has_both_measured_sizes(tmp_path: Path, tracker) -> None:
    card, challenge = _scorecard_run(tmp_path, tracker, "hello-challenge", {
        "go.mod": GO_MOD, "main.go": MAIN_GO, "Dockerfile.single": SINGLE, "Dockerfile": MULTI})
    # the lab's size, as the scorecard measures it (the engine's Size is compressed on the containerd store)
    size_a = inspect(challenge.a.tag).size
    size_b = inspect(challenge.b.tag).size
    assert size_b < size_a
    assert human_size(size_a) in card, f"A's size {human_size(size_a)} missing from the scorecard:\n{card}"
    assert human_size(size_b) in card, f"B's size {human_size(size_b)} missing from the scorecard:\n{card}"
    assert "hello-challenge" in card and "x smaller than A" in card


def test_a_folder_without_dockerfile_gets_one_clear_message(tmp_path: Path) -> None:
    project = _write(tmp_path / "no-dockerfile", {"go.mod": GO_MOD, "main.go": MAIN_GO})
    shown = _failure(tmp_path, project_dir=str(project), dockerfile_a="Dockerfile.single", dockerfile_b="Dockerfile")
    assert "NoDockerfile" in shown and "no Dockerfile at all" in shown, shown


def test_a_failing_build_names_the_step(tmp_path: Path, tracker) -> None:
    from stagelab.scorecard import Challenge

    broken = MAIN_GO.replace('"hello"', "undefinedName")
    project = _write(tmp_path / "broken-build",
                     {"go.mod": GO_MOD, "main.go": broken, "Dockerfile.single": SINGLE, "Dockerfile": MULTI})
    challenge = Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    tracker.image(challenge.a.tag)
    tracker.image(challenge.b.tag)
    shown = _failure(tmp_path, project_dir=str(project), dockerfile_a="Dockerfile.single", dockerfile_b="Dockerfile")
    assert "BuildFailed" in shown and "go build" in shown and "exited with code" in shown, shown


def test_a_base_image_that_needs_a_registry_is_named(tmp_path: Path) -> None:
    needs_registry = "FROM stagelab-test-nowhere/golang:0.0-missing\nCOPY . /src\n"
    project = _write(tmp_path / "needs-registry",
                     {"go.mod": GO_MOD, "main.go": MAIN_GO, "Dockerfile.single": needs_registry, "Dockerfile": MULTI})
    shown = _failure(tmp_path, project_dir=str(project), dockerfile_a="Dockerfile.single", dockerfile_b="Dockerfile")
    assert "NeedsRegistry" in shown and "stagelab-test-nowhere/golang:0.0-missing" in shown, shown
    assert "docker load" in shown, shown


# --- offline: the learner's own versions (issue 13) ---------------------------------------------
# Literal FROMs of versions other than the lab's: notebook 08 builds their stand-ins
# (stagelab bases prepare --for DIR; each version once per engine, then reused) and builds both
# Dockerfiles from a temporary copy that names them. The stand-ins are shared base images
# (org.stagelab.base), kept like the lab's own; the tracker removes the two lab images.

GO_OWN_SINGLE = """\
FROM golang:1.25-alpine
WORKDIR /src
COPY go.mod main.go ./
RUN go build -o /usr/local/bin/hello .
CMD ["hello"]
"""
GO_OWN_MULTI = """\
FROM golang:1.25-alpine AS builder
WORKDIR /src
COPY go.mod main.go ./
RUN CGO_ENABLED=0 go build -ldflags="-w -s" -o /out/hello .

FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=builder /out/hello /hello
CMD ["/hello"]
"""
NODE_SERVER = "require('http').createServer((q, s) => s.end('hello')).listen(8080);\n"
NODE_OWN_SINGLE = """\
FROM node:22-slim
WORKDIR /app
COPY server.js ./
CMD ["node", "server.js"]
"""
# B only has to be measured (smaller, no compiler, non-root), not run: the static stand-in is the
# one distroless image every profile prepares, so the test adds no stand-in of its own for it
NODE_OWN_MULTI = """\
FROM node:22-slim AS build
WORKDIR /app
COPY server.js ./

FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=build /usr/local/bin/node /nodejs/bin/node
COPY --from=build /app /app
WORKDIR /app
CMD ["/nodejs/bin/node", "server.js"]
"""


def _offline_run(tmp_path: Path, tracker, monkeypatch, files: dict[str, str]) -> tuple[str, object]:
    monkeypatch.setenv("STAGELAB_PROFILE", "offline")   # the kernel inherits it
    return _scorecard_run(tmp_path, tracker, "own-versions", files)


def _env(client, tag: str) -> dict[str, str]:
    env = client.images.get(tag).attrs["Config"].get("Env") or []
    return dict(item.split("=", 1) for item in env)


def test_offline_go_project_of_its_own_version_builds_on_stand_ins(tmp_path: Path, tracker, monkeypatch) -> None:
    from stagelab.catalogue import OFFLINE_PREFIX, by_arg

    card, challenge = _offline_run(tmp_path, tracker, monkeypatch, {
        "go.mod": "module example.com/hello\n\ngo 1.25\n", "main.go": MAIN_GO,
        "Dockerfile.single": GO_OWN_SINGLE, "Dockerfile": GO_OWN_MULTI})
    go_standin = OFFLINE_PREFIX + "golang:1.25-alpine"
    static = by_arg("DISTROLESS_STATIC_IMAGE").offline
    assert f"golang:1.25-alpine → {go_standin}, a stand-in" in card, card
    assert f"gcr.io/distroless/static-debian13:nonroot → {static}, a stand-in" in card, card
    # A (single stage) runs on the stand-in: its Go is the 1.25 the Dockerfile asked for
    assert _env(tracker.client, challenge.a.tag)["GOLANG_VERSION"].startswith("1.25."), card
    assert _env(tracker.client, go_standin)["GOLANG_VERSION"] == _env(tracker.client, challenge.a.tag)["GOLANG_VERSION"]
    # the stand-in never carries an official image's name
    assert not [t for t in tracker.client.images.get(go_standin).tags if not t.startswith(OFFLINE_PREFIX)]
    size_b = inspect(challenge.b.tag).size   # the lab's size, as the scorecard shows it (not the engine's Size)
    assert human_size(size_b) in card


def test_offline_node_project_of_its_own_version_builds_on_stand_ins(tmp_path: Path, tracker, monkeypatch) -> None:
    from stagelab.catalogue import OFFLINE_PREFIX

    card, challenge = _offline_run(tmp_path, tracker, monkeypatch, {
        "server.js": NODE_SERVER, "package.json": '{"name": "hello", "engines": {"node": "22"}}\n',
        "Dockerfile.single": NODE_OWN_SINGLE, "Dockerfile": NODE_OWN_MULTI})
    node_standin = OFFLINE_PREFIX + "node:22-slim"
    assert f"node:22-slim → {node_standin}, a stand-in" in card, card
    assert _env(tracker.client, challenge.a.tag)["NODE_VERSION"].startswith("22."), card
