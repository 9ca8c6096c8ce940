"""Look inside an image: size, layers, config, contents and attack surface (``ImageReport``).

Used by every notebook that measures an image (01-08), by ``stagelab.compare``,
``stagelab.plots``, ``stagelab.widgets`` and ``stagelab inspect``.

``inspect(image)`` asks the engine for the image's attributes and history, then streams
``docker save`` through :mod:`stagelab.export` (no temp file; layers already read come from
:mod:`stagelab.layercache`) to get the final file tree.
The tree feeds the summaries (by directory, largest files, categories) and the
surface (shell, package managers, compilers, executables, setuid files, OS packages).
"""
from __future__ import annotations

import heapq
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from .categories import KEYS as CATEGORY_KEYS
from .categories import app_paths_of, classifier, find_lockfile, label, parse_lockfile
from .categories import clean_path as _clean
from .catalogue import OFFLINE_PREFIX
from .errors import StagelabError
from .layers import ExportContents, ExportStreamError, FileEntry  # FileEntry re-exported: the tree's nodes
from .naming import APP_LABEL, PROFILE_LABEL, VARIANT_LABEL
from .sizes import CONTAINERD_STORE, IMAGE_LS_MEANING, SIZE_LABEL, engine_facts, history_label, history_size
from .surface import Surface, surface_of, user_is_root
from .units import human_size

_DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")   # which()

__all__ = [
    "COMPRESSED_LABEL",
    "ExportStreamError",
    "FileEntry",
    "ImageNotFound",
    "ImageReport",
    "LayerInfo",
    "Surface",
    "UNCOMPRESSED_LABEL",
    "inspect",
    "report_from_export",
]

UNCOMPRESSED_LABEL = SIZE_LABEL   # kept for callers: the label of ImageReport.size
COMPRESSED_LABEL = "compressed (pull transfer)"


@dataclass
class LayerInfo:
    """One filesystem layer of an image (index 0 = bottom layer, i.e. the base image's first)."""

    index: int
    size: int                   # bytes of file contents this layer adds
    created_by: str = ""        # the Dockerfile instruction, from the image history
    files: int | None = None    # non-directory entries in the layer (None: contents not read)
    wasted: int | None = None   # bytes of its files that a later layer deletes/overwrites (as dive)
    digest: str = ""            # the layer's diff id (sha256:...)
    compressed_size: int | None = None   # gzip of the layer tar (only with compressed=True)
    disk_usage: int | None = None        # unpacked into 4 KiB blocks (None: contents not read; stagelab.sizes)

    @property
    def instruction(self) -> str:
        """``created_by`` without the classic builder's ``/bin/sh -c #(nop)`` noise."""
        text = " ".join(self.created_by.split())
        for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c #(nop)"):
            if text.startswith(prefix):
                return text[len(prefix):].strip()
        if text.startswith("/bin/sh -c "):
            return "RUN " + text[len("/bin/sh -c "):]
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "size": self.size, "created_by": self.created_by,
                "instruction": self.instruction, "files": self.files, "wasted": self.wasted,
                "digest": self.digest, "compressed_size": self.compressed_size, "disk_usage": self.disk_usage}



# --- the report -------------------------------------------------------------------------------

