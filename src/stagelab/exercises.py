"""Notebook exercises: a folder to edit (``start``), then a check cell (``check``) with specific feedback.

Used by every notebook's exercise (00-08). The learner edits
``notebooks/exercises/<name>/Dockerfile`` (``start`` creates it from the app's sources and a
starter Dockerfile, never overwriting an edit); ``check`` builds it, measures the image
(``stagelab.inspect``), optionally runs it and calls a few paths, and applies the
exercise's rules. In CI (env ``CI`` set, or ``STAGELAB_USE_SOLUTIONS=1``) ``check`` builds the
reference solution in ``notebooks/solutions/<name>/`` instead, so a notebook's check
cell proves the solution passes.

Rules are pure functions ``rule(report, build, facts) -> str | None``: ``None`` when the
image satisfies the rule, else one sentence of feedback that says what was measured and
what to change. ``evaluate(exercise, report, build, facts)`` applies them without an
engine, so unit tests can show that a wrong answer is rejected with that sentence.

Exercises of other notebooks: define ``Exercise`` objects in your own module and list
them in a module-level ``EXERCISES`` tuple; add the module name to ``EXERCISE_MODULES``
below (one line), or call ``register(exercise)`` from a notebook.
"""
from __future__ import annotations

import html
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StagelabError
from .units import human_size

__all__ = [
    "CheckResult", "Exercise", "Rule", "UnknownExercise", "check", "evaluate", "exercise_dir",
    "get", "names", "register", "solution_dir", "start", "use_solutions",
    # rule factories
    "binary_present", "file_absent", "file_present", "label_set", "max_size_vs_binary",
    "no_compilers", "no_secret", "no_shell", "non_root", "responds", "starts",
]

#: Modules that hold further exercises (a module-level ``EXERCISES`` tuple); missing ones are skipped.
EXERCISE_MODULES: tuple[str, ...] = ("stagelab.exercises_ts",)

#: The fake token the secret exercise and notebook 04 pass as a build arg (never a real secret).
DEMO_TOKEN = "stagelab-demo-token-8f3a61c2"

Facts = Mapping[str, Any]
#: ``rule(report, build, facts)`` -> feedback sentence, or None when satisfied.
Rule = Callable[[Any, Any, Facts], "str | None"]


class UnknownExercise(StagelabError):
    """``start``/``check`` was given a name no exercise has."""


# --- the exercise --------------------------------------------------------------------------


@dataclass(frozen=True)
class Exercise:
    """One exercise: where its sources come from, the starter Dockerfile, and its rules."""

    name: str                       # "02-go-to-scratch": folder name under notebooks/exercises/
    app: str                        # sources copied from apps/<app>/ (its Dockerfiles excluded)
    title: str
    starter: str                    # the starter Dockerfile text
    rules: tuple[Rule, ...]
    notebook: str = ""              # "02-multi-stage-go-to-scratch.ipynb"
    task: str = ""                  # one paragraph, shown by the notebook and by start()
    probe_paths: tuple[str, ...] = ()   # run the image and GET these (facts["GET <path>"])
    secret: str | None = None       # searched in files, history, env, labels (surface.secret_hits)
    build_args: Mapping[str, str] = field(default_factory=dict)
    builder: str = "classic"
    extra_files: Mapping[str, str] = field(default_factory=dict)  # more starter files (name -> text)
    on_build_failure: tuple[str, ...] = ()   # hints added when the build fails

    @property
    def variant(self) -> str:
        """The variant of the exercise image, in its tag and its label (``ex-<name>``)."""
        return f"ex-{self.name}"


_REGISTRY: dict[str, Exercise] = {}
_LOADED = False


def register(exercise: Exercise) -> Exercise:
    """Add (or replace) an exercise in the registry; returns it (usable in a notebook)."""
    _REGISTRY[exercise.name] = exercise
    return exercise


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    for ex in _GO_EXERCISES:
        _REGISTRY.setdefault(ex.name, ex)
    for module_name in EXERCISE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for ex in getattr(module, "EXERCISES", ()):
            _REGISTRY.setdefault(ex.name, ex)
    _LOADED = True


