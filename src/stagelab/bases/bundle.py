"""Workshop bundles: ``stagelab bases export`` writes a profile's images into one checked archive,
``stagelab bases import`` verifies and loads it (for machines without a registry or debootstrap).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tarfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import catalogue as _catalogue
from ..sizes import stored_size
from .common import (
    BUNDLE_FORMAT, BundleError, IMITATES_LABEL, MissingBaseImage, PREPARE_FIX, PrepareEvent, _CHUNK,
    _client, _get_image, _make_progress, _resolve,
)


def _bundle_tags(profile: Any, images: Iterable[str] | None) -> tuple[str, list[str]]:
    if images is not None:
        return "custom", list(images)
    prof = _resolve(profile)
    if prof.name == "offline":
        return "offline", [s.tag for s in _catalogue.standins()]
    return "upstream", list(dict.fromkeys(prof.images.values()))


def _pad(n: int) -> bytes:
    return b"\0" * ((512 - n % 512) % 512)


def export_bundle(path: str | os.PathLike, profile: Any = None, *,
                  images: Iterable[str] | None = None, progress: Any = None) -> Path:
    """Write every image of the profile into one archive ``path`` (instructors; CLI ``bases export``).

    The archive is a tar holding ``images.tar`` (a ``docker save`` of all images),
    ``manifest.json`` (profile, tags, image ids, sizes: :func:`stagelab.sizes.stored_size`, with what they measured) and ``SHA256SUMS``. ``images`` exports
    exactly these local images instead of a profile's.
    """
    name, tags = _bundle_tags(profile, images)
    client = _client(timeout=1800)
    found = {t: _get_image(client, t) for t in tags}
    missing = [t for t, img in found.items() if img is None]
    if missing:
        raise MissingBaseImage(
            f"Cannot export the {name} bundle: {len(missing)} image(s) are not on this engine: "
            + ", ".join(missing),
            fix=PREPARE_FIX if name == "offline" else "stagelab bases prepare --profile upstream",
        )
    entries, size_label = [], ""
    for tag in tags:
        img = found[tag]
        image_bytes, size_label = stored_size(client, img)
        entries.append({"tag": tag, "id": img.id, "size": image_bytes,
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
                "images": entries, "image_size": size_label,   # what each image's "size" measured
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
