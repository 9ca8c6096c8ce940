"""A cache of each layer's file listing, keyed by its diff id (layers are immutable).

Used by :func:`stagelab.inspect.inspect` (every notebook that measures an image: 01, 02,
04 and 08 inspect the same single-stage image). ``read_image_cached``:

* reads an **unchanged image without exporting it**: the layer diff ids come from the
  engine's image metadata (``RootFS.Layers``), the config from the cache (keyed by the
  image id, which is the config's digest);
* for an image that **shares layers** with one read before, exports it but parses only
  the new layers: a cached layer's bytes are skipped in the stream (OCI exports name
  layers by digest; in classic exports a layer is recognised by its tar length, and
  every layer taken from the cache is checked against the config's diff ids);
* stores what it read in ``<cache>/layers`` (``STAGELAB_CACHE``), at most
  ``STAGELAB_LAYER_CACHE_MB`` megabytes (default 512); the least recently used listings
  go first.

A secret search reads every file's contents, so it always reads the export in full.
"""
from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import export
from .export import CachedLayerMismatch
from .layers import ExportContents, LayerScan
from .naming import cache_dir

SCHEMA = 1
DEFAULT_MAX_MB = 512


def _name(digest: str) -> str:
    """``sha256:ab12…`` -> ``sha256-ab12….json`` (a safe file name)."""
    alg, _, hexpart = digest.partition(":")
    if not hexpart or not alg.isalnum() or not all(c in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"not a digest: {digest!r}")
    return f"{alg}-{hexpart}.json"


class LayerCache:
    """Layer listings by diff id and image configs by image id, as JSON files under ``root``, LRU-bounded."""

    def __init__(self, root: Path | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "layers"
        if max_bytes is None:
            max_bytes = int(float(os.environ.get("STAGELAB_LAYER_CACHE_MB", DEFAULT_MAX_MB)) * 1_000_000)
        self.max_bytes = max_bytes
        self.hits = 0      # layers taken from the cache (by this object)
        self.misses = 0    # layers that had to be read

    # --- files -----------------------------------------------------------------------------

    def _read(self, kind: str, digest: str) -> dict | None:
        try:
            path = self.root / kind / _name(digest)
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            return None
        try:
            os.utime(path)   # recently used: evicted last
        except OSError:
            pass
        return data

    def _write(self, kind: str, digest: str, data: dict) -> None:
        folder = self.root / kind
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / _name(digest)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"schema": SCHEMA, **data}, separators=(",", ":")))
            os.replace(tmp, target)   # atomic: a reader never sees half a file
        except (OSError, ValueError):
            return   # a cache that cannot be written only costs speed
        self.evict()

    def size(self) -> int:
        """Bytes the cache holds on disk."""
        return sum(p.stat().st_size for p in self._files())

    def _files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for kind in ("layers", "images", "aliases") for p in (self.root / kind).glob("*.json")]

    def evict(self) -> None:
        """Remove the least recently used files until the cache is within ``max_bytes``."""
        files = []
        for p in self._files():
            try:
                st = p.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            try:
                path.unlink()
                total -= size
            except OSError:
                pass

    # --- layers and configs ----------------------------------------------------------------

    def get_layer(self, diff_id: str, *, compressed: bool = False) -> LayerScan | None:
        """The cached listing of layer ``diff_id`` (None if absent, or without a compressed size when asked).

        Its ``compressed_size`` is set only when ``compressed`` is asked or the layer was a gzip
        blob in the export (its size came free), so a report does not depend on what the cache
        happened to measure before.
        """
        data = self._read("layers", diff_id)
        if data is None or (compressed and data.get("compressed_size") is None):
            self.misses += 1
            return None
        self.hits += 1
        return LayerScan(
            key=data["key"],
            entries=[tuple(e) for e in data["entries"]],
            whiteouts=list(data["whiteouts"]),
            opaque=list(data["opaque"]),
            small_files={k: base64.b64decode(v) for k, v in data["small_files"].items()},
            tar_bytes=int(data["tar_bytes"]),
            # only when asked, or when it came with the export (a gzip blob), as without the cache
            compressed_size=data.get("compressed_size") if compressed or data.get("gzip_blob") else None,
            diff_id=diff_id,
        )

    def put_layer(self, diff_id: str, scan: LayerScan) -> None:
        """Store the listing of layer ``diff_id`` (not its secret search results: they depend on the secret)."""
        self._write("layers", diff_id, {
            "key": scan.key, "entries": scan.entries, "whiteouts": scan.whiteouts, "opaque": scan.opaque,
            "small_files": {k: base64.b64encode(v).decode() for k, v in scan.small_files.items()},
            "tar_bytes": scan.tar_bytes, "compressed_size": scan.compressed_size,
            "gzip_blob": scan.compressed_size is not None and scan.compressed_size == scan.tar_bytes,
        })

    def get_alias(self, blob: str) -> str | None:
        """The diff id of a compressed layer blob (learned when an export was read), if known."""
        data = self._read("aliases", blob)
        return str(data["diff_id"]) if data and data.get("diff_id") else None

    def put_alias(self, blob: str, diff_id: str) -> None:
        self._write("aliases", blob, {"diff_id": diff_id})

    def get_image(self, image_id: str) -> tuple[dict, str] | None:
        """(config, export format) of image ``image_id``, if cached."""
        data = self._read("images", image_id)
        if data is None or not isinstance(data.get("config"), dict):
            return None
        return data["config"], str(data.get("format") or "")

    def put_image(self, image_id: str, config: dict, fmt: str) -> None:
        self._write("images", image_id, {"config": config, "format": fmt})