@dataclass
class ImageReport:
    """Everything measured about one image; ``_repr_html_`` is a short summary table.

    ``size`` is the lab's size on every engine: the sum of the uncompressed layers
    (see :mod:`stagelab.sizes`), measured from the files the layers add when the contents
    were read, else the sum of ``docker history``; ``size_label`` says which.
    ``size_from_layers`` is the sum of the file bytes all layers add (None without
    contents); ``history_size`` the sum of ``docker history``; ``engine_size`` the
    engine's own ``Size`` (compressed content on the containerd image store, so never
    used as the size); ``compressed_size`` is what a pull transfers (gzip -6 of each
    layer, None unless ``compressed=True``).
    """

    ref: str
    image_id: str
    size: int
    layers: list[LayerInfo] = field(default_factory=list)
    size_from_layers: int | None = None
    compressed_size: int | None = None
    size_label: str = SIZE_LABEL
    history_size: int | None = None
    engine_size: int | None = None
    image_store: str | None = None           # "classic" | "containerd" (None: not asked)
    engine: str = ""                          # "Docker 28.5.2, containerd image store"
    builder: str | None = None                # "classic" | "buildkit" when known (from the BuildResult)
    user: str = ""
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    exposed_ports: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    workdir: str = ""
    profile: str | None = None               # label org.stagelab.profile
    surface: Surface = field(default_factory=Surface)
    files: dict[str, FileEntry] = field(default_factory=dict, repr=False)   # final tree; empty without contents
    history: list[str] = field(default_factory=list, repr=False)   # every history entry's created_by, oldest first
    created: str = ""
    architecture: str = ""
    os: str = ""
    export_format: str | None = None          # "classic" | "oci" (None without contents)
    contents: bool = True                     # False: files, by_directory, largest, categories are empty
    app_paths: tuple[str, ...] = ()           # paths counted as "the app" (WORKDIR, the app's binary)
    lock_packages: dict[str, bool] = field(default_factory=dict, repr=False)  # lockfile key -> dev
    secret: str | None = field(default=None, repr=False)   # the string searched for (secret_hits)

    # --- derived numbers ----------------------------------------------------------------

    @property
    def wasted(self) -> int:
        """Bytes of files written by one layer and deleted/overwritten by a later one (all layers)."""
        return sum(layer.wasted or 0 for layer in self.layers)

    @property
    def name(self) -> str:
        """A short display name: the ref, or the short image id."""
        return self.ref or self.image_id.removeprefix("sha256:")[:12]

    @property
    def short_id(self) -> str:
        return self.image_id.removeprefix("sha256:")[:12]

    @property
    def app(self) -> str | None:
        return self.labels.get(APP_LABEL)

    @property
    def variant(self) -> str | None:
        return self.labels.get(VARIANT_LABEL)

    @property
    def config(self) -> dict[str, Any]:
        """The run configuration as a plain dict (user, entrypoint, cmd, ports, env, labels, workdir)."""
        return {
            "user": self.user, "entrypoint": self.entrypoint, "cmd": self.cmd,
            "exposed_ports": list(self.exposed_ports), "env": dict(self.env),
            "labels": dict(self.labels), "workdir": self.workdir,
        }

    # --- the tree -----------------------------------------------------------------------

    def file(self, path: str) -> FileEntry | None:
        """The final-tree entry at ``path`` (exact path, symlinks not followed), or None."""
        return self.files.get(_clean(path))

    def resolve(self, path: str, *, max_links: int = 40) -> FileEntry | None:
        """The entry ``path`` leads to, following symlinks in every component (``/bin/sh`` on merged-/usr)."""
        return _resolve(self.files, path, max_links=max_links)[1]

    def which(self, name: str) -> str | None:
        """Like ``which NAME`` inside the image: the first PATH entry that resolves to an executable."""
        dirs = [d for d in self.env.get("PATH", "").split(":") if d.startswith("/")]
        for d in list(dirs) + [d for d in _DEFAULT_PATH if d not in dirs]:
            path = d.rstrip("/") + "/" + name
            entry = self.resolve(path)
            if entry is not None and entry.is_executable:
                return path
        return None

    def _regular(self) -> Iterable[FileEntry]:
        return (e for e in self.files.values() if e.size > 0 and e.type in ("file", "hardlink"))

    def by_directory(self, depth: int = 2) -> list[tuple[str, int]]:
        """Bytes per directory cut at ``depth`` path components, largest first.

        A file shallower than ``depth`` is its own row (``/server`` for a scratch image).
        """
        depth = max(1, int(depth))
        totals: dict[str, int] = {}
        for entry in self._regular():
            parts = entry.path.split("/", depth + 1)   # ['', a, b, ...]
            key = "/".join(parts[: depth + 1])
            totals[key] = totals.get(key, 0) + entry.size
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))

    def largest(self, n: int = 10) -> list[FileEntry]:
        """The ``n`` largest files of the final tree, largest first."""
        return heapq.nlargest(max(0, int(n)), self._regular(), key=lambda e: (e.size, e.path))

    def category(self, path: str) -> str:
        """The category key (one of ``stagelab.categories.KEYS``) a final-tree path counts under."""
        return self._classifier()(_clean(path))

    def categories(self) -> dict[str, int]:
        """Bytes per category key (``stagelab.categories.KEYS``, all present, zeros included).

        Index by key (``categories()["node_modules_dev"]``); ``categories.label(key)`` is its display label.
        """
        totals = dict.fromkeys(CATEGORY_KEYS, 0)
        classify = self._classifier()
        for entry in self._regular():
            totals[classify(entry.path)] += entry.size
        return totals

    def _classifier(self):
        return classifier(self.app_paths, self.lock_packages)

    # --- output -------------------------------------------------------------------------

    def to_dict(self, *, files: bool = False, depth: int = 2, top: int = 10) -> dict[str, Any]:
        """A JSON-ready dict (``stagelab inspect --json``); ``files=True`` adds the whole tree."""
        out: dict[str, Any] = {
            "ref": self.ref, "image_id": self.image_id,
            "size": self.size, "size_label": self.size_label,
            "size_from_layers": self.size_from_layers, "history_size": self.history_size,
            "engine_size": self.engine_size, "image_store": self.image_store, "engine": self.engine,
            "builder": self.builder,
            "compressed_size": self.compressed_size, "compressed_label": COMPRESSED_LABEL,
            "wasted": self.wasted if self.contents else None,
            "profile": self.profile, "created": self.created,
            "architecture": self.architecture, "os": self.os,
            "export_format": self.export_format, "contents": self.contents,
            "config": self.config,
            "layers": [layer.as_dict() for layer in self.layers],
            "surface": self.surface.as_dict(),
            "app_paths": list(self.app_paths),
        }
        if self.contents:
            out["file_count"] = len(self.files)
            out["categories"] = self.categories()
            out["category_labels"] = {key: label(key) for key in out["categories"]}
            out["by_directory"] = [[p, n] for p, n in self.by_directory(depth)]
            out["largest"] = [{"path": e.path, "size": e.size, "layer": e.layer} for e in self.largest(top)]
        if files:
            out["files"] = [
                {"path": e.path, "size": e.size, "mode": e.mode, "uid": e.uid, "gid": e.gid,
                 "type": e.type, "layer": e.layer, "linkname": e.linkname}
                for e in sorted(self.files.values(), key=lambda e: e.path)
            ]
        return out

    def _summary_rows(self) -> list[tuple[str, str]]:
        s = self.surface
        rows = [("image", f"{self.name} ({self.short_id})"),
                (f"size, {self.size_label}", human_size(self.size))]
        if self.image_store in IMAGE_LS_MEANING:
            rows.append(("docker image ls", IMAGE_LS_MEANING[self.image_store]))
        if self.compressed_size is not None:
            rows.append((f"size, {COMPRESSED_LABEL}", human_size(self.compressed_size)))
        if self.history_size is not None and self.contents:
            what = ("on disk: files rounded up to 4 KiB blocks" if self.image_store == CONTAINERD_STORE
                    else "cross-check")
            rows.append((f"sum of docker history ({what})", human_size(self.history_size)))
        if self.engine:
            rows.append(("engine", self.engine + (f", {self.builder} builder" if self.builder else "")))
        wasted = f", {human_size(self.wasted)} wasted (deleted/overwritten later)" if self.contents and self.wasted else ""
        rows.append(("layers", f"{len(self.layers)}{wasted}"))
        if self.profile:
            rows.append(("base-image profile", self.profile))
        rows.append(("user", (self.user or "(not set: root)") + (" — runs as root" if s.runs_as_root else " — not root")))
        rows.append(("entrypoint / cmd", f"{_cmd(self.entrypoint)} / {_cmd(self.cmd)}"))
        if self.exposed_ports:
            rows.append(("exposed ports", ", ".join(self.exposed_ports)))
        if s.from_contents:
            rows += [
                ("files", f"{len(self.files):,}"),
                ("shell", ", ".join(s.shells) if s.shells else "none"),
                ("package managers", ", ".join(s.package_managers or []) or "none"),
                ("compilers", ", ".join(s.compilers or []) or "none"),
                ("executables", f"{s.executables:,}"),
                ("setuid/setgid files", str(len(s.setuid or []))),
                ("OS packages", "no package database" if s.os_packages is None
                 else f"{s.os_packages:,} ({s.os_package_db})"),
            ]
        else:
            rows.append(("contents", "not read (inspect(..., contents=True) to see files and surface)"))
        if self.secret is not None:
            rows.append(("secret found in", "; ".join(s.secret_hits) if s.secret_hits else "nowhere"))
        return rows

    def as_text(self, *, depth: int = 2, top: int = 10) -> str:
        """A plain-text report for terminals and CI logs."""
        rows = self._summary_rows()
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines += ["", "layers (bottom first):"]
        for layer in self.layers:
            extra = ""
            if layer.files is not None:
                extra = f"  {layer.files:>6,} files"
            if layer.wasted:
                extra += f"  {human_size(layer.wasted)} wasted"
            if layer.compressed_size is not None:
                extra += f"  {human_size(layer.compressed_size)} gz"
            lines.append(f"  {layer.index:>3}  {human_size(layer.size):>9}{extra}  {_short(layer.instruction, 90)}")
        if self.contents:
            lines += ["", f"by directory (depth {depth}):"]
            for path, n in self.by_directory(depth)[:max(top, 1) * 2]:
                lines.append(f"  {human_size(n):>9}  {path}")
            lines += ["", f"largest {top} files:"]
            for e in self.largest(top):
                lines.append(f"  {human_size(e.size):>9}  {e.path}  (layer {e.layer})")
            lines += ["", "by category:"]
            for key, n in self.categories().items():
                if n:
                    lines.append(f"  {human_size(n):>9}  {label(key)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._summary_rows()
        )
        return f"<table class='stagelab-report'>{rows}</table>"

    def __repr__(self) -> str:
        return (f"ImageReport(ref={self.ref!r}, id={self.short_id}, size={self.size:,} "
                f"({human_size(self.size)}), layers={len(self.layers)}, files={len(self.files):,})")


