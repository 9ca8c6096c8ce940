"""Read a whole ``docker save`` export (classic or OCI) from the engine or a stream: ``read_export``.

Used through ``stagelab.inspect`` (and :mod:`stagelab.layercache`) by every notebook that
looks inside an image. The export is read as a stream, with no temporary file; the manifest
may come after the layers, so each layer is scanned on its own (:func:`stagelab.layers.scan_layer`)
and stacked in manifest order at the end (:func:`assemble`).
"""
from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from .layers import ExportContents, ExportStreamError, LayerScan, _norm, _wanted, scan_layer, stack_layers
from .tarstream import (
    CHUNK_SIZE, GZIP_THREADS, PREFETCH_CHUNKS, TAR_BUFSIZE, ChunkReader, Prefetch, _ended_cleanly, _GzipCounter,
    _open_member, _sniff, _TarInfo,
)

#: JSON documents (manifest, index, config) larger than this are not read.
MAX_JSON = 64 << 20


class CachedLayerMismatch(Exception):
    """A cached layer was used for a position whose diff id turned out to differ (re-read without the cache)."""


# --- reading the whole export ---------------------------------------------------------------

def read_export(
    stream: BinaryIO,
    *,
    secret: str | None = None,
    compressed: bool = False,
    keep: Callable[[str, int], bool] | None = None,
    cached: Callable[[str, int], LayerScan | None] | None = None,   # (key, tar length) -> scan
    collect: list[LayerScan] | None = None,
) -> ExportContents:
    """Read a ``docker save`` tar from ``stream`` (a file object) into an :class:`ExportContents`.

    ``cached(key, size)`` (used by :mod:`stagelab.layercache`) is asked for each layer (tar or gzip)
    (its key in the export and its length in bytes): a :class:`LayerScan`
    it returns is used instead of reading the layer, whose bytes are skipped. Its
    ``diff_id`` is checked against the config; a mismatch raises :class:`CachedLayerMismatch`.
    ``collect``, when given, receives the layer scans in order (the cache stores the new ones).

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
                known = cached(name, info.size) if cached is not None and kind in ("tar", "gzip") else None
                if known is not None:
                    scans[name] = known
                elif kind in ("tar", "gzip"):
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
    contents = assemble(ordered, config, fmt)
    if collect is not None:
        collect.extend(ordered)
    return contents


def assemble(ordered: list[LayerScan], config: dict, fmt: str) -> ExportContents:
    """Stack layer scans (bottom first) with the image config into an :class:`ExportContents`.

    Raises :class:`CachedLayerMismatch` when a scan taken from the cache has another diff id
    than the config's for its position.
    """
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    for i, scan in enumerate(ordered):
        if scan.diff_id and (i >= len(diff_ids) or diff_ids[i] != scan.diff_id):
            raise CachedLayerMismatch(f"layer {i}: cached {scan.diff_id}, config says "
                                      f"{diff_ids[i] if i < len(diff_ids) else 'nothing'}")
    history = [h for h in config.get("history", []) if isinstance(h, dict)]
    tree, stats, small, hits = stack_layers(ordered)
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
