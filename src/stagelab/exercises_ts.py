"""The TypeScript exercises of notebooks 05-07 (listed in ``stagelab.exercises.EXERCISE_MODULES``).

Each is an ``stagelab.exercises.Exercise`` on the ts-server sources; ``start(name)`` creates
its folder, ``check(name)`` builds and measures it. The rules here are pure functions of
(ImageReport, BuildResult, facts), so unit tests show a wrong answer gets its sentence.
"""
from __future__ import annotations

import re
from typing import Any

from .exercises import Exercise, Facts, Rule, no_compilers, non_root, responds, starts

#: Packages that only the build needs (ts-server's devDependencies and what they pull in).
DEV_ONLY_PACKAGES: tuple[str, ...] = ("typescript", "tsx", "esbuild", "@types", "@esbuild")

#: Files a dependency install may depend on (manifests, lockfiles, npm/tsc config): copying
#: only these before `npm ci` keeps the install cached while sources change.
INSTALL_INPUTS = re.compile(
    r"^(package(\*|-lock)?\.json|package\*\.json|npm-shrinkwrap\.json|\.npmrc|yarn\.lock|"
    r"pnpm-lock\.yaml|tsconfig[^/]*\.json)$"
)

_NON_ROOT_NODE = ("add `USER node` (uid 1000, which the node images already have) to the FINAL stage: "
                  "a USER set in the builder stage does not carry over to the next FROM.")


def _files(report: Any) -> dict[str, Any]:
    return getattr(report, "files", None) or {}


def dev_packages_found(report: Any) -> list[str]:
    """Dev-only packages present in any node_modules of the image (``["typescript", "tsx"]``)."""
    found: list[str] = []
    for path, entry in _files(report).items():
        if not getattr(entry, "is_regular", True):
            continue   # npm may leave an empty scope folder (node_modules/@types) behind
        parts = path.split("/node_modules/")
        if len(parts) < 2:
            continue
        rest = parts[-1].split("/")
        name = rest[0]
        if name.startswith("@") and len(rest) > 1 and name != "@types" and name != "@esbuild":
            name = f"{name}/{rest[1]}"
        if name in DEV_ONLY_PACKAGES and name not in found:
            found.append(name)
    return found


def ts_sources_found(report: Any) -> list[str]:
    """TypeScript sources (``.ts``, not ``.d.ts``) outside node_modules."""
    return sorted(p for p, e in _files(report).items()
                  if p.endswith(".ts") and not p.endswith(".d.ts") and "/node_modules/" not in p
                  and getattr(e, "is_regular", True))


def no_dev_packages(hint: str = "") -> Rule:
    """Fails when typescript, tsx, esbuild or @types are in the final image."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        found = dev_packages_found(report)
        if not found:
            return None
        return (f"Your final image still has the dev-only package(s) {', '.join(found)} in node_modules: "
                + (hint or "install only the runtime dependencies in the final stage with `npm ci --omit=dev` "
                   "(the article's `--only=production` is deprecated), and do not COPY node_modules from the builder."))

    return rule


def no_ts_sources(hint: str = "copy only the compiled dist/ from the builder (COPY --from=builder /app/dist ./dist), "
                             "not the whole folder.") -> Rule:
    """Fails when .ts sources are in the final image."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        found = ts_sources_found(report)
        if not found:
            return None
        shown = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
        return f"The TypeScript sources are in your final image ({shown}): {hint}"

    return rule