def _cmd(value: list[str] | None) -> str:
    if not value:
        return "–"
    return json.dumps(value)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _resolve(tree: dict[str, FileEntry], path: str, *, max_links: int = 40) -> tuple[str, FileEntry | None]:
    """Follow symlinks component by component (absolute targets from the image root)."""
    pending = [p for p in _clean(path).split("/") if p]
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        current = "/" + "/".join(done + [part])
        entry = tree.get(current)
        if entry is not None and entry.type == "symlink":
            links += 1
            if links > max_links:
                return current, None
            target = entry.linkname
            pending = [p for p in target.split("/") if p] + pending
            if target.startswith("/"):
                done = []
            continue
        done.append(part)   # a missing entry may be an implicit directory: the final lookup decides
    final = "/" + "/".join(done)
    return final, tree.get(final)


# --- building a report --------------------------------------------------------------------

class ImageNotFound(StagelabError):
    """The image name or id is not a local image (the message names it and how to get it)."""


def _not_found(image: str, detail: str = "") -> ImageNotFound:
    m = re.match(r"^stagelab/(?:[^/]+/)?([^/:]+):([^/:]+)$", image)
    if m:
        fix = f"stagelab build {m.group(1)} {m.group(2)}   (list what is there: docker images 'stagelab/*')"
    elif image.startswith(OFFLINE_PREFIX):
        fix = f"stagelab bases prepare   (list what is there: docker images '{OFFLINE_PREFIX}*')"
    else:
        fix = f"docker images   (to list local images), or build it: docker build -t {image} ."
    return ImageNotFound(f"No local image named {image!r}{detail}.", fix=fix)



