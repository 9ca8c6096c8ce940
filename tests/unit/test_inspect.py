"""stagelab.inspect without an engine: reports from synthetic trees and a fake Docker client."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import uuid

import docker.errors
import pytest

from stagelab import inspect as insp
from stagelab import sizes
from stagelab.bases.status import BaseStatus, status_text, table_sizes
from stagelab.units import human_size
from stagelab.categories import KEYS as CATEGORIES
from stagelab.categories import _lock_key, parse_lockfile
from stagelab.inspect import (
    COMPRESSED_LABEL, UNCOMPRESSED_LABEL, ImageNotFound, ImageReport, report_from_export,
)
from stagelab.layers import ExportContents, LayerScan, stack_layers

# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """inspect() caches layer listings in STAGELAB_CACHE: each test gets an empty one."""
    monkeypatch.setenv("STAGELAB_CACHE", str(tmp_path / "cache"))


def F(path, size, mode=0o644, uid=0, gid=0):
    return (path, size, mode, uid, gid, "file", "")


def D(path):
    return (path, 0, 0o755, 0, 0, "dir", "")


def L(path, target):
    return (path, 0, 0o777, 0, 0, "symlink", target)


def export_of(*layer_entries, whiteouts=None, small=None, secret_hits=(), history=None) -> ExportContents:
    scans = []
    for i, entries in enumerate(layer_entries):
        scan = LayerScan(key=f"l{i}", entries=list(entries))
        scan.whiteouts = list((whiteouts or {}).get(i, []))
        scan.small_files = dict((small or {}).get(i, {}))
        scans.append(scan)
    tree, stats, smalls, _ = stack_layers(scans)
    for i, st in enumerate(stats):
        st.created_by = (history or [f"step {i}" for i in range(len(stats))])[i]
    return ExportContents(tree=tree, layers=stats, config={}, format="classic",
                          history=[{"created_by": st.created_by} for st in stats],
                          small_files=smalls, secret_hits=list(secret_hits))


def attrs(**config) -> dict:
    size = config.pop("_size", 0)
    return {"Id": "sha256:" + "ab" * 32, "RepoTags": ["t:1"], "Size": size, "Config": config,
            "RootFS": {"Layers": []}, "Created": "2024-01-01T00:00:00Z", "Architecture": "amd64", "Os": "linux"}


DPKG_STATUS = b"""Package: libc6
Status: install ok installed

Package: old
Status: deinstall ok config-files

