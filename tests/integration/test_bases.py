"""The offline stand-ins on the real engine: Go, Node, distroless; bundles; missing bases.

The stand-ins are prepared once (``prepare`` skips what is present: fast when ``make bases``
ran). Tests never remove or retag a stand-in: the bundle tests use a throwaway image of
their own, and every image/container a test creates is removed by its exact id.
"""
from __future__ import annotations

import io
import json
import secrets
import tarfile
import time

import docker.errors
import pytest

from stagelab import bases, cli, engine, naming, profiles

pytestmark = pytest.mark.engine

OFFLINE = profiles.profile("offline")
NODE_ROLES = ("NODE_IMAGE", "NODE_SLIM_IMAGE", "NODE_ALPINE_IMAGE")


@pytest.fixture(scope="module")
def client():
    return engine.client()


@pytest.fixture(scope="module")
def standins(client):
    """Every offline stand-in present (builds the missing ones; seconds when all are there)."""
    bases.prepare(OFFLINE, progress="none")
    return OFFLINE


@pytest.fixture
def cleanup(client):
    """Register image ids / container objects to remove after the test, whatever happens."""
    images: list[str] = []
    containers: list = []
    yield images, containers
    for c in containers:
        try:
            c.remove(force=True)
        except docker.errors.APIError:
            pass
    for image_id in images:
        try:
            client.images.remove(image_id, force=True)
        except docker.errors.APIError:
            pass


def run(client, image: str, command, cleanup, *, entrypoint=None, user=None) -> tuple[int, str]:
    """Run ``command`` in ``image``; (exit code, output)."""
    _, containers = cleanup
    c = client.containers.create(image, command, entrypoint=entrypoint, user=user,
                                 labels=naming.lab_labels(purpose="test-bases"), network_disabled=True)
    containers.append(c)
    c.start()
    code = c.wait(timeout=300)["StatusCode"]
    return code, c.logs().decode(errors="replace")


def build(client, context: dict[str, str], cleanup, buildargs: dict[str, str]) -> tuple[str, str]:
    """Build a context given as {name: text}; (image id, log). The image is removed afterwards."""
    images, _ = cleanup
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in context.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    log, error, image_id = [], None, None
    for chunk in client.api.build(fileobj=buf, custom_context=True, buildargs=buildargs, rm=True,
                                  forcerm=True, pull=False, decode=True, nocache=True,
                                  labels=naming.lab_labels(purpose="test-bases")):
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "error" in chunk:
            error = chunk["error"]
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    text = "".join(log)
    if image_id is None:
        for line in text.splitlines():
            if line.startswith("Successfully built "):
                image_id = line.split()[-1]
    if image_id:
        images.append(image_id)
    assert error is None, f"build failed: {error}\n{text[-3000:]}"
    return image_id, text


# --- labels ----------------------------------------------------------------------------------

def test_every_standin_says_what_it_imitates(standins, client):
    for s in bases.STANDINS:
        labels = client.images.get(s.tag).attrs["Config"]["Labels"] or {}
        assert labels.get(bases.BASE_LABEL) == "true"
        assert labels.get(bases.IMITATES_LABEL) == s.imitates
        assert labels.get(bases.SOURCES_LABEL) and labels.get(bases.DIFFERS_LABEL)
        assert bases.EXTRA_CA_LABEL in labels
        assert naming.LAB_LABEL not in labels, "stagelab clean would remove a base"


def test_status_lists_every_role_present(standins):
    rows = bases.status(OFFLINE)
    assert {r.role for r in rows} == set(OFFLINE.images)
    assert all(r.present and r.size and r.image_id for r in rows)


def test_prepare_skips_present_images_quickly(standins):
    events = []
    started = time.monotonic()
    bases.prepare(OFFLINE, progress=events.append)
    seconds = time.monotonic() - started
    assert {e.state for e in events} == {"present"}
    assert len(events) == len(bases.STANDINS)
    assert seconds < 5, f"a no-op prepare took {seconds:.1f} s"


# --- Go ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["GOLANG_ALPINE_IMAGE", "GOLANG_IMAGE"])
def test_go_standin_prints_its_version(standins, client, cleanup, arg):
    code, out = run(client, standins.images[arg], ["go", "version"], cleanup)
    assert code == 0 and "go1.22.10" in out, out
    code, out = run(client, standins.images[arg], ["sh", "-c", "go env GOROOT GOPATH GOTOOLCHAIN; pwd"], cleanup)
    assert out.split() == ["/usr/local/go", "/go", "local", "/go"], out


GO_MAIN = """\
package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

func main() {
	pool, err := x509.SystemCertPool()
	certs := 0
	if err == nil {
		certs = len(pool.Subjects()) //nolint:staticcheck
	}
	_, tzErr := time.LoadLocation("Europe/Berlin")
	_, shErr := os.Stat("/bin/sh")
	fmt.Printf("uid=%d certs=%d tz=%v shell=%v\\n", os.Getuid(), certs, tzErr == nil, shErr == nil)
}
"""

