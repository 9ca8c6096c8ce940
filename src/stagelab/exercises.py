"""Notebook exercises: a folder to edit (``start``), hints (``hint``), a check cell (``check``).

Used by every notebook's exercise (00-07). An exercise is data, in
``notebooks/starters/<name>/``: the starter ``Dockerfile`` and ``exercise.toml`` (title, app,
task, probe paths, tiered hints); its reference solution is ``notebooks/solutions/<name>/``.
An instructor changes either without touching Python. The only Python per exercise is its
line in :data:`RULES`, the table of which rules (``stagelab.rules``) it applies.

``start`` copies the app's sources and the starter into ``notebooks/exercises/<name>/``
(never overwriting an edit); ``hint`` gives the next hint tier (nudge, concept, solution
path), remembered in the learner's progress file; ``check`` applies the static rules to the
Dockerfile, then builds, measures (``stagelab.inspect``, ``stagelab.facts``) and applies the
rest. In CI (env ``CI`` set, or ``STAGELAB_USE_SOLUTIONS=1``) ``check`` builds the reference
solution instead, so a notebook's check cell proves the solution passes.
"""
from __future__ import annotations

import html
import os
import shutil
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import facts as F
from . import rules as R
from .dockerfile import Dockerfile
from .errors import StagelabError
from .hints import HINT_TIERS, Hint, hint
from .journal import read_progress, record_exercise
from .rules import DEMO_TOKEN, Rule
from .units import human_size

__all__ = [
    "DEMO_TOKEN", "HINT_TIERS", "RULES", "CheckResult", "Exercise", "Hint", "UnknownExercise", "check", "evaluate",
    "evaluate_dockerfile", "exercise_dir", "get", "hint", "names", "read_progress", "solution_dir", "start",
    "starter_dir", "use_solutions",
]

Facts = Mapping[str, Any]


class UnknownExercise(StagelabError):
    """``start``/``check``/``hint`` was given a name no exercise has."""


class ExerciseDataError(StagelabError):
    """An ``exercise.toml`` is missing, unreadable or lacks a field."""


# --- the rule table: which rules each exercise applies (the one place) ----------------------

_NON_ROOT_NODE = ("add `USER node` (uid 1000, which the node images already have) to the FINAL stage: "
                  "a USER set in the builder stage does not carry over to the next FROM.")
_HEALTH_GO = R.responds("/healthz", expect={"status": "ok"},
                        hint='the server must listen on :8080 (CMD ["/server"]).')
_HEALTH_TS = R.responds("/healthz", expect={"status": "ok"},
                        hint='the server listens on $PORT (3000): keep `CMD ["node", "dist/index.js"]`.')
_CA = "/etc/ssl/certs/ca-certificates.crt"

