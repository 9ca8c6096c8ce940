"""stagelab.layercache with a fake engine: warm reads without an export, shared layers, LRU bound."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import uuid

import pytest

from stagelab import export
from stagelab import inspect as insp
from stagelab import layercache


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Image:
    """An image of layers (each a dict of files); ``export(fmt)`` is its ``docker save`` stream."""

    def __init__(self, *layers: dict[str, bytes]) -> None:
        self.tars = [_tar(files) for files in layers]
        self.diff_ids = [_digest(t) for t in self.tars]
        self.config = json.dumps({"rootfs": {"type": "layers", "diff_ids": self.diff_ids},
                                  "history": [{"created_by": f"COPY {i}"} for i in range(len(layers))]}).encode()
        self.id = _digest(self.config)
        self.attrs = {"Id": self.id, "RepoTags": [], "Size": 1, "Config": {}, "RootFS": {"Layers": self.diff_ids}}

    def export(self, fmt: str, order: list[int] | None = None) -> bytes:
        order = order if order is not None else list(range(len(self.tars)))
        if fmt in ("oci", "oci-gzip"):   # oci-gzip: layers as gzip blobs, as the containerd store saves them
            blobs = [gzip.compress(t, mtime=0) for t in self.tars] if fmt == "oci-gzip" else self.tars
            digests = [_digest(b) for b in blobs]
            names = [f"blobs/sha256/{d.split(':')[1]}" for d in digests]
            manifest = json.dumps({"config": {"digest": self.id},
                                   "layers": [{"digest": d} for d in digests]}).encode()
            members = {names[i]: blobs[i] for i in order}
            members[f"blobs/sha256/{self.id.split(':')[1]}"] = self.config
            members[f"blobs/sha256/{_digest(manifest).split(':')[1]}"] = manifest
            members["index.json"] = json.dumps({"manifests": [{"digest": _digest(manifest)}]}).encode()
            return _tar(members)
        names = [f"{uuid.uuid4().hex}/layer.tar" for _ in self.tars]
        members = {names[i]: self.tars[i] for i in order}
        members["cfg.json"] = self.config
        members["manifest.json"] = json.dumps([{"Config": "cfg.json", "Layers": names}]).encode()
        return _tar(members)


class FakeAPI:
    def __init__(self, image: Image, fmt: str, order: list[int] | None = None) -> None:
        self.image, self.fmt, self.order = image, fmt, order
        self.base_url = f"fake://{uuid.uuid4()}"
        self.exports = 0

    def inspect_image(self, name):
        return self.image.attrs

    def history(self, name):
        return [{"CreatedBy": "", "Size": sum(len(d) for layer in [self.image.tars] for d in layer)}]

    def get_image(self, name, chunk_size=None):
        self.exports += 1
        data = self.image.export(self.fmt, self.order)
        for i in range(0, len(data), 4096):
            yield data[i:i + 4096]


class FakeClient:
    def __init__(self, image: Image, fmt: str = "classic", order: list[int] | None = None) -> None:
        self.api = FakeAPI(image, fmt, order)

    def info(self):
        return {"ServerVersion": "99.0", "DriverStatus": []}


BASE = {"etc/os-release": b"ID=test\n", "bin/tool": b"x" * 3000}
APP = {"app/server": b"\x7fELF" + b"\0" * 7000}
APP2 = {"app/server": b"\x7fELF" + b"\1" * 9000}


@pytest.fixture
def cache(tmp_path) -> layercache.LayerCache:
    return layercache.LayerCache(tmp_path / "layers", max_bytes=10_000_000)


def _read(client: FakeClient, cache: layercache.LayerCache, **kwargs):
    return layercache.read_image_cached(client, client.api.image.attrs, cache=cache, **kwargs)


def _listing(contents) -> dict:
    return {p: (e.size, e.mode, e.type, e.layer) for p, e in contents.tree.items()}


@pytest.mark.parametrize("fmt", ["classic", "oci", "oci-gzip"])
def test_an_unchanged_image_is_not_exported_again(cache, fmt):
    client = FakeClient(Image(BASE, APP), fmt)
    cold = _read(client, cache)
    assert client.api.exports == 1 and cache.hits == 0
    warm = _read(client, cache)
    assert client.api.exports == 1, "the second read exported the image again"
    assert cache.hits == 2 and _listing(warm) == _listing(cold) and warm.size == cold.size == 3008 + 7004
    assert [layer.digest for layer in warm.layers] == client.api.image.diff_ids
    assert warm.format == cold.format == ("classic" if fmt == "classic" else "oci")
    assert warm.small_files == cold.small_files
    # a gzip blob's size is its compressed size, read or cached alike; plain layers have none unless asked
    assert [x.compressed_size for x in warm.layers] == [x.compressed_size for x in cold.layers]
    assert all(x.compressed_size for x in warm.layers) == (fmt == "oci-gzip")


@pytest.mark.parametrize("fmt", ["classic", "oci", "oci-gzip"])
def test_a_shared_layer_is_not_read_again(cache, fmt, monkeypatch):
    _read(FakeClient(Image(BASE, APP), fmt), cache)
    scanned = []
    real = export.scan_layer
    monkeypatch.setattr(export, "scan_layer", lambda f, key, **kw: scanned.append(key) or real(f, key, **kw))
    other = Image(BASE, APP2)
    client = FakeClient(other, fmt)
    contents = _read(client, cache)
    assert client.api.exports == 1 and len(scanned) == 1, scanned   # only the new layer was parsed
    assert contents.tree["/app/server"].size == 9004 and contents.tree["/bin/tool"].size == 3000
    fresh = layercache.read_image_cached(client, other.attrs, cache=layercache.LayerCache(cache.root.parent / "x"))
    assert _listing(contents) == _listing(fresh)


def test_a_classic_export_in_any_layer_order_uses_the_cache(cache):
    _read(FakeClient(Image(BASE, APP), "classic"), cache)
    client = FakeClient(Image(BASE, APP2), "classic", order=[1, 0])   # docker 20.10 writes layers in id order
    contents = _read(client, cache)
    assert client.api.exports == 1 and cache.hits == 1
    assert contents.tree["/app/server"].size == 9004 and contents.tree["/app/server"].layer == 1


def test_a_new_layer_of_a_cached_length_is_read_after_all(cache):
    """A new layer as long as a cached one of the image: the guess is caught against the config, the export re-read."""
    _read(FakeClient(Image(BASE, APP), "classic"), cache)
    twin = {"app/server": b"\x7fELF" + b"\2" * 7000}
    image = Image(BASE, twin)
    assert len(image.tars[0]) == len(image.tars[1])   # both one 10 KiB tar record: the lengths collide
    client = FakeClient(image, "classic")
    contents = _read(client, cache)
    assert client.api.exports == 2   # once with the cache, once without
    fresh = _read(FakeClient(Image(BASE, twin), "classic"), layercache.LayerCache(cache.root.parent / "y"))
    assert _listing(contents) == _listing(fresh)


def test_compressed_sizes_missing_from_the_cache_are_measured(cache):
    client = FakeClient(Image(BASE, APP))
    _read(client, cache)
    contents = _read(client, cache, compressed=True)
    assert client.api.exports == 2 and all(layer.compressed_size for layer in contents.layers)
    again = _read(client, cache, compressed=True)
    assert client.api.exports == 2 and [x.compressed_size for x in again.layers] == [x.compressed_size for x in contents.layers]
    plain = _read(client, cache)   # not asked: not reported, whatever the cache holds
    assert client.api.exports == 2 and all(layer.compressed_size is None for layer in plain.layers)


def test_the_cache_keeps_to_its_size_least_recently_used_first(tmp_path):
    small = layercache.LayerCache(tmp_path / "layers", max_bytes=10_000_000)
    images = [Image({f"f{i}": bytes([i]) * 100}) for i in range(3)]
    for image in images:
        _read(FakeClient(image), small)
    one_image = small.size() // 3
    small.max_bytes = 2 * one_image + one_image // 2
    _read(FakeClient(images[0]), small)   # image 0 is now the most recently used
    small.evict()
    assert small.size() <= small.max_bytes
    assert small.get_layer(images[0].diff_ids[0]) is not None
    assert small.get_layer(images[1].diff_ids[0]) is None   # the least recently used went first


def test_inspect_uses_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGELAB_CACHE", str(tmp_path))
    client = FakeClient(Image(BASE, APP))
    first = insp.inspect("x", client=client)
    second = insp.inspect("x", client=client)
    assert client.api.exports == 1 and second.size == first.size and second.files.keys() == first.files.keys()
    assert list((tmp_path / "layers" / "layers").glob("sha256-*.json"))
    secret = insp.inspect("x", client=client, secret="ELF")
    assert client.api.exports == 2 and secret.surface.secret_hits == ["/app/server"]
