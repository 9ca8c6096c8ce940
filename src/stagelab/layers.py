"""The file tree of an image from its layers: one layer tar read (``scan_layer``), layers stacked (``stack_layers``).

Used through ``stagelab.inspect`` (and :mod:`stagelab.export`, :mod:`stagelab.layercache`) by
every notebook that looks inside an image. Only metadata is kept (path, size, mode, owner,
type, link target): file contents are skipped, except a few small files the surface
analysis reads (dpkg/apk databases, passwd/group, lockfiles) and, when a ``secret`` is
given, a streamed search for it. Whiteouts (``.wh.<name>``) and opaque whiteouts
(``.wh..wh..opq``) are applied in layer order; hardlinks count their bytes once.
"""
from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import StagelabError
from .sizes import BLOCK, entry_disk_usage
from .tarstream import TAR_BUFSIZE, _ended_cleanly, _skip_data, _stream_of, _TarInfo

SECRET_CHUNK = 1 << 20   # read size when searching file contents for a secret

#: Files whose contents are kept (small databases the surface analysis reads).
KEEP_PATHS = frozenset({
    "/var/lib/dpkg/status",
    "/lib/apk/db/installed",
    "/etc/passwd",
    "/etc/group",
})
KEEP_PREFIXES = ("/var/lib/dpkg/status.d/",)   # distroless: one small file per package
MAX_KEEP = 32 << 20

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

_TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
    tarfile.GNUTYPE_SPARSE: "file", tarfile.LNKTYPE: "hardlink", tarfile.SYMTYPE: "symlink",
    tarfile.DIRTYPE: "dir", tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


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
    disk_usage: int = 0      # unpacked into 4 KiB blocks (stagelab.sizes.entry_disk_usage), its root dir included
    wasted: int = 0          # bytes of this layer's files a later layer deletes or overwrites
    tar_bytes: int = 0       # length of the layer tar as stored in the export
    compressed_size: int | None = None   # gzip -6 of the tar (or the gzip blob itself)
    created_by: str = ""     # the instruction that made it (from the image config history)


@dataclass
class LayerScan:
    """One layer tar as read from the stream, before stacking (metadata only)."""

    key: str
    entries: list[tuple] = field(default_factory=list)   # (path, size, mode, uid, gid, type, linkname)
    whiteouts: list[str] = field(default_factory=list)   # paths deleted from lower layers
    opaque: list[str] = field(default_factory=list)      # dirs whose lower-layer contents are hidden
    small_files: dict[str, bytes] = field(default_factory=dict)
    secret_files: list[str] = field(default_factory=list)
    tar_bytes: int = 0
    compressed_size: int | None = None
    diff_id: str = ""     # set when the scan came from the layer cache (checked against the config)


@dataclass
class ExportContents:
    """Everything read from one export stream (returned by :func:`read_export`)."""

    tree: dict[str, FileEntry]
    layers: list[LayerStats]
    config: dict                       # the image config JSON (config, history, rootfs ...)
    format: str                        # "classic" | "oci"
    history: list[dict] = field(default_factory=list)   # config history entries, oldest first
    small_files: dict[str, bytes] = field(default_factory=dict)   # final-tree contents of the files read
    secret_hits: list[str] = field(default_factory=list)          # paths (and layer notes) holding the secret

    @property
    def size(self) -> int:
        """Sum of the bytes all layers add, uncompressed (``stagelab.sizes.SIZE_LABEL``)."""
        return sum(layer.size for layer in self.layers)


# --- reading one layer ----------------------------------------------------------------------

