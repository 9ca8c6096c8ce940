"""Reading cache hits from build logs (notebook 07), without an engine."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from stagelab import buildsteps
from stagelab.buildlog import parse_log

CLASSIC = """\
Step 1/9 : ARG NODE_ALPINE_IMAGE=node:20-alpine
Step 2/9 : FROM stagelab-offline/node:20-alpine AS builder
 ---> 783b43fe9159
Step 3/9 : COPY package.json package-lock.json ./
 ---> Using cache
 ---> 1a2b3c
Step 4/9 : RUN npm ci
 ---> Using cache
 ---> 2b3c4d
Step 5/9 : COPY src/ ./src/
 ---> 3c4d5e
Step 6/9 : RUN npm run build
 ---> Running in 0123
 ---> 4d5e6f
Step 7/9 : FROM stagelab-offline/node:20-alpine
Step 8/9 : RUN npm ci --omit=dev
 ---> Using cache
Step 9/9 : COPY --from=builder /app/dist ./dist
 ---> 5e6f70
""".splitlines()

BUILDKIT = """\
#5 [base 1/3] FROM docker.io/library/node
#5 CACHED
#6 [base 2/3] WORKDIR /app
#6 CACHED
#7 [builder 1/3] RUN npm ci
#7 0.512 added 80 packages
#7 DONE 9.1s
#8 [production 1/2] RUN npm ci --omit=dev
#8 CACHED
#7 [builder 1/3] RUN npm ci
""".splitlines()


def result(log: list[str], builder: str, **more) -> SimpleNamespace:
    """A stand-in for a ``BuildResult``: its log and the steps its parser found."""
    return SimpleNamespace(log=log, builder=builder, steps=parse_log(log, builder).steps, **more)


def test_classic_log_gives_stage_instruction_and_cache_per_step() -> None:
    steps = buildsteps.steps(result(CLASSIC, "classic"))
    by_n = {s.number: s for s in steps}
    assert by_n[4].cached and by_n[4].stage == "builder" and by_n[4].instruction == "RUN npm ci"
    assert not by_n[5].cached and not by_n[6].cached
    assert by_n[8].stage == "stage-1" and by_n[8].cached
    assert [s.number for s in buildsteps.matching(steps, r"^RUN npm ci\b", stage="builder")] == [4]
    assert 2 not in by_n and 7 not in by_n  # FROM is not a step that does work


def test_buildkit_log_counts_each_vertex_once() -> None:
    steps = buildsteps.steps(result(BUILDKIT, "buildkit"))
    assert [(s.stage, s.instruction, s.cached) for s in steps] == [
        ("base", "WORKDIR /app", True),
        ("builder", "RUN npm ci", False), ("production", "RUN npm ci --omit=dev", True)]
    assert [s.makes_layer for s in steps] == [False, True, True]
    table = buildsteps.StepTable(result(BUILDKIT, "buildkit", tag="t"))
    assert "1 of 2" in repr(table) and "cached" in table._repr_html_()


def test_context_size_honours_dockerignore(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.ts").write_text("x" * 1000)
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "big.bin").write_bytes(b"\0" * 200_000)
    (tmp_path / ".dockerignore").write_text("node_modules\n")
    small = buildsteps.context_size(tmp_path)
    large = buildsteps.context_size(tmp_path, dockerignore=False)
    assert small < 20_000 < 200_000 < large


def test_timings_chart_labels_cache_use() -> None:
    fig = buildsteps.timings_chart({"cold": result(CLASSIC, "classic", seconds=30.0)})
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("3/6 steps cached" in t for t in texts)
    shown = fig._repr_png_()    # what Jupyter displays: a PNG, not the text "<Figure size ...>"
    assert shown.startswith(b"\x89PNG"), f"the chart does not render as PNG: {shown[:20]!r}"