RULES: dict[str, tuple[Rule, ...]] = {
    "00-first-build": (
        R.binary_present("/server"),
        R.label_set("org.opencontainers.image.authors", "CHANGE-ME",
                    'put your name in LABEL org.opencontainers.image.authors="..."'),
    ),
    "01-delete-the-toolchain": (
        R.single_stage("Keep ONE stage and add `RUN rm -rf /usr/local/go /root/.cache/go-build` after the "
                       "build: this exercise measures what deleting inside the same image buys."),
        R.binary_present("/app/server", "keep the binary: delete only the toolchain and caches."),
        R.file_absent("/usr/local/go/bin/go",
                      "add `RUN rm -rf /usr/local/go /root/.cache/go-build` after the `go build` step."),
        R.file_absent("/root/.cache/go-build", "also delete the build cache /root/.cache/go-build in that RUN."),
    ),
    "02-go-to-scratch": (
        R.no_compilers(),
        R.binary_present("/server", "COPY --from=builder <the binary> /server in the final stage."),
        R.no_shell("the last FROM defines the image: make it `FROM scratch`."),
        R.max_size_vs_binary("/server", 1.05, "something besides the binary was copied into the final stage."),
        R.stripped("/server"),
        R.non_root(),
        R.starts(),
        _HEALTH_GO,
    ),
    "03-scratch-essentials": (
        R.no_compilers(),
        R.file_present(_CA, f"COPY --from=builder {_CA} /etc/ssl/certs/ (outbound HTTPS needs it)."),
        R.ca_bundle_parses(_CA, f"copy the builder's real bundle (COPY --from=builder {_CA} {_CA}), "
                                "not an empty or hand-made file."),
        R.file_present("/etc/passwd",
                       "write one in the builder (echo 'nonroot:x:65532:65532::/home/nonroot:/sbin/nologin' "
                       "> /out/passwd) and COPY it to /etc/passwd."),
        R.non_root(),
        R.starts(),
        R.fetch_works(f"the program reads {_CA}: copy the builder's bundle to exactly that path."),
        R.responds("/time?tz=Europe/Paris", expect={"tz": "Europe/Paris"},
                   hint="no time zone data: COPY --from=builder /usr/local/go/lib/time/zoneinfo.zip and set "
                        "ENV ZONEINFO to its path (or build with -tags timetzdata)."),
        R.responds("/whoami", expect={"user": "nonroot"},
                   hint="the passwd file must map uid 65532 to the name nonroot, and USER must be 65532."),
    ),
    "04-keep-the-secret": (
        R.final_base("DISTROLESS_STATIC_IMAGE", "distroless",
                     "make the last stage `FROM ${DISTROLESS_STATIC_IMAGE}` (declare that ARG before the first "
                     "FROM); scratch has no CA bundle, time zones or passwd that distroless brings."),
        R.secret_mount("git_token", "in the builder, `RUN --mount=type=secret,id=git_token,required=true ...` "
                                    "reads the token from /run/secrets/git_token; drop `ARG GIT_TOKEN`."),
        R.no_secret("the stage that writes the token must not be the final one, and with a secret mount the "
                    "token is never written to a layer at all",
                    "do not declare `ARG GIT_TOKEN`: a build argument used by a RUN is recorded in the "
                    "history; receive the token with RUN --mount=type=secret", redact=DEMO_TOKEN),
        R.fails_without_secret("git_token"),
        R.no_compilers("did you start the final stage FROM ${DISTROLESS_STATIC_IMAGE} and COPY --from=builder "
                       "only the binary?"),
        R.no_shell("make the last stage `FROM ${DISTROLESS_STATIC_IMAGE}` (declare that ARG before the first FROM)."),
        R.non_root("add `USER 65532:65532` (distroless calls it nonroot) to the final stage."),
        R.binary_present("/server"),
        R.starts(),
        _HEALTH_GO,
    ),
    "05-ts-multi-stage": (
        R.copies_from_earlier_stage("Add a `FROM ${NODE_IMAGE} AS builder` stage that compiles, and a final "
                                    "stage FROM ${NODE_SLIM_IMAGE} that installs with `npm ci --omit=dev` and "
                                    "takes only dist/ with `COPY --from=builder /app/dist ./dist`."),
        R.no_dev_packages(),
        R.no_dev_packages_in_layers(),
        R.no_ts_sources(),
        R.compiled_entry(),
        R.no_compilers("the final stage should start FROM ${NODE_SLIM_IMAGE}, not the full node image "
                       "(which has gcc and make for native modules)."),
        R.non_root(_NON_ROOT_NODE),
        R.starts(),
        _HEALTH_TS,
    ),
    "06-production-last": (
        R.last_stage_is("production", keep=("base", "builder", "test", "development")),
        R.no_dev_packages("the default build gave a stage that runs `npm ci` with dev dependencies: "
                          "the last stage of the file must be `production`."),
        R.no_ts_sources(),
        R.non_root(_NON_ROOT_NODE),
        R.starts(),
        _HEALTH_TS,
    ),
    "07-cache-friendly-order": (
        R.install_before_sources(),
        R.no_ts_sources(),
        R.no_dev_packages(),
        R.non_root(_NON_ROOT_NODE),
        R.starts(),
        _HEALTH_TS,
    ),
}


# --- the exercise (read from notebooks/starters/<name>/exercise.toml) -------------------------


