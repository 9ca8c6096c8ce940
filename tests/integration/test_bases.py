"""The offline stand-ins on the real engine: Go, Node, distroless; bundles; missing bases.

The stand-ins are prepared once (``prepare`` skips what is present: fast when ``make bases``
ran). Tests never remove or retag a stand-in: the bundle tests use a throwaway image of
their own, and every image/container a test creates is registered with the shared ``tracker``
(tests/integration/conftest.py), which removes it by its exact id at teardown, even after a failure.
"""
from __future__ import annotations

import io
import json
import re
import secrets
import tarfile
import time

import docker.errors
import pytest

from stagelab import bases, catalogue, cli, naming, profiles, versions
from stagelab.sizes import HISTORY_LABEL

pytestmark = pytest.mark.engine

OFFLINE = profiles.profile("offline")
NODE_ROLES = ("NODE_IMAGE", "NODE_SLIM_IMAGE", "NODE_ALPINE_IMAGE")


@pytest.fixture(scope="module")
def standins(docker_client):
    """Every offline stand-in present (builds the missing ones; seconds when all are there)."""
    bases.prepare(OFFLINE, progress="none")
    return OFFLINE


def run(tracker, image: str, command, *, entrypoint=None, user=None) -> tuple[int, str]:
    """Run ``command`` in ``image`` in a container the tracker removes; (exit code, output)."""
    c = tracker.create_container(image, purpose="test-bases", command=command, entrypoint=entrypoint,
                                 user=user, network_disabled=True)
    c.start()
    code = c.wait(timeout=300)["StatusCode"]
    return code, c.logs().decode(errors="replace")


def build(tracker, context: dict[str, str], buildargs: dict[str, str]) -> tuple[str, str]:
    """Build a context given as {name: text}; (image id, log). The tracker removes the image afterwards."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in context.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    log, error, image_id = [], None, None
    for chunk in tracker.client.api.build(fileobj=buf, custom_context=True, buildargs=buildargs, rm=True,
                                          forcerm=True, pull=False, decode=True, nocache=True,
                                          labels=naming.lab_labels(purpose="test-bases")):
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "error" in chunk:
            error = chunk["error"]
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    text = "".join(log)
    tracker.build_log(text.splitlines())  # stage images, also those of a build that failed
    if image_id is None:
        for line in text.splitlines():
            if line.startswith("Successfully built "):
                image_id = line.split()[-1]
    if image_id:
        tracker.image(image_id)
    assert error is None, f"build failed: {error}\n{text[-3000:]}"
    return image_id, text


# --- labels ----------------------------------------------------------------------------------

def test_every_standin_says_what_it_imitates(standins, docker_client):
    for s in catalogue.standins():
        labels = docker_client.images.get(s.tag).attrs["Config"]["Labels"] or {}
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
    assert len(events) == len(catalogue.standins())
    assert seconds < 5, f"a no-op prepare took {seconds:.1f} s"


# --- Go ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["GOLANG_ALPINE_IMAGE", "GOLANG_IMAGE"])
def test_go_standin_prints_its_version(standins, tracker, arg):
    code, out = run(tracker, standins.images[arg], ["go", "version"])
    assert code == 0 and f"go{versions.current().go}" in out, out
    code, out = run(tracker, standins.images[arg], ["sh", "-c", "go env GOROOT GOPATH GOTOOLCHAIN; pwd"])
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

GO_DOCKERFILE = f"""\
ARG GOLANG_ALPINE_IMAGE={catalogue.by_arg("GOLANG_ALPINE_IMAGE").upstream}
ARG DISTROLESS_STATIC_IMAGE={catalogue.by_arg("DISTROLESS_STATIC_IMAGE").upstream}
FROM ${{GOLANG_ALPINE_IMAGE}} AS build
WORKDIR /src
COPY main.go go.mod ./
RUN go env CGO_ENABLED && go build -trimpath -ldflags="-s -w" -o /probe . \\
 && od -An -c -N4 /probe && ! grep -q "ld-linux" /probe

