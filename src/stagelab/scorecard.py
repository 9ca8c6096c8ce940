"""Notebook 08 ("your own project"): check a project folder, then write a Markdown scorecard.

``Challenge.from_parameters(project_dir, dockerfile_a, dockerfile_b, target_a, target_b)``
checks the folder and its Dockerfile(s) and names the two images; ``preflight(challenge)``
makes sure every base image is local, pullable, or given by the lab's profile, before a
build starts; ``scorecard_markdown(challenge, comparison, results)`` turns the measured
comparison into a table a learner can paste into a pull request; ``write_scorecard``
saves it. The notebook builds both images itself with ``stagelab.build.build_context``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import StagelabError
from .sizes import SIZE_LABEL
from .units import human_size

#: Dockerfile names tried, in order, when a folder is given without a Dockerfile name.
DOCKERFILE_GLOBS = ("Dockerfile", "Dockerfile.*", "*.Dockerfile", "dockerfile")


class NoProject(StagelabError):
    """The project folder does not exist or is not a folder."""


class NoDockerfile(StagelabError):
    """The project folder has no Dockerfile of the name given (or none at all)."""


class NeedsRegistry(StagelabError):
    """A base image is not on this engine and cannot be pulled (no registry reachable)."""


@dataclass(frozen=True)
class Candidate:
    """One of the two images of the challenge: which Dockerfile, which target, which tag."""

    label: str               # "A" or "B"
    dockerfile: Path         # absolute path
    target: str | None
    app: str                 # the lab's app label: challenge-<folder name>
    variant: str             # a-<dockerfile or target>, b-...
    tag: str

    @property
    def title(self) -> str:
        """``Dockerfile.single`` or ``Dockerfile --target production``."""
        name = self.dockerfile.name
        return f"{name} --target {self.target}" if self.target else name

    def labels(self, profile: str | None = None) -> dict[str, str]:
        """The lab's labels for this image (so ``stagelab clean`` removes it)."""
        from .naming import lab_labels

        return lab_labels(app=self.app, variant=self.variant, profile=profile)


@dataclass(frozen=True)
class Challenge:
    """A project folder and the two images to compare (A: the "before", B: the "after")."""

    project: Path
    a: Candidate
    b: Candidate

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def candidates(self) -> tuple[Candidate, Candidate]:
        return (self.a, self.b)

    @classmethod
    def from_parameters(
        cls,
        project_dir: str | Path,
        dockerfile_a: str | None = "Dockerfile",
        dockerfile_b: str | None = None,
        target_a: str | None = None,
        target_b: str | None = None,
    ) -> Challenge:
        """Check the notebook's parameters; raise a clear ``StagelabError`` when they do not fit."""
        project = Path(project_dir).expanduser()
        if not project.is_dir():
            raise NoProject(
                f"The project folder {project} does not exist (or is not a folder).",
                "set project_dir in the parameters cell to the folder that holds your Dockerfile",
            )
        project = project.resolve()
        dockerfile_a = dockerfile_a or "Dockerfile"
        dockerfile_b = dockerfile_b or dockerfile_a
        target_a, target_b = target_a or None, target_b or None
        path_a = _dockerfile(project, dockerfile_a, "dockerfile_a")
        path_b = _dockerfile(project, dockerfile_b, "dockerfile_b")
        if path_a == path_b and target_a == target_b:
            raise StagelabError(
                f"A and B are the same build ({dockerfile_a}"
                + (f" --target {target_a}" if target_a else "") + "): there is nothing to compare.",
                "give two Dockerfiles (dockerfile_a, dockerfile_b), or one Dockerfile and two "
                "targets (target_a, target_b)",
            )
        for path, target, param in ((path_a, target_a, "target_a"), (path_b, target_b, "target_b")):
            if target:
                _check_target(path, target, param)
        app = "challenge-" + project.name
        return cls(project, _candidate("A", path_a, target_a, app), _candidate("B", path_b, target_b, app))


def _candidate(label: str, path: Path, target: str | None, app: str) -> Candidate:
    from .naming import image_tag

    stem = target or (path.name.split(".", 1)[1] if "." in path.name else path.name)
    variant = re.sub(r"[^a-z0-9-]+", "-", f"{label}-{stem}".lower()).strip("-")
    return Candidate(label, path, target, app, variant, image_tag(app, variant))


def dockerfiles_in(project: Path) -> list[str]:
    """Dockerfile-looking files of a folder (for messages)."""
    found: list[str] = []
    for pattern in DOCKERFILE_GLOBS:
        for p in sorted(project.glob(pattern)):
            if p.is_file() and p.name not in found:
                found.append(p.name)
    return found


