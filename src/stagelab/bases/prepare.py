"""``prepare()``: build the offline stand-ins (or pull the upstream images) of a profile.

Notebook 00, ``make bases`` and ``stagelab bases prepare`` call it; it skips images that are
present and built from the current recipe, and builds the rest as a dependency graph.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, BinaryIO

from .. import naming
from .. import catalogue as _catalogue
from .. import profiles as _profiles
from .. import versions as _versions
from . import common as _common
from .common import (
    BASE_LABEL, BasePrepareFailed, DIFFERS_LABEL, EXTRA_CA_LABEL, IMITATES_LABEL, PREPARE_FIX,
    PrepareEvent, ProgressCallback, PullFailed, RECIPE_LABEL, SOURCES_LABEL, STANDIN_LABEL, StandIn,
    _client, _get_image, _make_progress, _read_upstream_record, _resolve, _upstream_record_path,
    base_cache, standin,
)
from .inputs import _extra_ca_info, _go_tree, _node_tree, _recipe_hash, _slim_tar, _up_to_date, _uses_ca
from .status import BaseStatus, _sized, status


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

        add_bytes("Dockerfile", (_common.bases_dir() / s.recipe).read_bytes())
        pem = ca["pem"] if s.extra_ca == "append" else ""
        add_bytes("extra-ca.pem", pem.encode())
        if "entrypoint" in s.payload:
            add_bytes("docker-entrypoint.sh", (_common.bases_dir() / "node" / "docker-entrypoint.sh").read_bytes(), 0o755)
        if "alpine" in s.payload:
            for path in sorted((_common.bases_dir() / "alpine").iterdir()):
                add_bytes(f"alpine/{path.name}", path.read_bytes(), 0o755)
        if "go" in s.payload:
            tar.add(str(trees[f"go-{s.go}"]), arcname="go", filter=root_owned)
        if "node" in s.payload:
            tar.add(str(trees[f"node-{s.node}"]), arcname="node", filter=root_owned)
        if "node-binary" in s.payload:
            tar.add(str(trees[f"node-{s.node}"] / "bin" / "node"), arcname="node", filter=root_owned)
    fh.seek(0)
    return fh


def _build_standin(s: StandIn, ca: dict[str, str], trees: Mapping[str, Path], nocache: bool) -> str:
    client = _client(timeout=1800)
    if s.imported:
        return _import_debian(client, s, ca)
    # the recipes name no version: each record's (versions.toml's by default) reaches them as build arguments
    buildargs = {"GO_VERSION": s.go, "NODE_VERSION": s.node}
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


def _plan(roles: Iterable[str] | None, extra: Iterable[StandIn] = ()) -> list[StandIn]:
    """The stand-ins needed for ``roles`` (all when None) or for the records ``extra``, bases first.

    The lab's own stand-ins come in catalogue order, then ``extra``'s own records (a project's
    versions, ``stagelab.bases.project``), in their order.
    """
    extra = list(extra)
    if roles is None and not extra:
        return list(_catalogue.standins())
    wanted: set[str] = set()
    starts: list[str] = []
    for arg in roles or ():
        r = _profiles.role(arg)
        if r.offline is not None:
            starts.append(r.offline)
    starts += [s.tag for s in extra]
    for start in starts:
        stack = [start]
        while stack:
            tag = stack.pop()
            if tag in wanted:
                continue
            wanted.add(tag)
            s = standin(tag)
            stack += [t for t in (s.base, s.after) if t]
    lab = [s for s in _catalogue.standins() if s.tag in wanted]
    known = {s.tag for s in lab}
    return lab + [s for s in dict((s.tag, s) for s in extra).values() if s.tag not in known]


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
        _build_plan(_plan(roles), rebuild, progress, workers)
    return status(prof, helpers=roles is None)


def build_records(records: Iterable[StandIn], *, rebuild: bool = False, progress: Any = None,
                  workers: int = 3) -> list[StandIn]:
    """Build the stand-ins ``records`` (and the lab's stand-ins they are built on) if missing or stale.

    ``stagelab.bases.project`` calls it with a project's versions; returns the plan built or found.
    """
    records = list(records)
    with _common.extra_standins(records), _prepare_lock():
        plan = _plan(None, records)
        _build_plan(plan, rebuild, progress, workers)
    return plan


def _build_plan(plan: list[StandIn], rebuild: bool, progress: Any, workers: int) -> None:
    started = time.monotonic()
    ca = _extra_ca_info(strict=True)
    client = _client()
    todo: list[StandIn] = []
    rebuilt: set[str] = set()
    present: dict[str, Any] = {}
    for s in plan:
        img = present[s.tag] = _get_image(client, s.tag)
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
            emit(PrepareEvent(index[s.tag], total, s.tag, "present", **_sized(client, present[s.tag]),
                              message="present, up to date"))
    if not todo:
        close(f"all {total} offline base images present ({time.monotonic() - started:.1f} s)", True)
        return
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
    go_versions = sorted({s.go for s in todo if "go" in s.payload})
    node_versions = sorted({s.node for s in todo for p in ("node", "node-binary") if p in s.payload})
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
            futures["debian"] = pool.submit(timed, f"Debian {_versions.current().debian_codename} slim tree", lambda: _slim_tar(say))
        for go in go_versions:
            futures[f"go-{go}"] = pool.submit(timed, f"Go {go} (wheel)", lambda go=go: _go_tree(go), True)
        for node in node_versions:
            futures[f"node-{node}"] = pool.submit(timed, f"Node.js {node} (wheel)",
                                                  lambda node=node: _node_tree(node), True)
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
        say(PrepareEvent(index[s.tag], total, s.tag, "built", seconds=time.monotonic() - t0,
                         **_sized(_client(), image_id),
                         message=f"built (imitates {s.imitates})"))
        return image_id

    rank = {tag: i for i, tag in enumerate(_catalogue.build_priority())}
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


def _prepare_upstream(prof: _profiles.Profile, roles: list[str] | None, rebuild: bool,
                      progress: Any) -> list[BaseStatus]:
    client = _client(timeout=1800)
    wanted = [r for r in _catalogue.roles() if roles is None or r.arg in roles]
    total = len(wanted)
    emit, close = _make_progress(progress, "pull the official base images", total)
    record = _read_upstream_record()
    started = time.monotonic()
    for i, role in enumerate(wanted, 1):
        ref = prof.images[role.arg]
        img = _get_image(client, ref)
        sized: dict[str, Any] = {}
        if img is not None and not rebuild:
            sized = _sized(client, img)
            emit(PrepareEvent(i, total, ref, "present", **sized, message="present"))
        else:
            emit(PrepareEvent(i, total, ref, "start"))
            t0 = time.monotonic()
            try:
                img = pull_image(client, ref, role.arg)
            except PullFailed:
                emit(PrepareEvent(i, total, ref, "failed", message="pull failed"))
                close(f"pulling {ref} failed", False)
                raise
            sized = _sized(client, img)
            emit(PrepareEvent(i, total, ref, "pulled", seconds=time.monotonic() - t0, **sized, message="pulled"))
        record[ref] = {
            "role": role.arg, "id": img.id, "size": sized["size"], "size_label": sized["size_label"],
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