FROM ${{DISTROLESS_STATIC_IMAGE}}
COPY --from=build /probe /probe
ENTRYPOINT ["/probe"]
"""


def test_go_builds_a_static_binary_that_runs_on_distroless_static(standins, tracker):
    args = {k: standins.images[k] for k in ("GOLANG_ALPINE_IMAGE", "DISTROLESS_STATIC_IMAGE")}
    image_id, log = build(tracker, {"Dockerfile": GO_DOCKERFILE, "main.go": GO_MAIN,
                                    "go.mod": "module probe\n\ngo 1.21\n"}, args)
    assert "\n0\n" in log, "cgo should be off by default, like golang:*-alpine"
    code, out = run(tracker, image_id, None)
    assert code == 0, out
    fields = dict(part.split("=") for part in out.split())
    assert fields["uid"] == "65532", "distroless static's role image runs as nonroot"
    assert int(fields["certs"]) > 50, "the CA bundle is missing"
    assert fields["tz"] == "true", "zoneinfo is missing"
    assert fields["shell"] == "false"


def test_go_alpine_standin_lacks_tzdata_and_bash_like_alpine(standins, tracker):
    """golang:*-alpine has no tzdata and no bash; the stand-in must not hide failures that causes."""
    image = standins.images["GOLANG_ALPINE_IMAGE"]
    code, out = run(tracker, image, ["sh", "-c", "test -e /usr/share/zoneinfo/Europe/Paris && echo tz; "
                                     "command -v bash || echo nobash; command -v gcc || echo nogcc; "
                                     "go env CGO_ENABLED"])
    assert code == 0, out
    assert out.split() == ["nobash", "nogcc", "0"], out


def test_go_server_test_stage_passes_on_a_standin_without_tzdata(standins, tracker):
    """`go test -trimpath` can't find $GOROOT's zoneinfo.zip; the tests embed time/tzdata (issue 13)."""
    from stagelab.build import build as build_variant

    code, out = run(tracker, standins.images["GOLANG_ALPINE_IMAGE"],
                    ["-c", "test ! -e /usr/share/zoneinfo && echo no-tzdata"], entrypoint=["/bin/sh"])
    assert out.split() == ["no-tzdata"], out
    # nocache: the RUN go test step must really run on this stand-in, not come from the cache
    result = build_variant("go-server", "test", profile=OFFLINE, progress="none", nocache=True)
    tracker.image(result.image_id)
    tracker.build_log(result.log)
    assert result.base_images.get("GOLANG_ALPINE_IMAGE") == standins.images["GOLANG_ALPINE_IMAGE"]
    log = "\n".join(result.log)
    # go test's "ok  <package>" line; BuildKit's plain log prefixes it with "#<n> <seconds> "
    passed = re.search(r"^(?:#\d+ \d+\.\d+ )?ok\s", log, re.M)
    assert "go test -trimpath" in log and passed and "FAIL" not in log, log[-2000:]


# --- every property of every role, on its stand-in (issue 13) ---------------------------------

PROBE = r"""
test -e /usr/share/zoneinfo/UTC && echo tzdata=1 || echo tzdata=0
test -s /etc/ssl/certs/ca-certificates.crt && echo ca=1 || echo ca=0
command -v bash >/dev/null && echo bash=1 || echo bash=0
command -v gcc >/dev/null && echo gcc=1 || echo gcc=0
if command -v apk >/dev/null; then echo pm=apk; elif command -v apt-get >/dev/null; then echo pm=apt; else echo pm=none; fi
command -v useradd >/dev/null && echo useradd=1 || echo useradd=0
command -v adduser >/dev/null && echo adduser=1 || echo adduser=0
if ls /lib/ld-musl-* >/dev/null 2>&1; then echo libc=musl; elif ls /lib*/ld-linux-* >/dev/null 2>&1; then echo libc=glibc; else echo libc=none; fi
if command -v go >/dev/null; then echo cgo=$(go env CGO_ENABLED); else echo cgo=; fi
"""
PROPERTY_ROLES = [r.arg for r in catalogue.roles() if r.offline and r.props]


def _has_extra_ca(client, image: str) -> bool:
    labels = client.images.get(image).attrs["Config"].get("Labels") or {}
    return labels.get(bases.EXTRA_CA_LABEL, "").startswith("sha256:")


@pytest.mark.parametrize("arg", PROPERTY_ROLES)
def test_standin_has_the_upstream_images_properties(standins, docker_client, tracker, arg):
    """libc, shell, package manager, tzdata, CA bundle, users, ENTRYPOINT/CMD/WORKDIR/ENV, gcc."""
    role = catalogue.by_arg(arg)
    p, image = role.props, standins.images[arg]
    config = docker_client.images.get(image).attrs["Config"]
    assert (config.get("User") or "") == p.user, arg
    assert (tuple(config.get("Entrypoint") or ()) or None) == p.entrypoint, (arg, config.get("Entrypoint"))
    assert (tuple(config.get("Cmd") or ()) or None) == p.cmd, (arg, config.get("Cmd"))
    assert (config.get("WorkingDir") or "") == p.workdir, arg
    env_names = {item.split("=", 1)[0] for item in config.get("Env") or ()}
    assert set(p.env) <= env_names, (arg, env_names)
    passwd = _path_in(tracker, image, "/etc/passwd")[1].decode()
    for entry in p.users:
        name, uid = entry.split(":")
        assert f"\n{name}:x:{uid}:" in "\n" + passwd, (arg, entry)
    ca = p.ca_bundle or (bases._uses_ca(role) and _has_extra_ca(docker_client, image))
    if not p.shell:
        assert _path_in(tracker, image, "/bin/sh") is None, arg
        assert (_path_in(tracker, image, "/usr/share/zoneinfo/UTC") is not None) == p.tzdata, arg
        assert (_path_in(tracker, image, "/etc/ssl/certs/ca-certificates.crt") is not None) == ca, arg
        glibc = _path_in(tracker, image, "/lib64/ld-linux-x86-64.so.2") is not None or \
            _path_in(tracker, image, "/lib/ld-linux-aarch64.so.1") is not None
        assert glibc == (p.libc == "glibc"), arg
        return
    code, out = run(tracker, image, ["-c", PROBE], entrypoint=["/bin/sh"], user="0")
    assert code == 0, out
    got = dict(line.split("=", 1) for line in out.split())
    assert got["libc"] == (p.standin_libc or p.libc), (arg, got)
    assert got["pm"] == (p.standin_package_manager or p.package_manager), (arg, got)
    assert got["tzdata"] == str(int(p.tzdata)), (arg, got)
    assert got["ca"] == str(int(ca)), (arg, got)
    assert got["bash"] == str(int(p.bash)), (arg, got)
    assert got["gcc"] == str(int(p.gcc)), (arg, got)
    assert got["useradd"] == str(int(p.adds_users_with == "useradd")), (arg, got)
    if p.adds_users_with == "adduser":
        assert got["adduser"] == "1", (arg, got)
    assert got["cgo"] == (p.cgo_default or ""), (arg, got)


@pytest.mark.parametrize("arg", [a for a in PROPERTY_ROLES if catalogue.by_arg(a).props.adds_users_with == "adduser"])
def test_alpine_standins_take_busybox_adduser(standins, tracker, arg):
    script = "addgroup -g 1234 app && adduser -D -u 1234 -G app -h /srv/app app && id -u app && id -gn app " \
             "&& test -d /srv/app && (useradd x 2>/dev/null && echo useradd-works || echo no-useradd)"
    code, out = run(tracker, standins.images[arg], ["-c", script], entrypoint=["/bin/sh"], user="0")
    assert code == 0 and out.split() == ["1234", "app", "no-useradd"], out


# --- distroless --------------------------------------------------------------------------------

def _path_in(tracker, image: str, path: str):
    """(stat, first bytes) of ``path`` in ``image`` without running it, or None if absent."""
    c = tracker.create_container(image, purpose="test-bases", command=["/nonexistent"])
    try:
        stream, stat = c.get_archive(path)
    except docker.errors.NotFound:
        return None
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmembers()[0]
        head = tar.extractfile(member).read(4096) if member.isfile() else b""
    return stat, head


def test_distroless_static_has_no_shell_but_certs_zoneinfo_and_nonroot(standins, docker_client, tracker):
    image = standins.images["DISTROLESS_STATIC_IMAGE"]
    config = docker_client.images.get(image).attrs["Config"]
    assert config["User"] in ("65532", "65532:65532", "nonroot")
    for shell in ("/bin/sh", "/bin/bash", "/usr/bin/sh", "/bin/busybox"):
        assert _path_in(tracker, image, shell) is None, shell
    assert b"BEGIN CERTIFICATE" in _path_in(tracker, image, "/etc/ssl/certs/ca-certificates.crt")[1]
    assert _path_in(tracker, image, "/usr/share/zoneinfo/Europe/Berlin")[1].startswith(b"TZif")
    assert b"nonroot:x:65532:65532" in _path_in(tracker, image, "/etc/passwd")[1]
    stat, _ = _path_in(tracker, image, "/tmp")
    go_sticky = 1 << 20  # the engine reports a Go os.FileMode
    assert stat["mode"] & 0o777 == 0o777 and stat["mode"] & go_sticky, oct(stat["mode"])
    # the root flavour keeps upstream's default user (root); the role uses the nonroot tag
    root_flavour = docker_client.images.get(profiles.OFFLINE_PREFIX + f"distroless-static:{versions.current().distroless}").attrs["Config"]
    assert root_flavour.get("User", "") in ("", "0", "root")


def test_distroless_base_and_nodejs_have_no_shell(standins, docker_client, tracker):
    for arg in ("DISTROLESS_BASE_IMAGE", "DISTROLESS_NODE_IMAGE"):
        image = standins.images[arg]
        assert _path_in(tracker, image, "/bin/sh") is None
        assert _path_in(tracker, image, "/lib64/ld-linux-x86-64.so.2") is not None or \
            _path_in(tracker, image, "/lib/ld-linux-aarch64.so.1") is not None
    config = docker_client.images.get(standins.images["DISTROLESS_NODE_IMAGE"]).attrs["Config"]
    assert config["Entrypoint"] == ["/nodejs/bin/node"]


# --- Node ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg", NODE_ROLES)
def test_node_standins_print_their_version(standins, docker_client, tracker, arg):
    image = standins.images[arg]
    code, out = run(tracker, image, ["sh", "-c", "node --version; npm --version; npx --version; "
                                     "id -u node; id -g node; command -v node"])
    assert code == 0, out
    node, npm, npx, uid, gid, where = out.split()
    assert node == f"v{versions.current().node}", out
    assert npm == npx and npm.count(".") == 2, out     # the npm the Node.js release ships
    assert (uid, gid, where) == ("1000", "1000", "/usr/local/bin/node"), out
    config = docker_client.images.get(image).attrs["Config"]
    assert config["Cmd"] == ["node"] and config["Entrypoint"] == ["docker-entrypoint.sh"]
    # the official entrypoint: a first argument that is not a command goes to node
    code, out = run(tracker, image, ["-e", "console.log(6*7)"])
    assert code == 0 and out.strip() == "42", out


def test_distroless_node_prints_its_version(standins, tracker):
    code, out = run(tracker, standins.images["DISTROLESS_NODE_IMAGE"],
                    ["-e", "console.log(process.version)"])
    assert code == 0 and out.strip() == f"v{versions.current().node}", out


def test_node_alpine_standin_is_the_slim_one_plus_two_layers(standins, docker_client):
    slim = docker_client.images.get(standins.images["NODE_SLIM_IMAGE"]).attrs["RootFS"]["Layers"]
    alpine = docker_client.images.get(standins.images["NODE_ALPINE_IMAGE"]).attrs["RootFS"]["Layers"]
    # built on the slim stand-in: its layers are shared, plus bases/alpine/ (COPY) and install.sh (RUN)
    assert alpine[:len(slim)] == slim and len(alpine) == len(slim) + 2


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
def test_npm_ci_works_inside_a_build(standins, tracker, tmp_path, arg):
    (tmp_path / "package.json").write_text(json.dumps(PACKAGE_JSON, indent=2) + "\n")
    (tmp_path / "package-lock.json").write_text(json.dumps(PACKAGE_LOCK, indent=2) + "\n")
    dockerfile = (f"ARG {arg}={catalogue.by_arg(arg).upstream}\nFROM ${{{arg}}}\nWORKDIR /app\n"
                  "COPY package.json package-lock.json ./\n"
                  "RUN npm ci --no-audit --no-fund && node -e \"console.log('is-number', require('is-number')(42))\"\n")
    context = {"Dockerfile": dockerfile,
               "package.json": (tmp_path / "package.json").read_text(),
               "package-lock.json": (tmp_path / "package-lock.json").read_text()}
    _, log = build(tracker, context, {arg: standins.images[arg]})
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
def throwaway(tracker):
    """A tiny image of this test's own (unique content), tagged under stagelab-test/."""
    token = secrets.token_hex(8)
    tag = f"stagelab-test/bundle-{token}:v1"
    image_id, _ = build(tracker, {"Dockerfile": "FROM scratch\nCOPY token.txt /token.txt\n",
                                  "token.txt": token + "\n"}, {})
    tracker.client.images.get(image_id).tag(tag)
    tracker.image(tag)
    return tag, image_id