def compiled_entry(path_suffix: str = "/dist/index.js",
                   hint: str = "COPY --from=builder the compiled dist/ folder into the final stage.") -> Rule:
    """Fails when no file ending in ``path_suffix`` is in the image (nothing compiled to run)."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        if any(p.endswith(path_suffix) for p in _files(report)):
            return None
        return f"There is no {path_suffix.lstrip('/')} in your image, so `node dist/index.js` has nothing to run: {hint}"

    return rule


# --- reading the classic build log -----------------------------------------------------------

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def log_steps(log: list[str]) -> list[tuple[int, str]]:
    """``(step number, instruction)`` of a classic build log, in order."""
    out = []
    for line in log:
        m = _STEP.match(line.strip())
        if m:
            out.append((int(m.group(1)), m.group(3).strip()))
    return out


def _is_install(instruction: str) -> bool:
    low = instruction.lower()
    return low.startswith("run ") and bool(re.search(r"\b(npm|pnpm|yarn)\s+(ci|install|i)\b", low))


def _context_copy_sources(instruction: str) -> list[str] | None:
    """Sources of a COPY/ADD from the build context (None: not one, e.g. COPY --from=...)."""
    keyword, _, rest = instruction.partition(" ")
    if keyword.upper() not in ("COPY", "ADD"):
        return None
    tokens = rest.split()
    if any(t.startswith("--from") for t in tokens):
        return None
    tokens = [t for t in tokens if not t.startswith("--")]
    if rest.strip().startswith("["):
        tokens = re.findall(r'"([^"]*)"', rest)
    return tokens[:-1] if len(tokens) > 1 else []


def copies_before_install(log: list[str]) -> list[tuple[str, str, str]]:
    """(stage, the COPY, the install) where a COPY of more than the manifests precedes an install."""
    bad: list[tuple[str, str, str]] = []
    stage = "stage-0"
    index = -1
    copies: list[str] = []
    for _n, instruction in log_steps(log):
        keyword = instruction.split(" ", 1)[0].upper()
        if keyword == "FROM":
            index += 1
            words = instruction.split()
            stage = words[3] if len(words) >= 4 and words[2].upper() == "AS" else f"stage-{index}"
            copies = []
            continue
        sources = _context_copy_sources(instruction)
        if sources is not None:
            if any(not INSTALL_INPUTS.match(src.removeprefix("./")) for src in sources):
                copies.append(instruction)
            continue
        if _is_install(instruction) and copies:
            bad.append((stage, copies[0], instruction))
    return bad


def install_before_sources(hint: str = "") -> Rule:
    """Fails when a stage copies more than package.json/package-lock.json before `npm ci`."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        if build is None or not getattr(build, "log", None):
            return None
        bad = copies_before_install(build.log)
        if not bad:
            return None
        stage, copy, install = bad[0]
        return (f"In stage {stage}, `{copy}` comes before `{install}`: any change to a copied source file "
                "invalidates the cache from that COPY on, so every edit re-runs the install. "
                + (hint or "Copy package.json and package-lock.json first, run the install, then copy the sources."))

    return rule


def last_stage_is(name: str, keep: tuple[str, ...] = ()) -> Rule:
    """Fails when the default build's last stage is not ``name`` or a stage in ``keep`` is gone."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        stages = list(getattr(build, "stages_run", None) or [])
        if not stages:
            return None
        if stages[-1] != name:
            return (f"A build without --target built the stage `{stages[-1]}`, because it is the last one in "
                    f"the file (stages in order: {', '.join(stages)}): move the `{name}` stage to the end.")
        missing = [k for k in keep if k not in stages]
        if missing:
            return (f"The stage(s) {', '.join(missing)} are gone: keep them (they are the other targets), "
                    f"only change the order.")
        return None

    return rule


# --- the exercises ----------------------------------------------------------------------------

_MULTI_STARTER = """\
# Exercise 05: this single-stage image ships TypeScript, the type definitions, tsx,
# esbuild and the .ts sources next to the server, and runs as root. Split it:
#  - a `builder` stage (FROM ${NODE_IMAGE} AS builder) that runs `npm ci` and
#    `npm run build` (tsc writes dist/);
#  - a final stage FROM ${NODE_SLIM_IMAGE} that installs only the runtime dependencies
#    (`npm ci --omit=dev`), takes only dist/ from the builder (COPY --from=builder ...)
#    and runs as the image's own non-root user (USER node);
#  - CMD ["node", "dist/index.js"] in exec form, so node is PID 1.
ARG NODE_IMAGE=node:20
ARG NODE_SLIM_IMAGE=node:20-slim

FROM ${NODE_IMAGE}
WORKDIR /app
COPY . .
RUN npm ci
RUN npm run build
ENV PORT=3000
EXPOSE 3000
CMD ["node", "dist/index.js"]
"""

_ORDER_STARTER = """\
# Exercise 06: one Dockerfile, several targets. A build without --target should give
# the production image, but this file ends with the development stage, so a plain
# `docker build .` ships tsx, TypeScript and the sources and runs as root.
# Change the ORDER only (keep every stage): the default target is the last stage.
ARG NODE_SLIM_IMAGE=node:20-slim