def names() -> list[str]:
    """All exercise names, sorted (notebook order)."""
    _load()
    return sorted(_REGISTRY)


def get(name: str | Exercise) -> Exercise:
    """The exercise called ``name`` (or ``name`` itself if it is an ``Exercise``)."""
    if isinstance(name, Exercise):
        return name
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownExercise(
            f"No exercise called {name!r}.",
            "use one of: " + ", ".join(sorted(_REGISTRY)),
        ) from None


# --- folders -------------------------------------------------------------------------------


def use_solutions() -> bool:
    """True in CI (env ``CI``) or with ``STAGELAB_USE_SOLUTIONS=1``: checks build the reference solution."""
    flag = os.environ.get("STAGELAB_USE_SOLUTIONS", "").strip().lower()
    if flag in ("0", "false", "no"):
        return False
    if flag in ("1", "true", "yes"):
        return True
    return bool(os.environ.get("CI", "").strip())


def exercise_dir(name: str) -> Path:
    """``notebooks/exercises/<name>/``: the learner's copy (STAGELAB_EXERCISES overrides the parent)."""
    from .naming import repo_root

    parent = os.environ.get("STAGELAB_EXERCISES")
    base = Path(parent) if parent else repo_root() / "notebooks" / "exercises"
    return base / name


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
    skip_dirs = {"lessons", "node_modules", "dist", ".git"}
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


def start(name: str, *, quiet: bool = False) -> Path:
    """Create ``notebooks/exercises/<name>/`` (app sources + starter Dockerfile); never overwrites edits.

    Returns the folder. Run again at any time: only missing files are (re)created; delete
    the Dockerfile to get the starter back.
    """
    ex = get(name)
    folder = exercise_dir(ex.name)
    folder.mkdir(parents=True, exist_ok=True)
    _copy_sources(ex, folder, overwrite=False)
    created = []
    for fname, text in {"Dockerfile": ex.starter, **dict(ex.extra_files)}.items():
        target = folder / fname
        if not target.exists():
            target.write_text(text)
            created.append(fname)
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


def _summary(report: Any, build: Any) -> str:
    if report is None:
        return ""
    profile = getattr(report, "profile", None) or getattr(build, "profile", None) or "?"
    return (f"image {report.name}: {human_size(report.size)} uncompressed, "
            f"user {report.user or 'root (not set)'}, profile {profile}")


def evaluate(name: str | Exercise, report: Any, build: Any = None, facts: Facts | None = None, *,
             solution: bool = False) -> CheckResult:
    """Apply an exercise's rules to measured values (pure: no engine; unit tests call it)."""
    ex = get(name)
    facts = dict(facts or {})
    feedback = []
    for rule in ex.rules:
        message = rule(report, build, facts)
        if message:
            feedback.append(message)
    return CheckResult(ex.name, not feedback, feedback, report, build, facts, solution, _summary(report, build))


def check(name: str | Exercise, *, solution: bool | None = None, progress: str | None = "auto") -> CheckResult:
    """Build the learner's Dockerfile (or the reference solution), measure it, apply the rules.

    ``solution=None`` means :func:`use_solutions` (True in CI). A failing build is a failed
    check whose feedback names the step and the fix, not an exception.
    """
    from .build import BuildFailed, build_context
    from .inspect import inspect
    from .naming import image_tag, lab_labels

    ex = get(name)
    if solution is None:
        solution = use_solutions()
    context = _solution_context(ex) if solution else start(ex.name, quiet=True)
    tag = image_tag(ex.app, ex.variant + ("-solution" if solution else ""))
    labels = lab_labels(app=ex.app, variant=ex.variant, exercise=ex.name)
    try:
        result = build_context(context, "Dockerfile", tag=tag, labels=labels, builder=ex.builder,
                               build_args=dict(ex.build_args), progress=progress)
    except BuildFailed as exc:
        feedback = [f"The build failed: {exc.message}"]
        if exc.fix:
            feedback.append(f"Fix: {exc.fix}")
        feedback.extend(ex.on_build_failure)
        return CheckResult(ex.name, False, feedback, None, None, {"build_error": exc.message}, solution)
    finally:
        if solution:
            shutil.rmtree(context, ignore_errors=True)
    report = inspect(result.tag, secret=ex.secret)
    facts: dict[str, Any] = {}
    if ex.probe_paths:
        facts.update(_probe(result.tag, ex.app, ex.probe_paths))
    return evaluate(ex, report, result, facts, solution=solution)


