"""stagelab.inspect on the real engine: images built here (FROM scratch, and on the Debian stand-in),
the offline stand-ins and the apps' images when present.

Every test builds in a namespace of its own (the shared ``tracker`` fixture,
tests/integration/conftest.py) with unique random file contents (so no build cache is shared
with anyone); the tracker removes the images it built by exact id, and the classic builder's
stage images its log names, even after a failure.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import secrets
import subprocess
import sys
import tarfile

import docker.errors
import pytest

from stagelab import catalogue, naming, sizes
from stagelab.inspect import ImageNotFound, inspect
from stagelab.layers import ExportStreamError

pytestmark = pytest.mark.engine

DEBIAN = catalogue.by_arg("DEBIAN_SLIM_IMAGE").offline   # the versions.toml one: a stale tag would only skip


def within(a: int, b: int, fraction: float = 0.02) -> bool:
    return abs(a - b) <= fraction * max(a, b)


class Lab:
    """Builds images with the SDK (classic builder) in the tracker's namespace; the tracker removes them."""

    def __init__(self, tmp_path, tracker) -> None:
        self.ctx = tmp_path
        self.tracker = tracker
        self.client = tracker.client
        self.ns = tracker.namespace

    def write(self, name: str, data: bytes) -> None:
        path = self.ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def build(self, dockerfile: str, name: str, **kwargs) -> str:
        (self.ctx / "Dockerfile").write_text(dockerfile)
        tag = f"stagelab/{self.ns}/itest-inspect:{name}"
        try:
            image, log = self.client.images.build(
                path=str(self.ctx), tag=tag, rm=True, forcerm=True, labels=naming.lab_labels(app="itest"),
                **kwargs)
        except docker.errors.BuildError as exc:
            self.tracker.build_log(_log_lines(exc.build_log))
            pytest.fail(f"test image did not build: {exc}")
        self.tracker.image(image.id)
        self.tracker.build_log(_log_lines(log))
        return tag


def _log_lines(chunks) -> list[str]:
    """The text lines of a docker-py build log (its ``stream`` chunks)."""
    return "".join(c.get("stream", "") for c in chunks if isinstance(c, dict)).splitlines()


@pytest.fixture
def lab(tracker, tmp_path):
    """A Lab in the tracker's namespace (STAGELAB_NAMESPACE set by the shared fixture)."""
    return Lab(tmp_path, tracker)


def _present(client, image: str) -> bool:
    try:
        client.api.inspect_image(image)
        return True
    except docker.errors.NotFound:
        return False


@pytest.fixture
def debian(lab):
    if not _present(lab.client, DEBIAN):
        pytest.skip(f"{DEBIAN} not built yet (stagelab bases prepare)")
    return DEBIAN


# --- FROM scratch -------------------------------------------------------------------------------

def test_scratch_layers_add_up_to_the_image_size(lab):
    wanted = {"bin/app": 1_300_000, "etc/conf": 4_321, "data/a.bin": 250_000, "data/deep/b.bin": 77_777}
    for name, size in wanted.items():
        lab.write(name, os.urandom(size))
    tag = lab.build("FROM scratch\nCOPY bin /bin\nCOPY etc /etc\nCOPY data /data\n"
                    "USER 65532:65532\nENTRYPOINT [\"/bin/app\"]\n", "sizes")
    report = inspect(tag)
    assert report.export_format in ("classic", "oci")
    assert len(report.layers) == 3
    assert report.size_from_layers == sum(wanted.values())
    sizes.check_size(report)   # the files, and docker history (store-aware)
    for name, size in wanted.items():
        assert report.file("/" + name).size == size
    assert [layer.size for layer in report.layers] == [1_300_000, 4_321, 250_000 + 77_777]
    assert all("COPY" in layer.created_by for layer in report.layers)
    assert report.wasted == 0
    assert report.user == "65532:65532" and report.surface.runs_as_root is False
    assert report.entrypoint == ["/bin/app"]
    assert report.surface.shell is None and report.surface.os_packages is None
    assert report.largest(1)[0].path == "/bin/app"
    assert dict(report.by_directory(1))["/data"] == 327_777


