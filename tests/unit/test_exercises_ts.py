"""The TypeScript exercises (05-07) reject wrong answers with their specific sentence (no engine)."""
from __future__ import annotations

from types import SimpleNamespace

from stagelab import exercises
from stagelab.facts import read_dockerfile
from stagelab.rules import copies_before_install, dev_packages_found, ts_sources_found

HEALTHY = {"start_error": None, "GET /healthz": (200, {"status": "ok"})}


def _report(paths: list[str], user: str = "node", compilers: list[str] | None = None) -> SimpleNamespace:
    files = {p: SimpleNamespace(size=10, layer=1, type="file") for p in paths}
    surface = SimpleNamespace(compilers=compilers or [], runs_as_root=user in ("", "root", "0"), shell="/bin/sh")
    return SimpleNamespace(files=files, surface=surface, user=user, size=200_000_000, name="x", profile="offline")


GOOD = ["/app/dist/index.js", "/app/node_modules/express/package.json", "/app/package.json"]
APP_FILES = ["package.json", "package-lock.json", "tsconfig.json", "src/index.ts", "src/app.ts", "README.md"]

SOLUTION = """\
ARG NODE_IMAGE=node:20
FROM ${NODE_IMAGE} AS builder
COPY package.json package-lock.json ./
RUN npm ci
COPY src/ ./src/
RUN npm run build
FROM ${NODE_SLIM_IMAGE}
COPY package*.json ./
RUN npm ci --omit=dev
COPY --from=builder /app/dist ./dist
"""
BAD = "FROM ${NODE_IMAGE} AS builder\nCOPY . .\nRUN npm ci\n"


def test_the_ts_exercises_are_in_the_table() -> None:
    assert {"05-ts-multi-stage", "06-production-last", "07-cache-friendly-order"} <= set(exercises.names())


def test_05_accepts_the_right_answer_and_names_each_mistake() -> None:
    assert exercises.evaluate("05-ts-multi-stage", _report(GOOD), None, HEALTHY).passed
    wrong = _report(GOOD + ["/app/node_modules/typescript/package.json", "/app/src/app.ts",
                            "/app/node_modules/@types/node/index.d.ts"], user="")
    result = exercises.evaluate("05-ts-multi-stage", wrong, None, HEALTHY)
    text = "\n".join(result.feedback)
    assert not result.passed
    assert "typescript, @types" in text and "--omit=dev" in text
    assert "/app/src/app.ts" in text and "USER node" in text


def test_05_names_dev_packages_a_later_layer_hid() -> None:
    facts = {**HEALTHY, "dev_packages_in_layers": ["typescript", "tsx"]}
    result = exercises.evaluate("05-ts-multi-stage", _report(GOOD), None, facts)
    assert not result.passed and "typescript, tsx" in result.feedback[0] and "npm prune" in result.feedback[0]
    facts["dev_packages_in_layers"] = []
    assert exercises.evaluate("05-ts-multi-stage", _report(GOOD), None, facts).passed


def test_06_wants_production_last_and_every_stage_kept() -> None:
    def stages(*names: str) -> str:
        return "".join(f"FROM node AS {n}\nRUN true\n" for n in names)

    result = exercises.evaluate_dockerfile("06-production-last", stages("base", "builder", "production", "test",
                                                                        "development"))
    assert not result.passed and "`development`" in result.feedback[0] and "move the `production`" in result.feedback[0]
    dropped = exercises.evaluate_dockerfile("06-production-last", stages("base", "builder", "production"))
    assert "test, development" in dropped.feedback[0]
    right = stages("base", "builder", "test", "development", "production")
    assert exercises.evaluate_dockerfile("06-production-last", right).passed


def test_07_reads_the_order_from_the_dockerfile() -> None:
    assert copies_before_install(read_dockerfile(SOLUTION), APP_FILES) == []
    assert copies_before_install(read_dockerfile(BAD), APP_FILES) == [("builder", "COPY . .", "RUN npm ci")]
    result = exercises.evaluate_dockerfile("07-cache-friendly-order", BAD, APP_FILES)
    assert not result.passed and "`COPY . .` comes before `RUN npm ci`" in result.feedback[0]
    assert exercises.evaluate_dockerfile("07-cache-friendly-order", SOLUTION, APP_FILES).passed


def test_07_accepts_a_pattern_that_names_only_install_inputs() -> None:
    glob = "FROM node AS builder\nCOPY *.json ./\nRUN npm ci\nCOPY src/ ./src/\n"
    assert copies_before_install(read_dockerfile(glob), APP_FILES) == []
    wide = "FROM node AS builder\nCOPY *.md *.json ./\nRUN npm ci\n"
    assert copies_before_install(read_dockerfile(wide), APP_FILES) == [("builder", "COPY *.md *.json ./", "RUN npm ci")]
    sources = "FROM node AS builder\nCOPY src/*.ts ./\nRUN npm ci\n"
    assert copies_before_install(read_dockerfile(sources), APP_FILES)


def test_helpers_find_dev_packages_and_sources() -> None:
    rep = _report(["/app/node_modules/tsx/dist/cli.mjs", "/app/node_modules/@esbuild/linux-x64/bin/esbuild",
                   "/app/node_modules/@scope/typescript/x.js", "/app/dist/app.d.ts", "/app/src/a.ts"])
    assert dev_packages_found(rep) == ["tsx", "@esbuild"]
    assert ts_sources_found(rep) == ["/app/src/a.ts"]
