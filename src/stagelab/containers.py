"""Run a lab image as a container and talk to it through a port on 127.0.0.1.

Notebooks 01-05 start the variants they built (``with run(tag, port=8080) as c: c.get("/")``),
the exercises probe learners' images, and the integration tests check start-up, endpoints
and SIGTERM. Rules from DESIGN.md: ports are published on 127.0.0.1 only, every wait and
request loop is bounded, and the container is always removed -- also when starting fails.
"""
from __future__ import annotations

import io
import json
import re
import socket
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from .errors import StagelabError
from .naming import lab_labels, resource_name

LOCALHOST = "127.0.0.1"
DEFAULT_HEALTH_PATH = "/healthz"
LOG_TAIL = 20


class ContainerError(StagelabError):
    """A lab container could not be started, did not become healthy, or could not be reached."""

    def __init__(self, message: str, fix: str | None = None, *, exit_code: int | None = None,
                 state_error: str = "", logs: str = "") -> None:
        super().__init__(message, fix)
        self.exit_code = exit_code
        self.state_error = state_error
        self.logs = logs


class ContainerExited(ContainerError):
    """The container stopped before it answered (e.g. scratch-cgo: its loader is missing)."""


class ContainerNotHealthy(ContainerError):
    """The container kept running but did not answer its health path in time."""


class PortInUse(StagelabError):
    """A fixed host port is already taken on 127.0.0.1."""


