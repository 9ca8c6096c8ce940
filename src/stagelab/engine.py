"""Connect to the Docker engine, diagnose it, and (only when asked) bring one up.

Used by every notebook's Setup cell (through ``stagelab.notebook``), by ``stagelab doctor``
and by ``make lab`` / ``make test``.
"""
from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import DockerException

from .errors import EngineTooOld, EngineUnavailable, StagelabError

MIN_API = "1.41"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
DOCKERD_LOG = Path("/var/log/stagelab/dockerd.log")
FIX_HINT = (
    "start Docker Desktop / run `sudo systemctl start docker` / "
    "as root on Debian/Ubuntu `make lab` or `stagelab doctor --fix` installs and starts one"
)
NO_INSTALL_ENV = "STAGELAB_NO_INSTALL"


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def engine_address() -> str:
    """The address the lab talks to: ``DOCKER_HOST``, the current docker context, or the default socket."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    if not Path("/var/run/docker.sock").exists():
        try:
            from docker.context import ContextAPI

            ctx = ContextAPI.get_current_context()
            host = ctx.Host if ctx is not None else None
            if host:
                return host
        except Exception:
            pass
    return DEFAULT_SOCKET


def transport(address: str) -> str:
    """How the lab reaches the engine, for doctor: local socket, SSH, TCP with or without TLS."""
    if address.startswith(("unix://", "npipe://")):
        return "local socket"
    if address.startswith("ssh://"):
        return "remote over SSH (your ssh client and keys)"
    if address.startswith(("tcp://", "https://", "http://")):
        if os.environ.get("DOCKER_TLS_VERIFY") or address.startswith("https://"):
            return f"remote over TCP with TLS (certificates in {os.environ.get('DOCKER_CERT_PATH') or '~/.docker'})"
        return "remote over TCP WITHOUT TLS"
    return "unknown transport"


def _connect(address: str, timeout: int = 120) -> docker.DockerClient:
    # ssh:// through the system ssh client (no paramiko needed; ~/.ssh/config applies), whether
    # the address came from DOCKER_HOST or from a docker context
    kwargs: dict = {"timeout": timeout, "use_ssh_client": address.startswith("ssh://")}
    if os.environ.get("DOCKER_HOST"):
        return docker.from_env(**kwargs)      # also honours DOCKER_TLS_VERIFY / DOCKER_CERT_PATH
    return docker.DockerClient(base_url=address, **kwargs)


def check_api(api_version: str, engine_version: str = "?") -> None:
    """Raise ``EngineTooOld`` when the engine's API is older than ``MIN_API``."""
    if _version_tuple(api_version) < _version_tuple(MIN_API):
        raise EngineTooOld(
            f"Docker engine {engine_version} speaks API {api_version}; the lab needs API "
            f"{MIN_API} or newer (Docker Engine 20.10+ or a current Docker Desktop).",
            fix="upgrade Docker (https://docs.docker.com/engine/install/) and re-run `stagelab doctor`",
        )


def connect(timeout: int = 120) -> docker.DockerClient:
    """Connect, ping and check the API version; raise one clear error if that fails."""
    address = engine_address()
    try:
        client = _connect(address, timeout=timeout)
        client.ping()
        version = client.version()
    except (DockerException, OSError) as exc:
        raise EngineUnavailable(
            f"Docker engine not reachable at {address} ({_reason(exc)}); {FIX_HINT}."
        ) from None
    check_api(version.get("ApiVersion", "0"), version.get("Version", "?"))
    return client


@functools.lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    """A connected, checked client, shared by the whole process (all notebooks)."""
    return connect()