def _probe(image: str, app: str, paths: Sequence[str]) -> dict[str, Any]:
    """Run ``image``, GET each path through 127.0.0.1; facts: ``start_error`` or ``GET <path>`` -> (status, body)."""
    from .containers import run
    from .variants import load_app

    port = load_app(app).port
    facts: dict[str, Any] = {"start_error": None}
    try:
        with run(image, port=port) as container:
            for path in paths:
                facts[f"GET {path}"] = _response(container.get(path))
    except StagelabError as exc:
        facts["start_error"] = exc.message
    return facts


def _response(resp: Any) -> tuple[int, Any]:
    """(status, JSON body or text) from what ``RunningContainer.get`` returns."""
    status = getattr(resp, "status", None)
    if status is None:
        status = getattr(resp, "status_code", 0)
    body: Any = None
    for attr in ("json",):
        fn = getattr(resp, attr, None)
        if callable(fn):
            try:
                body = fn()
            except Exception:
                body = None
    if body is None:
        body = getattr(resp, "text", None) or getattr(resp, "body", None)
    return int(status or 0), body


# --- rule factories ------------------------------------------------------------------------
# Each returns a Rule; the messages say what was measured and what to change.


def _file(report: Any, path: str) -> Any:
    files = getattr(report, "files", None) or {}
    return files.get(path) or files.get(path.rstrip("/"))


def _size(report: Any) -> str:
    return f"{human_size(report.size)} (uncompressed)"


def no_compilers(hint: str = "did you start a new stage (FROM scratch) and COPY --from=builder only the binary?") -> Rule:
    """Fails when the final image still holds a compiler (go, gcc, tsc ...)."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        found = list(report.surface.compilers or [])
        if not found:
            return None
        return (f"Your image is {_size(report)} and still has {', '.join(found)}: the toolchain is "
                f"in the final stage — {hint}")

    return rule


def binary_present(path: str, hint: str = "") -> Rule:
    """Fails when the app's artefact is not at ``path`` in the final image."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        entry = _file(report, path)
        if entry is not None and getattr(entry, "type", "file") in ("file", "hardlink"):
            return None
        return (f"There is no file {path} in your image, so it has nothing to run. "
                + (hint or f"COPY the compiled program to {path} in the final stage."))

    return rule


def max_size_vs_binary(path: str, factor: float, hint: str) -> Rule:
    """Fails when the image is bigger than ``factor`` x the size of the file at ``path``."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        entry = _file(report, path)
        if entry is None or not entry.size:
            return None   # binary_present reports this
        if report.size <= factor * entry.size:
            return None
        return (f"Your image is {_size(report)} for a {human_size(entry.size)} binary "
                f"({report.size / entry.size:.1f} x; the target is at most {factor:g} x): {hint}")

    return rule


def no_shell(hint: str = "base the final stage on scratch or distroless, not on an OS image.") -> Rule:
    """Fails when a shell is found in the final image."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        shell = report.surface.shell
        if not shell:
            return None
        return f"Your final image has a shell ({shell}), so its final stage is an OS image: {hint}"

    return rule


def non_root(hint: str = "add `USER 65532:65532` (numeric: scratch has no /etc/passwd) to the final stage.") -> Rule:
    """Fails when the image runs as root (USER unset, 0 or root)."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        if not report.surface.runs_as_root:
            return None
        user = report.user or "not set"
        return f"Your image runs as root (USER {user}): {hint}"

    return rule


def file_present(path: str, hint: str) -> Rule:
    """Fails when ``path`` is missing from the final image."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        return None if _file(report, path) is not None else f"{path} is not in your image: {hint}"

    return rule