def _config_secret_hits(secret: str, history: Sequence[str], env: dict[str, str],
                        labels: dict[str, str]) -> list[str]:
    hits = []
    for i, created_by in enumerate(history):
        if secret in created_by:
            hits.append(f"history[{i}]: {_short(' '.join(created_by.split()), 120)}")
    hits += [f"env: {k}" for k, v in env.items() if secret in v or secret in k]
    hits += [f"label: {k}" for k, v in labels.items() if secret in v or secret in k]
    return hits


_EMPTY_INSTRUCTIONS = {"ENV", "CMD", "ENTRYPOINT", "LABEL", "EXPOSE", "USER", "ARG", "VOLUME",
                       "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD", "MAINTAINER"}


def _layer_history(api_history: list[dict], n_layers: int) -> list[dict] | None:
    """Pick the API history entries (oldest first) that made a layer; None when unsure."""
    entries = list(reversed(api_history or []))
    sized = [e for e in entries if (e.get("Size") or 0) > 0]
    if len(sized) == n_layers:
        return sized

    def makes_layer(entry: dict) -> bool:
        text = " ".join((entry.get("CreatedBy") or "").split())
        if "#(nop)" in text:
            return bool(re.search(r"#\(nop\)\s*(ADD|COPY)\b", text))
        word = text.split(" ", 1)[0].upper() if text else ""
        return word not in _EMPTY_INSTRUCTIONS

    made = [e for e in entries if makes_layer(e)]
    return made if len(made) == n_layers else None