def test_export_remove_import_restores_the_same_image_id(docker_client, throwaway, tmp_path, capsys):
    tag, image_id = throwaway
    bundle = bases.export_bundle(tmp_path / "bundle.tar", images=[tag], progress="none")
    manifest = bases.read_manifest(bundle)
    # the lab's size (sum of docker history, uncompressed on every store), not the engine's Size
    history_bytes = sum(int(h.get("Size") or 0) for h in docker_client.api.history(image_id))
    assert manifest["images"] == [{"tag": tag, "id": image_id, "size": history_bytes, "imitates": None}]
    assert manifest["image_size"] == HISTORY_LABEL
    docker_client.images.remove(image_id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image_id)
    assert cli.main(["bases", "import", str(bundle)]) == 0
    assert tag in capsys.readouterr().out
    assert docker_client.images.get(tag).id == image_id


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_bundle_is_refused_and_nothing_is_loaded(docker_client, throwaway, tmp_path, damage):
    tag, image_id = throwaway
    bundle = bases.export_bundle(tmp_path / "bundle.tar", images=[tag], progress="none")
    data = bundle.read_bytes()
    bad = tmp_path / "bad.tar"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    else:
        middle = 512 + (len(data) - 4096) // 2     # inside images.tar
        bad.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    docker_client.images.remove(image_id, force=True)
    with pytest.raises(bases.BundleError) as exc:
        bases.import_bundle(bad, progress="none")
    assert "checksum" in exc.value.message and "Nothing was loaded" in exc.value.message
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image_id)
    # the CLI says the same, with exit code 1
    assert cli.main(["bases", "import", str(bad)]) == 1