def file_absent(path: str, hint: str) -> Rule:
    """Fails when ``path`` is still in the final image."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        entry = _file(report, path)
        if entry is None:
            return None
        return f"{path} is still in your image (written by layer {entry.layer}): {hint}"

    return rule


def label_set(key: str, placeholder: str, hint: str) -> Rule:
    """Fails when label ``key`` is missing, empty or still ``placeholder``."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        value = (report.labels or {}).get(key, "").strip()
        if value and value != placeholder:
            return None
        shown = f"still {placeholder!r}" if value == placeholder else "missing"
        return f"The label {key} is {shown}: {hint}"

    return rule


def no_secret(hint_file: str, hint_history: str, *, redact: str | None = None) -> Rule:
    """Fails when the exercise's secret is found in the image (files, history, env, labels).

    ``redact``: the secret's value, replaced by ``***`` in the feedback.
    """

    def shown(text: str) -> str:
        text = " ".join(text.split())
        return text.replace(redact, "***") if redact else text

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        hits = list(report.surface.secret_hits or [])
        if not hits:
            return None
        files = [h for h in hits if h.startswith("/")]
        other = [h for h in hits if not h.startswith("/")]
        parts = []
        if files:
            parts.append(f"in the file {', '.join(shown(f) for f in files[:3])} — {hint_file.rstrip('.')}")
        if other:
            example = shown(other[0])[:90]
            parts.append(f"in {len(other)} history/metadata entr{'y' if len(other) == 1 else 'ies'} "
                         f"(e.g. {example}) — {hint_history.rstrip('.')}")
        return "The token is in your final image: " + "; and ".join(parts) + "."

    return rule


def starts(hint: str = "") -> Rule:
    """Fails when the container did not start (facts["start_error"])."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        error = facts.get("start_error")
        if not error:
            return None
        low = str(error).lower()
        if "no such file or directory" in low and "exec" in low:
            why = ("the kernel could not run the binary although it is there: a dynamically linked "
                   "binary needs a loader (/lib64/ld-linux-x86-64.so.2) the image does not have — "
                   "build with CGO_ENABLED=0.")
        else:
            why = hint or "read the error and the container's logs."
        return f"The container did not start ({error}): {why}"

    return rule


def responds(path: str, *, status: int = 200, expect: Mapping[str, Any] | None = None, hint: str = "") -> Rule:
    """Fails when GET ``path`` (from ``probe_paths``) did not answer ``status`` (and ``expect`` fields)."""

    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        if facts.get("start_error"):
            return None   # `starts` reports it
        got = facts.get(f"GET {path}")
        if got is None:
            return f"GET {path} was not tried (no answer recorded): {hint or 'does the container start?'}"
        code, body = got
        if code != status:
            detail = ""
            if isinstance(body, Mapping) and body.get("error"):
                detail = f" ({body['error']})"
            return f"GET {path} answered {code}{detail}, expected {status}: {hint}"
        for key, want in (expect or {}).items():
            have = body.get(key) if isinstance(body, Mapping) else None
            if have != want:
                return f"GET {path} answered {key}={have!r}, expected {want!r}: {hint}"
        return None

    return rule


# --- the Go exercises (notebooks 00-04) ----------------------------------------------------

_WARMUP_STARTER = """\
# Exercise 00: a first build. This Dockerfile has ONE typo: run the check cell, read the
# error box (it names the line), fix the word, and put your name in the authors label.
ARG GOLANG_ALPINE_IMAGE=golang:1.22-alpine

FROM ${GOLANG_ALPINE_IMAGE} AS builder
WORKDIR /src
ENV CGO_ENABLED=0 GOOS=linux
COPY go.mod ./
RUN go mod download
COPPY *.go ./
ARG VERSION=dev
RUN go build -trimpath -ldflags="-w -s -X main.version=${VERSION}" -o /out/server .

FROM scratch
LABEL org.opencontainers.image.authors="CHANGE-ME"
COPY --from=builder /out/server /server
USER 65532:65532
EXPOSE 8080
CMD ["/server"]
"""

_DELETE_STARTER = """\
# Exercise 01: can a single-stage image lose its toolchain by deleting it?
# TODO: after the build, add a RUN instruction that deletes the Go toolchain
#       (/usr/local/go) and the build cache (/root/.cache/go-build), keeping /app/server.
ARG GOLANG_IMAGE=golang:1.22