@dataclass(frozen=True)
class Exercise:
    """One exercise: its data (``exercise.toml``), its starter folder and its rules."""

    name: str                       # "02-go-to-scratch": folder name under notebooks/starters/ and exercises/
    app: str                        # sources copied from apps/<app>/ (its Dockerfiles excluded)
    title: str
    rules: tuple[Rule, ...]
    notebook: str = ""
    task: str = ""
    hints: Mapping[str, str] = field(default_factory=dict)   # nudge, concept, solution
    builder: str | None = None       # None: the engine's default builder (STAGELAB_BUILDER); "buildkit" for secrets
    secret_build_arg: str | None = None  # a build arg that also receives DEMO_TOKEN (to measure a leak)
    on_build_failure: tuple[str, ...] = ()

    @property
    def probe_paths(self) -> tuple[str, ...]:
        """The paths the check GETs from the running image: those its rules read (``GET <path>`` facts)."""
        return tuple(dict.fromkeys(need[4:] for rule in self.rules for need in rule.needs
                                   if need.startswith("GET ") and need != F.FETCH))

    @property
    def secret_id(self) -> str | None:
        """The BuildKit ``--secret`` id the check passes DEMO_TOKEN as: the one its rules name."""
        return next((rule.secret for rule in self.rules if rule.secret), None)

    @property
    def variant(self) -> str:
        """The variant of the exercise image, in its tag and its label (``ex-<name>``)."""
        return f"ex-{self.name}"

    @property
    def starter(self) -> str:
        """The starter Dockerfile's text (``notebooks/starters/<name>/Dockerfile``)."""
        return (starter_dir(self.name) / "Dockerfile").read_text()

    @property
    def secret(self) -> str | None:
        """The value searched in the image (files, history, env, labels), if the exercise has a secret."""
        return DEMO_TOKEN if self.secret_id or self.secret_build_arg else None

    @property
    def build_args(self) -> dict[str, str]:
        return {self.secret_build_arg: DEMO_TOKEN} if self.secret_build_arg else {}

    @property
    def secrets(self) -> dict[str, str]:
        return {self.secret_id: DEMO_TOKEN} if self.secret_id else {}


def starters_root() -> Path:
    """``notebooks/starters/``: one folder per exercise."""
    from .naming import repo_root

    return repo_root() / "notebooks" / "starters"


def starter_dir(name: str) -> Path:
    """``notebooks/starters/<name>/``: the starter Dockerfile and ``exercise.toml``."""
    return starters_root() / name


#: The fields of ``exercise.toml`` (anything else is a mistake the loader names).
TOML_FIELDS = frozenset({"title", "app", "notebook", "task", "hints", "builder", "secret_build_arg",
                         "on_build_failure"})


def _load(name: str) -> Exercise:
    path = starter_dir(name) / "exercise.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExerciseDataError(f"Cannot read {path}: {exc}", "restore it from git (`git checkout -- <file>`)") from None
    missing = [k for k in ("title", "app") if k not in data]
    tiers = [t for t in HINT_TIERS if t not in (data.get("hints") or {})]
    if missing or tiers:
        raise ExerciseDataError(f"{path} lacks {', '.join(missing + [f'hints.{t}' for t in tiers])}.",
                                "add the field (see another exercise.toml in notebooks/starters/)")
    unknown = sorted(set(data) - TOML_FIELDS)
    if unknown:
        raise ExerciseDataError(f"{path} has field(s) the lab does not read: {', '.join(unknown)}.",
                                f"remove them (known: {', '.join(sorted(TOML_FIELDS))}); what the check runs, "
                                "GETs and searches comes from its rules (stagelab.exercises.RULES)")
    return Exercise(
        name=name, app=data["app"], title=data["title"], rules=RULES[name], notebook=data.get("notebook", ""),
        task=" ".join(data.get("task", "").split()), hints=dict(data["hints"]),
        builder=data.get("builder"),
        secret_build_arg=data.get("secret_build_arg"),
        on_build_failure=tuple(data.get("on_build_failure", ())),
    )


def names() -> list[str]:
    """All exercise names, sorted (notebook order)."""
    return sorted(RULES)


def get(name: str | Exercise) -> Exercise:
    """The exercise called ``name`` (or ``name`` itself if it is an ``Exercise``)."""
    if isinstance(name, Exercise):
        return name
    if name not in RULES:
        raise UnknownExercise(f"No exercise called {name!r}.", "use one of: " + ", ".join(names()))
    return _load(name)


# --- folders -------------------------------------------------------------------------------


def use_solutions() -> bool:
    """True in CI (env ``CI``) or with ``STAGELAB_USE_SOLUTIONS=1``: checks build the reference solution."""
    flag = os.environ.get("STAGELAB_USE_SOLUTIONS", "").strip().lower()
    if flag in ("0", "false", "no"):
        return False
    if flag in ("1", "true", "yes"):
        return True
    return bool(os.environ.get("CI", "").strip())


