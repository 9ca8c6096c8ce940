"""diagrams: stage diagrams drawn from the parsed Dockerfile (no engine)."""
from __future__ import annotations

import pytest

from stagelab import diagrams

DOCKERFILE = """\
ARG GO_IMAGE=golang:1.22-alpine
FROM ${GO_IMAGE} AS builder
RUN go build -o /out/server .
FROM builder AS test
RUN go test ./...
FROM alpine:3.20 AS certs
RUN apk add ca-certificates
FROM scratch AS final
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=builder /out/server /server
"""


def test_boxes_edges_image_and_needed_come_from_the_file() -> None:
    d = diagrams.diagram(DOCKERFILE)
    assert [b.name for b in d.boxes] == ["builder", "test", "certs", "final"]
    assert d.image.name == "final"
    assert d.box("builder").base == "golang:1.22-alpine"          # ARG default expanded
    assert d.box("test").base == "builder"                        # a stage built FROM a stage
    assert not d.box("test").needed and d.box("certs").needed
    assert {(e.src, e.dst, e.kind) for e in d.edges} == {
        ("builder", "test", "FROM"), ("certs", "final", "COPY --from"), ("builder", "final", "COPY --from")}


def test_a_target_changes_the_image_and_what_is_needed() -> None:
    d = diagrams.diagram(DOCKERFILE, "test", build_args={"GO_IMAGE": "stagelab-offline/golang:x"})
    assert d.image.name == "test"
    assert [b.name for b in d.boxes if b.needed] == ["builder", "test"]
    assert d.box("builder").base == "stagelab-offline/golang:x"


def test_sizes_are_shown_with_what_they_measured() -> None:
    d = diagrams.diagram(DOCKERFILE, sizes={"final": 1_430_000}, size_note="final image, uncompressed, offline")
    assert d.box("final").size == 1_430_000 and d.box("builder").size is None
    assert "1.43 MB" in d.text() and "final image, uncompressed, offline" in d.text()


def test_it_renders_as_png_and_html() -> None:
    d = diagrams.diagram(DOCKERFILE, title="demo")
    png = d.png()
    assert png.startswith(b"\x89PNG")
    page = d._repr_html_()
    assert "data:image/png;base64," in page and "COPY --from" in page   # the alt text names the edges


def test_every_app_variant_draws() -> None:
    from stagelab.variants import app_names, load_app

    count = 0
    for app in app_names():
        for name, var in load_app(app).variants.items():
            d = diagrams.for_variant(app, name)
            assert d.image.needed and d.title.startswith(f"{app}:{name}")
            count += 1
    assert count >= 4


def test_bad_input_says_what_to_do(tmp_path) -> None:
    with pytest.raises(diagrams.NoStages, match="no FROM"):
        diagrams.diagram("RUN true\n")
    with pytest.raises(diagrams.NoStages, match="No stage called 'nope'") as info:
        diagrams.diagram(DOCKERFILE, "nope")
    assert "builder, test, certs, final" in info.value.message


def test_make_report_html_carries_the_diagram(tmp_path) -> None:
    """A notebook cell showing a diagram: report's nbconvert page embeds the PNG (no engine needed)."""
    import nbformat

    from stagelab.report import execute_notebook

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from stagelab import diagrams\ndiagrams.for_variant('go-server', 'scratch')")])
    path = tmp_path / "99-diagram.ipynb"
    nbformat.write(nb, path)
    entry = execute_notebook(path, tmp_path / "out", timeout=120)
    assert entry.ok, entry.error
    page = entry.html.read_text()
    assert 'class="stagelab-stage-diagram"' in page and "data:image/png;base64," in page
    assert "builder --COPY --from--&gt; final" in page    # the alt text: the edge drawn


def test_a_missing_path_is_one_clear_error(tmp_path):
    with pytest.raises(diagrams.NoStages, match="No Dockerfile at"):
        diagrams.diagram(str(tmp_path / "Dockerfile.typo"))
    with pytest.raises(diagrams.NoStages, match="No Dockerfile at"):
        diagrams.diagram("FROM scratch")   # one line without a newline is read as a path
