#!/usr/bin/env python3
"""A second, current Docker engine (28.x, BuildKit, containerd image store) beside the system one.

Used by ``make engine-modern``, ``make engine-modern-stop`` and ``make test-modern`` (issue 12),
and by tests/integration/test_modern_engine.py. Standard library only, runs as root on Linux.

    python3 tools/modern_engine.py start        # download, extract, start; last line DOCKER_HOST=...
    python3 tools/modern_engine.py env          # `export` lines: DOCKER_HOST, DOCKER_CONFIG, PATH
    python3 tools/modern_engine.py copy-bases   # docker save | docker load of stagelab-offline/*
    python3 tools/modern_engine.py status
    python3 tools/modern_engine.py stop [--purge]

What it does, and why (measured on Debian 12 with Docker 20.10 as the system engine):
- Debian forky's ``docker.io``, ``docker-cli``, ``docker-buildx`` and ``containerd`` .debs are
  downloaded (paths and SHA256 from the suite's signed index) and unpacked with ``dpkg-deb -x``
  under ``$STAGELAB_CACHE/engine-modern``; they are never installed (forky's libc is newer).
- Bookworm's ``runc`` runs the containers: forky's needs GLIBC 2.38 and is never on PATH.
- Its own data root, exec root, socket, pidfile and bridge ``d28br0`` (made here with ``ip``),
  ``--iptables=false``, and FORWARD/MASQUERADE rules of its own, removed on stop. Never
  ``--bridge=none``: at start-up that deleted ``docker0`` and broke the system engine.
- ``<data-root>/network`` is removed before each start: a restart on the same data root
  deleted ``docker0`` otherwise.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

MIRROR = os.environ.get("STAGELAB_MODERN_MIRROR", "http://deb.debian.org/debian")
SUITE = "forky"
# package -> the upstream version verified with the lab (issue 12); another one only warns,
# since a suite's pool keeps just its current version.
PACKAGES = {"docker.io": "28.5.2", "docker-cli": "28.5.2", "docker-buildx": "0.29.1",
            "containerd": "2.1.9"}
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SYSTEM_SOCKET = "/var/run/docker.sock"
BASES_REFERENCE = "stagelab-offline/*"
RULE_TAG = "stagelab-modern"


class ToolError(Exception):
    """One clear message, printed without a traceback."""


def _say(msg: str) -> None:
    print(f"[modern-engine] {msg}", file=sys.stderr, flush=True)


# --- where things live ------------------------------------------------------------------

def cache_dir() -> Path:
    """``STAGELAB_CACHE`` or the lab's ``<repo>/.cache/stagelab`` (as stagelab.naming)."""
    env = os.environ.get("STAGELAB_CACHE")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[1] / ".cache" / "stagelab"


@dataclass(frozen=True)
class Instance:
    """One engine's folders, socket, bridge and address ranges; ``default`` is make's one."""

    name: str

    @property
    def index(self) -> int:
        # 0 for the default instance; 1..15 from a stable hash of the name for test instances
        if self.name == "default":
            return 0
        return 1 + zlib.crc32(self.name.encode()) % 15

    @property
    def home(self) -> Path:       # the unpacked engine, shared by every instance
        return cache_dir() / "engine-modern"

    @property
    def data_root(self) -> Path:  # images and containers: beside the system engine's, not in a repo
        return Path("/var/lib/stagelab-engine-modern") / self.name

    @property
    def run_dir(self) -> Path:    # short path: unix socket paths are limited to 108 bytes
        return Path("/run/stagelab-engine-modern") / self.name

    @property
    def exec_root(self) -> Path:
        return self.run_dir / "exec"

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "dockerd.pid"

    @property
    def config_file(self) -> Path:
        return self.run_dir / "daemon.json"

    @property
    def log(self) -> Path:
        return self.data_root.parent / f"{self.name}.log"

    @property
    def bridge(self) -> str:
        return "d28br0" if self.index == 0 else f"d28br{self.index}"

    @property
    def bridge_cidr(self) -> str:  # the bridge's own address (default containers)
        return f"172.29.{self.index}.1/24"

    @property
    def bridge_net(self) -> str:
        return f"172.29.{self.index}.0/24"

    @property
    def pool(self) -> str:         # user-defined networks (the system engine takes 172.17-172.2x)
        return "172.30.0.0/16" if self.index == 0 else f"172.31.{self.index * 16}.0/20"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