def _blob_digest(key: str) -> str:
    """``blobs/sha256/<hex>`` -> ``sha256:<hex>``; "" for a classic ``<id>/layer.tar`` key."""
    if not key.startswith("blobs/"):
        return ""
    alg, _, hexpart = key[len("blobs/"):].partition("/")
    return f"{alg}:{hexpart}"


def _store(cache: LayerCache, image_id: str, contents: ExportContents, scans: Sequence[LayerScan]) -> None:
    diff_ids = (contents.config.get("rootfs") or {}).get("diff_ids") or []
    for diff_id, scan in zip(diff_ids, scans):
        if not scan.diff_id:   # newly read
            cache.put_layer(diff_id, scan)
        blob = _blob_digest(scan.key)
        if blob and blob != diff_id:   # a compressed blob (containerd store): remember its diff id
            cache.put_alias(blob, diff_id)
    cache.put_image(image_id, contents.config, contents.format)


def read_image_cached(client: Any, attrs: dict, *, compressed: bool = False, secret: str | None = None,
                      cache: LayerCache | None = None) -> ExportContents:
    """The image's contents, from the cache when every layer is there, else from its export.

    ``attrs`` is the engine's ``inspect_image`` answer (its ``Id`` and ``RootFS.Layers``).
    With ``secret`` the cache is not used (every file must be searched).
    """
    image_id = attrs["Id"]
    if secret:
        return export.read_image(client, image_id, secret=secret, compressed=compressed)
    cache = cache or LayerCache()
    diff_ids = list((attrs.get("RootFS") or {}).get("Layers") or [])
    known = {d: cache.get_layer(d, compressed=compressed) for d in dict.fromkeys(diff_ids)}
    image = cache.get_image(image_id)
    if image is not None and diff_ids and all(known.values()):
        config, fmt = image
        return export.assemble([known[d] for d in diff_ids], config, fmt)   # type: ignore[misc]

    by_length: dict[int, list[LayerScan]] = {}
    for scan in known.values():
        if scan is not None:
            by_length.setdefault(scan.tar_bytes, []).append(scan)

    def cached(key: str, length: int) -> LayerScan | None:
        # OCI exports name a layer by its blob digest: the diff id when uncompressed, else an alias
        # learned before. Classic ones name it by an id of the export's own, in no layer order:
        # a cached layer of this image with the same tar length is taken, when only one has it
        # (export.assemble then checks every taken layer against the config's diff ids).
        blob = _blob_digest(key)
        if blob:
            return known.get(blob) or known.get(cache.get_alias(blob) or "")
        same = by_length.get(length, [])
        return same[0] if len(same) == 1 else None

    kept: list[LayerScan] = []   # the layers in order, cached or newly read
    reader = export.stream_image(client, image_id, prefetch=compressed)
    try:
        contents = export.read_export(reader, compressed=compressed, cached=cached, collect=kept)
    except CachedLayerMismatch:   # a layer of the same length was not the cached one: read it all
        reader.close()
        kept.clear()
        reader = export.stream_image(client, image_id, prefetch=compressed)
        contents = export.read_export(reader, compressed=compressed, collect=kept)
    finally:
        reader.close()
    _store(cache, image_id, contents, kept)
    return contents
