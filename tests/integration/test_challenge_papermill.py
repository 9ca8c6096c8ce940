"""Notebook 08 run headless with papermill against projects this test creates (not the lab's apps).

The happy path builds a tiny stdlib Go server twice (single stage, builder -> scratch) and checks
that the scorecard states both images' measured sizes; the error paths check that a learner
gets the one clear message (no Dockerfile, a failing build, a base image that needs a registry).
Every image the test builds is removed by its exact tag at the end.
"""
from __future__ import annotations

import html
import re
import secrets
from pathlib import Path

import docker.errors
import nbformat
import pytest

from stagelab.naming import repo_root
from stagelab.units import human_size

papermill = pytest.importorskip("papermill")

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1200)]

NOTEBOOK = repo_root() / "notebooks" / "08-challenge-your-own-project.ipynb"

GO_MOD = "module example.com/hello\n\ngo 1.22\n"
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
ARG GOLANG_IMAGE=golang:1.22
FROM ${GOLANG_IMAGE}
WORKDIR /src
COPY go.mod main.go ./
RUN go build -o /usr/local/bin/hello .
EXPOSE 8080
CMD ["hello"]
"""
MULTI = """\
ARG GOLANG_ALPINE_IMAGE=golang:1.22-alpine
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


@pytest.fixture(autouse=True)
def own_namespace(monkeypatch):
    """Build under a namespace of this test's own (the kernel inherits it), then remove it all."""
    monkeypatch.setenv("STAGELAB_NAMESPACE", f"itest-{secrets.token_hex(4)}")
    yield
    from stagelab import cleanup

    cleanup.clean()


@pytest.fixture()
def docker_client():
    from stagelab.engine import client

    return client()


@pytest.fixture()
def created_tags(docker_client):
    tags: list[str] = []
    yield tags
    for tag in tags:
        try:
            docker_client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def test_scorecard_has_both_measured_sizes(tmp_path: Path, docker_client, created_tags: list[str]) -> None:
    from stagelab.scorecard import Challenge

    project = _write(tmp_path / "hello-challenge",
                     {"go.mod": GO_MOD, "main.go": MAIN_GO, "Dockerfile.single": SINGLE, "Dockerfile": MULTI})
    challenge = Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    created_tags += [challenge.a.tag, challenge.b.tag]
    card_file = tmp_path / "scorecard.md"
    _run(tmp_path, project_dir=str(project), dockerfile_a="Dockerfile.single", dockerfile_b="Dockerfile",
         scorecard_path=str(card_file), measure_compressed=False)
    card = card_file.read_text()
    size_a = docker_client.images.get(challenge.a.tag).attrs["Size"]
    size_b = docker_client.images.get(challenge.b.tag).attrs["Size"]
    assert size_b < size_a
    assert human_size(size_a) in card, f"A's size {human_size(size_a)} missing from the scorecard:\n{card}"
    assert human_size(size_b) in card, f"B's size {human_size(size_b)} missing from the scorecard:\n{card}"
    assert "hello-challenge" in card and "x smaller than A" in card


def test_a_folder_without_dockerfile_gets_one_clear_message(tmp_path: Path) -> None:
    project = _write(tmp_path / "no-dockerfile", {"go.mod": GO_MOD, "main.go": MAIN_GO})
    shown = _failure(tmp_path, project_dir=str(project), dockerfile_a="Dockerfile.single", dockerfile_b="Dockerfile")
    assert "NoDockerfile" in shown and "no Dockerfile at all" in shown, shown


def test_a_failing_build_names_the_step(tmp_path: Path, created_tags: list[str]) -> None:
    from stagelab.scorecard import Challenge

    broken = MAIN_GO.replace('"hello"', "undefinedName")
    project = _write(tmp_path / "broken-build",
                     {"go.mod": GO_MOD, "main.go": broken, "Dockerfile.single": SINGLE, "Dockerfile": MULTI})
    challenge = Challenge.from_parameters(project, "Dockerfile.single", "Dockerfile")
    created_tags += [challenge.a.tag, challenge.b.tag]
    shown = _failure(tmp_path, project_dir=str(project), dockerfile_a="Dockerfile.single", dockerfile_b="Dockerfile")
    assert "BuildFailed" in shown and "go build" in shown and "exited with code" in shown, shown


def test_a_base_image_that_needs_a_registry_is_named(tmp_path: Path) -> None:
    needs_registry = "FROM stagelab-test-nowhere/golang:0.0-missing\nCOPY . /src\n"
    project = _write(tmp_path / "needs-registry",
                     {"go.mod": GO_MOD, "main.go": MAIN_GO, "Dockerfile.single": needs_registry, "Dockerfile": MULTI})
    shown = _failure(tmp_path, project_dir=str(project), dockerfile_a="Dockerfile.single", dockerfile_b="Dockerfile")
    assert "NeedsRegistry" in shown and "stagelab-test-nowhere/golang:0.0-missing" in shown, shown
    assert "docker load" in shown, shown