def test_overwritten_file_is_wasted(lab):
    lab.write("v1/blob.bin", os.urandom(400_000))
    lab.write("v2/blob.bin", os.urandom(1_000))
    lab.write("keep.txt", b"keep " + secrets.token_hex(8).encode())
    tag = lab.build("FROM scratch\nCOPY v1/blob.bin /data/blob.bin\nCOPY keep.txt /keep.txt\n"
                    "COPY v2/blob.bin /data/blob.bin\n", "overwrite")
    report = inspect(tag)
    assert [layer.wasted for layer in report.layers] == [400_000, 0, 0]
    assert report.file("/data/blob.bin").size == 1_000 and report.file("/data/blob.bin").layer == 2
    sizes.check_size(report)
    assert report.size_from_layers - report.wasted == sum(e.size for e in report.files.values())


def test_compressed_size_is_measured_and_labelled(lab):
    lab.write("zeros.bin", bytes(2_000_000))
    lab.write("random.bin", os.urandom(300_000))
    tag = lab.build("FROM scratch\nCOPY zeros.bin /zeros.bin\nCOPY random.bin /random.bin\n", "gz")
    report = inspect(tag, compressed=True)
    zeros, rand = report.layers
    assert zeros.compressed_size < zeros.size / 50          # zeros compress very well
    assert rand.compressed_size > rand.size * 0.99          # random data does not
    assert report.compressed_size == zeros.compressed_size + rand.compressed_size
    assert "compressed (pull transfer)" in report.as_text()
    plain = inspect(tag)
    if plain.image_store == "containerd":   # its export holds the layers as gzip blobs: their size comes free
        assert plain.compressed_size is not None and plain.compressed_size < report.size / 5
    else:
        assert plain.compressed_size is None


# --- on the Debian stand-in (needs a shell) ---------------------------------------------------------

def test_deleted_file_and_opaque_dir_are_wasted(lab, debian):
    salt = secrets.token_hex(8)
    dockerfile = f"""FROM {debian}
RUN echo {salt} > /salt && head -c 300000 /dev/urandom > /junk.bin && mkdir -p /d && head -c 5000 /dev/urandom > /d/old
RUN rm /junk.bin
RUN rm -rf /d && mkdir /d && echo new > /d/new
"""
    tag = lab.build(dockerfile, "deleted")
    report = inspect(tag)
    base = inspect(debian, contents=False)
    n = len(base.layers)
    assert len(report.layers) == n + 3
    made = report.layers[n]
    assert made.wasted == 300_000 + 5_000, [(layer.size, layer.wasted) for layer in report.layers]
    assert report.file("/junk.bin") is None and report.file("/d/old") is None
    assert report.file("/d/new") is not None and report.file("/salt").size == len(salt) + 1
    sizes.check_size(report)   # the files, and docker history (store-aware)
    assert report.surface.shell and "apt" in report.surface.package_managers
    assert report.surface.os_packages and report.surface.os_packages > 50
    assert report.surface.runs_as_root is True


def test_secret_leaks_are_found_in_files_and_history(lab, debian):
    token = "itest-secret-" + secrets.token_hex(12)
    lab.write("token.txt", token.encode() + b"\n")
    dockerfile = f"""FROM {debian}
ARG TOKEN
COPY token.txt /run/token.txt
RUN echo "using $TOKEN" > /dev/null && rm /run/token.txt
"""
    tag = lab.build(dockerfile, "secret", buildargs={"TOKEN": token})
    report = inspect(tag, secret=token)
    hits = report.surface.secret_hits
    assert any(h.startswith("/run/token.txt") and "removed" in h for h in hits), hits
    assert any(h.startswith("history[") for h in hits), hits
    assert report.file("/run/token.txt") is None
    assert inspect(tag, secret="not-" + token).surface.secret_hits == []


# --- stand-ins and the apps' images -----------------------------------------------------------------