def _norm(name: str) -> str:
    """Tar member name -> absolute path: ``./usr/bin/`` -> ``/usr/bin``; ``.`` -> ``/``."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    if name in ("", "."):
        return "/"
    return "/" + name


def _wanted(path: str, size: int) -> bool:
    if size > MAX_KEEP:
        return False
    if path in KEEP_PATHS or path.startswith(KEEP_PREFIXES):
        return True
    if path.endswith("/node_modules/.package-lock.json"):
        return path.count("/node_modules/") == 1
    if path.endswith("/package-lock.json"):
        return "/node_modules/" not in path
    return False


def _contains(fileobj, needle: bytes, chunk: int | None = None) -> bool:
    """Stream ``fileobj`` in chunks looking for ``needle`` (overlap so no match is cut in two)."""
    chunk = chunk or SECRET_CHUNK
    keep = len(needle) - 1
    tail = b""
    while True:
        data = fileobj.read(chunk)
        if not data:
            return False
        window = tail + data
        if needle in window:
            return True
        tail = window[-keep:] if keep else b""


def scan_layer(fileobj, key: str, *, mode: str = "r|", secret: bytes | None = None,
               keep: Callable[[str, int], bool] = _wanted) -> LayerScan:
    """Read one layer tar (plain ``r|`` or gzip ``r|gz``) from ``fileobj`` into a :class:`LayerScan`."""
    scan = LayerScan(key=key)
    entries = scan.entries
    try:
        tar = tarfile.open(fileobj=fileobj, mode=mode, bufsize=TAR_BUFSIZE, tarinfo=_TarInfo)
    except tarfile.ReadError as exc:
        if "empty file" in str(exc):
            return scan   # a zero-length layer tar: nothing added
        raise ExportStreamError(f"layer {key} is not a readable tar ({exc}).",
                                fix="re-run; if it persists, rebuild the image") from None
    types = _TYPES
    fast = _stream_of(tar) if hasattr(fileobj, "skip") else None
    try:
        while True:
            info = tar.next()
            if info is None:
                if not _ended_cleanly(tar, strict=False):
                    raise tarfile.ReadError(f"bad tar header at byte {tar.offset}")
                break
            tar.members.clear()   # stream mode: keep no TarInfo history (memory stays flat)
            path = _norm(info.name)
            if path == "/":
                continue
            slash = path.rfind("/")
            base = path[slash + 1:]
            if base.startswith(WHITEOUT):
                parent = path[:slash] or "/"
                if base == OPAQUE:
                    scan.opaque.append(parent)
                elif not base.startswith(".wh..wh."):
                    scan.whiteouts.append((parent.rstrip("/") + "/" + base[len(WHITEOUT):]))
                continue
            kind = types.get(info.type, "file")
            if kind == "file":
                size = info.size
                if keep(path, size):
                    scan.small_files[path] = tar.extractfile(info).read()
                    if secret and secret in scan.small_files[path]:
                        scan.secret_files.append(path)
                elif secret and size >= len(secret):
                    if _contains(tar.extractfile(info), secret):
                        scan.secret_files.append(path)
                elif fast is not None and size and info.type in _PLAIN and info.sparse is None:
                    _skip_data(fast, fileobj, size)
                entries.append((path, size, info.mode, info.uid, info.gid, kind, ""))
            elif kind == "hardlink":
                entries.append((path, 0, info.mode, info.uid, info.gid, kind, _norm(info.linkname)))
            elif kind == "symlink":
                entries.append((path, 0, info.mode, info.uid, info.gid, kind, info.linkname))
            else:
                entries.append((path, 0, info.mode, info.uid, info.gid, kind, ""))
    except (tarfile.ReadError, EOFError, zlib.error) as exc:
        raise ExportStreamError(
            f"the export stream ended inside layer {key} ({exc}): it is truncated or corrupt.",
            fix="re-run; if the engine stopped, start it (`stagelab doctor`) and try again",
        ) from None
    return scan


# --- stacking layers into the final tree ---------------------------------------------------

def stack_layers(scans: list[LayerScan]) -> tuple[dict[str, FileEntry], list[LayerStats], dict[str, bytes], list[str]]:
    """Apply layers bottom-first: whiteouts, opaque dirs, overwrites; count wasted bytes.

    Returns (tree, per-layer stats, small file contents of the final tree, secret hits).
    A layer's *wasted* bytes are those of its files that a later layer deletes or
    overwrites (they are in the image but no longer in the final tree). When a file is
    removed but a hardlink to it from the same layer survives, the hardlink takes over
    its bytes (they are still in the image and still visible).
    """
    tree: dict[str, FileEntry] = {}
    children: dict[str, set[str]] = {}
    stats = [LayerStats(index=i, key=s.key, tar_bytes=s.tar_bytes, compressed_size=s.compressed_size,
                        disk_usage=BLOCK)   # the layer's own root directory
             for i, s in enumerate(scans)]
    links: dict[tuple[int, str], list[str]] = {}   # (layer, target) -> hardlink paths

    def parent_of(path: str) -> str:
        cut = path.rfind("/")
        return path[:cut] if cut > 0 else "/"

    def drop(entry: FileEntry, by_layer: int) -> None:
        """``entry`` leaves the final tree: count its bytes as wasted unless a hardlink survives."""
        if entry.size <= 0:
            return
        if entry.type in ("file", "hardlink"):
            target = entry.path if entry.type == "file" else entry.linkname
            for link in links.get((entry.layer, target), ()):
                other = tree.get(link)
                if (other is not None and other is not entry and other.type == "hardlink"
                        and other.layer == entry.layer and other.linkname == target and other.size == 0):
                    other.size = entry.size   # the bytes live on under the hardlink's name
                    return
        stats[entry.layer].wasted += entry.size

    def remove_tree(path: str, by_layer: int) -> None:
        entry = tree.pop(path, None)
        kids = children.pop(path, None)
        siblings = children.get(parent_of(path))
        if siblings is not None:
            siblings.discard(path)
        if entry is not None:
            drop(entry, by_layer)
        if kids:
            stack = list(kids)
            while stack:
                p = stack.pop()
                e = tree.pop(p, None)
                if e is not None:
                    drop(e, by_layer)
                more = children.pop(p, None)
                if more:
                    stack.extend(more)

    for index, scan in enumerate(scans):
        st = stats[index]
        for d in scan.opaque:
            for kid in list(children.get(d, ())):
                remove_tree(kid, index)
        for path in scan.whiteouts:
            remove_tree(path, index)
        for path, size, mode, uid, gid, kind, linkname in scan.entries:
            old = tree.get(path)
            if old is not None:
                if old.type == "dir":
                    if kind != "dir":
                        remove_tree(path, index)
                else:
                    drop(old, index)
            entry = FileEntry(path, size, mode, uid, gid, kind, index, linkname)
            tree[path] = entry
            st.disk_usage += entry_disk_usage(kind, size, linkname)
            if kind != "dir":
                st.files += 1
                st.size += size
                if kind == "hardlink":
                    links.setdefault((index, linkname), []).append(path)
            parent = parent_of(path)
            kids = children.get(parent)
            if kids is None:
                children[parent] = {path}
                # make sure implicit parents are linked too, so whiteouts of them find us
                p = parent
                while p != "/":
                    pp = parent_of(p)
                    pk = children.get(pp)
                    if pk is None:
                        children[pp] = {p}
                        p = pp
                        continue
                    pk.add(p)
                    break
            else:
                kids.add(path)

    small: dict[str, bytes] = {}
    for path in {p for s in scans for p in s.small_files}:
        entry = tree.get(path)
        if entry is not None and entry.type == "file":
            data = scans[entry.layer].small_files.get(path)
            if data is not None:
                small[path] = data
    hits: list[str] = []
    for index, scan in enumerate(scans):
        for path in scan.secret_files:
            entry = tree.get(path)
            if entry is not None and entry.layer == index:
                hits.append(path)
            else:
                hits.append(f"{path} (layer {index}, removed or replaced by a later layer)")
    return tree, stats, small, hits