Package: bash
Status: install ok installed
"""

DEBIAN_LIKE = [
    D("/usr"), D("/usr/bin"), L("/bin", "usr/bin"), L("/lib", "usr/lib"),
    F("/usr/bin/dash", 100_000, 0o755), L("/usr/bin/sh", "dash"), F("/usr/bin/bash", 1_200_000, 0o755),
    F("/usr/bin/apt-get", 30_000, 0o755), F("/usr/bin/dpkg", 300_000, 0o755),
    F("/usr/bin/passwd", 60_000, 0o4755), F("/usr/bin/wall", 30_000, 0o2755),
    F("/usr/lib/x86_64-linux-gnu/libc.so.6", 2_000_000, 0o755),
    F("/usr/share/doc/bash/copyright", 9_000), F("/usr/share/man/man1/bash.1.gz", 90_000),
    F("/usr/share/locale/de/LC_MESSAGES/x.mo", 4_000), F("/var/lib/apt/lists/deb_Packages", 8_000_000),
    F("/var/cache/debconf/templates.dat", 700_000), F("/var/lib/dpkg/status", len(DPKG_STATUS)),
    F("/etc/passwd", 100), F("/root/.bashrc", 500),
]

GO_BUILDER = [
    D("/usr/local/go"), F("/usr/local/go/bin/go", 15_000_000, 0o755),
    F("/usr/local/go/pkg/tool/linux_amd64/compile", 20_000_000, 0o755),
    F("/root/.cache/go-build/00/abc-d", 5_000_000), F("/go/pkg/mod/cache/x.zip", 1_000),
    F("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 30_000_000, 0o755), F("/usr/bin/x86_64-linux-gnu-gcc-12", 1_000_000, 0o755),
    L("/usr/bin/gcc", "gcc-12"), F("/usr/bin/gcc-12", 1_000_000, 0o755), F("/usr/bin/make", 250_000, 0o755),
    F("/usr/bin/git", 4_000_000, 0o755), F("/usr/lib/git-core/git-remote-http", 1_500_000, 0o755),
    F("/usr/bin/x86_64-linux-gnu-ld.bfd", 2_000_000, 0o755), F("/usr/lib/x86_64-linux-gnu/libbfd-2.40.so", 1_700_000),
    F("/usr/include/stdio.h", 30_000), F("/usr/lib/x86_64-linux-gnu/libc.a", 6_000_000),
]

APP = [D("/src"), F("/src/main.go", 3_000), F("/src/server", 7_000_000, 0o755)]


def go_single() -> ImageReport:
    export = export_of(DEBIAN_LIKE, GO_BUILDER, APP, small={0: {"/var/lib/dpkg/status": DPKG_STATUS,
                                                                 "/etc/passwd": b"root:x:0:0::/root:/bin/bash\n"}})
    return report_from_export(export, attrs(WorkingDir="/src", Cmd=["/src/server"],
                                            Env=["PATH=/go/bin:/usr/local/go/bin:/usr/bin:/bin"]))


# --- categories ----------------------------------------------------------------------------------

def test_categories_of_a_go_single_stage_image():
    report = go_single()
    cats = report.categories()
    assert list(cats) == list(CATEGORIES)
    assert sum(cats.values()) == sum(e.size for e in report.files.values())
    assert cats["go_toolchain"] == 15_000_000 + 20_000_000 + 5_000_000 + 1_000
    assert cats["app"] == 7_003_000
    assert cats["build_tools"] == (30_000_000 + 1_000_000 + 1_000_000 + 250_000 + 4_000_000
                                                 + 1_500_000 + 2_000_000 + 1_700_000 + 30_000 + 6_000_000)
    assert cats["package_caches"] == 8_700_000
    assert cats["docs"] == 103_000
    assert report.category("/usr/lib/x86_64-linux-gnu/libc.so.6") == "os"
    assert report.category("/root/.bashrc") == "os"
    assert cats["other"] == 0


def test_app_paths_override_and_other():
    export = export_of([F("/server", 5_000, 0o755), F("/data/blob", 10), F("/etc/ssl/certs/ca.crt", 200)])
    report = report_from_export(export, attrs(), app_paths=["/server"])
    assert report.categories()["app"] == 5_000
    assert report.category("/data/blob") == "other"
    assert report.category("/etc/ssl/certs/ca.crt") == "os"


LOCK_V3 = {
    "name": "ts-server", "lockfileVersion": 3,
    "packages": {
        "": {"name": "ts-server"},
        "node_modules/express": {"version": "4.19.2"},
        "node_modules/typescript": {"version": "5.4.0", "dev": True},
        "node_modules/@types/node": {"version": "20.0.0", "dev": True},
        "node_modules/a": {"version": "1.0.0"},
        "node_modules/a/node_modules/b": {"version": "2.0.0", "dev": True},
    },
}


def node_image(lockfile) -> ImageReport:
    export = export_of(
        [F("/usr/local/bin/node", 90_000_000, 0o755), L("/usr/local/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js"),
         F("/usr/local/lib/node_modules/npm/bin/npm-cli.js", 2_000, 0o755),
         F("/usr/local/lib/node_modules/npm/node_modules/semver/index.js", 3_000),
         F("/root/.npm/_cacache/x", 50_000)],
        [D("/app"), F("/app/dist/server.js", 4_000), F("/app/package.json", 500),
         F("/app/node_modules/express/index.js", 10_000), F("/app/node_modules/typescript/lib/tsc.js", 9_000_000),
         F("/app/node_modules/typescript/bin/tsc", 100, 0o755), L("/app/node_modules/.bin/tsc", "../typescript/bin/tsc"),
         F("/app/node_modules/@types/node/index.d.ts", 7_000), F("/app/node_modules/a/x.js", 20),
         F("/app/node_modules/a/node_modules/b/y.js", 30), F("/app/node_modules/unknown/z.js", 40),
         F("/app/node_modules/.package-lock.json", 1_000)],
    )
    return report_from_export(export, attrs(WorkingDir="/app", User="node"), lockfile=lockfile)


@pytest.mark.parametrize("form", ["dict", "bytes", "path"])
def test_node_modules_split_by_lockfile(form, tmp_path):
    lock = {"dict": LOCK_V3, "bytes": json.dumps(LOCK_V3).encode()}.get(form)
    if form == "path":
        lock = tmp_path / "package-lock.json"
        lock.write_text(json.dumps(LOCK_V3))
    report = node_image(lock)
    cats = report.categories()
    assert cats["node_modules_dev"] == 9_000_000 + 100 + 7_000 + 30
    assert cats["node_modules_prod"] == 10_000 + 20 + 40 + 1_000
    assert cats["node_runtime"] == 90_000_000 + 2_000 + 3_000
    assert cats["package_caches"] == 50_000
    assert cats["app"] == 4_500
    assert "tsc" in report.surface.compilers and "npm" in report.surface.package_managers


def test_without_a_lockfile_node_modules_count_as_production():
    report = node_image(None)
    assert report.categories()["node_modules_dev"] == 0


def test_missing_lockfile_path_is_a_clear_error(tmp_path):
    with pytest.raises(insp.StagelabError, match="not found"):
        node_image(str(tmp_path / "nope.json"))


def test_lock_keys_and_lockfile_versions():
    assert _lock_key("/app/node_modules/a/lib/x.js") == "node_modules/a"
    assert _lock_key("/app/node_modules/@s/p/x.js") == "node_modules/@s/p"
    assert _lock_key("/app/node_modules/a/node_modules/@s/b/x") == "node_modules/a/node_modules/@s/b"
    assert _lock_key("/app/node_modules/.bin/tsc") is None
    assert _lock_key("/usr/bin/x") is None
    v1 = {"lockfileVersion": 1, "dependencies": {"a": {"version": "1"}, "t": {"version": "1", "dev": True,
                                                                              "dependencies": {"u": {"dev": True}}}}}
    assert parse_lockfile(v1) == {"node_modules/a": False, "node_modules/t": True,
                                  "node_modules/t/node_modules/u": True}
    assert parse_lockfile(b"not json") == {}
    assert parse_lockfile(json.dumps(LOCK_V3))["node_modules/a/node_modules/b"] is True


# --- tree summaries ------------------------------------------------------------------------------

def test_by_directory_largest_and_file():
    report = go_single()
    total = sum(e.size for e in report.files.values())
    for depth in (1, 2, 3):
        rows = report.by_directory(depth)
        assert sum(n for _, n in rows) == total
        assert [n for _, n in rows] == sorted((n for _, n in rows), reverse=True)
        assert all(p.count("/") <= depth for p, _ in rows)
    assert dict(report.by_directory(1))["/usr"] > dict(report.by_directory(1))["/src"]
    assert ("/usr/lib", 30_000_000 + 1_500_000 + 1_700_000 + 6_000_000 + 2_000_000) in report.by_directory(2)
    top = report.largest(3)
    assert [e.path for e in top] == ["/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
                                     "/usr/local/go/pkg/tool/linux_amd64/compile", "/usr/local/go/bin/go"]
    assert report.file("/src/server").size == 7_000_000
    assert report.file("src/server/") is report.file("/src/server")
    assert report.file("/nope") is None
    # symlinks: /bin -> usr/bin, /usr/bin/sh -> dash
    assert report.file("/bin/sh") is None
    assert report.resolve("/bin/sh").path == "/usr/bin/dash"
    assert report.resolve("/usr/bin/gcc").path == "/usr/bin/gcc-12"


def test_wasted_bytes_reach_the_report():
    export = export_of([F("/big", 1_000), F("/keep", 5)], [F("/big", 10)], [],
                       whiteouts={2: ["/big"]})
    report = report_from_export(export, attrs(_size=1_015))
    assert [layer.wasted for layer in report.layers] == [1_000, 10, 0]
    assert report.wasted == 1_010
    assert report.size_from_layers == 1_015 == report.size
    assert "/big" not in report.files


# --- surface -------------------------------------------------------------------------------------

def test_surface_of_a_debian_like_image():
    s = go_single().surface
    assert s.shell == "/bin/sh" and "/bin/bash" in s.shells and "/usr/bin/bash" not in s.shells
    assert s.package_managers == ["apt", "dpkg"]
    assert s.compilers == ["gcc", "go"]
    assert s.executables == sum(1 for e in go_single().files.values() if e.type == "file" and e.mode & 0o111)
    assert s.setuid == ["/usr/bin/passwd", "/usr/bin/wall"]
    assert (s.os_packages, s.os_package_db) == (2, "dpkg")   # the deinstalled one does not count
    assert s.runs_as_root is True and s.from_contents


def test_surface_of_a_scratch_image():
    export = export_of([F("/server", 5_000_000, 0o755)])
    s = report_from_export(export, attrs(User="65532:65532", Entrypoint=["/server"])).surface
    assert s.shell is None and s.shells == [] and s.package_managers == [] and s.compilers == []
    assert s.executables == 1 and s.setuid == [] and s.os_packages is None
    assert s.runs_as_root is False and s.has_shell is False


def test_busybox_apk_and_distroless_status_d():
    apk_db = b"C:Q1...\nP:musl\nV:1\n\nP:busybox\nV:1\n\nP:apk-tools\n"
    export = export_of([F("/bin/busybox", 900_000, 0o755), L("/bin/sh", "/bin/busybox"),
                        F("/sbin/apk", 100_000, 0o755), F("/lib/apk/db/installed", len(apk_db))],
                       small={0: {"/lib/apk/db/installed": apk_db}})
    s = report_from_export(export, attrs()).surface
    assert s.shell == "/bin/sh" and "/bin/busybox" in s.shells
    assert s.package_managers == ["apk"] and (s.os_packages, s.os_package_db) == (3, "apk")
    status_d = {"/var/lib/dpkg/status.d/libc6": b"Package: libc6\n", "/var/lib/dpkg/status.d/tzdata": b"Package: tzdata\n"}
    export = export_of([F(p, len(v)) for p, v in status_d.items()], small={0: status_d})
    assert report_from_export(export, attrs()).surface.os_packages == 2


@pytest.mark.parametrize("user,root", [("", True), ("0", True), ("root", True), ("0:0", True), ("root:staff", True),
                                       ("1000", False), ("node", False), ("toor", True), ("65532:65532", False)])
def test_runs_as_root(user, root):
    passwd = b"root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n"
    export = export_of([F("/etc/passwd", len(passwd))], small={0: {"/etc/passwd": passwd}})
    assert report_from_export(export, attrs(User=user)).surface.runs_as_root is root


def test_secret_hits_from_files_history_and_env():
    export = export_of([F("/app/.env", 30)], secret_hits=["/app/.env"],
                       history=["/bin/sh -c echo TOKEN=hunter2-xyz > /app/.env"])
    report = report_from_export(export, attrs(Env=["API_TOKEN=hunter2-xyz", "PATH=/bin"]), secret="hunter2-xyz")
    hits = report.surface.secret_hits
    assert "/app/.env" in hits
    assert any(h.startswith("history[0]:") for h in hits)
    assert "env: API_TOKEN" in hits
    assert "secret found in" in report.as_text()
    clean = report_from_export(export_of([F("/a", 1)]), attrs(), secret="hunter2-xyz")
    assert clean.surface.secret_hits == []


# --- without contents ----------------------------------------------------------------------------

def test_report_without_contents_maps_history_to_layers():
    a = attrs(User="")
    a["RootFS"]["Layers"] = ["sha256:l0", "sha256:l1"]
    a["Size"] = 1_500
    api_history = [  # newest first, as the engine returns it
        {"CreatedBy": "/bin/sh -c #(nop)  CMD [\"/server\"]", "Size": 0},
        {"CreatedBy": "/bin/sh -c #(nop) COPY file:abc in /server ", "Size": 1_000},
        {"CreatedBy": "/bin/sh -c #(nop)  ENV A=1", "Size": 0},
        {"CreatedBy": "/bin/sh -c #(nop) ADD file:root in / ", "Size": 500},
    ]
    report = report_from_export(None, a, api_history)
    assert [layer.size for layer in report.layers] == [500, 1_000]
    assert report.layers[1].instruction.startswith("COPY file:abc")
    assert report.layers[0].digest == "sha256:l0"
    assert not report.contents and report.files == {} and report.size_from_layers is None
    assert report.surface.from_contents is False and report.surface.shell is None
    assert report.surface.runs_as_root is True
    assert report.categories() == dict.fromkeys(CATEGORIES, 0)
    assert "not read" in report.as_text()


# --- output --------------------------------------------------------------------------------------

def test_text_html_and_json_output_are_labelled():
    report = go_single()
    report.compressed_size = 123_456
    text = report.as_text(depth=1, top=3)
    assert UNCOMPRESSED_LABEL in text and COMPRESSED_LABEL in text
    assert "/usr/lib/gcc/x86_64-linux-gnu/12/cc1" in text
    html = report._repr_html_()
    assert html.startswith("<table") and UNCOMPRESSED_LABEL in html and COMPRESSED_LABEL in html
    assert "<script" not in html
    data = json.loads(json.dumps(report.to_dict(files=True, top=2)))
    assert data["size_label"] == UNCOMPRESSED_LABEL and data["compressed_size"] == 123_456
    assert len(data["largest"]) == 2 and len(data["files"]) == len(report.files)
    assert set(data["categories"]) == set(CATEGORIES)
    assert data["category_labels"]["node_modules_dev"] == "node_modules (dev-only)"
    assert "Go toolchain" in text and "go_toolchain" not in text   # people read labels, code indexes keys
    assert data["surface"]["compilers"] == ["gcc", "go"]


def test_instruction_strips_classic_builder_noise():
    layer = insp.LayerInfo(index=0, size=1, created_by="/bin/sh -c #(nop) COPY file:x in / ")
    assert layer.instruction == "COPY file:x in /"
    assert insp.LayerInfo(index=0, size=1, created_by="/bin/sh -c apt-get update").instruction == "RUN apt-get update"
    assert insp.LayerInfo(index=0, size=1, created_by="RUN /bin/sh -c x # buildkit").instruction.startswith("RUN")


# --- inspect() with a fake engine --------------------------------------------------------------

def _one_layer_export(files, history: list[dict]) -> bytes:
    """A classic ``docker save`` stream of one layer holding ``files`` ((name, data, mode), ...)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    config = json.dumps({"rootfs": {"diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]},
                         "history": history}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("abc/layer.tar", layer_bytes), ("cfg.json", config),
                           ("manifest.json", json.dumps([{"Config": "cfg.json", "Layers": ["abc/layer.tar"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _export_bytes() -> bytes:
    return _one_layer_export((("server", b"\x7fELF" + b"\0" * 5000, 0o755), ("etc/passwd", b"root:x:0:0::/:/x\n", 0o644)),
                             [{"created_by": "COPY server /"}, {"created_by": "CMD", "empty_layer": True}])


class FakeAPI:
    def __init__(self, images: dict[str, dict]):
        self.images = images
        self.saved: list[str] = []

    def inspect_image(self, name):
        for key, value in self.images.items():
            if name in (key, value["Id"]):
                return value
        raise docker.errors.ImageNotFound(f"No such image: {name}")

    def history(self, name):
        return [{"CreatedBy": "CMD", "Size": 0}, {"CreatedBy": "COPY server /", "Size": 5004}]

    def get_image(self, name, chunk_size=None):
        self.saved.append(name)
        data = _export_bytes()
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]


class FakeClient:
    def __init__(self, images, driver_status=(("Backing Filesystem", "extfs"),)):
        self.api = FakeAPI(images)
        self.api.base_url = f"fake://{uuid.uuid4()}"   # engine_facts caches per address
        self._driver_status = [list(pair) for pair in driver_status]

    def info(self):
        return {"ServerVersion": "99.0", "DriverStatus": self._driver_status}


def test_inspect_with_a_fake_engine():
    a = attrs(Entrypoint=["/server"], ExposedPorts={"8080/tcp": {}}, Labels={"org.stagelab.profile": "offline"},
              _size=5_021)
    client = FakeClient({"t:1": a})
    report = insp.inspect("t:1", client=client, compressed=True)
    assert client.api.saved == [a["Id"]]   # exported by id: the tag cannot move under us
    assert report.ref == "t:1" and report.profile == "offline" and report.exposed_ports == ["8080/tcp"]
    assert report.file("/server").size == 5_004 and report.layers[0].created_by == "COPY server /"
    assert report.size_from_layers == 5_004 + len(b"root:x:0:0::/:/x\n")
    assert report.compressed_size and report.compressed_size < 10_240
    assert report.surface.executables == 1 and report.surface.shell is None
    quick = insp.inspect("t:1", client=client, contents=False)
    assert quick.files == {} and len(client.api.saved) == 1


@pytest.mark.parametrize("name,fix", [
    ("stagelab/me/go-server:scratch", "stagelab build go-server scratch"),
    ("stagelab-offline/golang:1.22", "stagelab bases prepare"),
    ("someone/else:1", "docker images"),
])
def test_unknown_image_names_the_image_and_the_fix(name, fix):
    with pytest.raises(ImageNotFound) as info:
        insp.inspect(name, client=FakeClient({}))
    assert name in info.value.message and fix in info.value.fix


def test_image_removed_while_being_read():
    a = attrs(_size=10)
    client = FakeClient({"t:1": a})

    def broken(name, chunk_size=None):
        client.api.images.clear()   # gone from the engine ...
        yield _export_bytes()[:2000]   # ... and the export stops short

    client.api.get_image = broken
    with pytest.raises(ImageNotFound, match="removed while being read"):
        insp.inspect("t:1", client=client)
    client = FakeClient({"t:1": a})
    client.api.get_image = lambda name, chunk_size=None: iter([_export_bytes()[:2000]])
    with pytest.raises(insp.ExportStreamError, match="truncated"):
        insp.inspect("t:1", client=client)


# --- the lab's size on both image stores (issue 12) ----------------------------------------------

# Recorded on Docker 28.5.2 with the containerd image store, for an image of one layer holding one
# file of 5,000,000 zero bytes: the engine's Size is the compressed content, docker history the
# snapshot's disk usage (rounded to blocks). Docker 20.10 (classic store) said 5,000,000 for both.
CONTAINERD_INFO = (("driver-type", "io.containerd.snapshotter.v1"),)
ZEROS = 5_000_000


def _zeros_export() -> bytes:
    return _one_layer_export((("zeros.bin", b"\0" * ZEROS, 0o644),), [{"created_by": "import"}])


def _zeros_client(driver_status, engine_size: int, history: int) -> FakeClient:
    client = FakeClient({"z:1": attrs(_size=engine_size)}, driver_status=driver_status)
    client.api.history = lambda name: [{"CreatedBy": "", "Size": history}]
    client.api.get_image = lambda name, chunk_size=None: iter([_zeros_export()])
    return client


def test_image_store_is_read_from_driver_status():
    assert sizes.image_store({"DriverStatus": [list(p) for p in CONTAINERD_INFO]}) == "containerd"
    assert sizes.image_store({"DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]]}) == "classic"
    assert sizes.image_store({}) == "classic"


def test_size_on_the_containerd_store_is_the_uncompressed_layers_not_the_engine_size():
    report = insp.inspect("z:1", client=_zeros_client(CONTAINERD_INFO, engine_size=10_576, history=5_005_312))
    assert report.image_store == "containerd" and "containerd image store" in report.engine
    assert report.size == ZEROS and report.size_label == sizes.SIZE_LABEL
    assert report.engine_size == 10_576 and report.history_size == 5_005_312
    check = sizes.check_size(report)
    assert check.tree_and_wasted == ZEROS and check.history == 5_005_312
    # the history is the layer unpacked into 4 KiB blocks: 1,221 blocks of file + its root directory
    assert check.disk_usage == check.history_expected == 5_005_312
    assert "docker image ls shows more" in report.as_text()
    assert "4 KiB blocks: 5,005,312 B" in check.describe() and sizes.DISK_LABEL in check.describe()
    # a report that took the engine's compressed Size fails the check, saying expected vs measured
    with pytest.raises(sizes.SizeMismatch, match=r"expected 5,000,000 B .* measured 10,576 B"):
        sizes.check_size(dataclasses.replace(report, size=report.engine_size))


def test_a_containerd_history_that_is_not_the_layers_disk_usage_fails_the_check():
    # e.g. a lab that read the layers wrongly, or history taken for the size: 10% off the blocks
    report = insp.inspect("z:1", client=_zeros_client(CONTAINERD_INFO, engine_size=10_576, history=5_500_000))
    with pytest.raises(sizes.SizeMismatch, match=r"history to be 5,005,312 B \(the layers unpacked into blocks.*read 5,500,000 B"):
        sizes.check_size(report)
    # a classic-store history that is the block usage, not the bytes, fails too
    report = insp.inspect("z:1", client=_zeros_client((), engine_size=ZEROS, history=5_005_312 + 60_000))
    with pytest.raises(sizes.SizeMismatch, match=r"history to be 5,000,000 B \(the sum of the uncompressed layers"):
        sizes.check_size(report)


def test_size_without_contents_is_the_history_sum_labelled_for_the_store():
    report = insp.inspect("z:1", client=_zeros_client(CONTAINERD_INFO, engine_size=10_576, history=5_005_312),
                          contents=False)
    assert report.size == 5_005_312 and report.size_label == sizes.DISK_LABEL   # disk usage, and says so
    classic = insp.inspect("z:1", client=_zeros_client((), engine_size=ZEROS, history=ZEROS), contents=False)
    assert classic.size == ZEROS and classic.size_label == sizes.HISTORY_LABEL
    with pytest.raises(sizes.SizeMismatch, match="needs the image's files"):
        sizes.check_size(report)


def test_check_size_on_the_classic_store_holds_history_to_one_percent():
    ok = insp.inspect("z:1", client=_zeros_client((), engine_size=ZEROS, history=ZEROS))
    assert ok.image_store == "classic" and sizes.check_size(ok).size == ZEROS == ok.engine_size
    off = insp.inspect("z:1", client=_zeros_client((), engine_size=ZEROS, history=ZEROS * 102 // 100))
    with pytest.raises(sizes.SizeMismatch, match="sum of docker history"):
        sizes.check_size(off)


# --- sizes.image_size / stored_size (claims, bases) on both stores ------------------------------


def _store_client(store: str, history: int):
    client = _zeros_client(CONTAINERD_INFO if store == "containerd" else (), engine_size=10_576, history=history)
    with tarfile.open(fileobj=io.BytesIO(_zeros_export())) as tar:   # the layer's diff id, as the engine lists it
        diff_ids = json.load(tar.extractfile("cfg.json"))["rootfs"]["diff_ids"]
    client.api.images["z:1"]["RootFS"]["Layers"] = diff_ids
    client.images = type("Images", (), {"get": lambda self, ref: _image(client, ref)})()
    return client


def _image(client, ref: str):
    from types import SimpleNamespace

    if ref not in ("z:1", client.tag):
        raise docker.errors.ImageNotFound(ref)
    attrs = client.api.inspect_image("z:1")
    return SimpleNamespace(id=attrs["Id"], attrs=attrs)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGELAB_CACHE", str(tmp_path))   # the layer cache starts empty


def test_on_the_classic_store_the_size_is_the_history_sum_never_the_engines_size() -> None:
    client = _store_client("classic", ZEROS)
    client.tag = "z:1"
    assert sizes.image_size(client, _image(client, "z:1")) == ZEROS
    assert client.api.saved == []   # metadata only
    assert sizes.stored_size(client, "z:1") == (ZEROS, sizes.HISTORY_LABEL)


def test_on_the_containerd_store_the_size_is_read_from_the_layers_not_the_history() -> None:
    client = _store_client("containerd", 5_005_312)
    client.tag = "z:1"
    export = client.api.get_image
    client.api.get_image = lambda name, chunk_size=None: (client.api.saved.append(name), export(name))[1]
    assert sizes.image_size(client, _image(client, "z:1")) == ZEROS      # the file's bytes
    assert sizes.image_size(client, "z:1") == ZEROS                      # by id too, from the layer cache
    assert len(client.api.saved) == 1
    assert sizes.stored_size(client, "z:1") == (5_005_312, sizes.DISK_LABEL)   # the quick number says what it is


def test_the_bases_table_says_what_its_sizes_measured(monkeypatch) -> None:
    from stagelab import catalogue

    tag = catalogue.standins()[0].tag
    for store, history, label in (("classic", ZEROS, sizes.HISTORY_LABEL), ("containerd", 5_005_312, sizes.DISK_LABEL)):
        client = _store_client(store, history)
        client.tag = tag
        assert table_sizes(client) == {tag: human_size(ZEROS)}   # the README's table: the lab's size
        rows = [BaseStatus("ROLE", tag, True, history, "sha256:x", size_label=label)]
        text = status_text(rows)
        assert f"size: {label}" in text and human_size(history) in text