FROM ${GOLANG_IMAGE}
WORKDIR /app
COPY go.mod ./
COPY *.go ./
RUN go build -o server .
EXPOSE 8080
CMD ["./server"]
"""

_SCRATCH_STARTER = """\
# Exercise 02: turn this single-stage Dockerfile into a multi-stage one.
#  - name this stage `builder` (FROM ... AS builder) and build a static binary
#    (CGO_ENABLED=0, -ldflags="-w -s"); GOLANG_ALPINE_IMAGE is a smaller builder base;
#  - add a final stage FROM scratch that COPYs --from=builder only the binary to /server;
#  - run it as a non-root user (numeric: USER 65532:65532) and CMD ["/server"].
ARG GOLANG_IMAGE=golang:1.22
ARG GOLANG_ALPINE_IMAGE=golang:1.22-alpine

FROM ${GOLANG_IMAGE}
WORKDIR /app
COPY go.mod ./
COPY *.go ./
RUN go build -o server .
EXPOSE 8080
CMD ["./server"]
"""

_ESSENTIALS_STARTER = """\
# Exercise 03: this scratch image starts, but /time?tz=Europe/Paris fails, /fetch cannot
# verify any certificate, and /whoami has no user name. Copy what is missing from the
# builder stage into the final stage:
#  - the CA bundle /etc/ssl/certs/ca-certificates.crt;
#  - time zone data: /usr/local/go/lib/time/zoneinfo.zip + ENV ZONEINFO=<that path>
#    (or build with -tags timetzdata);
#  - an /etc/passwd (and /etc/group) that names the user 65532 "nonroot".
ARG GOLANG_ALPINE_IMAGE=golang:1.22-alpine

FROM ${GOLANG_ALPINE_IMAGE} AS builder
WORKDIR /src
ENV CGO_ENABLED=0 GOOS=linux
COPY go.mod ./
RUN go mod download
COPY *.go ./
ARG VERSION=dev
RUN go build -trimpath -ldflags="-w -s -X main.version=${VERSION}" -o /out/server .

FROM scratch
COPY --from=builder /out/server /server
USER 65532:65532
EXPOSE 8080
CMD ["/server"]
"""

_SECRET_STARTER = """\
# Exercise 04: this image leaks the GIT_TOKEN build argument (a stand-in for the token
# a build uses to fetch private modules). Keep the token in a builder stage and ship
# the binary on distroless static, as a non-root user, with no token anywhere in the
# final image (files, history, env, labels). The check passes GIT_TOKEN as a build arg.
ARG GOLANG_IMAGE=golang:1.22
ARG DISTROLESS_STATIC_IMAGE=gcr.io/distroless/static-debian12

