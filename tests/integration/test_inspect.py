"""stagelab.inspect on the real engine: images built here (FROM scratch, and on the Debian stand-in),
the offline stand-ins and the apps' images when present.

Every test builds in a namespace of its own (STAGELAB_NAMESPACE=itest-<hex>) with unique
random file contents (so no build cache is shared with anyone), and removes the images it
built by exact id (the classic builder's untagged parents go with them).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import docker.errors
import pytest

from stagelab import engine, naming
from stagelab.inspect import ImageNotFound, inspect
from stagelab.layers import ExportStreamError

pytestmark = pytest.mark.engine

DEBIAN = "stagelab-offline/debian:bookworm-slim"


def within(a: int, b: int, fraction: float = 0.02) -> bool:
    return abs(a - b) <= fraction * max(a, b)


class Lab:
    """Builds images with the SDK (classic builder) and remembers their ids for removal."""

    def __init__(self, tmp_path, client) -> None:
        self.ctx = tmp_path
        self.client = client
        self.ns = naming.namespace()
        self.ids: list[str] = []

    def write(self, name: str, data: bytes) -> None:
        path = self.ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def build(self, dockerfile: str, name: str, **kwargs) -> str:
        (self.ctx / "Dockerfile").write_text(dockerfile)
        tag = f"stagelab/{self.ns}/itest-inspect:{name}"
        try:
            image, _ = self.client.images.build(
                path=str(self.ctx), tag=tag, rm=True, forcerm=True, labels=naming.lab_labels(app="itest"),
                **kwargs)
        except docker.errors.BuildError as exc:
            pytest.fail(f"test image did not build: {exc}")
        self.ids.append(image.id)
        return tag

    def remove_all(self) -> None:
        for image_id in reversed(self.ids):
            try:
                self.client.images.remove(image_id, force=True, noprune=False)
            except docker.errors.APIError:
                pass


@pytest.fixture
def lab(monkeypatch, tmp_path):
    monkeypatch.setenv("STAGELAB_NAMESPACE", f"itest-{secrets.token_hex(4)}")
    client = engine.client()
    made = Lab(tmp_path, client)
    yield made
    made.remove_all()


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
    sizes = {"bin/app": 1_300_000, "etc/conf": 4_321, "data/a.bin": 250_000, "data/deep/b.bin": 77_777}
    for name, size in sizes.items():
        lab.write(name, os.urandom(size))
    tag = lab.build("FROM scratch\nCOPY bin /bin\nCOPY etc /etc\nCOPY data /data\n"
                    "USER 65532:65532\nENTRYPOINT [\"/bin/app\"]\n", "sizes")
    report = inspect(tag)
    assert report.export_format in ("classic", "oci")
    assert len(report.layers) == 3
    assert report.size_from_layers == sum(sizes.values())
    assert within(report.size_from_layers, report.size), (report.size_from_layers, report.size)
    for name, size in sizes.items():
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
    assert within(report.size_from_layers, report.size)
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
    assert inspect(tag).compressed_size is None


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
    assert within(report.size_from_layers, report.size), (report.size_from_layers, report.size)
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
    try:
        return inspect(name, **kwargs)
    except (ImageNotFound, ExportStreamError) as exc:   # removed or rebuilt by someone else meanwhile
        pytest.skip(f"{name} changed while reading it: {exc.message}")


def test_offline_stand_ins_add_up(lab):
    names = _images(lab.client, reference="stagelab-offline/*")
    if not names:
        pytest.skip("no offline stand-ins built yet (stagelab bases prepare)")
    checked = 0
    for name in names:
        report = _inspect_or_skip(name)
        assert within(report.size_from_layers, report.size), (name, report.size_from_layers, report.size)
        assert sum(report.categories().values()) == sum(e.size for e in report.files.values())
        s = report.surface
        if "distroless" in name:
            assert s.shell is None, (name, s.shells)
            assert not set(s.package_managers or []) & {"apt", "apk"}
        if name.startswith(("stagelab-offline/debian", "stagelab-offline/golang", "stagelab-offline/node:")):
            assert s.shell is not None, name
        if name.startswith("stagelab-offline/golang"):
            assert "go" in s.compilers and report.categories()["Go toolchain"] > 100_000_000
        if name.startswith("stagelab-offline/node:"):
            assert "npm" in s.package_managers and report.categories()["Node.js runtime"] > 30_000_000
        checked += 1
    assert checked == len(names)


def test_apps_images_add_up(lab):
    names = [n for n in _images(lab.client, label=naming.APP_LABEL) if "/itest-inspect:" not in n][:4]
    if not names:
        pytest.skip("no app images built yet (stagelab build go-server scratch)")
    for name in names:
        report = _inspect_or_skip(name)
        assert within(report.size_from_layers, report.size), (name, report.size_from_layers, report.size)
        if report.app == "go-server":
            assert report.categories()["the app"] > 0, (name, report.app_paths)


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
    assert data["size"] > 0 and data["size_from_layers"] == 123_456
    assert data["largest"] == [{"path": "/app", "size": 123_456, "layer": 0}]
    assert data["compressed_size"] > 123_456 * 0.99 and data["config"]["exposed_ports"] == ["8080/tcp"]
    text = subprocess.run([sys.executable, "-m", "stagelab.cli", "inspect", tag, "--depth", "1"],
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 0 and "uncompressed (docker image ls)" in text.stdout and "/app" in text.stdout