def _reason(exc: BaseException) -> str:
    """The one useful phrase of a connection error (refused, missing socket, permission)."""
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("No such file or directory", "no socket there"),
        ("FileNotFoundError", "no socket there"),
        ("Permission denied", "permission denied: add yourself to the docker group"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
    ):
        if needle in text:
            return reason
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def _cli_version(path: str) -> str | None:
    try:
        out = subprocess.run(
            [path, "version", "--format", "{{.Client.Version}}"],
            capture_output=True, text=True, timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = out.stdout.strip()
    return version or None


def _has_buildx(path: str) -> bool:
    try:
        out = subprocess.run([path, "buildx", "version"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


@functools.lru_cache(maxsize=1)
def buildkit_cli_found() -> tuple[str, bool] | None:
    """(docker CLI path, whether it has buildx) that can run BuildKit builds, or None; searched once.

    A client with the buildx plugin works; so does a classic client older than 23.0,
    which has BuildKit built in. ``STAGELAB_DOCKER_CLI`` overrides the search. Used by
    :func:`buildkit_cli` and ``stagelab.builders`` (which command a BuildKit build runs).
    """
    override = os.environ.get("STAGELAB_DOCKER_CLI")
    candidates: list[str] = [override] if override else []
    for directory in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/usr/local/bin"]:
        path = os.path.join(directory, "docker")
        if os.access(path, os.X_OK) and path not in candidates:
            candidates.append(path)
    for path in candidates:
        if _has_buildx(path):
            return path, True
        version = _cli_version(path)
        if version and _version_tuple(version)[:1] and _version_tuple(version)[0] < 23:
            return path, False
    return None


def buildkit_cli() -> str | None:
    """A docker CLI that can run BuildKit builds (doctor, notebooks 04, 06, 09), or None."""
    found = buildkit_cli_found()
    return found[0] if found else None


@dataclass
class Diagnosis:
    """What ``stagelab doctor`` found (notebook 00 shows it too)."""

    address: str
    reachable: bool
    version: str | None = None
    api_version: str | None = None
    os_arch: str | None = None
    storage_driver: str | None = None
    root_dir: str | None = None
    free_bytes: int | None = None
    transport: str = ""
    builder: str = "classic (Docker SDK)"
    buildkit_cli: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (message, fix)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems


NEEDED_BYTES = 8 * 10**9  # bases (~2.5 GB offline) + every lab image + build cache


def diagnose() -> Diagnosis:
    """Probe the engine without raising: reachability, versions, builder, free disk."""
    address = engine_address()
    diag = Diagnosis(address=address, reachable=False, transport=transport(address))
    if diag.transport == "remote over TCP WITHOUT TLS" and not address.startswith("tcp://127."):
        diag.warnings.append((
            f"{address} is a plain TCP engine: anyone who reaches that port controls the engine.",
            "use DOCKER_HOST=ssh://user@host, or TCP with TLS (port 2376, DOCKER_TLS_VERIFY=1)",
        ))
    try:
        cli = connect(timeout=20)
    except StagelabError as exc:
        diag.problems.append((exc.message, exc.fix or ""))
        if isinstance(exc, EngineTooOld):
            diag.reachable = True
        return diag
    diag.reachable = True
    version = cli.version()
    info = cli.info()
    diag.version = version.get("Version")
    diag.api_version = version.get("ApiVersion")
    diag.os_arch = f"{version.get('Os')}/{version.get('Arch')}"
    diag.storage_driver = info.get("Driver")
    diag.root_dir = info.get("DockerRootDir")
    if diag.root_dir and Path(diag.root_dir).exists() and address.startswith("unix://"):
        diag.free_bytes = shutil.disk_usage(diag.root_dir).free
    diag.buildkit_cli = buildkit_cli()
    from .builders import describe

    diag.builder = describe(cli)  # the builder a build here uses, and why
    if diag.buildkit_cli is None:
        diag.warnings.append((
            "No docker CLI with BuildKit found: notebook 06's BuildKit comparison needs one.",
            "install the buildx plugin (Docker Desktop has it) or Debian's docker.io client",
        ))
    if diag.free_bytes is not None and diag.free_bytes < NEEDED_BYTES:
        diag.warnings.append((
            f"Only {diag.free_bytes / 1e9:.1f} GB free under {diag.root_dir}; "
            f"the lab needs about {NEEDED_BYTES / 1e9:.0f} GB (base images, lab images, build cache).",
            "free disk space, or `stagelab clean` to remove the lab's own images",
        ))
    return diag


# --- bringing up an engine (`make lab` / `make test` as root, `stagelab doctor --fix`) --------

def may_install() -> bool:
    """May the set-up install and start what is missing (engine, debootstrap)?

    Yes as root on Linux with apt-get (a Debian/Ubuntu machine, CI or not), unless
    ``STAGELAB_NO_INSTALL=1``. ``make lab`` / ``make test`` (through ``stagelab doctor``) and
    ``stagelab bases prepare`` ask this; elsewhere they print the one-line fix instead.
    """
    if os.environ.get(NO_INSTALL_ENV) == "1":
        return False
    if platform.system() != "Linux" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    return shutil.which("apt-get") is not None


def _say(msg: str) -> None:
    print(f"[stagelab] {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str]) -> None:
    _say("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def start_engine(wait_seconds: float = 90.0) -> docker.DockerClient:
    """Install (apt) and start ``dockerd`` when none answers; never touches one that answers.

    Only for Linux machines where we are root (CI, a fresh VM); anywhere else it raises
    with the manual fix.
    """
    try:
        return connect(timeout=20)
    except EngineTooOld:
        raise
    except EngineUnavailable:
        pass
    if os.environ.get("DOCKER_HOST"):
        raise EngineUnavailable(
            f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer; the lab will not start "
            "a local engine in its place.",
            fix="check the remote engine, or unset DOCKER_HOST",
        )
    if platform.system() != "Linux" or os.geteuid() != 0:
        raise EngineUnavailable(
            f"Docker engine not reachable at {engine_address()}; {FIX_HINT}.",
            fix="start Docker yourself (`--fix` installs an engine only on Linux as root)",
        )
    if shutil.which("dockerd") is None:
        if shutil.which("apt-get") is None:
            raise EngineUnavailable(
                "No dockerd and no apt-get on this machine.",
                fix="install Docker Engine: https://docs.docker.com/engine/install/",
            )
        if not may_install():
            raise EngineUnavailable(
                f"No dockerd on this machine, and {NO_INSTALL_ENV}=1 forbids installing one.",
                fix=f"apt-get install -y docker.io yourself, or unset {NO_INSTALL_ENV}",
            )
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _say("installing docker.io with apt-get (once) ...")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker.io"], check=True, env=env)
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        _say("starting the docker service with systemctl ...")
        subprocess.run(["systemctl", "start", "docker"], check=False)
        return wait_for_engine(wait_seconds)
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    _say(f"starting dockerd in the background (log: {DOCKERD_LOG}) ...")
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(
            ["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return wait_for_engine(wait_seconds)


def wait_for_engine(wait_seconds: float, log: Path = DOCKERD_LOG) -> docker.DockerClient:
    """Connect as soon as the engine of DOCKER_HOST answers (``start_engine``, the bases benchmark).

    On timeout, one error quoting the last lines of the daemon's ``log``.
    """
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            cli = connect(timeout=10)
            _say("engine answers.")
            return cli
        except EngineUnavailable:
            time.sleep(1.0)
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
    raise EngineUnavailable(
        f"dockerd did not answer within {wait_seconds:.0f} s. Last lines of {log}:\n"
        + "\n".join(tail),
        fix=f"read {log}; then `stagelab doctor --fix` again",
    )