def root_dir(inst: Instance) -> Path:
    return inst.home / "root"


def bin_dir(inst: Instance) -> Path:
    """dockerd's PATH: its binaries plus bookworm's runc (never forky's)."""
    return inst.home / "bin"


def cli_dir(inst: Instance) -> Path:
    """Only the docker 28 CLI, to go first on a user's PATH."""
    return inst.home / "cli"


def docker_config(inst: Instance) -> Path:
    """A DOCKER_CONFIG of the lab's own whose cli-plugins holds buildx (never ~/.docker)."""
    return inst.home / "docker-config"


# --- download and unpack ----------------------------------------------------------------

def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            return resp.read()
    except OSError as exc:
        raise ToolError(f"could not download {url}: {exc}. Check that {MIRROR} answers "
                        "(or set STAGELAB_MODERN_MIRROR).") from None


def _signed_index() -> dict[str, dict[str, str]]:
    """The suite's Packages index, checked against its InRelease (gpgv, Debian's keyring)."""
    inrelease = _fetch(f"{MIRROR}/dists/{SUITE}/InRelease")
    member = "main/binary-amd64/Packages.gz"
    gpgv = shutil.which("gpgv")
    if gpgv and KEYRING.is_file():
        with tempfile.NamedTemporaryFile(suffix=".InRelease") as fh:
            fh.write(inrelease)
            fh.flush()
            proc = subprocess.run([gpgv, "--keyring", str(KEYRING), fh.name], capture_output=True)
        if proc.returncode != 0:
            raise ToolError(f"{SUITE}'s InRelease has no valid Debian signature: "
                            + proc.stderr.decode(errors="replace").strip()[-300:])
    else:
        _say("gpgv or Debian's keyring missing: the index is checked by SHA256 only")
    match = re.search(rf"^ ([0-9a-f]{{64}})\s+\d+\s+{re.escape(member)}$",
                      inrelease.decode(errors="replace"), re.M)
    if not match:
        raise ToolError(f"{SUITE}'s InRelease does not list {member}")
    packages_gz = _fetch(f"{MIRROR}/dists/{SUITE}/{member}")
    if hashlib.sha256(packages_gz).hexdigest() != match.group(1):
        raise ToolError(f"{member} does not match the SHA256 in {SUITE}'s InRelease")
    found: dict[str, dict[str, str]] = {}
    for stanza in gzip.decompress(packages_gz).decode(errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+): (.*)$", stanza, re.M))
        if fields.get("Package") in PACKAGES and fields.get("Architecture") == "amd64":
            found[fields["Package"]] = fields
    missing = sorted(set(PACKAGES) - set(found))
    if missing:
        raise ToolError(f"{SUITE} has no {', '.join(missing)} for amd64")
    return found


def _arch() -> str:
    machine = os.uname().machine
    if machine not in ("x86_64", "amd64"):
        raise ToolError(f"the modern engine set-up knows amd64 only (this machine: {machine})")
    return "amd64"


def ensure_unpacked(inst: Instance) -> None:
    """Download and ``dpkg-deb -x`` the four packages once; link the binaries dockerd needs."""
    stamp = inst.home / "unpacked.json"
    if not stamp.is_file():
        _arch()
        if shutil.which("dpkg-deb") is None:
            raise ToolError("dpkg-deb is missing: the modern engine needs a Debian/Ubuntu host")
        _say(f"downloading Debian {SUITE}'s " + ", ".join(PACKAGES) + " (not installing them)")
        index = _signed_index()
        debs = inst.home / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="root.", dir=inst.home))
        versions = {}
        for name, fields in sorted(index.items()):
            upstream = fields["Version"].split(":")[-1].split("+")[0].split("-")[0]
            if upstream != PACKAGES[name]:
                _say(f"warning: {SUITE} now has {name} {fields['Version']}, the lab was "
                     f"verified with {PACKAGES[name]}")
            deb = debs / Path(fields["Filename"]).name
            if not deb.is_file() or hashlib.sha256(deb.read_bytes()).hexdigest() != fields["SHA256"]:
                _say(f"  {fields['Filename']}")
                data = _fetch(f"{MIRROR}/{fields['Filename']}")
                if hashlib.sha256(data).hexdigest() != fields["SHA256"]:
                    raise ToolError(f"{deb.name} does not match the SHA256 of {SUITE}'s index")
                deb.write_bytes(data)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
            versions[name] = fields["Version"]
        shutil.rmtree(root_dir(inst), ignore_errors=True)
        staging.chmod(0o755)
        os.replace(staging, root_dir(inst))
        for old in debs.glob("*.deb"):   # keep only the current files
            if old.name not in {Path(f["Filename"]).name for f in index.values()}:
                old.unlink()
        stamp.write_text(json.dumps(versions, indent=1) + "\n")
    _link_binaries(inst)


