"""The TypeScript exercises (05-07) reject wrong answers with their specific sentence (no engine)."""
from __future__ import annotations

from types import SimpleNamespace

from stagelab import exercises
from stagelab.exercises_ts import copies_before_install, dev_packages_found, ts_sources_found

HEALTHY = {"start_error": None, "GET /healthz": (200, {"status": "ok"})}


def _report(paths: list[str], user: str = "node", compilers: list[str] | None = None) -> SimpleNamespace:
    files = {p: SimpleNamespace(size=10, layer=1, type="file") for p in paths}
    surface = SimpleNamespace(compilers=compilers or [], runs_as_root=user in ("", "root", "0"), shell="/bin/sh")
    return SimpleNamespace(files=files, surface=surface, user=user, size=200_000_000, name="x", profile="offline")


GOOD = ["/app/dist/index.js", "/app/node_modules/express/package.json", "/app/package.json"]


def _build(log: list[str], stages: list[str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(log=log, stages_run=stages or [], profile="offline")


SOLUTION_LOG = [
    "Step 1/8 : ARG NODE_IMAGE=node:20", "Step 2/8 : FROM ${NODE_IMAGE} AS builder",
    "Step 3/8 : COPY package.json package-lock.json ./", "Step 4/8 : RUN npm ci",
    "Step 5/8 : COPY src/ ./src/", "Step 6/8 : RUN npm run build",
    "Step 7/8 : FROM ${NODE_SLIM_IMAGE}", "Step 8/8 : COPY package*.json ./", "Step 9/8 : RUN npm ci --omit=dev",
    "Step 10/8 : COPY --from=builder /app/dist ./dist",
]
BAD_LOG = ["Step 2/6 : FROM ${NODE_IMAGE} AS builder", "Step 3/6 : COPY . .", "Step 4/6 : RUN npm ci"]


def test_the_ts_exercises_are_registered() -> None:
    assert {"05-ts-multi-stage", "06-production-last", "07-cache-friendly-order"} <= set(exercises.names())


def test_05_accepts_the_right_answer_and_names_each_mistake() -> None:
    assert exercises.evaluate("05-ts-multi-stage", _report(GOOD), _build(SOLUTION_LOG), HEALTHY).passed
    wrong = _report(GOOD + ["/app/node_modules/typescript/package.json", "/app/src/app.ts",
                            "/app/node_modules/@types/node/index.d.ts"], user="")
    result = exercises.evaluate("05-ts-multi-stage", wrong, _build(SOLUTION_LOG), HEALTHY)
    text = "\n".join(result.feedback)
    assert not result.passed
    assert "typescript, @types" in text and "--omit=dev" in text
    assert "/app/src/app.ts" in text and "USER node" in text


def test_06_wants_production_last_and_every_stage_kept() -> None:
    order = ["base", "builder", "production", "test", "development"]
    result = exercises.evaluate("06-production-last", _report(GOOD), _build([], order), HEALTHY)
    assert not result.passed and "`development`" in result.feedback[0] and "move the `production`" in result.feedback[0]
    dropped = exercises.evaluate("06-production-last", _report(GOOD), _build([], ["base", "builder", "production"]), HEALTHY)
    assert "test, development" in dropped.feedback[0]
    right = ["base", "builder", "test", "development", "production"]
    assert exercises.evaluate("06-production-last", _report(GOOD), _build([], right), HEALTHY).passed


def test_07_reads_the_order_from_the_build_log() -> None:
    assert copies_before_install(SOLUTION_LOG) == []
    assert copies_before_install(BAD_LOG) == [("builder", "COPY . .", "RUN npm ci")]
    result = exercises.evaluate("07-cache-friendly-order", _report(GOOD), _build(BAD_LOG), HEALTHY)
    assert not result.passed and "`COPY . .` comes before `RUN npm ci`" in result.feedback[0]
    assert exercises.evaluate("07-cache-friendly-order", _report(GOOD), _build(SOLUTION_LOG), HEALTHY).passed


def test_helpers_find_dev_packages_and_sources() -> None:
    rep = _report(["/app/node_modules/tsx/dist/cli.mjs", "/app/node_modules/@esbuild/linux-x64/bin/esbuild",
                   "/app/node_modules/@scope/typescript/x.js", "/app/dist/app.d.ts", "/app/src/a.ts"])
    assert dev_packages_found(rep) == ["tsx", "@esbuild"]
    assert ts_sources_found(rep) == ["/app/src/a.ts"]