def _env_dict(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def report_from_export(
    export: ExportContents | None,
    attrs: dict,
    api_history: list[dict] | None = None,
    *,
    ref: str | None = None,
    lockfile: str | PathLike | bytes | dict | None = None,
    secret: str | None = None,
    app_paths: Sequence[str] | None = None,
    store: str | None = None,
    engine: str = "",
) -> ImageReport:
    """Assemble an :class:`ImageReport` from the engine's image attributes (``docker inspect``),
    its history and, when read, the export's contents. No engine calls (unit-testable).

    ``store`` / ``engine``: the engine's image store and description (:func:`stagelab.sizes.engine_facts`)."""
    cfg = attrs.get("Config") or {}
    labels = dict(cfg.get("Labels") or {})
    env = _env_dict(cfg.get("Env"))
    workdir = cfg.get("WorkingDir") or ""
    tags = attrs.get("RepoTags") or []
    ref = ref or (tags[0] if tags else attrs.get("Id", ""))
    n_layers = len((attrs.get("RootFS") or {}).get("Layers") or []) if export is None else len(export.layers)

    if export is not None:
        history_texts = [h.get("created_by", "") for h in export.history]
        layers = [LayerInfo(index=st.index, size=st.size, created_by=st.created_by, files=st.files,
                            wasted=st.wasted, digest=st.digest, compressed_size=st.compressed_size,
                            disk_usage=st.disk_usage)
                  for st in export.layers]
        if not any(layer.created_by for layer in layers):
            picked = _layer_history(api_history or [], len(layers))
            if picked:
                for layer, entry in zip(layers, picked):
                    layer.created_by = entry.get("CreatedBy") or ""
    else:
        history_texts = [e.get("CreatedBy") or "" for e in reversed(api_history or [])]
        diff_ids = (attrs.get("RootFS") or {}).get("Layers") or []
        picked = _layer_history(api_history or [], n_layers)
        layers = []
        for i in range(n_layers):
            entry = picked[i] if picked else {}
            layers.append(LayerInfo(index=i, size=int(entry.get("Size") or 0), created_by=entry.get("CreatedBy") or "",
                                    digest=diff_ids[i] if i < len(diff_ids) else ""))

    paths = tuple(_clean(p) for p in app_paths) if app_paths is not None else app_paths_of(labels, workdir)
    small = export.small_files if export is not None else {}
    if isinstance(lockfile, dict):
        lock = {str(k): bool(v) for k, v in lockfile.items()} if all(
            isinstance(v, bool) for v in lockfile.values()) else parse_lockfile(lockfile)
    elif isinstance(lockfile, bytes):
        lock = parse_lockfile(lockfile)
    elif lockfile is not None:
        path = Path(lockfile)
        if not path.is_file():
            raise StagelabError(f"lockfile {str(path)!r} not found.",
                                fix="pass the app's package-lock.json, e.g. apps/ts-server/package-lock.json")
        lock = parse_lockfile(path.read_bytes())
    else:
        lock = find_lockfile(labels, small, paths) if export is not None else {}

    compressed = None
    if export is not None and export.layers and all(st.compressed_size is not None for st in export.layers):
        compressed = sum(st.compressed_size or 0 for st in export.layers)

    from_history = history_size(api_history)
    if export is not None:
        size, label = export.size, SIZE_LABEL
    elif from_history is not None:   # the lab's size on the classic store, disk usage on containerd
        size, label = from_history, history_label(store)
    else:   # no history either: only the layers' sizes the report was given
        size, label = sum(layer.size for layer in layers), history_label(store)
    report = ImageReport(
        ref=ref, image_id=attrs.get("Id", ""), size=size, layers=layers, size_label=label,
        history_size=from_history, engine_size=int(attrs["Size"]) if attrs.get("Size") is not None else None,
        image_store=store, engine=engine,
        size_from_layers=export.size if export is not None else None, compressed_size=compressed,
        user=cfg.get("User") or "", entrypoint=cfg.get("Entrypoint"), cmd=cfg.get("Cmd"),
        exposed_ports=sorted((cfg.get("ExposedPorts") or {}).keys()), env=env, labels=labels,
        workdir=workdir, profile=labels.get(PROFILE_LABEL),
        files=export.tree if export is not None else {}, history=history_texts,
        created=attrs.get("Created", ""), architecture=attrs.get("Architecture", ""), os=attrs.get("Os", ""),
        export_format=export.format if export is not None else None, contents=export is not None,
        app_paths=paths, lock_packages=lock, secret=secret,
    )
    config_hits = _config_secret_hits(secret, history_texts, env, labels) if secret else []
    if export is not None:
        report.surface = surface_of(report, small, list(export.secret_hits) + config_hits)
    else:
        report.surface = Surface(runs_as_root=user_is_root(report.user, None), secret_hits=config_hits,
                                 from_contents=False)
    return report


def inspect(
    image: str,
    *,
    contents: bool = True,
    compressed: bool = False,
    lockfile: str | PathLike | None = None,
    secret: str | None = None,
    app_paths: Sequence[str] | None = None,
    client=None,
) -> ImageReport:
    """Measure ``image`` (a tag or id of a local image) and return its :class:`ImageReport`.

    ``contents`` streams the export to read the file tree (files, categories, surface);
    ``compressed`` also gzips each layer (level 6, like ``docker push``) to get the pull size
    (it reads the export, so it implies ``contents``);
    ``lockfile`` is the app's package-lock.json (splits node_modules into production and
    dev-only; default for lab images: ``apps/<app>/package-lock.json``, else the image's own);
    ``secret`` is searched in every file (streamed), the history, env and labels;
    ``app_paths`` are the paths counted as "the app" (default: WORKDIR and, for lab
    images, the app's binary from variants.toml). ``client``: a docker client (default
    :func:`stagelab.engine.client`).
    """
    import docker.errors

    from .layercache import read_image_cached

    if client is None:
        from .engine import client as engine_client

        client = engine_client()
    if not image or not str(image).strip():
        raise _not_found(str(image))
    try:
        attrs = client.api.inspect_image(image)
    except docker.errors.NotFound:
        raise _not_found(image) from None
    except docker.errors.APIError as exc:
        if exc.status_code in (400, 404):
            raise _not_found(image, f" ({exc.explanation or exc})") from None
        raise
    try:
        api_history = client.api.history(attrs["Id"])
    except docker.errors.APIError:
        api_history = []
    export = None
    if contents or compressed:
        try:
            export = read_image_cached(client, attrs, secret=secret, compressed=compressed)
        except ExportStreamError:
            try:   # removed while we read it? Then say so, not "truncated stream"
                client.api.inspect_image(attrs["Id"])
            except docker.errors.NotFound:
                raise _not_found(image, " (it was removed while being read)") from None
            raise
    tags = attrs.get("RepoTags") or []
    ref = image if (image in tags or not tags) and not image.startswith("sha256:") else (tags[0] if tags else image)
    store, engine = engine_facts(client)
    return report_from_export(export, attrs, api_history, ref=ref, lockfile=lockfile, secret=secret,
                              app_paths=app_paths, store=store, engine=engine)


# --- command line: stagelab inspect ----------------------------------------------------------

def cmd_inspect(args) -> int:
    """``stagelab inspect IMAGE``: the text report, or ``--json`` (exit 2 for an unknown image)."""
    import sys

    try:
        report = inspect(args.image, contents=not args.no_contents, compressed=args.compressed,
                         lockfile=args.lockfile, secret=args.secret)
    except ImageNotFound as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(files=args.files, depth=args.depth, top=args.top), indent=2))
    else:
        print(report.as_text(depth=args.depth, top=args.top))
    return 0


def add_cli(sub) -> None:
    """Register ``stagelab inspect`` on the CLI's subparsers (called by ``stagelab.cli``)."""
    p = sub.add_parser("inspect", help="look inside an image: size, layers, contents, surface")
    p.add_argument("image", metavar="IMAGE", help="a local image name or id")
    p.add_argument("--depth", type=int, default=2, metavar="N", help="directory depth of the summary (default 2)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="how many largest files to list (default 10)")
    p.add_argument("--json", action="store_true", help="machine-readable output (sizes in bytes)")
    p.add_argument("--files", action="store_true", help="with --json: include the whole file tree")
    p.add_argument("--compressed", action="store_true",
                   help="also measure the compressed (pull transfer) size: gzip -6 of each layer; slower")
    p.add_argument("--secret", metavar="S", help="report every file and history entry containing S")
    p.add_argument("--lockfile", metavar="PATH",
                   help="the app's package-lock.json (splits node_modules into production and dev-only)")
    p.add_argument("--no-contents", action="store_true",
                   help="config and layer sizes only; do not stream the image's files (fast)")
    p.set_defaults(func=cmd_inspect)