def _bookworm_runc() -> str:
    for path in ("/usr/sbin/runc", "/usr/bin/runc"):
        if os.access(path, os.X_OK):
            return path
    raise ToolError("runc is missing: install the system engine first (apt-get install -y "
                    "docker.io, which brings bookworm's runc), then start again")


def _link(target: Path | str, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.is_symlink() and os.readlink(link) == str(target):
            return
        link.unlink()
    link.symlink_to(target)


def _link_binaries(inst: Instance) -> None:
    root = root_dir(inst)
    for name, rel in (("dockerd", "usr/sbin/dockerd"), ("docker-proxy", "usr/sbin/docker-proxy"),
                      ("containerd", "usr/bin/containerd"),
                      ("containerd-shim-runc-v2", "usr/bin/containerd-shim-runc-v2"),
                      ("docker", "usr/bin/docker")):
        if not (root / rel).is_file():
            raise ToolError(f"{root / rel} is missing: run `stop --purge` and start again")
        _link(root / rel, bin_dir(inst) / name)
    _link(_bookworm_runc(), bin_dir(inst) / "runc")
    init = shutil.which("docker-init") or shutil.which("tini-static")
    if init:
        _link(init, bin_dir(inst) / "docker-init")
    _link(root / "usr/bin/docker", cli_dir(inst) / "docker")
    _link(root / "usr/libexec/docker/cli-plugins/docker-buildx",
          docker_config(inst) / "cli-plugins" / "docker-buildx")


# --- talking to an engine (stdlib HTTP over its unix socket) ------------------------------

class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10.0):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def api(sock: Path | str, path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` from the engine at ``sock``: (status, headers, body)."""
    conn = _UnixConnection(str(sock), timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def ping(inst: Instance) -> dict[str, str] | None:
    """The ``/_ping`` headers when the engine answers, else None."""
    try:
        status, headers, _ = api(inst.socket, "/_ping", timeout=3)
    except OSError:
        return None
    return headers if status == 200 else None


def _pid(inst: Instance) -> int | None:
    try:
        pid = int(inst.pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
    return pid if comm == "dockerd" else None


# --- network ----------------------------------------------------------------------------

def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _bridge_up(inst: Instance) -> None:
    if _ip("link", "show", inst.bridge, check=False).returncode != 0:
        _ip("link", "add", inst.bridge, "type", "bridge")
    if inst.bridge_cidr.split("/")[0] not in _ip("-4", "addr", "show", "dev", inst.bridge).stdout:
        _ip("addr", "add", inst.bridge_cidr, "dev", inst.bridge)
    _ip("link", "set", inst.bridge, "up")


def _rules(inst: Instance) -> list[list[str]]:
    """FORWARD accept (the system engine sets the policy to DROP) and MASQUERADE, per range."""
    tag = ["-m", "comment", "--comment", f"{RULE_TAG}-{inst.name}"]
    rules = []
    for net in (inst.bridge_net, inst.pool):
        rules.append(["-t", "filter", "FORWARD", "-s", net, *tag, "-j", "ACCEPT"])
        rules.append(["-t", "filter", "FORWARD", "-d", net, *tag, "-j", "ACCEPT"])
        rules.append(["-t", "nat", "POSTROUTING", "-s", net, "!", "-d", net, *tag, "-j", "MASQUERADE"])
    return rules


def _iptables(action: str, rule: list[str]) -> int:
    table, chain, rest = rule[:2], rule[2], rule[3:]
    return subprocess.run(["iptables", *table, action, chain, *rest],
                          capture_output=True).returncode


def _rules_add(inst: Instance) -> None:
    if shutil.which("iptables") is None:
        raise ToolError("iptables is missing: apt-get install -y iptables")
    for rule in _rules(inst):
        if _iptables("-C", rule) != 0:
            if _iptables("-I", rule) != 0:
                raise ToolError("iptables " + " ".join(rule) + " failed")
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    if forward.read_text().strip() != "1":
        _say("enabling net.ipv4.ip_forward (as Docker itself does)")
        forward.write_text("1\n")


def _rules_remove(inst: Instance) -> None:
    if shutil.which("iptables") is None:
        return
    for rule in _rules(inst):
        while _iptables("-C", rule) == 0:
            if _iptables("-D", rule) != 0:
                break


# --- commands -----------------------------------------------------------------------------

def _require_root() -> None:
    if sys.platform != "linux" or os.geteuid() != 0:
        raise ToolError("the modern engine runs beside the system one only on Linux as root "
                        "(it makes a bridge and firewall rules); run it with sudo")


def start(inst: Instance, wait_seconds: float = 90.0) -> None:
    """Start the engine unless it answers already; the last line printed is DOCKER_HOST=..."""
    _require_root()
    if ping(inst) is not None and _pid(inst) is not None:
        ensure_unpacked(inst)   # the CLI and buildx for `env`, also in another cache folder
        _say(f"already running (pid {_pid(inst)})")
        print(f"DOCKER_HOST={inst.host}")
        return
    ensure_unpacked(inst)
    old = _pid(inst)
    if old is not None:   # running but not answering: stop it before a fresh start
        stop(inst)
    _bridge_up(inst)
    _rules_add(inst)
    inst.run_dir.mkdir(parents=True, exist_ok=True)
    inst.data_root.mkdir(parents=True, exist_ok=True)
    # a restart on the same data root deleted docker0 while this state was there
    shutil.rmtree(inst.data_root / "network", ignore_errors=True)
    inst.config_file.write_text(json.dumps({
        "default-address-pools": [{"base": inst.pool, "size": 24}],
        "features": {"containerd-snapshotter": True},
    }, indent=1) + "\n")
    cmd = [str(bin_dir(inst) / "dockerd"), "--config-file", str(inst.config_file),
           "--data-root", str(inst.data_root), "--exec-root", str(inst.exec_root),
           "--pidfile", str(inst.pidfile), "-H", inst.host,
           f"--bridge={inst.bridge}", "--iptables=false", "--ip6tables=false"]
    env = {"PATH": f"{bin_dir(inst)}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8"}
    _say(f"starting dockerd {' '.join(cmd[1:])} (log: {inst.log})")
    with open(inst.log, "ab") as log:
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, cwd="/", start_new_session=True, close_fds=True)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if ping(inst) is not None:
            print(f"DOCKER_HOST={inst.host}")
            return
        time.sleep(0.5)
    tail = inst.log.read_text(errors="replace").splitlines()[-15:]
    raise ToolError(f"dockerd did not answer on {inst.socket} within {wait_seconds:.0f} s; "
                    f"last lines of {inst.log}:\n" + "\n".join(tail))


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target.startswith(prefix) or target == str(path):
            found.append(target)
    return sorted(found, key=len, reverse=True)


def stop(inst: Instance, purge: bool = False, wait_seconds: float = 60.0) -> None:
    """Stop dockerd (its containers and containerd stop with it), drop the bridge and rules."""
    _require_root()
    pid = _pid(inst)
    if pid is not None:
        _say(f"stopping dockerd (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and _pid(inst) == pid:
            time.sleep(0.3)
        if _pid(inst) == pid:
            _say("dockerd did not stop in time: SIGKILL")
            os.kill(pid, signal.SIGKILL)
            time.sleep(1)
    _rules_remove(inst)
    if _ip("link", "show", inst.bridge, check=False).returncode == 0:
        _ip("link", "del", inst.bridge, check=False)
    if purge:
        for path in (inst.exec_root, inst.data_root):
            for target in _mounts_below(path):
                subprocess.run(["umount", "-l", target], capture_output=True)
        shutil.rmtree(inst.run_dir, ignore_errors=True)
        shutil.rmtree(inst.data_root, ignore_errors=True)
        inst.log.unlink(missing_ok=True)
        _say(f"removed {inst.data_root} and {inst.run_dir} (the unpacked engine stays in {inst.home})")
    _say("stopped")


def status(inst: Instance) -> int:
    """Print whether it runs, its version, builder and image store; exit 0 when it answers."""
    headers = ping(inst)
    if headers is None:
        print(f"not running (socket {inst.socket})")
        return 1
    _, _, body = api(inst.socket, "/version")
    version = json.loads(body)
    _, _, body = api(inst.socket, "/info")
    info = json.loads(body)
    store = next((v for k, v in info.get("DriverStatus") or [] if k == "driver-type"), info.get("Driver"))
    builder = "BuildKit" if headers.get("builder-version") == "2" else "classic"
    print(f"running: pid {_pid(inst)}, Docker {version.get('Version')} (API {version.get('ApiVersion')}), "
          f"default builder {builder}, image store {store}, bridge {inst.bridge}, {inst.host}")
    return 0


def env_lines(inst: Instance) -> list[str]:
    """The ``export`` lines for a shell (``eval "$(... env)"``) to use this engine."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return [f"export DOCKER_HOST={inst.host}",
            f"export DOCKER_CONFIG={docker_config(inst)}",
            f"export PATH={cli_dir(inst)}:{path}"]


def _images(sock: str, reference: str) -> dict[str, tuple]:
    """tag -> (created, layer diff IDs) of the images matching ``reference`` at ``sock``.

    Not the image ID: with the containerd store that is the manifest's digest, with the
    classic store the config's, so one image has two IDs; its layers are the same.
    """
    query = "/images/json?filters=" + urllib.request.quote(json.dumps({"reference": [reference]}))
    status_code, _, body = api(sock, query, timeout=30)
    if status_code != 200:
        raise ToolError(f"listing images on {sock} failed: HTTP {status_code}")
    found = {}
    for tag in sorted({t for image in json.loads(body) for t in image.get("RepoTags") or []}):
        if tag == "<none>:<none>":
            continue
        code, _, raw = api(sock, f"/images/{urllib.request.quote(tag, safe='')}/json", timeout=30)
        if code == 200:
            info = json.loads(raw)
            found[tag] = (info.get("Created"), tuple((info.get("RootFS") or {}).get("Layers") or ()))
    return found


def copy_bases(inst: Instance, source: str = SYSTEM_SOCKET) -> None:
    """``docker save | docker load`` the stand-in bases from the system engine (skips copies)."""
    if ping(inst) is None:
        raise ToolError(f"the modern engine does not answer on {inst.socket}: run `start` first")
    if not Path(source).exists():
        raise ToolError(f"no system engine at {source} to copy the bases from")
    ensure_unpacked(inst)
    have = _images(source, BASES_REFERENCE)
    there = _images(str(inst.socket), BASES_REFERENCE)
    todo = sorted(tag for tag, identity in have.items() if there.get(tag) != identity)
    if not have:
        _say(f"the system engine has no {BASES_REFERENCE} images: nothing to copy")
        return
    if not todo:
        _say(f"all {len(have)} {BASES_REFERENCE} images are there already")
        return
    docker = str(cli_dir(inst) / "docker")
    started = time.monotonic()
    _say(f"copying {len(todo)} images: " + ", ".join(todo))
    env = dict(os.environ, DOCKER_CONFIG=str(docker_config(inst)))
    save = subprocess.Popen([docker, "-H", f"unix://{source}", "save", *todo],
                            stdout=subprocess.PIPE, env=env)
    load = subprocess.run([docker, "-H", inst.host, "load", "-q"], stdin=save.stdout,
                          capture_output=True, text=True, env=env)
    save.stdout.close()
    if save.wait() != 0 or load.returncode != 0:
        raise ToolError(f"docker save | docker load failed: {load.stderr.strip()[-400:]}")
    _say(f"copied {len(todo)} images in {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instance", default="default",
                        help="a separate engine (own folders, socket, bridge, ranges); tests use it")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("start", help="download, unpack and start it (idempotent)")
    p_stop = sub.add_parser("stop", help="stop it; remove its bridge and firewall rules")
    p_stop.add_argument("--purge", action="store_true", help="also remove its images and containers")
    sub.add_parser("status", help="is it running, which version, builder and image store")
    sub.add_parser("env", help="export lines for DOCKER_HOST, DOCKER_CONFIG (buildx) and PATH")
    sub.add_parser("copy-bases", help=f"copy {BASES_REFERENCE} images from the system engine")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", args.instance):
        print("error: --instance takes lower-case letters, digits and '-'", file=sys.stderr)
        return 2
    inst = Instance(args.instance)
    try:
        if args.command == "start":
            start(inst)
        elif args.command == "stop":
            stop(inst, purge=args.purge)
        elif args.command == "status":
            return status(inst)
        elif args.command == "env":
            print("\n".join(env_lines(inst)))
        elif args.command == "copy-bases":
            copy_bases(inst)
    except ToolError as exc:
        print(f"[modern-engine] error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"[modern-engine] error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"[modern-engine] error: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
