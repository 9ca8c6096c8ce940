"""Reading a ``docker save`` stream fast: file objects, tar headers, gzip sizes and read-ahead.

The low-level half of :mod:`stagelab.layers` / :mod:`stagelab.export` (used through
``stagelab.inspect`` by every notebook that looks inside an image). Nothing here knows
about images: ``ChunkReader`` turns the SDK's chunk iterator into a raw file object that
can skip without copying, ``_Member`` reads one member of the outer tar straight from it,
``_TarInfo`` decodes plain headers with one ``struct`` call, ``_GzipCounter`` counts the
gzip -6 size of a layer on all cores, ``Prefetch`` reads ahead in a thread, ``_sniff``
tells tar, gzip, zstd and JSON apart by their first bytes.
"""
from __future__ import annotations

import io
import os
import queue
import struct
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator

#: Read size for the export stream and for tarfile's internal buffer (see ``benchmarks/inspect_speed.py``).
CHUNK_SIZE = 1 << 20
TAR_BUFSIZE = 64 * 1024
FAST_SKIP = True   # skip unread member data without copying it through tarfile's buffers
FAST_HEADERS = True   # decode plain tar headers with one struct call (see _TarInfo.frombuf)
PREFETCH_CHUNKS = 32      # MB read ahead by a thread when searching secrets or compressing
#: Compressed sizes: gzip level 6 of 4 MiB blocks, deflated by this many threads.
GZIP_BLOCK = 4 << 20
GZIP_THREADS = max(1, min(8, os.cpu_count() or 1))


# --- file objects ---------------------------------------------------------------------------

def _close_quietly(obj: object) -> None:
    """``obj.close()`` if it has one; errors while closing a dead connection are of no use."""
    close = getattr(obj, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


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
            _close_quietly(obj)
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
            _close_quietly(iterator)

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


# --- what a blob is ------------------------------------------------------------------------

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
