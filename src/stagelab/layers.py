"""Read a ``docker save`` stream into a final file tree: the engine-free core of ``stagelab.inspect``.

Used by every notebook that looks inside an image (through ``stagelab.inspect``).
Reads both export formats from a stream, with no temporary file:

* classic (``manifest.json`` + ``<id>/layer.tar``; Engine 20.10 writes this), and
* OCI (``index.json`` + ``blobs/sha256/<digest>``; Docker 25+ also writes ``manifest.json``),
  with plain-tar or gzip layers (told apart by their magic bytes, not their names).

The manifest may come after the layers in the stream, so each layer is first read on
its own (keyed by its path in the export) and the layers are stacked in manifest order
at the end. Only metadata is kept (path, size, mode, owner, type, link target): file
contents are skipped, except a few small files the surface analysis reads (dpkg/apk
databases, passwd/group, lockfiles) and, when a ``secret`` is given, a streamed search
for it. Whiteouts (``.wh.<name>``) and opaque whiteouts (``.wh..wh..opq``) are applied in
layer order; hardlinks count their bytes once.
"""
from __future__ import annotations

import io
import json
import os
import queue
import struct
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from .errors import StagelabError

#: Read size for the export stream and for tarfile's internal buffer (see ``benchmarks/inspect_speed.py``).
CHUNK_SIZE = 1 << 20
TAR_BUFSIZE = 64 * 1024
FAST_SKIP = True   # skip unread member data without copying it through tarfile's buffers
FAST_HEADERS = True   # decode plain tar headers with one struct call (see _TarInfo.frombuf)
PREFETCH_CHUNKS = 32      # MB read ahead by a thread when searching secrets or compressing
SECRET_CHUNK = 1 << 20   # read size when searching file contents for a secret
#: JSON documents (manifest, index, config) larger than this are not read.
MAX_JSON = 64 << 20
#: Compressed sizes: gzip level 6 of 4 MiB blocks, deflated by this many threads.
GZIP_BLOCK = 4 << 20
GZIP_THREADS = max(1, min(8, os.cpu_count() or 1))

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
        """Sum of the bytes all layers add (what ``docker image ls`` counts)."""
        return sum(layer.size for layer in self.layers)


# --- file objects ---------------------------------------------------------------------------

def _read_to_end(reader) -> bytes:
    """``read()`` without a size: the rest of the stream, chunk by chunk."""
    parts = []
    while part := reader.read(CHUNK_SIZE):
        parts.append(part)
    return b"".join(parts)