FROM ${GOLANG_IMAGE}
ARG GIT_TOKEN
WORKDIR /src
RUN printf 'machine git.example.com login ci password %s\\n' "$GIT_TOKEN" > /root/.netrc
COPY go.mod ./
RUN go mod download
COPY *.go ./
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-w -s" -o /out/server .
EXPOSE 8080
CMD ["/out/server"]
"""

_GO_EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        name="00-first-build",
        app="go-server",
        title="A first build: read the error, fix it, label the image",
        notebook="00-start-here.ipynb",
        starter=_WARMUP_STARTER,
        task="Run the check: the build fails on a typo the error box names. Fix it, set the "
             "authors label to your name, and check again.",
        rules=(
            binary_present("/server"),
            label_set("org.opencontainers.image.authors", "CHANGE-ME",
                      'put your name in LABEL org.opencontainers.image.authors="..."'),
        ),
        on_build_failure=("Hint: the error names the line and the word; Dockerfile instructions "
                          "are FROM, RUN, COPY, ENV, ... (COPY has one P).",),
    ),
    Exercise(
        name="01-delete-the-toolchain",
        app="go-server",
        title="Delete the toolchain in a single stage (and measure what it buys)",
        notebook="01-the-single-stage-problem.ipynb",
        starter=_DELETE_STARTER,
        task="Add a RUN after the build that deletes /usr/local/go and /root/.cache/go-build; "
             "keep /app/server. Then compare the image's size with `single`.",
        rules=(
            binary_present("/app/server", "keep the binary: delete only the toolchain and caches."),
            file_absent("/usr/local/go/bin/go",
                        "add `RUN rm -rf /usr/local/go /root/.cache/go-build` after the `go build` step."),
            file_absent("/root/.cache/go-build",
                        "also delete the build cache /root/.cache/go-build in that RUN."),
        ),
    ),
    Exercise(
        name="02-go-to-scratch",
        app="go-server",
        title="From single stage to builder -> scratch",
        notebook="02-multi-stage-go-to-scratch.ipynb",
        starter=_SCRATCH_STARTER,
        task="Split the Dockerfile into a builder stage and a final FROM scratch stage that "
             "copies only the static binary to /server; run as 65532:65532.",
        probe_paths=("/healthz",),
        rules=(
            no_compilers(),
            binary_present("/server", "COPY --from=builder <the binary> /server in the final stage."),
            no_shell("the last FROM defines the image: make it `FROM scratch`."),
            max_size_vs_binary("/server", 1.05, "something besides the binary was copied into the final stage."),
            non_root(),
            starts(),
            responds("/healthz", expect={"status": "ok"}, hint="the server must listen on :8080 (CMD [\"/server\"])."),
        ),
    ),
    Exercise(
        name="03-scratch-essentials",
        app="go-server",
        title="Make scratch livable: CA bundle, time zones, a named non-root user",
        notebook="03-living-with-scratch.ipynb",
        starter=_ESSENTIALS_STARTER,
        task="Copy the CA bundle, Go's zoneinfo.zip (with ENV ZONEINFO) and a passwd/group "
             "naming 65532 'nonroot' from the builder into the scratch stage.",
        probe_paths=("/time?tz=Europe/Paris", "/whoami"),
        rules=(
            no_compilers(),
            file_present("/etc/ssl/certs/ca-certificates.crt",
                         "COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ (outbound HTTPS needs it)."),
            file_present("/etc/passwd",
                         "write one in the builder (echo 'nonroot:x:65532:65532::/home/nonroot:/sbin/nologin' > /out/passwd) and COPY it to /etc/passwd."),
            non_root(),
            starts(),
            responds("/time?tz=Europe/Paris", expect={"tz": "Europe/Paris"},
                     hint="no time zone data: COPY --from=builder /usr/local/go/lib/time/zoneinfo.zip and set "
                          "ENV ZONEINFO to its path (or build with -tags timetzdata)."),
            responds("/whoami", expect={"user": "nonroot"},
                     hint="the passwd file must map uid 65532 to the name nonroot, and USER must be 65532."),
        ),
    ),
    Exercise(
        name="04-keep-the-secret",
        app="go-server",
        title="Keep a build secret out of the final image (distroless, non-root)",
        notebook="04-distroless-and-attack-surface.ipynb",
        starter=_SECRET_STARTER,
        task="Use the token only in a builder stage; the final stage FROM distroless static "
             "copies only the binary and runs as 65532:65532.",
        secret=DEMO_TOKEN,
        build_args={"GIT_TOKEN": DEMO_TOKEN},
        probe_paths=("/healthz",),
        rules=(
            no_secret("the stage that writes the token must not be the final one: write it in the "
                      "builder and COPY --from=builder only the binary",
                      "declare `ARG GIT_TOKEN` only in the builder stage: an ARG used by a RUN of the "
                      "final stage is recorded in its history", redact=DEMO_TOKEN),
            no_compilers("did you start the final stage FROM ${DISTROLESS_STATIC_IMAGE} and COPY --from=builder only the binary?"),
            no_shell("make the last stage `FROM ${DISTROLESS_STATIC_IMAGE}` (declare that ARG before the first FROM)."),
            non_root("add `USER 65532:65532` (distroless calls it nonroot) to the final stage."),
            binary_present("/server"),
            starts(),
            responds("/healthz", expect={"status": "ok"}, hint="the server must listen on :8080 (CMD [\"/server\"])."),
        ),
    ),
)