class Response(NamedTuple):
    """What ``RunningContainer.get`` returns; unpacks as ``status, body = c.get("/")``."""

    status: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it is not JSON)."""
        return json.loads(self.body)


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """True when nothing listens on ``host:port`` (a bind test, no traffic sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def files_tar(files: Mapping[str, bytes], *, uid: int = 65532, gid: int = 65532) -> bytes:
    """A tar of ``files`` (path relative to / -> bytes) with their folders, for ``put_archive``.

    Owned by ``uid:gid`` (the lab images' non-root user), mode 0644: readable by the server.
    """
    now = int(time.time())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in sorted({str(PurePosixPath(name).parent) for name in files} - {"."}):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, gid, now
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o644, uid, gid, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _engine_is_local() -> bool:
    """True when the engine runs on this machine (a unix socket or named pipe)."""
    from .engine import engine_address

    return engine_address().startswith(("unix://", "npipe://"))


def _port_in_use(host_port: int, detail: str = "") -> PortInUse:
    extra = f" ({detail})" if detail else ""
    return PortInUse(
        f"Port {host_port} on {LOCALHOST} is already in use{extra}, so the container cannot publish on it.",
        f"pass another host port (host_port={host_port + 1}) or host_port=None for a free one; "
        f"see what holds it: `docker ps --filter publish={host_port}` / `ss -ltnp 'sport = :{host_port}'`; "
        "stop old lab containers: `stagelab clean`",
    )


class RunningContainer:
    """A container of ``image`` with ``port`` published on 127.0.0.1 (context manager).

    ``with RunningContainer(image, port=8080) as c:`` creates, starts and (if ``wait``) waits
    until ``health_path`` answers; on leaving, the container is removed. ``host_port=None``
    lets the engine pick a free port; a fixed ``host_port`` that is taken raises PortInUse.
    """

    def __init__(
        self,
        image: str,
        *,
        port: int | None = None,
        host_port: int | None = None,
        command: Sequence[str] | str | None = None,
        entrypoint: Sequence[str] | str | None = None,
        environment: Mapping[str, str] | None = None,
        user: str | None = None,
        volumes: Mapping[str, Mapping[str, str]] | None = None,
        network: str | None = None,
        aliases: Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        purpose: str = "run",
        health_path: str | None = DEFAULT_HEALTH_PATH,
        wait: bool = True,
        timeout: float = 30.0,
        files: Mapping[str, bytes] | None = None,
        client: Any = None,
    ) -> None:
        self.image = image
        self.files = dict(files or {})     # path (relative to /) -> bytes, copied in before start
        self.port = port
        self.requested_host_port = host_port
        self.command = command
        self.entrypoint = entrypoint
        self.environment = dict(environment or {})
        self.user = user
        self.volumes = volumes
        self.network = network
        self.aliases = list(aliases or [])
        self.extra_labels = dict(labels or {})
        self.purpose = purpose
        self.health_path = health_path
        self.wait_on_start = wait
        self.timeout = timeout
        self._client = client
        self.container: Any = None
        self.name: str | None = None
        self.host_port: int | None = None
        self.started_at: float | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from .engine import client as engine_client

            self._client = engine_client()
        return self._client

    @property
    def id(self) -> str | None:
        return self.container.id if self.container is not None else None

    def __enter__(self) -> RunningContainer:
        if self.container is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        where = f" on {self.url()}" if self.host_port else ""
        return f"<RunningContainer {self.name or '(not started)'} of {self.image}{where}>"

    def start(self) -> RunningContainer:
        """Create and start the container; wait for ``health_path`` when asked. Removes it on failure."""
        import docker.errors

        if self.container is not None:
            return self
        # A bind test here says something only when the engine publishes on this machine; a
        # remote engine's refusal ("port is already allocated") is turned into PortInUse below.
        if self.port is not None and self.requested_host_port is not None and _engine_is_local() \
                and not port_is_free(self.requested_host_port):
            raise _port_in_use(self.requested_host_port)
        self.name = resource_name(self.purpose)
        labels = {**lab_labels(), **self.extra_labels}
        ports = None
        if self.port is not None:
            ports = {f"{self.port}/tcp": (LOCALHOST, self.requested_host_port)}
        kwargs: dict[str, Any] = {}
        if self.network:
            kwargs["network"] = self.network
            if self.aliases:
                kwargs["networking_config"] = {
                    self.network: self.client.api.create_endpoint_config(aliases=self.aliases)
                }
        try:
            self.container = self.client.containers.create(
                self.image, command=self.command, entrypoint=self.entrypoint, name=self.name,
                labels=labels, ports=ports, environment=self.environment or None, user=self.user,
                volumes=dict(self.volumes) if self.volumes else None, detach=True, **kwargs,
            )
        except docker.errors.ImageNotFound as exc:
            raise ContainerError(
                f"There is no image {self.image!r} on this engine.",
                "build it first, e.g. stagelab.build.build(app, variant) / `stagelab build APP VARIANT`",
            ) from exc
        try:
            if self.files:
                self.container.put_archive("/", files_tar(self.files))
            try:
                self.container.start()
            except docker.errors.APIError as exc:
                raise self._start_error(exc) from exc
            self.started_at = time.monotonic()
            self.container.reload()
            if self.port is not None:
                self.host_port = self._published_port()
            if self.wait_on_start:
                self.wait_healthy(self.timeout)
        except BaseException:
            self.remove()
            raise
        return self

    def _start_error(self, exc: Exception) -> StagelabError:
        text = str(exc)
        lowered = text.lower()
        if self.requested_host_port is not None and (
            "port is already allocated" in lowered or "address already in use" in lowered
        ):
            return _port_in_use(self.requested_host_port, "the engine refused to bind it")
        return ContainerExited(
            f"The container of {self.image} could not start: {_explain(getattr(exc, 'explanation', None) or text)}",
            _start_fix(text),
            exit_code=None, state_error=text, logs=self._safe_logs(),
        )

    def _published_port(self) -> int | None:
        deadline = time.monotonic() + 5.0
        while True:
            ports = (self.container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
            bindings = ports.get(f"{self.port}/tcp") or []
            for binding in bindings:
                if binding.get("HostIp") in (LOCALHOST, "") and binding.get("HostPort"):
                    return int(binding["HostPort"])
            state = self.container.attrs.get("State") or {}
            if state.get("Status") != "running" or time.monotonic() > deadline:
                return None  # an exited container has no bindings; wait_healthy explains why
            time.sleep(0.1)
            self.container.reload()

    def remove(self) -> None:
        """Remove the container (force: stops it first). Safe to call more than once."""
        import docker.errors

        if self.container is None:
            return
        try:
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise
        finally:
            self.container = None

    # --- state --------------------------------------------------------------------------------

    def _require(self) -> Any:
        if self.container is None:
            raise ContainerError(f"The container of {self.image} is not running (not started or removed).",
                                 "use it inside `with run(image, ...) as c:`")
        return self.container

    def state(self) -> dict[str, Any]:
        """The engine's State of the container: Status, Running, ExitCode, Error, Health ..."""
        container = self._require()
        container.reload()
        return dict(container.attrs.get("State") or {})

    def status(self) -> str:
        """``created`` | ``running`` | ``exited`` ..."""
        return str(self.state().get("Status", "unknown"))

    def health(self) -> str | None:
        """The HEALTHCHECK status (``starting`` | ``healthy`` | ``unhealthy``), None without one."""
        health = self.state().get("Health")
        return health.get("Status") if health else None

    def logs(self, tail: int | str = "all") -> str:
        """The container's stdout and stderr so far."""
        return self._require().logs(stdout=True, stderr=True, tail=tail).decode("utf-8", "replace")

    def _safe_logs(self, tail: int = LOG_TAIL) -> str:
        try:
            return self.logs(tail=tail)
        except Exception:
            return ""

    # --- talking to it -----------------------------------------------------------------------

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:<host port><path>``."""
        if self.host_port is None:
            raise ContainerError(
                f"The container of {self.image} has no port published on {LOCALHOST}.",
                "run it with port=<container port>, e.g. run(image, port=8080)",
            )
        return f"http://{LOCALHOST}:{self.host_port}/{path.lstrip('/')}"

    def get(self, path: str = "/", timeout: float = 5.0) -> Response:
        """One GET of ``path``; any HTTP status is returned, not raised. Unreachable -> ContainerError."""
        url = self.url(path)
        request = urllib.request.Request(url, headers={"User-Agent": "stagelab"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (127.0.0.1 only)
                return Response(resp.status, resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read().decode("utf-8", "replace"))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ContainerError(
                f"No answer from {url}: {reason}.",
                "check the container: c.status(), c.logs()",
                logs=self._safe_logs(),
            ) from exc

    def wait_healthy(self, timeout: float = 30.0, path: str | None = None, interval: float = 0.2) -> float:
        """Wait until the server answers ``path`` (default: ``health_path``) with 2xx; bounded.

        Without a published port it waits for the HEALTHCHECK status (or just "running").
        Returns the seconds waited. Raises ContainerExited if the container stops first,
        ContainerNotHealthy after ``timeout`` seconds.
        """
        path = path or self.health_path
        start = time.monotonic()
        deadline = start + timeout
        last = "no answer yet"
        while True:
            state = self.state()
            if state.get("Status") in ("exited", "dead"):
                raise self._exited_error(state)
            if self.host_port is not None and path:
                try:
                    resp = self.get(path, timeout=min(2.0, max(0.2, deadline - time.monotonic())))
                    if resp.ok:
                        return time.monotonic() - start
                    last = f"HTTP {resp.status}"
                except ContainerError as exc:
                    last = exc.message
            else:
                health = (state.get("Health") or {}).get("Status")
                if state.get("Status") == "running" and health in (None, "healthy"):
                    return time.monotonic() - start
                last = f"health {health}"
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        raise ContainerNotHealthy(
            f"The container of {self.image} did not become healthy within {timeout:g} s ({last}).",
            "look at its output: c.logs(); is the app listening on the container port given to run()?",
            logs=self._safe_logs(),
        )

    def _exited_error(self, state: Mapping[str, Any]) -> ContainerExited:
        code = state.get("ExitCode")
        error = str(state.get("Error") or "")
        logs = self._safe_logs()
        reason = error or (logs.strip().splitlines()[-1] if logs.strip() else "no output")
        return ContainerExited(
            f"The container of {self.image} exited with code {code} before it answered: {_explain(reason)}",
            _start_fix(reason + "\n" + logs),
            exit_code=code, state_error=error, logs=logs,
        )

    def wait(self, timeout: float = 60.0) -> int:
        """Wait (bounded) for the container to exit; returns its exit code."""
        import requests

        try:
            result = self._require().wait(timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            raise ContainerError(
                f"The container of {self.image} was still running after {timeout:g} s.",
                "give wait() a longer timeout, or stop it: c.stop()",
                logs=self._safe_logs(),
            ) from exc
        return int(result.get("StatusCode", -1))

    def stop(self, timeout: int = 10) -> float:
        """``docker stop``: SIGTERM, then SIGKILL after ``timeout`` s. Returns the seconds it took."""
        container = self._require()
        start = time.monotonic()
        container.stop(timeout=timeout)
        return time.monotonic() - start

    def exit_code(self) -> int | None:
        """The exit code once the container has stopped, else None."""
        state = self.state()
        return None if state.get("Running") else state.get("ExitCode")


def run(image: str, *, port: int | None = None, **kwargs: Any) -> RunningContainer:
    """Start ``image`` (port published on 127.0.0.1) and wait until it answers; returns the container.

    Use it as ``with run(tag, port=8080) as c: status, body = c.get("/")`` so it is removed
    afterwards (notebooks 01-05, exercises). Keyword arguments: see ``RunningContainer``.
    If starting fails the container is removed before the error is raised.
    """
    return RunningContainer(image, port=port, **kwargs).start()


# runc's messages: the program is missing -> 'exec: "/x": stat /x: no such file or directory'
# (the start itself fails); the program is there but its ELF interpreter (dynamic loader) is
# not -> the kernel's execve fails and the container prints 'exec /x: no such file or directory'.
_MISSING_PROGRAM = re.compile(r'exec: "?([^":]+)"?: stat [^:]+: no such file or directory')
_MISSING_LOADER = re.compile(r"exec (/\S+): no such file or directory")


def _explain(reason: str) -> str:
    reason = reason.strip()
    if _MISSING_PROGRAM.search(reason):
        return f"{reason} -- the program named by CMD/ENTRYPOINT is not in the image"
    m = _MISSING_LOADER.search(reason)
    if m:
        return (f"{reason} -- {m.group(1)} is there, but a file it needs to start is not: a "
                "dynamically linked binary needs its loader (glibc's: /lib64/ld-linux-x86-64.so.2 on x86-64, "
                "/lib/ld-linux-aarch64.so.1 on arm64) and libc, which scratch does not have")
    return reason


def _start_fix(text: str) -> str:
    if _MISSING_PROGRAM.search(text):
        return "COPY the program into the final stage (COPY --from=builder ...) or fix the path in CMD"
    if _MISSING_LOADER.search(text):
        return "build a static binary (CGO_ENABLED=0) or use a base with libc (distroless/base, debian-slim)"
    if "permission denied" in text.lower():
        return "check the file mode and USER: the program must be executable by the image's user"
    return "look at the container's output (c.logs()) and its image's CMD/ENTRYPOINT"
