"""Base-image roles and the two profiles that fill them: ``upstream`` and ``offline``.

Every app Dockerfile names its base images through build arguments (the *roles*, e.g.
``ARG GOLANG_ALPINE_IMAGE=golang:<go>-alpine``, versions from versions.toml). A profile maps
each role of ``stagelab.catalogue`` to an image:

- ``upstream``: the official images (Docker Hub, gcr.io), pulled once;
- ``offline``: local stand-ins tagged ``stagelab-offline/...``, built by ``stagelab bases prepare``
  (see ``stagelab.bases`` and docs/bases.md);
- ``auto`` (the default): ``upstream`` when the registry answers within a few seconds,
  otherwise ``offline``. ``STAGELAB_PROFILE`` overrides.

Every notebook shows the active profile at the top (Setup cell) and every build records it.
"""
from __future__ import annotations

import html
import os
import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from . import catalogue as _catalogue
from .errors import StagelabError

PROFILE_ENV = "STAGELAB_PROFILE"
REGISTRY_URL_ENV = "STAGELAB_REGISTRY_URL"
DEFAULT_REGISTRY_URL = "https://registry-1.docker.io/v2/"
PROFILE_NAMES = ("upstream", "offline")
CHOICES = ("auto",) + PROFILE_NAMES
OFFLINE_PREFIX = _catalogue.OFFLINE_PREFIX


Role = _catalogue.Base   # one record per role: see stagelab.catalogue


def _by_arg() -> dict[str, Role]:
    return {r.arg: r for r in _catalogue.roles() if r.arg}


class UnknownProfile(StagelabError):
    """A profile name that is not auto, upstream or offline."""


class UnknownRole(StagelabError):
    """A build argument that is not one of the base-image roles."""


def role(arg: str) -> Role:
    """The role of a build argument (e.g. ``GOLANG_ALPINE_IMAGE``)."""
    found = _catalogue.by_arg(arg)
    if found is None:
        raise UnknownRole(
            f"{arg!r} is not a base-image role; roles are: {', '.join(_by_arg())}.",
            fix="name the base image through one of these build args (see docs/bases.md)",
        )
    return found


@dataclass(frozen=True)
class Profile:
    """A resolved profile: its name, why it was chosen, and role arg -> image."""

    name: str
    reason: str
    images: dict[str, str] = field(hash=False)

    def build_args(self) -> dict[str, str]:
        """The build args every build passes (only roles this profile can fill)."""
        return dict(self.images)

    def image(self, arg: str) -> str | None:
        """The image for a role, or None when this profile has none (ALPINE_IMAGE offline)."""
        role(arg)
        return self.images.get(arg)

    @property
    def unavailable(self) -> tuple[str, ...]:
        """Roles this profile cannot fill (lessons that need them are skipped)."""
        return tuple(r.arg for r in _catalogue.roles() if r.arg not in self.images)

    def as_text(self) -> str:
        lines = [f"Base-image profile: {self.name} ({self.reason})"]
        for r in _catalogue.roles():
            lines.append(f"  {r.arg:<24} {self.images.get(r.arg, '(none in this profile)')}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(r.arg)}</code></td>"
            f"<td><code>{html.escape(self.images.get(r.arg, '(none in this profile)'))}</code></td>"
            f"<td>{html.escape(r.title)}</td></tr>"
            for r in _catalogue.roles()
        )
        return (
            f"<div><b>Base-image profile: {html.escape(self.name)}</b> — {html.escape(self.reason)}"
            "<table><tr><th>role (build arg)</th><th>image</th><th>what</th></tr>"
            f"{rows}</table></div>"
        )


def _images(name: str) -> dict[str, str]:
    if name == "upstream":
        return {r.arg: r.upstream for r in _catalogue.roles()}
    return {r.arg: r.offline for r in _catalogue.roles() if r.offline}


def profile(name: str, reason: str | None = None) -> Profile:
    """The profile called ``name`` (``upstream`` or ``offline``), without any registry check."""
    key = _normalise(name)
    if key == "auto":
        return active_profile("auto")
    return Profile(key, reason or f"chosen explicitly ({key})", _images(key))


def _normalise(name: str) -> str:
    key = (name or "").strip().lower()
    if key not in CHOICES:
        raise UnknownProfile(
            f"Unknown base-image profile {name!r}: choose auto, upstream or offline.",
            fix=f"export {PROFILE_ENV}=auto   (or upstream / offline)",
        )
    return key


def registry_url() -> str:
    """The registry endpoint ``auto`` probes: ``STAGELAB_REGISTRY_URL`` or Docker Hub's /v2/."""
    return os.environ.get(REGISTRY_URL_ENV, "").strip() or DEFAULT_REGISTRY_URL


def probe_registry(url: str | None = None, timeout: float = 3.0) -> tuple[bool, str]:
    """(answers, detail): an HTTP 200 or 401 from ``url`` within ``timeout`` s counts as answering."""
    url = url or registry_url()
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "stagelab"})
    context = ssl.create_default_context()
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url} did not answer within {timeout:g} s ({reason})"
    if code in (200, 401):
        return True, f"{url} answered (HTTP {code})"
    return False, f"{url} answered HTTP {code}, not a registry's 200/401"


_probe_cache: dict[tuple[str, float], tuple[bool, str]] = {}
_probe_lock = threading.Lock()


def _cached_probe(timeout: float) -> tuple[bool, str]:
    key = (registry_url(), timeout)
    with _probe_lock:
        if key not in _probe_cache:
            _probe_cache[key] = probe_registry(key[0], timeout)
        return _probe_cache[key]


def registry_answers(timeout: float = 3.0) -> bool:
    """True when the registry answers within ``timeout`` s (cached per process; doctor, Setup cells)."""
    return _cached_probe(timeout)[0]


def clear_cache() -> None:
    """Forget the cached registry answer (tests, or after the network changed)."""
    with _probe_lock:
        _probe_cache.clear()


def active_profile(name: str | None = None, *, timeout: float = 3.0) -> Profile:
    """The profile to use: ``name``, else ``STAGELAB_PROFILE``, else ``auto`` (every notebook, every build).

    ``auto`` is ``upstream`` when the registry (``STAGELAB_REGISTRY_URL``, default Docker Hub)
    answers within ``timeout`` seconds, otherwise ``offline``; the answer is cached per process.
    """
    if isinstance(name, Profile):
        return name
    source = "asked for"
    if name is None:
        env = os.environ.get(PROFILE_ENV, "").strip()
        if env:
            name, source = env, f"{PROFILE_ENV}={env}"
        else:
            name, source = "auto", "default"
    key = _normalise(name)
    if key != "auto":
        reason = source if source != "asked for" else f"asked for {key}"
        return Profile(key, reason, _images(key))
    answers, detail = _cached_probe(timeout)
    chosen = "upstream" if answers else "offline"
    return Profile(chosen, f"auto: {detail}", _images(chosen))