FROM ${NODE_SLIM_IMAGE} AS base
WORKDIR /app
ENV PORT=3000
COPY package.json package-lock.json ./

FROM base AS builder
RUN npm ci
COPY tsconfig.json ./
COPY src/ ./src/
RUN npm run build

FROM base AS production
ENV NODE_ENV=production
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=builder /app/dist ./dist
USER node
EXPOSE 3000
CMD ["node", "dist/index.js"]

FROM base AS test
RUN npm ci
COPY . .
CMD ["npm", "test"]

FROM base AS development
RUN npm ci
COPY . .
EXPOSE 3000
CMD ["npm", "run", "dev"]
"""

_CACHE_STARTER = """\
# Exercise 07: this Dockerfile builds a correct image, but slowly: `COPY . .` comes
# before `npm ci`, so editing any source file re-runs the whole dependency install.
# Reorder both stages: copy package.json and package-lock.json, run the install, and
# only then copy what else the stage needs (the builder: tsconfig.json and src/; the
# final stage: only dist/ from the builder, no sources).
ARG NODE_IMAGE=node:20
ARG NODE_SLIM_IMAGE=node:20-slim

FROM ${NODE_IMAGE} AS builder
WORKDIR /app
COPY . .
RUN npm ci
RUN npm run build

FROM ${NODE_SLIM_IMAGE}
ENV NODE_ENV=production PORT=3000
WORKDIR /app
COPY . .
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=builder /app/dist ./dist
USER node
EXPOSE 3000
CMD ["node", "dist/index.js"]
"""

_HEALTH = responds("/healthz", expect={"status": "ok"},
                   hint='the server listens on $PORT (3000): keep `CMD ["node", "dist/index.js"]`.')

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        name="05-ts-multi-stage",
        app="ts-server",
        title="TypeScript: a builder stage and a lean, non-root runtime stage",
        notebook="05-typescript-multi-stage.ipynb",
        starter=_MULTI_STARTER,
        task="Compile in a builder stage; in a final stage on NODE_SLIM_IMAGE install only the "
             "runtime dependencies, copy only dist/ from the builder, and run as USER node.",
        probe_paths=("/healthz",),
        rules=(
            no_dev_packages(),
            no_ts_sources(),
            compiled_entry(),
            no_compilers("the final stage should start FROM ${NODE_SLIM_IMAGE}, not the full node image "
                         "(which has gcc and make for native modules)."),
            non_root(_NON_ROOT_NODE),
            starts(),
            _HEALTH,
        ),
        on_build_failure=("Hint: `COPY --from=builder /app/dist ./dist` needs the stage name: "
                          "`FROM ${NODE_IMAGE} AS builder`.",),
    ),
    Exercise(
        name="06-production-last",
        app="ts-server",
        title="One Dockerfile, many targets: make production the default",
        notebook="06-one-dockerfile-many-targets.ipynb",
        starter=_ORDER_STARTER,
        task="Reorder the stages so that a build without --target gives the production image; "
             "keep base, builder, test and development as targets.",
        probe_paths=("/healthz",),
        rules=(
            last_stage_is("production", keep=("base", "builder", "test", "development")),
            no_dev_packages("the default build gave a stage that runs `npm ci` with dev dependencies: "
                            "the last stage of the file must be `production`."),
            no_ts_sources(),
            non_root(_NON_ROOT_NODE),
            starts(),
            _HEALTH,
        ),
    ),
    Exercise(
        name="07-cache-friendly-order",
        app="ts-server",
        title="Order the Dockerfile so that a source edit does not reinstall dependencies",
        notebook="07-build-cache-and-speed.ipynb",
        starter=_CACHE_STARTER,
        task="In both stages, copy the package manifests, run the install, then copy the rest; "
             "the final stage copies no sources at all.",
        probe_paths=("/healthz",),
        rules=(
            install_before_sources(),
            no_ts_sources(),
            no_dev_packages(),
            non_root(_NON_ROOT_NODE),
            starts(),
            _HEALTH,
        ),
    ),
)