class ChunkReader(io.RawIOBase):
    """A raw, read-only file object over an iterator of byte chunks (the SDK's ``get_image``).

    ``read(n)`` may return fewer bytes than asked (raw I/O semantics); tarfile's stream
    mode loops until it has enough. ``on_error`` turns a failure of the iterator (engine
    gone mid-stream) into one clear exception.
    """

    def __init__(self, chunks: Iterable[bytes], on_error: Callable[[BaseException], BaseException] | None = None) -> None:
        super().__init__()
        self._source = chunks                  # closed with the reader (a Prefetch stops its thread)
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._on_error = on_error
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bool:
        while not self._eof:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                return False
            except Exception as exc:  # engine stopped, connection broken, API error
                if self._on_error is None:
                    raise
                raise self._on_error(exc) from None
            if chunk:
                self._buf = chunk
                self._pos = 0
                return True
        return False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return _read_to_end(self)
        if size == 0:
            return b""
        if self._pos >= len(self._buf) and not self._next_chunk():
            return b""
        buf, pos = self._buf, self._pos
        if pos == 0 and size >= len(buf):
            self._pos = len(buf)
            self.bytes_read += len(buf)
            return buf
        out = buf[pos:pos + size]
        self._pos = pos + len(out)
        self.bytes_read += len(out)
        return out

    def skip(self, size: int) -> int:
        """Advance ``size`` bytes without copying them (whole chunks are dropped); returns bytes skipped."""
        done = 0
        while done < size:
            if self._pos >= len(self._buf) and not self._next_chunk():
                break
            step = min(len(self._buf) - self._pos, size - done)
            self._pos += step
            done += step
        self.bytes_read += done
        return done

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        for obj in (self._chunks, self._source):
            close = getattr(obj, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
        super().close()


class _Member:
    """The data of one member of the outer tar, read straight from the underlying reader.

    ``head`` are bytes already buffered by tarfile, ``source`` the reader the rest comes
    from (at most ``left`` bytes). ``peek`` looks ahead without consuming; ``skip``
    advances without copying when the source can (``ChunkReader.skip``); ``tee`` sees
    every consumed byte (the gzip counter for compressed sizes).
    """

    def __init__(self, head: bytes, source, left: int) -> None:
        self._pending = head
        self._source = source
        self._left = left
        self._can_skip = hasattr(source, "skip")
        self.tee: Callable[[bytes], None] | None = None

    def _fill(self, size: int) -> bytes:
        data = self._source.read(min(size, self._left))
        if not data and self._left > 0:
            raise tarfile.ReadError("unexpected end of data")
        self._left -= len(data)
        return data

    def peek(self, size: int) -> bytes:
        while len(self._pending) < size and self._left > 0:
            self._pending += self._fill(size - len(self._pending))
        return self._pending[:size]

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return _read_to_end(self)
        if self._pending:
            out = self._pending[:size]
            self._pending = self._pending[len(out):]
        elif self._left > 0:
            out = self._fill(size)
        else:
            return b""
        if self.tee is not None:
            self.tee(out)
        return out

    def skip(self, size: int) -> None:
        """Consume ``size`` bytes (without copying them when there is no tee)."""
        if self.tee is not None or not self._can_skip:
            while size > 0:
                got = self.read(min(size, CHUNK_SIZE))
                if not got:
                    raise tarfile.ReadError("unexpected end of data")
                size -= len(got)
            return
        if self._pending:
            take = min(size, len(self._pending))
            self._pending = self._pending[take:]
            size -= take
        if size > 0:
            if size > self._left or self._source.skip(size) != size:
                raise tarfile.ReadError("unexpected end of data")
            self._left -= size

    def drain(self) -> None:
        """Consume the rest (the tee must see every byte; tar padding after the end marker)."""
        rest = len(self._pending) + self._left
        if rest:
            self.skip(rest)


def _stream_of(tar: tarfile.TarFile):
    """tarfile's internal stream object when it is the plain-tar ``_Stream`` we know, else None.

    Used only to skip member data without copying it (see :func:`_skip_data`); any other
    shape (a future Python) falls back to tarfile's own, slower skipping.
    """
    stream = getattr(tar, "fileobj", None)
    if (FAST_SKIP and stream is not None and getattr(stream, "comptype", None) == "tar"
            and isinstance(getattr(stream, "buf", None), bytes) and isinstance(getattr(stream, "pos", None), int)):
        return stream
    return None


def _skip_data(stream, source, size: int) -> None:
    """Advance past ``size`` bytes of member data: first what tarfile buffered, then ``source``."""
    buffered = stream.buf
    if len(buffered) >= size:
        stream.buf = buffered[size:]
    else:
        stream.buf = b""
        source.skip(size - len(buffered))
    stream.pos += size


def _open_member(tar: tarfile.TarFile, info: tarfile.TarInfo, source) -> _Member:
    """A :class:`_Member` for ``info``'s data: straight from ``source`` when possible, else ``extractfile``."""
    stream = _stream_of(tar)
    if stream is not None and hasattr(source, "skip") and stream.pos == info.offset_data:
        buffered = stream.buf
        head = buffered[: info.size]
        stream.buf = buffered[len(head):]
        stream.pos += info.size   # we consume the data ourselves; tarfile only skips the padding
        return _Member(head, source, info.size - len(head))
    return _Member(b"", tar.extractfile(info), info.size)


class _GzipCounter:
    """Counts the gzip -6 size of the bytes fed to it (``docker push`` compresses layers so).

    Counted, never stored. The stream is cut into ``GZIP_BLOCK`` blocks deflated
    independently in a thread pool (zlib releases the GIL), so all cores work; the
    total is one gzip header and trailer plus each block's deflate size. It differs from
    a single gzip stream by the dictionary lost at each cut (well under 0.1% with 4 MiB
    blocks) and equals ``len(gzip.compress(data, 6))`` for a layer of one block.
    """

    def __init__(self, pool) -> None:
        self._pool = pool
        self._buf = bytearray()
        self._futures: list = []
        self.size = 18   # gzip header (10) + trailer (8)

    def __call__(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= GZIP_BLOCK:   # exact cuts: the result does not depend on read sizes
            self._submit(bytes(self._buf[:GZIP_BLOCK]))
            del self._buf[:GZIP_BLOCK]

    def _submit(self, block: bytes) -> None:
        self._futures.append(self._pool.submit(_deflated_size, block))
        if len(self._futures) > 2 * GZIP_THREADS:   # bounded memory: wait for the oldest blocks
            done = self._futures[: len(self._futures) - GZIP_THREADS]
            self._futures = self._futures[len(done):]
            self.size += sum(f.result() for f in done)

    def finish(self) -> int:
        if self._buf or not self._futures:
            self._submit(bytes(self._buf))
            self._buf = bytearray()
        self.size += sum(f.result() for f in self._futures)
        self._futures = []
        return self.size


def _deflated_size(block: bytes) -> int:
    z = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return len(z.compress(block)) + len(z.flush())


_HEADER = struct.Struct("100s8s8s8s12s12s8s1s100s6s2s32s32s8s8s155s12x")


def _octal(field: bytes) -> int:
    try:
        return int(field.rstrip(b"\0"), 8)   # the usual "0000644\0"
    except ValueError:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)   # tarfile's nti rules


def _text(field: bytes, encoding: str, errors: str) -> str:
    return field.split(b"\0", 1)[0].decode(encoding, errors)


class _TarInfo(tarfile.TarInfo):
    """tarfile's TarInfo (passed as ``tarinfo=``) with two additions for reading exports.

    * It records why a tar ended (a zero block, or garbage / truncation), which tarfile hides.
    * ``frombuf`` decodes an ordinary ustar/GNU header with one ``struct`` call (tarfile's
      own decodes field by field, the main cost of reading an image with many small
      files); anything unusual (base-256 numbers, sparse files, a bad checksum, the end
      block) is left to tarfile's implementation, which also raises its errors.
    """

    @classmethod
    def fromtarfile(cls, tar):  # type: ignore[override]
        try:
            return super().fromtarfile(tar)
        except tarfile.HeaderError as exc:
            tar.stagelab_end = type(exc).__name__
            raise

    @classmethod
    def frombuf(cls, buf, encoding, errors):  # type: ignore[override]
        if not FAST_HEADERS or len(buf) != tarfile.BLOCKSIZE:
            return super().frombuf(buf, encoding, errors)
        (name, mode, uid, gid, size, mtime, chksum, kind, linkname, _magic, _version,
         uname, gname, devmajor, devminor, prefix) = _HEADER.unpack(buf)
        if kind == tarfile.GNUTYPE_SPARSE or (mode[0] | uid[0] | gid[0] | size[0] | mtime[0]
                                              | devmajor[0] | devminor[0]) & 0x80:
            return super().frombuf(buf, encoding, errors)   # base-256 numbers start with 0x80 / 0xff
        try:
            stored = _octal(chksum)
            if stored != 256 + sum(buf[:148]) + sum(buf[156:]):
                return super().frombuf(buf, encoding, errors)   # signed checksum, end block, garbage
            obj = cls()
            obj.mode = _octal(mode)
            obj.uid = _octal(uid)
            obj.gid = _octal(gid)
            obj.size = _octal(size)
            obj.mtime = _octal(mtime)
            if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                obj.devmajor = _octal(devmajor)
                obj.devminor = _octal(devminor)
        except ValueError:
            return super().frombuf(buf, encoding, errors)   # raises InvalidHeaderError
        obj.chksum = stored
        obj.type = kind
        obj.name = _text(name, encoding, errors)
        obj.linkname = _text(linkname, encoding, errors)
        obj.uname = _text(uname, encoding, errors)
        obj.gname = _text(gname, encoding, errors)
        prefix_text = _text(prefix, encoding, errors)
        if kind == tarfile.AREGTYPE and obj.name.endswith("/"):
            obj.type = tarfile.DIRTYPE
        if obj.type == tarfile.DIRTYPE:
            obj.name = obj.name.rstrip("/")
        if prefix_text and obj.type not in tarfile.GNU_TYPES:
            obj.name = prefix_text + "/" + obj.name
        return obj


def _ended_cleanly(tar: tarfile.TarFile, *, strict: bool) -> bool:
    """True when the tar ended with its end-of-archive zero block (``strict``) or at a member boundary."""
    reason = getattr(tar, "stagelab_end", None)
    if reason == "EOFHeaderError":
        return True
    return not strict and reason == "EmptyHeaderError"


class Prefetch:
    """Iterate ``chunks`` in a background thread, ``depth`` chunks ahead (bounded memory).

    The engine keeps writing the export while the parser works on earlier chunks, so
    reading overlaps parsing instead of alternating with it. Exceptions raised by the
    iterator are re-raised in the consumer; ``close()`` stops the thread.
    """

    _END = object()

    def __init__(self, chunks: Iterable[bytes], depth: int = PREFETCH_CHUNKS) -> None:
        self._chunks = chunks
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stagelab-export-reader", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        iterator = iter(self._chunks)
        pending: list[bytes] = []
        size = 0
        try:
            for chunk in iterator:   # HTTP chunks are small (~32 kB): hand over ~1 MB at a time
                pending.append(chunk)
                size += len(chunk)
                if size >= CHUNK_SIZE:
                    block = pending[0] if len(pending) == 1 else b"".join(pending)
                    pending, size = [], 0
                    if not self._put(block):
                        break
            else:
                if pending:
                    self._put(b"".join(pending))
                self._put(self._END)
        except BaseException as exc:  # handed to the consumer
            self._put(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


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


def _sniff(head: bytes) -> str:
    """``tar`` | ``gzip`` | ``json`` | ``zstd`` | ``unknown`` from a blob's first bytes."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "json"
    if len(head) >= 512 and not head[:512].strip(b"\0"):
        return "tar"   # an empty tar: only zero blocks
    if head and len(head) < 512 and not head.strip(b"\0"):
        return "tar"
    if len(head) >= 156 and head[:100].rstrip(b"\0") and _old_tar_checksum_ok(head):
        return "tar"   # a v7 tar without the ustar magic
    return "unknown"


def _old_tar_checksum_ok(head: bytes) -> bool:
    try:
        stored = int(head[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == 256 + sum(head[:148]) + sum(head[156:512])


# --- reading the whole export ---------------------------------------------------------------

def read_export(
    stream: BinaryIO,
    *,
    secret: str | None = None,
    compressed: bool = False,
    keep: Callable[[str, int], bool] | None = None,
) -> ExportContents:
    """Read a ``docker save`` tar from ``stream`` (a file object) into an :class:`ExportContents`.

    Raises :class:`ExportStreamError` for a stream that is not a tar, is truncated, or
    has no manifest (``manifest.json`` or ``index.json``).
    """
    if not hasattr(stream, "skip"):   # any file object: read it in large chunks
        source = stream
        stream = ChunkReader(iter(lambda: source.read(CHUNK_SIZE), b""))
    needle = secret.encode() if secret else None
    keep_fn = keep or _wanted
    scans: dict[str, LayerScan] = {}
    jsons: dict[str, object] = {}
    aliases: dict[str, str] = {}
    try:
        outer = tarfile.open(fileobj=stream, mode="r|", bufsize=TAR_BUFSIZE, tarinfo=_TarInfo)
    except tarfile.ReadError as exc:
        raise ExportStreamError(
            f"this is not an image export (a `docker save` tar): {exc}.",
            fix="pass the output of `docker save IMAGE` (or an image name to stagelab.inspect)",
        ) from None
    clean_end = False
    pool = ThreadPoolExecutor(GZIP_THREADS, thread_name_prefix="stagelab-gzip") if compressed else None
    try:
        while True:
            info = outer.next()
            if info is None:
                clean_end = _ended_cleanly(outer, strict=True)
                break
            outer.members.clear()
            name = _norm(info.name)[1:]
            if info.issym() or info.islnk():
                target = info.linkname
                if info.issym():
                    base = name.rsplit("/", 1)[0] if "/" in name else ""
                    target = _join_rel(base, target)
                aliases[name] = _norm(target)[1:]
                continue
            if not info.isfile():
                continue
            is_blob = name.startswith("blobs/")
            if name.endswith("/layer.tar") or name.endswith("/layer.tar.gz") or is_blob:
                member = _open_member(outer, info, stream)
                head = member.peek(512)
                kind = _sniff(head)
                if kind in ("tar", "gzip"):
                    counter = _GzipCounter(pool) if pool is not None and kind == "tar" else None
                    member.tee = counter
                    scan = scan_layer(member, name, mode="r|" if kind == "tar" else "r|gz",
                                      secret=needle, keep=keep_fn)
                    member.drain()
                    scan.tar_bytes = info.size
                    if kind == "gzip":
                        scan.compressed_size = info.size
                    elif counter is not None:
                        scan.compressed_size = counter.finish()
                    scans[name] = scan
                elif kind == "json" and info.size <= MAX_JSON:
                    jsons[name] = _load_json(member.read(), name)
                elif kind == "zstd":
                    scans[name] = _Unsupported(name)  # type: ignore[assignment]
                member.drain()
                continue
            if (name.endswith(".json") or name == "repositories") and info.size <= MAX_JSON:
                jsons[name] = _load_json(outer.extractfile(info).read(), name)
    except tarfile.ReadError as exc:
        raise ExportStreamError(
            f"the image export is truncated or corrupt ({exc}).",
            fix="re-run; if the engine stopped, start it (`stagelab doctor`) and try again",
        ) from None
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        try:
            outer.close()
        except Exception:
            pass
    if not clean_end:
        raise ExportStreamError(
            "the image export ended early (no end-of-archive marker): the stream is truncated or corrupt.",
            fix="re-run; if the engine stopped, start it (`stagelab doctor`) and try again",
        )
    fmt, layer_keys, config = _manifest(jsons, aliases)
    ordered: list[LayerScan] = []
    for key in layer_keys:
        resolved = _resolve_alias(key, aliases)
        scan = scans.get(resolved)
        if scan is None:
            raise ExportStreamError(
                f"the manifest names layer {key}, but the export has no such layer: the stream is truncated or incomplete.",
                fix="re-run `docker save` / stagelab.inspect; if it persists, rebuild the image",
            )
        if isinstance(scan, _Unsupported):
            raise ExportStreamError(
                f"layer {key} is zstd-compressed, which this reader does not support.",
                fix="export the image with gzip or uncompressed layers (docker save does by default)",
            )
        ordered.append(scan)
    history = [h for h in config.get("history", []) if isinstance(h, dict)]
    tree, stats, small, hits = stack_layers(ordered)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    created = [h.get("created_by", "") for h in history if not h.get("empty_layer")]
    for i, st in enumerate(stats):
        if i < len(diff_ids):
            st.digest = diff_ids[i]
        if len(created) == len(stats):
            st.created_by = created[i]
    return ExportContents(tree=tree, layers=stats, config=config, format=fmt, history=history,
                          small_files=small, secret_hits=hits)


class _Unsupported:
    def __init__(self, key: str) -> None:
        self.key = key


def _join_rel(base: str, target: str) -> str:
    if target.startswith("/"):
        return target
    parts = [p for p in base.split("/") if p]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _resolve_alias(key: str, aliases: dict[str, str]) -> str:
    key = _norm(key)[1:]
    for _ in range(16):
        if key not in aliases:
            return key
        key = aliases[key]
    return key


def _load_json(data: bytes, name: str) -> object:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportStreamError(f"{name} in the image export is not valid JSON ({exc}).",
                                fix="re-run; the export may be truncated") from None


def _blob_path(digest: str) -> str:
    alg, _, hexpart = digest.partition(":")
    return f"blobs/{alg}/{hexpart}"


def _manifest(jsons: dict[str, object], aliases: dict[str, str]) -> tuple[str, list[str], dict]:
    """(format, layer keys bottom-first, config) from manifest.json or index.json."""
    fmt = "oci" if "index.json" in jsons else "classic"
    manifest = jsons.get("manifest.json")
    if isinstance(manifest, list) and manifest and isinstance(manifest[0], dict):
        entry = manifest[0]
        config = jsons.get(_resolve_alias(str(entry.get("Config", "")), aliases))
        layers = [str(x) for x in entry.get("Layers") or []]
        if not isinstance(config, dict):
            raise ExportStreamError(
                f"the export's manifest.json names the config {entry.get('Config')!r}, which is missing.",
                fix="re-run; the export may be truncated",
            )
        return fmt, layers, config
    index = jsons.get("index.json")
    if isinstance(index, dict):
        node: object = index
        for _ in range(8):
            if not isinstance(node, dict):
                break
            if "manifests" in node:
                chosen = _pick_manifest(node.get("manifests") or [])
                if chosen is None:
                    break
                node = jsons.get(_blob_path(chosen.get("digest", "")))
                continue
            if "layers" in node:
                config = jsons.get(_blob_path((node.get("config") or {}).get("digest", "")))
                if not isinstance(config, dict):
                    break
                layers = [_blob_path(layer.get("digest", "")) for layer in node["layers"]]
                return "oci", layers, config
            break
        raise ExportStreamError(
            "the export's index.json does not lead to an image manifest with a config and layers.",
            fix="re-run; the export may be truncated or hold no image for this platform",
        )
    raise ExportStreamError(
        "the image export has no manifest.json or index.json: it is truncated or not a `docker save` tar.",
        fix="re-run `docker save IMAGE` / stagelab.inspect; if the engine stopped, start it (`stagelab doctor`)",
    )


def _pick_manifest(manifests: list) -> dict | None:
    good = [m for m in manifests if isinstance(m, dict) and m.get("digest")]
    if not good:
        return None
    for m in good:
        plat = m.get("platform") or {}
        if plat.get("os") == "linux" and plat.get("architecture") in ("amd64", "x86_64"):
            return m
    for m in good:   # skip attestation manifests (buildx) when possible
        if (m.get("annotations") or {}).get("vnd.docker.reference.type") != "attestation-manifest":
            return m
    return good[0]


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
    stats = [LayerStats(index=i, key=s.key, tar_bytes=s.tar_bytes, compressed_size=s.compressed_size)
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


# --- reading from the engine ----------------------------------------------------------------

def stream_image(client, image: str, chunk_size: int = CHUNK_SIZE, *, prefetch: bool = False) -> ChunkReader:
    """A raw, read-only file object over ``docker save IMAGE`` from the engine (no temp file).

    ``client`` is a ``docker.DockerClient``; uses the low-level ``get_image`` generator.
    ``prefetch`` reads ahead in a thread (up to ``PREFETCH_CHUNKS`` MB): worth it only when
    the reader is slower than the engine (secret search, compression); otherwise the
    socket buffer already overlaps the two and the thread only costs CPU.
    """
    def on_error(exc: BaseException) -> BaseException:
        return ExportStreamError(
            f"reading the export of {image} from the engine failed: {str(exc).strip()[:300]}",
            fix="check the engine (`stagelab doctor`) and that the image exists (`docker images`)",
        )

    chunks = client.api.get_image(image, chunk_size=chunk_size)
    if prefetch and PREFETCH_CHUNKS > 0:
        chunks = Prefetch(chunks, depth=PREFETCH_CHUNKS)
    return ChunkReader(chunks, on_error=on_error)


def read_image(client, image: str, *, secret: str | None = None, compressed: bool = False,
               chunk_size: int = CHUNK_SIZE) -> ExportContents:
    """Stream ``docker save IMAGE`` from the engine through :func:`read_export`."""
    reader = stream_image(client, image, chunk_size=chunk_size, prefetch=bool(secret or compressed))
    try:
        return read_export(reader, secret=secret, compressed=compressed)
    finally:
        reader.close()