def _dockerfile(project: Path, name: str, param: str) -> Path:
    path = Path(name).expanduser()
    path = path if path.is_absolute() else project / path
    if path.is_file():
        return path.resolve()
    others = dockerfiles_in(project)
    if others:
        listed = ", ".join(others)
        raise NoDockerfile(
            f"{project} has no file {name} (Dockerfiles there: {listed}).",
            f"set {param} = {others[0]!r} in the parameters cell (or another of: {listed})",
        )
    raise NoDockerfile(
        f"{project} has no Dockerfile at all: there is nothing to build.",
        f"write a Dockerfile in {project} (start from a single-stage one, as in notebook 01), "
        "or point project_dir at a folder that has one",
    )


def _check_target(path: Path, target: str, param: str) -> None:
    from .build import dockerfile_stages

    names = [s.name for s in dockerfile_stages(path.read_text(errors="replace"))]
    if target not in names:
        named = [n for n in names if not n.startswith("stage-")]
        raise StagelabError(
            f"{path.name} has no stage named {target!r} (its stages: {', '.join(names) or 'none'}).",
            f"set {param} to one of the `FROM ... AS <name>` names: {', '.join(named) or '(none named)'}",
        )


# --- base images ----------------------------------------------------------------------------


@dataclass
class BaseCheck:
    """A base image a Dockerfile needs and where it comes from."""

    image: str
    source: str              # "local" | "pulled" | "stand-in" | "scratch"
    dockerfiles: list[str] = field(default_factory=list)
    standin: str | None = None   # the stand-in tag the build uses instead (source "stand-in")

    @property
    def text(self) -> str:
        """``golang:1.25 → stagelab-offline/golang:1.25, a stand-in`` or ``golang:1.27 (local)``."""
        if self.standin:
            from .bases.project import standin_note

            return standin_note(self.image, self.standin)
        return f"{self.image} ({self.source})"


def external_bases(text: str, build_args: dict[str, str] | None = None) -> list[str]:
    """Base images (not earlier stages, not scratch) of a Dockerfile, ARGs expanded.

    ``build_args`` are the values the lab passes (the profile's images for declared role ARGs).
    """
    from .build import declared_args, dockerfile_stages, expand

    values: dict[str, str | None] = dict(declared_args(text))
    values.update(build_args or {})
    stages = dockerfile_stages(text)
    names = {s.name.lower() for s in stages}
    out: list[str] = []
    for stage in stages:
        image = expand(stage.base, values).strip()
        if not image or image.lower() == "scratch":
            continue
        if image.lower() in names and image.lower() != stage.name.lower():
            continue
        if image not in out:
            out.append(image)
    return out


def _role_hint(image: str) -> str:
    from .catalogue import roles

    for role in roles():
        if role.upstream == image:
            return (f"; or name it through the lab's build argument: `ARG {role.arg}={image}` then "
                    f"`FROM ${{{role.arg}}}` (the lab passes its {role.arg} image)")
    return ""


def preflight(challenge: Challenge, profile: Any = None, *, client: Any = None, pull: bool | None = None) -> list[BaseCheck]:
    """Every base image both builds need: local, or pulled now; else ``NeedsRegistry``.

    ``pull``: try ``docker pull`` for a missing image (default: only when a registry answers).
    An image the lab has an offline stand-in for (``stagelab bases prepare --for DIR``, which
    notebook 08 runs first) is built against that stand-in on the offline profile, or when it
    cannot be pulled.
    """
    import docker.errors

    from .bases.project import standin_tag
    from .build import declared_args
    from .profiles import active_profile, registry_answers

    prof = profile if hasattr(profile, "build_args") else active_profile(profile)
    if client is None:
        from .engine import client as engine_client

        client = engine_client()
    checks: dict[str, BaseCheck] = {}
    for cand in challenge.candidates:
        text = cand.dockerfile.read_text(errors="replace")
        declared = declared_args(text)
        args = {k: v for k, v in prof.build_args().items() if k in declared}
        for image in external_bases(text, args):
            if image in checks:
                checks[image].dockerfiles.append(cand.dockerfile.name)
                continue
            try:
                client.images.get(image)
                checks[image] = BaseCheck(image, "local", [cand.dockerfile.name])
                continue
            except docker.errors.ImageNotFound:
                pass
            stand = standin_tag(image)
            if stand is not None and not _present(client, stand):
                stand = None
            if stand is not None and prof.name == "offline":
                checks[image] = BaseCheck(image, "stand-in", [cand.dockerfile.name], standin=stand)
                continue
            may_pull = registry_answers() if pull is None else pull
            if may_pull:
                try:
                    client.images.pull(image)
                    checks[image] = BaseCheck(image, "pulled", [cand.dockerfile.name])
                    continue
                except docker.errors.APIError as exc:
                    why = f"`docker pull {image}` failed: {getattr(exc, 'explanation', None) or exc}"
            else:
                why = "no container registry answers from here, so it cannot be pulled"
            if stand is not None:
                checks[image] = BaseCheck(image, "stand-in", [cand.dockerfile.name], standin=stand)
                continue
            if standin_tag(image) is not None:
                why += (f"; the lab can build a stand-in for it: `stagelab bases prepare --for "
                        f"{challenge.project}` (notebook 08 runs it on the offline profile)")
            raise NeedsRegistry(
                f"{cand.dockerfile.name} (image {cand.label}) needs the base image `{image}`, which is not "
                f"on this engine, and {why} (base-image profile {prof.name}).",
                f"on a machine with registry access `docker pull {image}` then `docker save {image} -o base.tar`; "
                f"here `docker load -i base.tar`{_role_hint(image)}",
            )
    return list(checks.values())