def exercises_root() -> Path:
    """``notebooks/exercises/``: the learner's folders (``STAGELAB_EXERCISES`` overrides it)."""
    from .naming import repo_root

    parent = os.environ.get("STAGELAB_EXERCISES")
    return Path(parent) if parent else repo_root() / "notebooks" / "exercises"


def exercise_dir(name: str) -> Path:
    """``notebooks/exercises/<name>/``: the learner's copy of one exercise."""
    return exercises_root() / name


def solution_dir(name: str) -> Path:
    """``notebooks/solutions/<name>/``: the reference solution (a Dockerfile, maybe more files)."""
    from .naming import repo_root

    return repo_root() / "notebooks" / "solutions" / name


def _app_sources(app: str) -> list[Path]:
    """The app's files an exercise needs: everything but its Dockerfiles, variants.toml and lessons/."""
    from .naming import repo_root

    root = repo_root() / "apps" / app
    if not root.is_dir():
        raise StagelabError(f"No app folder {root}.", "run the notebook from the lab's checkout")
    from .workspace import SKIPPED   # one list of the host artefacts a build must never see

    skip_dirs = set(SKIPPED)
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in skip_dirs for part in rel.parts):
            continue
        if path.is_file() and not path.name.startswith("Dockerfile") and path.name != "variants.toml":
            out.append(path)
    return out


def _copy_sources(ex: Exercise, dest: Path, *, overwrite: bool) -> None:
    from .naming import repo_root

    root = repo_root() / "apps" / ex.app
    for src in _app_sources(ex.app):
        target = dest / src.relative_to(root)
        if target.exists() and not overwrite:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _starter_files(name: str) -> list[Path]:
    """The starter's files a learner edits: everything in its folder but ``exercise.toml``."""
    root = starter_dir(name)
    return [p for p in sorted(root.rglob("*")) if p.is_file() and p.name != "exercise.toml"]


def start(name: str, *, quiet: bool = False) -> Path:
    """Create ``notebooks/exercises/<name>/`` (app sources + the starter's files); never overwrites edits.

    Returns the folder. Run again at any time: only missing files are (re)created; delete
    the Dockerfile to get the starter back.
    """
    ex = get(name)
    folder = exercise_dir(ex.name)
    folder.mkdir(parents=True, exist_ok=True)
    _copy_sources(ex, folder, overwrite=False)
    created = []
    for src in _starter_files(ex.name):
        target = folder / src.relative_to(starter_dir(ex.name))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            created.append(target.name)
    if not quiet:
        state = "created" if created else "kept your edits in"
        try:
            from .naming import repo_root

            shown = folder.relative_to(repo_root())
        except ValueError:
            shown = folder
        print(f"Exercise {ex.name}: {state} {shown}/ — edit {shown}/Dockerfile, then run the check cell.")
    return folder


def _solution_context(ex: Exercise) -> Path:
    """A new build folder: the app's sources with the reference solution's files on top.

    One folder per check (the caller removes it), so two checks of the same exercise at
    once, in two notebooks or two test workers, never build from a half-copied folder.
    """
    from .naming import cache_dir, namespace

    sol = solution_dir(ex.name)
    if not (sol / "Dockerfile").is_file():
        raise StagelabError(
            f"No reference solution for exercise {ex.name} ({sol}/Dockerfile).",
            "unset CI / STAGELAB_USE_SOLUTIONS to check your own Dockerfile",
        )
    parent = cache_dir() / "exercises" / namespace()
    parent.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix=f"{ex.name}-solution-", dir=parent))
    _copy_sources(ex, dest, overwrite=True)
    for src in sorted(sol.rglob("*")):
        if src.is_file():
            target = dest / src.relative_to(sol)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


# --- the result ----------------------------------------------------------------------------


