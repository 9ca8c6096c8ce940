"""Look inside an image: size, layers, config, contents and attack surface (``ImageReport``).

Used by every notebook that measures an image (01-08), by ``stagelab.compare``,
``stagelab.plots``, ``stagelab.widgets`` and ``stagelab inspect``.

``inspect(image)`` asks the engine for the image's attributes and history, then streams
``docker save`` through :mod:`stagelab.layers` (no temp file) to get the final file tree.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from .errors import StagelabError
from .layers import ExportStreamError, FileEntry  # re-exported: the nodes of ImageReport.files
from .units import human_size

__all__ = [
    "CATEGORIES",
    "ExportStreamError",
    "FileEntry",
    "ImageNotFound",
    "ImageReport",
    "LayerInfo",
    "Surface",
    "inspect",
]

#: Category names returned by ``ImageReport.categories()``, in display order.
CATEGORIES: tuple[str, ...] = (
    "the app",
    "node_modules (production)",
    "node_modules (dev-only)",
    "Node.js runtime",
    "Go toolchain",
    "compilers and build tools",
    "package manager caches and lists",
    "docs, man pages, locales",
    "OS libraries and files",
    "other",
)

UNCOMPRESSED_LABEL = "uncompressed (docker image ls)"
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

    @property
    def instruction(self) -> str:
        """``created_by`` without the classic builder's ``/bin/sh -c #(nop)`` noise."""
        text = self.created_by.strip()
        for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c #(nop)"):
            if text.startswith(prefix):
                return text[len(prefix):].strip()
        if text.startswith("/bin/sh -c "):
            return "RUN " + text[len("/bin/sh -c "):]
        return text


@dataclass
class Surface:
    """What an attacker (or a learner) finds inside: notebook 05's "attack surface" table.

    Fields that need the file tree are None when the report was made with ``contents=False``.
    """

    shell: str | None = None                      # first shell found (/bin/sh, /bin/bash, /bin/ash, busybox)
    shells: list[str] = field(default_factory=list)
    package_managers: list[str] | None = None      # of apt, dpkg, apk, npm, yarn, pip
    compilers: list[str] | None = None             # of gcc, cc, go, tsc, clang
    executables: int | None = None                 # regular files with an execute bit
    setuid: list[str] | None = None                # setuid/setgid files
    os_packages: int | None = None                 # dpkg status / apk installed entries (None: no database)
    os_package_db: str | None = None               # "dpkg" | "apk" | None
    runs_as_root: bool = True                      # config User empty, 0 or root
    secret_hits: list[str] = field(default_factory=list)  # "/path" for files, "history: ..."/"env: ..."/"label: ..." otherwise
    from_contents: bool = True                     # False: only config-based fields are known

    @property
    def has_shell(self) -> bool | None:
        return None if not self.from_contents else self.shell is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "shell": self.shell, "shells": list(self.shells),
            "package_managers": self.package_managers, "compilers": self.compilers,
            "executables": self.executables, "setuid": self.setuid,
            "os_packages": self.os_packages, "os_package_db": self.os_package_db,
            "runs_as_root": self.runs_as_root, "secret_hits": list(self.secret_hits),
            "from_contents": self.from_contents,
        }


@dataclass
class ImageReport:
    """Everything measured about one image; ``_repr_html_`` is a short summary table.

    ``size`` is the uncompressed size ``docker image ls`` shows (the engine's ``Size``);
    ``size_from_layers`` is the sum of the file bytes all layers add (a cross-check,
    None without contents); ``compressed_size`` is what a pull transfers (gzip -6 of
    each layer, None unless ``compressed=True``).
    """

    ref: str
    image_id: str
    size: int
    layers: list[LayerInfo] = field(default_factory=list)
    size_from_layers: int | None = None
    compressed_size: int | None = None
    user: str = ""
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    exposed_ports: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    workdir: str = ""
    profile: str | None = None               # label org.stagelab.profile
    surface: Surface = field(default_factory=Surface)
    files: dict[str, FileEntry] = field(default_factory=dict)   # final tree; empty without contents
    history: list[str] = field(default_factory=list)   # every history entry's created_by, oldest first
    created: str = ""
    architecture: str = ""
    os: str = ""
    export_format: str | None = None          # "classic" | "oci" (None without contents)
    contents: bool = True                     # False: files, by_directory, largest, categories are empty
    app_paths: tuple[str, ...] = ()           # paths counted as "the app" (WORKDIR, the app's binary)
    lock_packages: dict[str, bool] = field(default_factory=dict, repr=False)  # lockfile key -> dev

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
    def config(self) -> dict[str, Any]:
        """The run configuration as a plain dict (user, entrypoint, cmd, ports, env, labels, workdir)."""
        return {
            "user": self.user, "entrypoint": self.entrypoint, "cmd": self.cmd,
            "exposed_ports": list(self.exposed_ports), "env": dict(self.env),
            "labels": dict(self.labels), "workdir": self.workdir,
        }

    def file(self, path: str) -> FileEntry | None:
        """The final-tree entry at ``path`` (exact path, symlinks not followed), or None."""
        raise NotImplementedError

    def by_directory(self, depth: int = 2) -> list[tuple[str, int]]:
        """Bytes per directory cut at ``depth`` path components, largest first."""
        raise NotImplementedError

    def largest(self, n: int = 10) -> list[FileEntry]:
        """The ``n`` largest files of the final tree, largest first."""
        raise NotImplementedError

    def categories(self) -> dict[str, int]:
        """Bytes per category (keys from ``CATEGORIES``, all present, zeros included)."""
        raise NotImplementedError

    def to_dict(self, *, files: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (``stagelab inspect --json``); ``files=True`` adds the whole tree."""
        raise NotImplementedError

    def as_text(self, *, depth: int = 2, top: int = 10) -> str:
        """A plain-text report for terminals and CI logs."""
        raise NotImplementedError

    def _repr_html_(self) -> str:
        raise NotImplementedError


class ImageNotFound(StagelabError):
    """The image name or id is not a local image (the message names it and how to get it)."""


def inspect(
    image: str,
    *,
    contents: bool = True,
    compressed: bool = False,
    lockfile: str | None = None,
    secret: str | None = None,
    app_paths: tuple[str, ...] | list[str] | None = None,
) -> ImageReport:
    """Measure ``image`` (a tag or id of a local image) and return its :class:`ImageReport`.

    ``contents`` streams the export to read the file tree (files, categories, surface);
    ``compressed`` also gzips each layer (level 6, like ``docker push``) to get the pull size;
    ``lockfile`` is the app's package-lock.json (splits node_modules into production and
    dev-only); ``secret`` is searched in every file, the history, env and labels;
    ``app_paths`` are the paths counted as "the app" (default: WORKDIR and, for lab
    images, the app's binary from variants.toml).
    """
    raise NotImplementedError