def _present(client: Any, ref: str) -> bool:
    import docker.errors

    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_candidate(challenge: Challenge, cand: Candidate, bases: list[BaseCheck], **kwargs: Any) -> Any:
    """Build A or B (notebook 08): against the stand-ins ``preflight`` chose, from a temporary copy.

    Without stand-ins this is ``build.build_context`` on the project itself; ``kwargs`` go to it.
    The result's ``notes`` name each stand-in (the build box and the scorecard show them).
    """
    from .bases.project import build_with_standins

    standins = {b.image: b.standin for b in bases if b.standin and cand.dockerfile.name in b.dockerfiles}
    return build_with_standins(challenge.project, cand.dockerfile, standins, tag=cand.tag,
                               target=cand.target, labels=cand.labels(), **kwargs)


# --- the scorecard ------------------------------------------------------------------------------


def _tools(values: Any) -> str:
    if values is None:
        return "not measured"
    return ", ".join(values) if values else "none"


def _num(value: Any) -> str:
    return "not measured" if value is None else str(value)


def _packages(row: Any) -> str:
    if row.os_packages is not None:
        return str(row.os_packages)
    return "none (no package database)" if row.surface_known else "not measured"


def _where(comparison: Any, results: Any) -> str:
    """``", on Docker 28.5.2, containerd image store, built with the buildkit builder"`` (what is known)."""
    engines = list(getattr(comparison, "engines", None) or [])
    builders = sorted({b for b in (getattr(r, "builder", None) for r in results) if b}
                      | set(getattr(comparison, "builders", None) or []))
    text = f", on {' + '.join(engines)}" if engines else ""
    if builders:
        text += f", built with the {' + '.join(builders)} builder"
    return text


def scorecard_markdown(challenge: Challenge, comparison: Any, results: Any = (), *, when: datetime | None = None) -> str:
    """The Markdown scorecard: both images' sizes, ratio, surface and a short verdict.

    ``comparison`` is ``stagelab.compare.compare([report_a, report_b], baseline=report_a)``;
    ``results`` the two ``BuildResult``s (optional: build time and cache use).
    """
    rows = list(comparison.rows)
    if len(rows) != 2:
        raise ValueError("a scorecard compares exactly two images")
    a, b = rows
    when = when or datetime.now().astimezone()
    results = list(results) or [None, None]
    profile = getattr(comparison, "profile_text", None) or (a.profile or "unknown")

    def line(name: str, va: str, vb: str) -> str:
        return f"| {name} | {va} | {vb} |"

    def built(res: Any) -> str:
        if res is None:
            return "-"
        return f"{res.seconds:.1f} s ({res.steps_cached} of {res.steps_total} steps cached)"

    def compressed(row: Any) -> str:
        return human_size(row.compressed_size) if row.compressed_size else "not measured"

    out = [
        f"## Image scorecard: `{challenge.name}`",
        "",
        f"A = `{challenge.a.title}`, B = `{challenge.b.title}`, measured {when:%Y-%m-%d %H:%M %Z} "
        f"with stagelab on the **{profile}** base-image profile{_where(comparison, results)}. "
        f"Sizes are {SIZE_LABEL}, the same quantity on every engine (on the containerd image store "
        "`docker image ls` shows more: the compressed content plus the unpacked snapshot); the compressed "
        "size is what a `docker pull` transfers (gzip of each layer).",
        "",
        f"| | A: `{challenge.a.title}` | B: `{challenge.b.title}` |",
        "|---|---|---|",
        line("image", f"`{a.image}`", f"`{b.image}`"),
        line("size (uncompressed)", human_size(a.size), human_size(b.size)),
        line("size (compressed, pull)", compressed(a), compressed(b)),
        line("layers", str(a.layers), str(b.layers)),
        line("shell", a.shell or "none", b.shell or "none"),
        line("package managers", _tools(a.package_managers), _tools(b.package_managers)),
        line("compilers", _tools(a.compilers), _tools(b.compilers)),
        line("executables", _num(a.executables), _num(b.executables)),
        line("setuid/setgid files", _num(a.setuid), _num(b.setuid)),
        line("OS packages", _packages(a), _packages(b)),
        line("runs as", a.user_text, b.user_text),
        line("build time", built(results[0]), built(results[1])),
        "",
    ]
    notes = list(dict.fromkeys(n for r in results if r is not None for n in getattr(r, "notes", None) or []))
    if notes:
        out += ["Built offline from a temporary copy of the project (the project itself is unchanged):", ""]
        out += [f"- {n}" for n in notes] + [""]
    out += verdict(a, b)
    return "\n".join(out) + "\n"