@dataclass
class CheckResult:
    """The answer of a check cell: passed or not, and why (shown as a green or red box)."""

    name: str
    passed: bool
    feedback: list[str]                 # failing rules' sentences (empty when passed)
    report: Any = None                  # stagelab.inspect.ImageReport | None (None: build failed)
    build: Any = None                   # stagelab.build.BuildResult | None
    facts: dict[str, Any] = field(default_factory=dict)
    solution: bool = False              # True: the reference solution was checked
    summary: str = ""                   # what was measured, one line

    def raise_if_failed(self) -> None:
        """Raise ``AssertionError`` with the feedback (the check cell's last line)."""
        if not self.passed:
            raise AssertionError(f"exercise {self.name} not passed yet:\n- " + "\n- ".join(self.feedback))

    def __str__(self) -> str:
        who = "reference solution" if self.solution else "your Dockerfile"
        head = f"{'PASSED' if self.passed else 'NOT YET'}: exercise {self.name} ({who})"
        lines = [head] + ([f"  {self.summary}"] if self.summary else [])
        lines += [f"  - {line}" for line in self.feedback]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        colour, bg, word = ("#1e8449", "#eafaf1", "Passed") if self.passed else ("#c0392b", "#fdecea", "Not yet")
        who = "the reference solution (CI)" if self.solution else "your Dockerfile"
        items = "".join(f"<li>{esc(line)}</li>" for line in self.feedback)
        summary = f"<div>{esc(self.summary)}</div>" if self.summary else ""
        return (
            f'<div class="stagelab-check" style="border-left:4px solid {colour};background:{bg};'
            f'padding:8px 12px;margin:4px 0;font-family:sans-serif">'
            f"<b>{word}</b>: exercise <code>{esc(self.name)}</code>, checked on {who}.{summary}"
            f"{'<ul>' + items + '</ul>' if items else ''}</div>"
        )


# --- applying the rules -------------------------------------------------------------------------


def _summary(report: Any, build: Any) -> str:
    if report is None:
        return ""
    profile = getattr(report, "profile", None) or getattr(build, "profile", None) or "?"
    return (f"image {report.name}: {human_size(report.size)} uncompressed, "
            f"user {report.user or 'root (not set)'}, profile {profile}")


def evaluate(name: str | Exercise, report: Any, build: Any = None, facts: Facts | None = None, *,
             solution: bool = False) -> CheckResult:
    """Apply an exercise's rules to measured values (pure: no engine; unit tests call it).

    Static rules run when ``facts`` holds the parsed Dockerfile (``facts["dockerfile"]``);
    rules on the image run when ``report`` is given.
    """
    ex = get(name)
    facts = dict(facts or {})
    feedback = []
    for rule in ex.rules:
        if rule.static and F.DOCKERFILE not in facts:
            continue
        if not rule.static and report is None:
            continue
        message = rule(report, build, facts)
        if message:
            feedback.append(message)
    return CheckResult(ex.name, not feedback, feedback, report, build, facts, solution, _summary(report, build))


def context_files(context: Path) -> list[str]:
    """Relative paths of the files in a build context (what COPY patterns can match)."""
    return sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file())


def evaluate_dockerfile(name: str | Exercise, text: str, files: list[str] | None = None) -> CheckResult:
    """Apply only the static rules to a Dockerfile's text (no engine; the wrong-answer corpus uses it).

    ``files``: the build context's files (default: the exercise's app sources).
    """
    ex = get(name)
    if files is None:
        from .naming import repo_root

        root = repo_root() / "apps" / ex.app
        files = [str(p.relative_to(root)) for p in _app_sources(ex.app)]
    return evaluate(ex, None, None, {F.DOCKERFILE: F.read_dockerfile(text), F.CONTEXT_FILES: files})


def _needs(ex: Exercise) -> set[str]:
    return set().union(*(rule.needs for rule in ex.rules))


def _measure(ex: Exercise, tag: str, report: Any) -> dict[str, Any]:
    """The facts the exercise's image rules need (one container run, one export read, one TLS lab)."""
    from .naming import image_tag

    needs = _needs(ex)
    facts: dict[str, Any] = {}
    if ex.probe_paths and (F.START_ERROR in needs or any(n.startswith("GET ") for n in needs)):
        facts.update(F.probe(tag, ex.app, ex.probe_paths))
    paths = sorted({p for rule in ex.rules for p in rule.paths})
    layer_packages: list[str] = []

    def seen(path: str) -> None:
        package = F.package_of(path)
        if package in R.DEV_ONLY_PACKAGES and package not in layer_packages:
            layer_packages.append(package)

    if paths or F.LAYER_PACKAGES in needs:
        contents = F.read_files(tag, paths, seen=seen if F.LAYER_PACKAGES in needs else None)
        if F.LAYER_PACKAGES in needs:
            facts[F.LAYER_PACKAGES] = layer_packages
        for rule in ex.rules:
            for path in rule.paths:
                if path not in contents:
                    continue
                try:
                    if F.ELF_SECTIONS in rule.needs:
                        facts.setdefault(F.ELF_SECTIONS, {})[path] = F.elf_sections(contents[path])
                    if F.CA_CERTIFICATES in rule.needs:
                        facts[F.CA_CERTIFICATES] = F.count_certificates(contents[path])
                except ValueError as exc:
                    if F.ELF_SECTIONS in rule.needs:
                        facts.setdefault(F.ELF_SECTIONS, {})[path] = str(exc)
                    else:
                        facts[F.CA_CERTIFICATES] = str(exc)
        bundle = next((contents[p] for r in ex.rules if F.CA_CERTIFICATES in r.needs for p in r.paths
                       if p in contents), None)
        if (F.FETCH in needs and bundle is not None and not facts.get(F.START_ERROR)
                and F.usable_bundle(facts.get(F.CA_CERTIFICATES))):   # an unusable bundle is one failure, not two
            try:
                facts[F.FETCH] = F.fetch_through_lab(tag, ex.app, bundle, image_tag(ex.app, ex.variant + "-ca"))
            except StagelabError as exc:
                facts[F.FETCH] = (0, {"error": exc.message})
    return facts


