"""stagelab.layers on synthetic `docker save` streams built in memory (classic and OCI); no engine."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile

import pytest

from stagelab import export, layers, tarstream
from stagelab.export import read_export
from stagelab.layers import ExportStreamError
from stagelab.tarstream import ChunkReader

@pytest.fixture(autouse=True, params=["fast-skip", "tarfile-skip"])
def skip_mode(request, monkeypatch):
    """Every test runs with the fast paths (zero-copy skip, struct header decoding) and without."""
    monkeypatch.setattr(tarstream, "FAST_SKIP", request.param == "fast-skip")
    monkeypatch.setattr(tarstream, "FAST_HEADERS", request.param == "fast-skip")
    return request.param


# --- building synthetic exports ---------------------------------------------------------------


def layer_tar(entries: list[tuple], *, prefix: str = "") -> bytes:
    """A layer tar from ("file", path, data[, mode]) / ("dir", path) / ("symlink", path, target) /
    ("hardlink", path, target) / ("whiteout", path) / ("opaque", dir) tuples."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in entries:
            kind, path = item[0], item[1].lstrip("/")
            info = tarfile.TarInfo(prefix + path)
            data = b""
            if kind == "file":
                data = item[2]
                info.size = len(data)
                info.mode = item[3] if len(item) > 3 else 0o644
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = item[2]
                info.mode = 0o777
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = prefix + item[2].lstrip("/")
            elif kind == "whiteout":
                head, _, base = path.rpartition("/")
                info.name = prefix + (head + "/" if head else "") + ".wh." + base
            elif kind == "opaque":
                info.name = prefix + path.rstrip("/") + "/.wh..wh..opq"
            else:
                raise ValueError(kind)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _config(n_layers: int, diff_ids: list[str], history: list[dict] | None = None) -> dict:
    if history is None:
        history = [{"created_by": f"step {i}"} for i in range(n_layers)]
    return {
        "architecture": "amd64", "os": "linux",
        "config": {"User": "", "Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def classic_export(layer_tars: list[bytes], *, manifest_first: bool = False,
                   history: list[dict] | None = None, dedupe: bool = True) -> bytes:
    """An Engine-20.10-style export: <id>/layer.tar dirs, <config>.json, manifest.json last."""
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layer_tars]
    config = json.dumps(_config(len(layer_tars), diff_ids, history)).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    ids = [hashlib.sha256(f"{i}{d}".encode()).hexdigest() for i, d in enumerate(diff_ids)]
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["t:latest"],
                            "Layers": [f"{i}/layer.tar" for i in ids]}]).encode()
    buf = io.BytesIO()
    seen: dict[str, str] = {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        if manifest_first:
            _add(tar, "manifest.json", manifest)
        for layer_id, diff_id, data in zip(ids, diff_ids, layer_tars):
            dir_info = tarfile.TarInfo(layer_id)
            dir_info.type = tarfile.DIRTYPE
            tar.addfile(dir_info)
            _add(tar, f"{layer_id}/VERSION", b"1.0")
            _add(tar, f"{layer_id}/json", b'{"id": "%s"}' % layer_id.encode())
            if dedupe and diff_id in seen:
                link = tarfile.TarInfo(f"{layer_id}/layer.tar")
                link.type = tarfile.SYMTYPE
                link.linkname = f"../{seen[diff_id]}/layer.tar"
                tar.addfile(link)
            else:
                _add(tar, f"{layer_id}/layer.tar", data)
                seen[diff_id] = layer_id
        _add(tar, config_name, config)
        if not manifest_first:
            _add(tar, "manifest.json", manifest)
        _add(tar, "repositories", b'{"t": {"latest": "x"}}')
    return buf.getvalue()


def oci_export(layer_tars: list[bytes], *, gzip_layers: bool | list[bool] = False,
               manifest_json: bool = False, nested_index: bool = False) -> bytes:
    """An OCI image layout export: blobs in digest order, index.json (and manifest.json for Docker 25+)."""
    if isinstance(gzip_layers, bool):
        gzip_layers = [gzip_layers] * len(layer_tars)
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layer_tars]
    blobs: dict[str, bytes] = {}
    layer_descs = []
    for data, gz in zip(layer_tars, gzip_layers):
        blob = gzip.compress(data, 6, mtime=0) if gz else data
        digest = hashlib.sha256(blob).hexdigest()
        blobs[digest] = blob
        layer_descs.append({
            "mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else ""),
            "digest": "sha256:" + digest, "size": len(blob)})
    config = json.dumps(_config(len(layer_tars), diff_ids)).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    blobs[config_digest] = config
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + config_digest, "size": len(config)},
        "layers": layer_descs}).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    blobs[manifest_digest] = manifest
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:" + manifest_digest, "size": len(manifest),
           "platform": {"os": "linux", "architecture": "amd64"}}
    if nested_index:
        inner = json.dumps({"schemaVersion": 2, "manifests": [top]}).encode()
        inner_digest = hashlib.sha256(inner).hexdigest()
        blobs[inner_digest] = inner
        top = {"mediaType": "application/vnd.oci.image.index.v1+json",
               "digest": "sha256:" + inner_digest, "size": len(inner)}
    index = json.dumps({"schemaVersion": 2, "manifests": [top]}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        for digest in sorted(blobs):   # digest order, not layer order
            _add(tar, f"blobs/sha256/{digest}", blobs[digest])
        _add(tar, "index.json", index)
        if manifest_json:
            _add(tar, "manifest.json", json.dumps([{
                "Config": f"blobs/sha256/{config_digest}", "RepoTags": ["t:latest"],
                "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in layer_descs]}]).encode())
    return buf.getvalue()


def read(data: bytes, chunk: int = 1 << 16, **kwargs):
    chunks = (data[i:i + chunk] for i in range(0, len(data), chunk))
    return read_export(ChunkReader(chunks), **kwargs)


# A three-layer image exercising deletes, overwrites and opaque dirs.
L0 = [("dir", "/etc"), ("file", "/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
      ("dir", "/d"), ("file", "/d/x", b"x" * 50), ("file", "/d/y", b"y" * 30),
      ("file", "/a", b"a" * 100), ("dir", "/keep"), ("file", "/keep/k", b"k" * 7, 0o755)]
L1 = [("whiteout", "/a"), ("dir", "/d"), ("file", "/d/x", b"X" * 10),
      ("file", "/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")]
L2 = [("opaque", "/d"), ("dir", "/d"), ("file", "/d/z", b"z" * 5)]


def _three_layers():
    return [layer_tar(L0), layer_tar(L1), layer_tar(L2)]


def _check_three(result):
    tree = result.tree
    assert "/a" not in tree
    assert "/d/x" not in tree and "/d/y" not in tree
    assert tree["/d/z"].size == 5 and tree["/d/z"].layer == 2
    assert tree["/keep/k"].mode & 0o111 and tree["/keep/k"].layer == 0
    sizes = [st.size for st in result.layers]
    assert sizes == [7 + 50 + 30 + 100 + len(L0[1][2]), 10 + len(L1[3][2]), 5]
    # wasted: layer 0 lost /a (100), /d/x (50), /d/y (30) and its /etc/passwd; layer 1 lost /d/x (10)
    assert result.layers[0].wasted == 100 + 50 + 30 + len(L0[1][2])
    assert result.layers[1].wasted == 10
    assert result.layers[2].wasted == 0
    final = sum(e.size for e in tree.values())
    assert result.size == final + sum(st.wasted for st in result.layers)
    assert result.small_files["/etc/passwd"].count(b"\n") == 2
    assert [st.created_by for st in result.layers] == ["step 0", "step 1", "step 2"]
    assert all(st.digest.startswith("sha256:") for st in result.layers)


# --- formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize("manifest_first", [False, True])
def test_classic_three_layers(manifest_first):
    result = read(classic_export(_three_layers(), manifest_first=manifest_first))
    assert result.format == "classic"
    _check_three(result)


@pytest.mark.parametrize("gz", [False, True, [True, False, True]])
def test_oci_three_layers(gz):
    result = read(oci_export(_three_layers(), gzip_layers=gz))
    assert result.format == "oci"
    _check_three(result)


def test_oci_with_docker25_manifest_json_and_nested_index():
    _check_three(read(oci_export(_three_layers(), manifest_json=True)))
    _check_three(read(oci_export(_three_layers(), nested_index=True, gzip_layers=True)))


def test_tiny_chunks_and_big_chunks_give_the_same_tree():
    data = classic_export(_three_layers())
    small = read(data, chunk=7)
    big = read(data, chunk=1 << 22)
    assert small.tree.keys() == big.tree.keys()
    _check_three(small)


def test_history_with_empty_layers_maps_to_the_right_layer():
    history = [{"created_by": "ADD rootfs"}, {"created_by": "ENV A=1", "empty_layer": True},
               {"created_by": "RUN rm /a"}, {"created_by": "CMD x", "empty_layer": True},
               {"created_by": "COPY z"}]
    result = read(classic_export(_three_layers(), history=history))
    assert [st.created_by for st in result.layers] == ["ADD rootfs", "RUN rm /a", "COPY z"]
    assert len(result.history) == 5


def test_same_layer_twice_is_a_symlink_in_classic_exports():
    same = layer_tar([("file", "/f", b"f" * 10)])
    data = classic_export([same, layer_tar([("file", "/g", b"g")]), same])
    assert data.count(same) == 1  # deduplicated in the stream
    result = read(data)
    assert [st.size for st in result.layers] == [10, 1, 10]
    assert result.tree["/f"].layer == 2
    assert result.layers[0].wasted == 10   # overwritten by the identical copy on top


# --- whiteouts, links, types -----------------------------------------------------------------

def test_whiteout_of_a_directory_removes_its_subtree():
    l0 = layer_tar([("dir", "/var"), ("dir", "/var/lib"), ("dir", "/var/lib/apt"),
                    ("dir", "/var/lib/apt/lists"), ("file", "/var/lib/apt/lists/a", b"1" * 40),
                    ("file", "/var/lib/apt/lists/b", b"2" * 60), ("file", "/var/lib/keep", b"3")])
    l1 = layer_tar([("whiteout", "/var/lib/apt/lists")])
    result = read(classic_export([l0, l1]))
    assert not any(p.startswith("/var/lib/apt/lists") for p in result.tree)
    assert "/var/lib/apt" in result.tree and "/var/lib/keep" in result.tree
    assert result.layers[0].wasted == 100
    assert result.layers[1].size == 0 and result.layers[1].files == 0


def test_opaque_directory_hides_only_lower_layers():
    l0 = layer_tar([("dir", "/app"), ("file", "/app/old", b"o" * 20), ("dir", "/app/sub"),
                    ("file", "/app/sub/deep", b"d" * 3)])
    # the opaque marker comes after the new file in the tar: it must still not hide it
    l1 = layer_tar([("dir", "/app"), ("file", "/app/new", b"n" * 4), ("opaque", "/app")])
    result = read(oci_export([l0, l1]))
    assert sorted(p for p in result.tree if p.startswith("/app/")) == ["/app/new"]
    assert result.layers[0].wasted == 23


def test_hardlinks_count_bytes_once_and_survive_their_target():
    l0 = layer_tar([("dir", "/bin"), ("file", "/bin/tool", b"t" * 1000, 0o755),
                    ("hardlink", "/bin/alias", "/bin/tool"), ("hardlink", "/bin/alias2", "/bin/tool")])
    result = read(classic_export([l0]))
    assert result.layers[0].size == 1000
    assert result.tree["/bin/alias"].type == "hardlink"
    assert result.tree["/bin/alias"].linkname == "/bin/tool"
    assert sum(e.size for e in result.tree.values()) == 1000
    # delete the target: the bytes live on under one hardlink, nothing is wasted
    l1 = layer_tar([("whiteout", "/bin/tool")])
    result = read(classic_export([l0, l1]))
    assert "/bin/tool" not in result.tree
    assert sum(e.size for e in result.tree.values()) == 1000
    assert result.layers[0].wasted == 0
    # delete all three: now the 1000 bytes are wasted, once
    l2 = layer_tar([("whiteout", "/bin")])
    result = read(classic_export([l0, l1, l2]))
    assert result.layers[0].wasted == 1000
    assert not result.tree.keys() & {"/bin", "/bin/alias", "/bin/alias2"}


def test_symlinks_and_dot_slash_names():
    l0 = layer_tar([("dir", "/usr"), ("dir", "/usr/bin"), ("file", "/usr/bin/dash", b"#!" * 10, 0o755),
                    ("symlink", "/bin", "usr/bin"), ("symlink", "/usr/bin/sh", "dash")], prefix="./")
    result = read(classic_export([l0]))
    assert result.tree["/bin"].type == "symlink" and result.tree["/bin"].linkname == "usr/bin"
    assert result.tree["/usr/bin/sh"].linkname == "dash"
    assert "/" not in result.tree and "/." not in result.tree


def test_file_replacing_a_directory_drops_the_directory_contents():
    l0 = layer_tar([("dir", "/x"), ("file", "/x/f", b"f" * 10)])
    l1 = layer_tar([("file", "/x", b"abc")])
    result = read(classic_export([l0, l1]))
    assert result.tree["/x"].type == "file" and "/x/f" not in result.tree
    assert result.layers[0].wasted == 10


def test_recreated_directory_after_whiteout():
    l0 = layer_tar([("dir", "/cache"), ("file", "/cache/a", b"a" * 9)])
    l1 = layer_tar([("whiteout", "/cache")])
    l2 = layer_tar([("dir", "/cache"), ("file", "/cache/b", b"b")])
    l3 = layer_tar([("whiteout", "/cache")])
    result = read(classic_export([l0, l1, l2, l3]))
    assert not any(p.startswith("/cache") for p in result.tree)
    assert result.layers[0].wasted == 9 and result.layers[2].wasted == 1


# --- secrets, small files, compressed size ---------------------------------------------------

def test_secret_is_found_across_chunk_boundaries_and_in_deleted_files(monkeypatch):
    monkeypatch.setattr(layers, "SECRET_CHUNK", 16)
    secret = "s3cr3t-TOKEN-value"
    l0 = layer_tar([("file", "/app/.env", b"." * 13 + f"TOKEN={secret}\n".encode()),
                    ("file", "/app/clean", b"nothing here" * 50),
                    ("file", "/run/secret", secret.encode())])
    l1 = layer_tar([("whiteout", "/run/secret")])
    result = read(oci_export([l0, l1], gzip_layers=True), secret=secret)
    assert "/app/.env" in result.secret_hits
    assert any(h.startswith("/run/secret (layer 0") for h in result.secret_hits)
    assert not any(h.startswith("/app/clean") for h in result.secret_hits)
    assert read(oci_export([l0, l1]), secret="not-in-there").secret_hits == []


def test_compressed_size_is_gzip6_of_each_layer():
    tars = [layer_tar([("file", "/big", bytes(range(256)) * 400)]), layer_tar([("file", "/z", b"\0" * 5000)])]
    result = read(classic_export(tars), compressed=True)
    assert [st.compressed_size for st in result.layers] == [len(gzip.compress(t, 6, mtime=0)) for t in tars]
    assert all(st.compressed_size < st.tar_bytes for st in result.layers)
    assert read(classic_export(tars)).layers[0].compressed_size is None
    # OCI gzip blobs: the blob is the compressed layer
    result = read(oci_export(tars, gzip_layers=True))
    assert [st.compressed_size for st in result.layers] == [len(gzip.compress(t, 6, mtime=0)) for t in tars]


def test_dpkg_status_d_files_are_kept():
    l0 = layer_tar([("file", "/var/lib/dpkg/status.d/libc6", b"Package: libc6\n"),
                    ("file", "/var/lib/dpkg/status.d/tzdata", b"Package: tzdata\n"),
                    ("file", "/usr/lib/big.so", b"\x7fELF" + b"\0" * 1000)])
    result = read(classic_export([l0]))
    assert set(result.small_files) == {"/var/lib/dpkg/status.d/libc6", "/var/lib/dpkg/status.d/tzdata"}


# --- bad input -------------------------------------------------------------------------------

def test_not_a_tar():
    with pytest.raises(ExportStreamError, match="not an image export"):
        read(b"this is not a tar file at all" * 100)
    with pytest.raises(ExportStreamError):
        read(b"")


def test_missing_manifest():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "abc/layer.tar", layer_tar([("file", "/f", b"1")]))
    with pytest.raises(ExportStreamError, match="no manifest.json or index.json"):
        read(buf.getvalue())


def test_manifest_naming_a_missing_layer():
    data = classic_export(_three_layers())
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for member in src.getmembers():
            if member.name.endswith("layer.tar") and member.size == len(layer_tar(L1)):
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    with pytest.raises(ExportStreamError, match="no such layer"):
        read(buf.getvalue())


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.8, 0.97])
@pytest.mark.parametrize("fmt", ["classic", "oci-gz"])
def test_truncated_stream(fraction, fmt):
    data = classic_export(_three_layers()) if fmt == "classic" else oci_export(_three_layers(), gzip_layers=True)
    content = len(data.rstrip(b"\0"))   # cut inside the content, not the zero padding at the end
    with pytest.raises(ExportStreamError):
        read(data[: int(content * fraction)])


def test_truncated_exactly_at_a_member_boundary():
    data = classic_export(_three_layers())
    # drop the two zero blocks that end the archive (and any record padding)
    end = len(data.rstrip(b"\0"))
    end += (-end) % 512
    with pytest.raises(ExportStreamError, match="truncated"):
        read(data[:end])


def test_garbage_inside_a_layer_is_reported():
    bad = layer_tar([("file", "/f", b"1" * 10)])
    bad = bad[:1024] + b"\xff" * 512 + bad[1536:]
    with pytest.raises(ExportStreamError):
        read(classic_export([bad]))


def test_engine_failure_mid_stream_becomes_one_clear_error():
    data = classic_export(_three_layers())

    def chunks():
        yield data[:3000]
        raise ConnectionError("Connection broken: IncompleteRead")

    reader = ChunkReader(chunks(), on_error=lambda exc: ExportStreamError(f"engine went away: {exc}", fix="x"))
    with pytest.raises(ExportStreamError, match="engine went away"):
        read_export(reader)


def test_error_messages_have_a_fix():
    with pytest.raises(ExportStreamError) as info:
        read(b"garbage" * 200)
    assert info.value.fix and "fix:" in str(info.value)


# --- the fast header decoder matches tarfile's -------------------------------------------------

def _headers(fmt) -> list[bytes]:
    out = []
    cases = [
        tarfile.TarInfo("usr/bin/plain"),
        tarfile.TarInfo("d/" * 60 + "long-name-needing-a-prefix-or-pax"),
        tarfile.TarInfo("v7dir/"),
        tarfile.TarInfo("dev/null"), tarfile.TarInfo("big"), tarfile.TarInfo("link"),
        tarfile.TarInfo("ünïcode/名前"),
    ]
    cases[3].type, cases[3].devmajor, cases[3].devminor = tarfile.CHRTYPE, 1, 3
    cases[4].size, cases[4].uid = 9 * 1024**3, 3_000_000   # needs base-256 (GNU) or pax
    cases[5].type, cases[5].linkname = tarfile.SYMTYPE, "../x/y"
    cases[0].mode, cases[0].uid, cases[0].gid, cases[0].size, cases[0].mtime = 0o4755, 1000, 50, 12345, 1_700_000_000
    for info in cases:
        try:
            data = info.tobuf(fmt, "utf-8", "surrogateescape")
        except ValueError:
            continue
        out += [data[i:i + 512] for i in range(0, len(data), 512)]
    return out


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_fast_header_decoding_equals_tarfile(fmt, monkeypatch):
    monkeypatch.setattr(tarstream, "FAST_HEADERS", True)
    blocks = _headers(fmt) + [b"\0" * 512, b"\xff" * 512, b"garbage" * 73 + b"x", b"", b"short"]
    checked = 0
    for buf in blocks:
        try:
            want = tarfile.TarInfo.frombuf(buf, "utf-8", "surrogateescape").get_info()
        except tarfile.HeaderError as exc:
            with pytest.raises(type(exc)):
                tarstream._TarInfo.frombuf(buf, "utf-8", "surrogateescape")
            continue
        got = tarstream._TarInfo.frombuf(buf, "utf-8", "surrogateescape").get_info()
        assert got == want
        checked += 1
    assert checked >= 5


def test_compressed_size_in_blocks_stays_close_to_one_gzip_stream(monkeypatch):
    monkeypatch.setattr(tarstream, "GZIP_BLOCK", 256 << 10)
    text = bytes(random.Random(5).choices(b"abcdefgh \n", k=3_000_000))   # compressible, ~3 bits/byte
    tar = layer_tar([("file", "/words.txt", text)])
    one_stream = len(gzip.compress(tar, 6, mtime=0))
    got = read(classic_export([tar]), compressed=True).layers[0].compressed_size
    assert got != one_stream and abs(got - one_stream) / one_stream < 0.02   # ~0.06% with 4 MiB blocks
    assert one_stream < len(tar) / 2
    for chunk in (7_777, 1 << 20):   # cut at exact block boundaries: independent of read sizes
        assert read(classic_export([tar]), chunk=chunk, compressed=True).layers[0].compressed_size == got


def test_prefetch_thread_hands_over_every_byte_and_errors():
    data = classic_export(_three_layers())
    pieces = [data[i:i + 999] for i in range(0, len(data), 999)]
    _check_three(read_export(ChunkReader(tarstream.Prefetch(iter(pieces), depth=2))))

    def failing():
        yield data[:5000]
        raise ConnectionError("engine went away")

    prefetch = tarstream.Prefetch(failing(), depth=2)
    reader = ChunkReader(prefetch, on_error=lambda exc: ExportStreamError(f"lost: {exc}", fix="x"))
    with pytest.raises(ExportStreamError, match="lost: engine went away"):
        read_export(reader)
    prefetch.close()
    # a consumer that stops early does not leave the thread blocked
    endless = tarstream.Prefetch(iter(lambda: b"x" * 1000, None), depth=2)
    next(iter(endless))
    endless.close()
    assert not endless._thread.is_alive()
    # closing the reader stops the thread of the Prefetch it reads (stream_image's callers)
    ahead = tarstream.Prefetch(iter(lambda: b"y" * 1000, None), depth=2)
    reader = ChunkReader(ahead)
    assert reader.read(10) == b"y" * 10
    reader.close()
    assert not ahead._thread.is_alive(), "reader.close() left the prefetch thread running"


def test_facts_read_files_streams_the_export_and_sees_hidden_files():
    """The exercise rules' file reader (stagelab.facts.read_files) over a fake engine's `docker save`."""
    from types import SimpleNamespace

    from stagelab import facts

    data = classic_export(_three_layers())
    client = SimpleNamespace(api=SimpleNamespace(get_image=lambda image, chunk_size: iter([data])))
    seen: list[str] = []
    files = facts.read_files("x:1", ["/etc/passwd", "/a"], seen=seen.append, client=client)
    assert list(files) == ["/etc/passwd"] and files["/etc/passwd"].count(b"\n") == 2
    assert "/a" in seen   # deleted by a later layer, but a layer had it