def verdict(a: Any, b: Any) -> list[str]:
    """Markdown bullet lines: how much smaller B is and what left the image."""
    lines: list[str] = []
    if b.size and a.size:
        if b.size < a.size:
            lines.append(f"**B is {a.size / b.size:.1f} x smaller than A** ({human_size(b.size)} vs "
                         f"{human_size(a.size)} uncompressed, {human_size(a.size - b.size)} less).")
        else:
            lines.append(f"**B is not smaller than A** ({human_size(b.size)} vs {human_size(a.size)} "
                         "uncompressed): is the last stage of B still on the full toolchain image?")
    checks = [
        ("no compiler in B", b.compilers is not None and not b.compilers),
        ("no package manager in B", b.package_managers is not None and not b.package_managers),
        ("no shell in B", b.shell is None and b.surface_known),
        ("B runs as a non-root user", b.runs_as_root is False),
    ]
    lines.append("")
    lines += [f"- [{'x' if ok else ' '}] {text}" for text, ok in checks]
    return lines


def default_scorecard_path(challenge: Challenge) -> Path:
    """``notebooks/exercises/challenge/scorecard-<project>.md`` (git-ignored)."""
    from .naming import repo_root

    return repo_root() / "notebooks" / "exercises" / "challenge" / f"scorecard-{_slug(challenge.name)}.md"


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", text).strip("-") or "project"


def write_scorecard(text: str, path: str | Path) -> Path:
    """Write the scorecard (creating the folder); return its absolute path."""
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out.resolve()


def is_lab_example(challenge: Challenge) -> bool:
    """True when the challenge compares one of the lab's own apps (``apps/<app>/``), not the learner's project."""
    from .naming import repo_root

    apps = (repo_root() / "apps").resolve()
    return challenge.project == apps or apps in challenge.project.parents


def check_scorecard(challenge: Challenge, comparison: Any, *, worked_example: bool | None = None) -> Any:
    """Notebook 08's check cell: is B smaller than A, compiler-free and non-root? (an ``exercises.CheckResult``).

    On the lab's own example (``apps/...``) the exercise is not done: the check says "point
    it at your project", unless the run is marked as the worked example (``worked_example``;
    None means :func:`stagelab.exercises.use_solutions`, i.e. True in CI).
    """
    from .exercises import CheckResult, use_solutions

    if worked_example is None:
        worked_example = use_solutions()
    a, b = list(comparison.rows)[:2]
    feedback: list[str] = []
    example = is_lab_example(challenge)
    if example and not worked_example:
        feedback.append(
            f"A and B are the lab's own example ({challenge.project.name}), so this measured the lab, not your "
            "project: point it at your project (set project_dir, dockerfile_a and dockerfile_b in the parameters "
            "cell), or pass worked_example=True to check_scorecard to run the worked example.")
    if not (b.size and a.size and b.size < a.size):
        feedback.append(
            f"B ({human_size(b.size)}) is not smaller than A ({human_size(a.size)}, both uncompressed): "
            "its last stage still starts from the build image. Add a final stage FROM a runtime image "
            "(scratch, distroless, -slim) and COPY --from=<builder> only what runs.")
    if b.compilers:
        feedback.append(
            f"B still has {', '.join(b.compilers)}: the toolchain is in the final stage — build in a stage "
            "named `AS builder` and copy only the result out of it.")
    if b.runs_as_root:
        feedback.append(
            f"B runs as root (USER {b.user or 'not set'}): set a non-root USER in B's last stage (USER node on "
            "node images, USER 65532:65532 on scratch/distroless); a USER in an earlier stage does not carry over.")
    summary = (f"A {human_size(a.size)} -> B {human_size(b.size)} (uncompressed), profile "
               f"{getattr(comparison, 'profile_text', '?')}" + (" — the lab's worked example" if example else ""))
    return CheckResult(f"08-your-project ({challenge.name})", not feedback, feedback, None, None, {}, False, summary)
