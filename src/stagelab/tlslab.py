"""A local HTTPS server with a throw-away CA, for notebook 03's "no CA certificates" lesson.

``TLSLab(server_image)`` makes a throw-away certificate authority with ``trustme``, a
user-defined network the lab owns (lab labels, ``naming.resource_name``), and an HTTPS
server on it: the go-server image itself, started with ``TLS_CERT``/``TLS_KEY`` so it serves
``https://<hostname>:8443/``. App containers started with ``network=lab.network`` (see
``stagelab.containers.run``) can then ``/fetch`` that URL; nothing outside the lab's own
containers is ever contacted. The certificate files are copied into the server container
with ``put_archive`` (no bind mount, so it also works with a remote engine).

``with_ca_image(base, bundle, tag)`` builds ``FROM base`` + the CA bundle at
``/etc/ssl/certs/ca-certificates.crt``: the fix the notebook measures.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import StagelabError

CA_BUNDLE_PATH = "/etc/ssl/certs/ca-certificates.crt"

#: The Dockerfile ``with_ca_image`` builds (shown in notebook 03).
CA_DOCKERFILE = """\
# Built by stagelab.tlslab.with_ca_image (notebook 03): the image under test plus a CA bundle.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
"""


class TLSLabError(StagelabError):
    """The HTTPS lab server could not be set up (the message says which step)."""


class TLSLab:
    """Throw-away CA + HTTPS server on a lab network (context manager; removes everything on exit)."""

    def __init__(self, server_image: str, *, hostname: str = "tls.stagelab.test", port: int = 8443,
                 timeout: float = 20.0) -> None:
        self.server_image = server_image
        self.hostname = hostname
        self.port = port
        self.timeout = timeout
        self.ca: Any = None
        self.network: str | None = None
        self._network_obj: Any = None
        self._server: Any = None

    # --- set-up and tear-down --------------------------------------------------------------

    def __enter__(self) -> TLSLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> TLSLab:
        """Create the CA, the network and the HTTPS server; wait until it listens (bounded)."""
        import trustme

        from .containers import RunningContainer
        from .engine import client
        from .naming import lab_labels, resource_name

        if self._server is not None:
            return self
        self.ca = trustme.CA(organization_name="stagelab throw-away CA")
        cert = self.ca.issue_cert(self.hostname)
        try:
            self._network_obj = client().networks.create(resource_name("tls-net"), driver="bridge",
                                                          labels=lab_labels(purpose="tls-lab"))
            self.network = self._network_obj.name
            self._server = RunningContainer(
                self.server_image, purpose="tls-server", network=self.network, aliases=[self.hostname],
                environment={"ADDR": f":{self.port}", "TLS_CERT": "/tls/cert.pem", "TLS_KEY": "/tls/key.pem"},
                labels=lab_labels(purpose="tls-lab"), health_path=None, wait=False,
                files={"tls/cert.pem": cert.cert_chain_pems[0].bytes(), "tls/key.pem": cert.private_key_pem.bytes()},
            ).start()
            self._wait_listening()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_listening(self) -> None:
        """Until the server logs that it serves TLS (it is not published, so no HTTP probe)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._server.status() in ("exited", "dead"):
                raise TLSLabError(f"The HTTPS lab server ({self.server_image}) exited: {self._server.logs()[-500:]}",
                                  "check that the image is a go-server build (it needs -tls-cert support)")
            if '"tls":true' in self._server.logs():
                return
            time.sleep(0.2)
        raise TLSLabError(f"The HTTPS lab server did not start within {self.timeout:g} s.",
                          "look at `docker logs` of the stagelab-*-tls-server container")

    def close(self) -> None:
        """Remove the server container and the network (safe to call twice)."""
        import docker.errors

        if self._server is not None:
            self._server.remove()
            self._server = None
        if self._network_obj is not None:
            try:
                self._network_obj.remove()
            except docker.errors.NotFound:
                pass
            self._network_obj = None

    # --- what the notebook uses ------------------------------------------------------------

    def url(self, path: str = "/healthz") -> str:
        """``https://<hostname>:<port><path>``: reachable only from containers on ``network``."""
        return f"https://{self.hostname}:{self.port}/{path.lstrip('/')}"

    def fetch_path(self, path: str = "/healthz") -> str:
        """The app path that makes the app fetch ``url(path)``: ``/fetch?url=...``."""
        from urllib.parse import quote

        return "/fetch?url=" + quote(self.url(path), safe="")

    @property
    def ca_pem(self) -> bytes:
        """The throw-away CA's certificate (PEM)."""
        if self.ca is None:
            raise TLSLabError("The TLS lab is not started.", "use `with TLSLab(image) as tls:`")
        return self.ca.cert_pem.bytes()

    def bundle(self, public: bytes = b"") -> bytes:
        """A CA bundle: ``public`` (e.g. the builder's ca-certificates.crt) plus this lab's CA."""
        head = public if not public or public.endswith(b"\n") else public + b"\n"
        return head + self.ca_pem

    def __repr__(self) -> str:
        return f"<TLSLab {self.url('/')} on network {self.network or '(not started)'}>"


def with_ca_image(base_image: str, bundle: bytes, tag: str, *, progress: str | None = "auto") -> Any:
    """Build ``FROM base_image`` + ``bundle`` at /etc/ssl/certs/ca-certificates.crt (``CA_DOCKERFILE``)."""
    from .build import build_context
    from .naming import lab_labels

    with tempfile.TemporaryDirectory(prefix="stagelab-ca-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(CA_DOCKERFILE)
        (ctx / "ca-certificates.crt").write_bytes(bundle)
        return build_context(ctx, "Dockerfile", tag=tag, labels=lab_labels(purpose="tls-lab"),
                             build_args={"BASE_IMAGE": base_image}, progress=progress)