def _images(client, reference: str | None = None, label: str | None = None) -> list[str]:
    filters = {"reference": reference} if reference else {"label": label}
    tags = []
    for image in client.api.images(filters=filters):
        tags += [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"][:1]
    return sorted(tags)


def _inspect_or_skip(name: str, **kwargs):
    """Inspect a shared image; skip only when it is really gone (another session removed it).

    A broken export (``ExportStreamError``) of an image that still exists is a failure.
    """
    try:
        return inspect(name, **kwargs)
    except ImageNotFound as exc:
        pytest.skip(f"{name} was removed while reading it: {exc.message}")


def test_offline_stand_ins_add_up(lab):
    names = _images(lab.client, reference="stagelab-offline/*")
    if not names:
        pytest.skip("no offline stand-ins built yet (stagelab bases prepare)")
    read = []   # the stand-ins whose file tree was really read
    for name in names:
        report = _inspect_or_skip(name)
        sizes.check_size(report)
        assert sum(report.categories().values()) == sum(e.size for e in report.files.values())
        s = report.surface
        if "distroless" in name:
            assert s.shell is None, (name, s.shells)
            assert not set(s.package_managers or []) & {"apt", "apk"}
        if name.startswith(("stagelab-offline/debian", "stagelab-offline/golang", "stagelab-offline/node:")):
            assert s.shell is not None, name
        if name.startswith("stagelab-offline/golang"):
            assert "go" in s.compilers and report.categories()["go_toolchain"] > 100_000_000
        if name.startswith("stagelab-offline/node:"):
            assert "npm" in s.package_managers and report.categories()["node_runtime"] > 30_000_000
        if report.files:
            read.append(name)
    assert read == names, f"no file tree read for {sorted(set(names) - set(read))}"


def test_apps_images_add_up(lab):
    """Up to 3 app images other tests or notebooks built, and always one this test builds itself
    (in its own namespace, removed after), so the check never depends on test order."""
    from stagelab.build import build

    own = build("go-server", "scratch", progress=None).tag
    others = [n for n in _images(lab.client, label=naming.APP_LABEL)
              if "/itest-inspect:" not in n and n != own][:3]
    for name in [own, *others]:
        report = _inspect_or_skip(name)
        sizes.check_size(report)
        if report.app == "go-server":
            assert report.categories()["app"] > 0, (name, report.app_paths)


# --- the size definition on this engine's image store (issue 12) -----------------------------------

def test_size_is_the_uncompressed_layers_and_the_engine_size_is_not_trusted(lab):
    """Zeros compress ~500x: on the containerd store the engine's Size is far below the files."""
    data = bytes(3_000_000)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    repo = f"stagelab/{lab.ns}/itest-inspect"
    lab.client.api.import_image_from_data(layer.getvalue(), repository=repo, tag="zeros")
    lab.tracker.image(lab.client.api.inspect_image(f"{repo}:zeros")["Id"])
    report = inspect(f"{repo}:zeros")
    assert report.size == len(data) and report.size_label == sizes.SIZE_LABEL
    check = sizes.check_size(report)   # files + history agree with the size
    assert check.history is not None and within(check.history, len(data), 0.05)
    assert report.image_store in ("classic", "containerd")
    if report.image_store == "containerd":   # the engine's Size is compressed content: it must fail
        assert report.engine_size < len(data) / 10, report.engine_size
        with pytest.raises(sizes.SizeMismatch):
            sizes.check_size(dataclasses.replace(report, size=report.engine_size))
    else:   # the classic store's Size is the same quantity
        assert report.engine_size == len(data)


def test_history_is_the_bytes_on_classic_and_the_blocks_on_containerd(lab):
    """2,000 files of 100 bytes: 200 kB of content, 2,000 blocks on disk. The lab's size is the
    bytes on both stores; docker history is the bytes (classic) or the blocks (containerd), and
    check_size holds each to what that store counts, within 1%."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for i in range(2_000):
            info = tarfile.TarInfo(f"small/{i:04d}.txt")
            info.size = 100
            tar.addfile(info, io.BytesIO(bytes([65 + i % 26]) * 100))
    repo = f"stagelab/{lab.ns}/itest-inspect"
    lab.client.api.import_image_from_data(layer.getvalue(), repository=repo, tag="small-files")
    lab.tracker.image(lab.client.api.inspect_image(f"{repo}:small-files")["Id"])
    report = inspect(f"{repo}:small-files")
    check = sizes.check_size(report)
    assert report.size == 200_000, report.size
    assert check.disk_usage >= 2_000 * sizes.BLOCK, check.disk_usage
    if report.image_store == sizes.CONTAINERD_STORE:
        assert check.history > 20 * report.size, check.describe()   # disk usage, not the bytes
        assert within(check.history, check.disk_usage, 0.01), check.describe()
    else:
        assert within(check.history, report.size, 0.01), check.describe()


# --- errors and the CLI -------------------------------------------------------------------------------

def test_unknown_image(lab):
    name = f"stagelab/{lab.ns}/go-server:does-not-exist"
    with pytest.raises(ImageNotFound) as info:
        inspect(name)
    assert name in str(info.value) and "stagelab build go-server does-not-exist" in info.value.fix
    out = subprocess.run([sys.executable, "-m", "stagelab.cli", "inspect", name], capture_output=True, text=True)
    assert out.returncode == 2 and name in out.stderr and "Traceback" not in out.stderr


def test_cli_json_and_text(lab):
    lab.write("app", os.urandom(123_456))
    tag = lab.build("FROM scratch\nCOPY app /app\nEXPOSE 8080\n", "cli")
    out = subprocess.run([sys.executable, "-m", "stagelab.cli", "inspect", tag, "--json", "--top", "1",
                          "--compressed"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["size"] == data["size_from_layers"] == 123_456 and data["size_label"] == sizes.SIZE_LABEL
    assert data["largest"] == [{"path": "/app", "size": 123_456, "layer": 0}]
    assert data["compressed_size"] > 123_456 * 0.99 and data["config"]["exposed_ports"] == ["8080/tcp"]
    text = subprocess.run([sys.executable, "-m", "stagelab.cli", "inspect", tag, "--depth", "1"],
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 0 and sizes.SIZE_LABEL in text.stdout and "/app" in text.stdout


# --- the layer cache on the real engine (classic export on 20.10, OCI on 25+) -------------------------

def test_layer_cache_skips_the_export_and_shared_layers(lab, tmp_path, monkeypatch):
    from stagelab import export

    monkeypatch.setenv("STAGELAB_CACHE", str(tmp_path / "cache"))
    lab.write("base.bin", os.urandom(200_000))
    lab.write("one.bin", os.urandom(30_000))
    lab.write("two.bin", os.urandom(40_000))
    first = lab.build("FROM scratch\nCOPY base.bin /base.bin\nCOPY one.bin /app.bin\n", "cache-one")
    second = lab.build("FROM scratch\nCOPY base.bin /base.bin\nCOPY two.bin /app.bin\n", "cache-two")
    exports, scanned = [], []
    real_stream, real_scan = export.stream_image, export.scan_layer
    monkeypatch.setattr(export, "stream_image", lambda client, image, **kw: exports.append(image) or real_stream(client, image, **kw))
    monkeypatch.setattr(export, "scan_layer", lambda f, key, **kw: scanned.append(key) or real_scan(f, key, **kw))
    cold = inspect(first)
    assert len(exports) == 1 and len(scanned) == 2
    warm = inspect(first)
    assert len(exports) == 1, "an unchanged image was exported again"
    assert {p: (e.size, e.layer) for p, e in warm.files.items()} == {p: (e.size, e.layer) for p, e in cold.files.items()}
    assert warm.size == cold.size == 230_000
    shared = inspect(second)   # its bottom layer (the same COPY of the same file) is cached
    assert len(exports) == 2 and len(scanned) == 3, (exports, scanned)   # one export, only the new layer parsed
    assert shared.file("/app.bin").size == 40_000 and shared.size == 240_000
