"""Read a ``docker save`` stream into a final file tree: the engine-free core of ``stagelab.inspect``.

Used by every notebook that looks inside an image (through ``stagelab.inspect``).
Reads both export formats from a stream, with no temporary file:

* classic (``manifest.json`` + ``<id>/layer.tar``; Engine 20.10 writes this), and
* OCI (``index.json`` + ``blobs/sha256/<digest>``; Docker 25+ also writes ``manifest.json``),
  with plain-tar or gzip layers (told apart by their magic bytes, not their names).

Only metadata is kept (path, size, mode, owner, type, link target): file contents are
skipped, except a few small files the surface analysis reads (dpkg/apk databases,
passwd/group, lockfiles) and, when a ``secret`` is given, a streamed search for it.
Whiteouts (``.wh.<name>``) and opaque whiteouts (``.wh..wh..opq``) are applied in layer
order; hardlinks count their bytes once.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from .errors import StagelabError


class ExportStreamError(StagelabError):
    """The ``docker save`` stream is not a readable image export (not a tar, truncated, no manifest)."""


@dataclass(slots=True)
class FileEntry:
    """One path of the final tree (what ``docker run`` would see).

    ``type`` is one of ``file | dir | symlink | hardlink | char | block | fifo``.
    ``size`` is the bytes this entry holds in the image: 0 for dirs, symlinks and for a
    hardlink whose target still holds the bytes (bytes are counted once).
    ``layer`` is the index (0 = bottom) of the layer that last wrote the path.
    ``linkname`` is the link target for symlinks (as stored) and hardlinks (absolute path).
    """

    path: str
    size: int
    mode: int
    uid: int
    gid: int
    type: str
    layer: int
    linkname: str = ""

    @property
    def name(self) -> str:
        """The last path component (``/usr/bin/gcc`` -> ``gcc``)."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_regular(self) -> bool:
        """A regular file (or a hardlink to one)."""
        return self.type in ("file", "hardlink")

    @property
    def is_executable(self) -> bool:
        """A regular file with any execute bit set."""
        return self.is_regular and bool(self.mode & 0o111)

    @property
    def is_setuid(self) -> bool:
        """A regular file with the setuid or setgid bit."""
        return self.is_regular and bool(self.mode & 0o6000)


@dataclass
class LayerStats:
    """What one layer adds, as read from its tar (index 0 = bottom layer)."""

    index: int
    key: str                 # where it was in the export: "<id>/layer.tar" or "blobs/sha256/<hex>"
    digest: str = ""         # sha256 of the uncompressed tar (diff id), when known
    size: int = 0            # bytes of file contents this layer adds (hardlinks once)
    files: int = 0           # entries that are not directories
    wasted: int = 0          # bytes of this layer's files a later layer deletes or overwrites
    tar_bytes: int = 0       # length of the (uncompressed) layer tar
    compressed_size: int | None = None   # gzip -6 of the tar (or the gzip blob itself)
    created_by: str = ""     # the instruction that made it (from the image config history)


@dataclass
class ExportContents:
    """Everything read from one export stream (returned by :func:`read_export`)."""

    tree: dict[str, FileEntry]
    layers: list[LayerStats]
    config: dict                       # the image config JSON (config, history, rootfs ...)
    format: str                        # "classic" | "oci"
    history: list[dict] = field(default_factory=list)   # config history entries, oldest first
    small_files: dict[str, bytes] = field(default_factory=dict)   # final-tree contents of the files read
    secret_hits: list[str] = field(default_factory=list)          # final-tree paths containing the secret

    @property
    def size(self) -> int:
        """Sum of the bytes all layers add (what ``docker image ls`` counts)."""
        return sum(layer.size for layer in self.layers)


def read_export(
    stream: BinaryIO,
    *,
    secret: str | None = None,
    compressed: bool = False,
    keep: Iterable[str] = (),
) -> ExportContents:
    """Read a ``docker save`` tar from ``stream`` (a file object) into an :class:`ExportContents`."""
    raise NotImplementedError


def stream_image(client, image: str, chunk_size: int = 1 << 20) -> BinaryIO:
    """A raw, read-only file object over ``docker save IMAGE`` from the engine (no temp file)."""
    raise NotImplementedError