GO_DOCKERFILE = """\
ARG GOLANG_ALPINE_IMAGE=golang:1.22-alpine
ARG DISTROLESS_STATIC_IMAGE=gcr.io/distroless/static-debian12:nonroot
FROM ${GOLANG_ALPINE_IMAGE} AS build
WORKDIR /src
COPY main.go go.mod ./
RUN go env CGO_ENABLED && go build -trimpath -ldflags="-s -w" -o /probe . \\
 && od -An -c -N4 /probe && ! grep -q "ld-linux" /probe

FROM ${DISTROLESS_STATIC_IMAGE}
COPY --from=build /probe /probe
ENTRYPOINT ["/probe"]
"""


def test_go_builds_a_static_binary_that_runs_on_distroless_static(standins, client, cleanup):
    args = {k: standins.images[k] for k in ("GOLANG_ALPINE_IMAGE", "DISTROLESS_STATIC_IMAGE")}
    image_id, log = build(client, {"Dockerfile": GO_DOCKERFILE, "main.go": GO_MAIN,
                                   "go.mod": "module probe\n\ngo 1.22\n"}, cleanup, args)
    assert "\n0\n" in log, "cgo should be off by default, like golang:1.22-alpine"
    code, out = run(client, image_id, None, cleanup)
    assert code == 0, out
    fields = dict(part.split("=") for part in out.split())
    assert fields["uid"] == "65532", "distroless static's role image runs as nonroot"
    assert int(fields["certs"]) > 50, "the CA bundle is missing"
    assert fields["tz"] == "true", "zoneinfo is missing"
    assert fields["shell"] == "false"


# --- distroless --------------------------------------------------------------------------------

def _path_in(client, image: str, path: str, cleanup):
    """(stat, first bytes) of ``path`` in ``image`` without running it, or None if absent."""
    _, containers = cleanup
    c = client.containers.create(image, ["/nonexistent"], labels=naming.lab_labels(purpose="test-bases"))
    containers.append(c)
    try:
        stream, stat = c.get_archive(path)
    except docker.errors.NotFound:
        return None
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmembers()[0]
        head = tar.extractfile(member).read(4096) if member.isfile() else b""
    return stat, head


def test_distroless_static_has_no_shell_but_certs_zoneinfo_and_nonroot(standins, client, cleanup):
    image = standins.images["DISTROLESS_STATIC_IMAGE"]
    config = client.images.get(image).attrs["Config"]
    assert config["User"] in ("65532", "65532:65532", "nonroot")
    for shell in ("/bin/sh", "/bin/bash", "/usr/bin/sh", "/bin/busybox"):
        assert _path_in(client, image, shell, cleanup) is None, shell
    assert b"BEGIN CERTIFICATE" in _path_in(client, image, "/etc/ssl/certs/ca-certificates.crt", cleanup)[1]
    assert _path_in(client, image, "/usr/share/zoneinfo/Europe/Berlin", cleanup)[1].startswith(b"TZif")
    assert b"nonroot:x:65532:65532" in _path_in(client, image, "/etc/passwd", cleanup)[1]
    stat, _ = _path_in(client, image, "/tmp", cleanup)
    go_sticky = 1 << 20  # the engine reports a Go os.FileMode
    assert stat["mode"] & 0o777 == 0o777 and stat["mode"] & go_sticky, oct(stat["mode"])
    # the root flavour keeps upstream's default user (root); the role uses the nonroot tag
    root_flavour = client.images.get("stagelab-offline/distroless-static:debian12").attrs["Config"]
    assert root_flavour.get("User", "") in ("", "0", "root")


def test_distroless_base_and_nodejs_have_no_shell(standins, client, cleanup):
    for arg in ("DISTROLESS_BASE_IMAGE", "DISTROLESS_NODE_IMAGE"):
        image = standins.images[arg]
        assert _path_in(client, image, "/bin/sh", cleanup) is None
        assert _path_in(client, image, "/lib64/ld-linux-x86-64.so.2", cleanup) is not None or \
            _path_in(client, image, "/lib/ld-linux-aarch64.so.1", cleanup) is not None
    config = client.images.get(standins.images["DISTROLESS_NODE_IMAGE"]).attrs["Config"]
    assert config["Entrypoint"] == ["/nodejs/bin/node"]


# --- Node ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg", NODE_ROLES)
def test_node_standins_print_their_version(standins, client, cleanup, arg):
    image = standins.images[arg]
    code, out = run(client, image, ["sh", "-c", "node --version; npm --version; npx --version; "
                                    "id -u node; id -g node; command -v node"], cleanup)
    assert code == 0, out
    assert out.split() == ["v20.18.0", "10.8.2", "10.8.2", "1000", "1000", "/usr/local/bin/node"], out
    config = client.images.get(image).attrs["Config"]
    assert config["Cmd"] == ["node"] and config["Entrypoint"] == ["docker-entrypoint.sh"]
    # the official entrypoint: a first argument that is not a command goes to node
    code, out = run(client, image, ["-e", "console.log(6*7)"], cleanup)
    assert code == 0 and out.strip() == "42", out