def _build_without_secret(ex: Exercise, context: Path, dockerfile: Dockerfile) -> str:
    """``"failed"`` or ``"succeeded"``: a BuildKit build, no cache, of the stage that mounts the secret, without it."""
    from .build import BuildFailed, build_context
    from .engine import client
    from .naming import image_tag, lab_labels

    stage = next((st.name for st in dockerfile.stages if ex.secret_id in F.secret_mounts(st)), None)
    tag = image_tag(ex.app, ex.variant + "-nosecret")
    try:
        build_context(context, "Dockerfile", tag=tag, target=stage, builder="buildkit", nocache=True,
                      labels=lab_labels(app=ex.app, variant=ex.variant, exercise=ex.name), progress="none")
    except BuildFailed:
        return "failed"
    client().images.remove(tag)   # the lab's own image, built just now
    return "succeeded"


def check(name: str | Exercise, *, solution: bool | None = None, progress: str | None = "auto") -> CheckResult:
    """Check the learner's Dockerfile (or the reference solution): static rules, then build, measure, rules.

    ``solution=None`` means :func:`use_solutions` (True in CI). A Dockerfile that a static
    rule rejects is not built. A failing build is a failed check whose feedback names the
    step and the fix, not an exception. The result is recorded in the learner's progress file.
    """
    ex = get(name)
    if solution is None:
        solution = use_solutions()
    context = _solution_context(ex) if solution else start(ex.name, quiet=True)
    try:
        result = _check_in(ex, context, solution, progress)
    finally:
        if solution:
            shutil.rmtree(context, ignore_errors=True)
    if not solution:
        record_exercise(ex.name, result.passed)
    return result


def _check_in(ex: Exercise, context: Path, solution: bool, progress: str | None) -> CheckResult:
    from .build import BuildFailed, build_context
    from .inspect import inspect
    from .naming import image_tag, lab_labels

    text = (context / "Dockerfile").read_text(errors="replace")
    facts: dict[str, Any] = {F.DOCKERFILE: F.read_dockerfile(text),
                             F.CONTEXT_FILES: context_files(context)}
    static = evaluate(ex, None, None, facts, solution=solution)
    if not static.passed:
        static.feedback.append("(Checked from the Dockerfile alone; the image was not built.)")
        return static
    tag = image_tag(ex.app, ex.variant + ("-solution" if solution else ""))
    labels = lab_labels(app=ex.app, variant=ex.variant, exercise=ex.name)
    try:
        result = build_context(context, "Dockerfile", tag=tag, labels=labels, builder=ex.builder,
                               build_args=ex.build_args, secrets=ex.secrets or None, progress=progress)
    except BuildFailed as exc:
        feedback = [f"The build failed: {exc.message}"]
        if exc.fix:
            feedback.append(f"Fix: {exc.fix}")
        feedback.extend(ex.on_build_failure)
        return CheckResult(ex.name, False, feedback, None, None, {**facts, "build_error": exc.message}, solution)
    if F.WITHOUT_SECRET in _needs(ex) and ex.secret_id:
        facts[F.WITHOUT_SECRET] = _build_without_secret(ex, context, facts[F.DOCKERFILE])
    report = inspect(result.tag, secret=ex.secret)
    facts.update(_measure(ex, result.tag, report))
    return evaluate(ex, report, result, facts, solution=solution)