def test_distroless_node_prints_its_version(standins, client, cleanup):
    code, out = run(client, standins.images["DISTROLESS_NODE_IMAGE"],
                    ["-e", "console.log(process.version)"], cleanup)
    assert code == 0 and out.strip() == "v20.18.0", out


def test_node_alpine_standin_shares_the_slim_layers(standins, client):
    slim = client.images.get(standins.images["NODE_SLIM_IMAGE"]).attrs["RootFS"]["Layers"]
    alpine = client.images.get(standins.images["NODE_ALPINE_IMAGE"]).attrs["RootFS"]["Layers"]
    assert slim == alpine


PACKAGE_JSON = {"name": "stagelab-npm-ci-check", "version": "1.0.0", "private": True,
                "dependencies": {"is-number": "7.0.0"}}
PACKAGE_LOCK = {
    "name": "stagelab-npm-ci-check", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
    "packages": {
        "": {"name": "stagelab-npm-ci-check", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}},
        "node_modules/is-number": {
            "version": "7.0.0",
            "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
            "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
            "license": "MIT",
            "engines": {"node": ">=0.12.0"},
        },
    },
}


@pytest.mark.parametrize("arg", ["NODE_SLIM_IMAGE", "NODE_IMAGE"])
def test_npm_ci_works_inside_a_build(standins, client, cleanup, tmp_path, arg):
    (tmp_path / "package.json").write_text(json.dumps(PACKAGE_JSON, indent=2) + "\n")
    (tmp_path / "package-lock.json").write_text(json.dumps(PACKAGE_LOCK, indent=2) + "\n")
    dockerfile = (f"ARG {arg}=node:20\nFROM ${{{arg}}}\nWORKDIR /app\n"
                  "COPY package.json package-lock.json ./\n"
                  "RUN npm ci --no-audit --no-fund && node -e \"console.log('is-number', require('is-number')(42))\"\n")
    context = {"Dockerfile": dockerfile,
               "package.json": (tmp_path / "package.json").read_text(),
               "package-lock.json": (tmp_path / "package-lock.json").read_text()}
    _, log = build(client, context, cleanup, {arg: standins.images[arg]})
    assert "is-number true" in log, log[-2000:]


# --- missing bases -------------------------------------------------------------------------------

def test_check_bases_names_role_profile_and_fix(standins):
    bases.check_bases(standins.build_args(), standins)  # all present: no error
    fake = profiles.Profile("offline", "test", {"GOLANG_IMAGE": f"stagelab-offline/golang:gone-{secrets.token_hex(3)}"})
    with pytest.raises(bases.MissingBaseImage) as exc:
        bases.check_bases(fake.build_args(), fake)
    text = str(exc.value)
    assert "GOLANG_IMAGE" in text and "offline" in text and "make bases" in text
    assert "pull access denied" not in text
    with pytest.raises(bases.MissingBaseImage, match="given instead of the profile"):
        bases.check_bases({"NODE_IMAGE": "stagelab-offline/node:nope"}, standins)
    bases.check_bases({"NOT_A_ROLE": "whatever:1", "GO_TAGS": "x"}, standins)  # not roles: ignored


# --- workshop bundle ------------------------------------------------------------------------------

@pytest.fixture
def throwaway(client, cleanup):
    """A tiny image of this test's own (unique content), tagged under stagelab-test/."""
    token = secrets.token_hex(8)
    tag = f"stagelab-test/bundle-{token}:v1"
    images, _ = cleanup
    image_id, _ = build(client, {"Dockerfile": "FROM scratch\nCOPY token.txt /token.txt\n",
                                 "token.txt": token + "\n"}, cleanup, {})
    client.images.get(image_id).tag(tag)
    images.append(tag)
    return tag, image_id


def test_export_remove_import_restores_the_same_image_id(client, throwaway, tmp_path, capsys):
    tag, image_id = throwaway
    bundle = bases.export_bundle(tmp_path / "bundle.tar", images=[tag], progress="none")
    manifest = bases.read_manifest(bundle)
    assert manifest["images"] == [{"tag": tag, "id": image_id, "size": manifest["images"][0]["size"],
                                   "imitates": None}]
    client.images.remove(image_id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image_id)
    assert cli.main(["bases", "import", str(bundle)]) == 0
    assert tag in capsys.readouterr().out
    assert client.images.get(tag).id == image_id


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_bundle_is_refused_and_nothing_is_loaded(client, throwaway, tmp_path, damage):
    tag, image_id = throwaway
    bundle = bases.export_bundle(tmp_path / "bundle.tar", images=[tag], progress="none")
    data = bundle.read_bytes()
    bad = tmp_path / "bad.tar"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    else:
        middle = 512 + (len(data) - 4096) // 2     # inside images.tar
        bad.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    client.images.remove(image_id, force=True)
    with pytest.raises(bases.BundleError) as exc:
        bases.import_bundle(bad, progress="none")
    assert "checksum" in exc.value.message and "Nothing was loaded" in exc.value.message
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image_id)
    # the CLI says the same, with exit code 1
    assert cli.main(["bases", "import", str(bad)]) == 1
