"""Workshop planning: how much engine disk one learner's namespace needs (``stagelab doctor``).

A room of learners shares one engine, each with a ``STAGELAB_NAMESPACE``. The base images
and the build cache are shared; what each learner adds is the layers of the lab images
their notebooks create. ``namespace_usage()`` measures that from the images on the engine:
every tagged image carrying the lab label and the namespace label, each distinct layer
counted once (by its chain id, as the engine stores it), minus the layers that also belong
to an image outside the lab (the base images, which every learner shares). Untagged older
builds of the namespace (a rebuild moved their tag) are reported apart.

The largest measurement per namespace and engine is kept in ``<cache>/workshop-usage.json``
so doctor can still tell after ``stagelab clean``; before any run it says "not measured yet".
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .naming import LAB_LABEL, NAMESPACE_LABEL, cache_dir, namespace
from .units import human_size

USAGE_FILE = "workshop-usage.json"
NOT_MEASURED = "not measured yet: run the notebooks once (`make test` or `make report`), then `stagelab doctor`"


@dataclass
class NamespaceUsage:
    """Disk one namespace's lab images take beyond what all learners share."""

    namespace: str
    images: int              # lab images carrying the namespace label
    own_bytes: int           # their distinct layers, base-image layers excluded: the need per learner
    shared_bytes: int        # their layers that base images also hold (shared by every learner)
    measured_at: str         # ISO time of the measurement
    engine: str = ""         # the engine address it was measured on
    live: bool = True        # False: read back from the saved record (no lab image now)
    untagged_images: int = 0  # older builds whose tag moved to a rebuild (not part of a run's need)
    untagged_bytes: int = 0   # what those hold beyond the tagged images and the bases

    def as_text(self) -> str:
        """One line for doctor: the need per learner and how it was measured."""
        how = (f"{self.images} lab image(s) of namespace '{self.namespace}', each layer counted once, "
               f"shared base layers ({human_size(self.shared_bytes)}) excluded")
        when = "measured now" if self.live else f"the largest measured, {self.measured_at}"
        text = f"{human_size(self.own_bytes)} per learner ({how}; {when})"
        if self.live and self.untagged_images:
            text += (f"; {self.untagged_images} untagged older build(s) of this namespace hold "
                     f"{human_size(self.untagged_bytes)} more (`stagelab clean` removes them)")
        return text


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain id of each layer (the engine's key for a layer on top of its parents)."""
    chains: list[str] = []
    for diff in diff_ids:
        if not chains:
            chains.append(diff)
        else:
            chains.append("sha256:" + hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest())
    return chains


def distinct_layer_bytes(images: Iterable[Sequence[tuple[str, int]]], exclude: set[str] = frozenset()) -> tuple[int, int]:
    """Bytes of the distinct layers of ``images`` (each a list of (diff id, size), bottom first).

    Returns ``(own, shared)``: layers whose chain id is in ``exclude`` count as shared.
    """
    seen: set[str] = set()
    own = shared = 0
    for layers in images:
        chains = chain_ids([diff for diff, _ in layers])
        for chain, (_, size) in zip(chains, layers):
            if chain in seen:
                continue
            seen.add(chain)
            if chain in exclude:
                shared += size
            else:
                own += size
    return own, shared


def _layers_of(ref: str, client: Any) -> list[tuple[str, int]]:
    from .inspect import inspect

    report = inspect(ref, contents=False, client=client)
    return [(layer.digest, int(layer.size or 0)) for layer in report.layers]


def _outside_lab_chains(client: Any) -> set[str]:
    """Chain ids of every layer of the tagged images that are not lab images (bases and others)."""
    chains: set[str] = set()
    for image in client.images.list():
        if (image.labels or {}).get(LAB_LABEL) == "true":
            continue
        diff_ids = ((image.attrs.get("RootFS") or {}).get("Layers")) or []
        if not diff_ids:
            try:
                diff_ids = (client.api.inspect_image(image.id).get("RootFS") or {}).get("Layers") or []
            except Exception:
                continue
        chains.update(chain_ids(diff_ids))
    return chains


def namespace_usage(ns: str | None = None, *, client: Any = None) -> NamespaceUsage | None:
    """Measure the lab images of namespace ``ns`` (default: the current one); None when it has none."""
    from . import engine

    ns = ns or namespace()
    client = client or engine.client()
    images = client.images.list(filters={"label": [f"{LAB_LABEL}=true", f"{NAMESPACE_LABEL}={ns}"]})
    images = [img for img in images if (img.labels or {}).get(NAMESPACE_LABEL) == ns]
    tagged: list[list[tuple[str, int]]] = []
    untagged: list[list[tuple[str, int]]] = []
    for image in images:
        try:
            layers = _layers_of(image.id, client)
        except Exception:  # removed meanwhile (another learner's clean, a rebuild)
            continue
        (tagged if image.tags else untagged).append(layers)
    if not tagged:
        return None
    bases = _outside_lab_chains(client)
    own, shared = distinct_layer_bytes(tagged, bases)
    tagged_chains = {c for layers in tagged for c in chain_ids([d for d, _ in layers])}
    extra, _ = distinct_layer_bytes(untagged, bases | tagged_chains)
    return NamespaceUsage(namespace=ns, images=len(tagged), own_bytes=own, shared_bytes=shared,
                          measured_at=time.strftime("%Y-%m-%d %H:%M"), engine=engine.engine_address(),
                          untagged_images=len(untagged), untagged_bytes=extra)


# --- the saved record (the largest measurement: a full run creates the most images) ----------

def _usage_path() -> Path:
    return cache_dir() / USAGE_FILE


def _key(ns: str, engine_address: str) -> str:
    return f"{engine_address} {ns}"


def load_saved(ns: str, engine_address: str, path: Path | None = None) -> NamespaceUsage | None:
    """The saved largest measurement of ``ns`` on that engine, or None."""
    path = path or _usage_path()
    try:
        record = json.loads(path.read_text()).get(_key(ns, engine_address))
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(record, dict):
        return None
    try:
        return NamespaceUsage(**{**record, "live": False})
    except TypeError:
        return None


def save_if_larger(usage: NamespaceUsage, path: Path | None = None) -> bool:
    """Keep ``usage`` when it is the largest seen for its namespace and engine; True if saved."""
    path = path or _usage_path()
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    key = _key(usage.namespace, usage.engine)
    old = data.get(key)
    if isinstance(old, dict) and int(old.get("own_bytes", 0)) >= usage.own_bytes:
        return False
    record = asdict(usage)
    for transient in ("live", "untagged_images", "untagged_bytes"):
        record.pop(transient, None)
    data[key] = record
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True))
    except OSError:
        return False
    return True


def per_learner_need(ns: str | None = None, *, client: Any = None) -> NamespaceUsage | None:
    """What doctor shows: the largest of the live measurement and the saved one (None: never measured)."""
    from . import engine

    ns = ns or namespace()
    address = engine.engine_address()
    live = namespace_usage(ns, client=client)
    saved = load_saved(ns, address)
    if live is not None:
        save_if_larger(live)
        if saved is not None and saved.own_bytes > live.own_bytes:
            return saved
        return live
    return saved


def describe_need(usage: NamespaceUsage | None) -> str:
    """Doctor's line for the need per learner."""
    return usage.as_text() if usage is not None else NOT_MEASURED


# --- free disk of a remote engine --------------------------------------------------------------

def df_images() -> tuple[str, ...]:
    """Small images with ``df`` that may already be on the engine: the Debian slim stand-in and
    upstream image, Alpine (versions from versions.toml through the catalogue), busybox."""
    from .catalogue import by_arg

    debian, alpine = by_arg("DEBIAN_SLIM_IMAGE"), by_arg("ALPINE_IMAGE")
    return tuple(i for i in (debian.offline, debian.upstream, alpine.upstream, "busybox:latest") if i)


def parse_df(output: str) -> int | None:
    """Available bytes from ``df -P -k /`` output (POSIX format, 1024-byte blocks)."""
    lines = [line.split() for line in output.strip().splitlines() if line.strip()]
    if len(lines) < 2 or len(lines[-1]) < 4 or not lines[-1][3].isdigit():
        return None
    return int(lines[-1][3]) * 1024


def engine_free_bytes(client: Any = None, images: Sequence[str] | None = None) -> int | None:
    """Free disk where the engine keeps images, measured inside a throw-away container.

    For remote engines (DOCKER_HOST=ssh:// or tcp://), whose disk this machine cannot see: a
    container's root is an overlay on the engine's data root, so ``df /`` in it tells. Uses a
    base image already on the engine (never pulls); None when none is there or it fails.
    """
    from .naming import lab_labels, resource_name

    if client is None:
        from .engine import client as engine_client

        client = engine_client()
    for ref in images if images is not None else df_images():
        try:
            client.images.get(ref)
        except Exception:
            continue
        try:
            out = client.containers.run(ref, ["df", "-P", "-k", "/"], name=resource_name("df"),
                                        labels=lab_labels(purpose="doctor-df"), remove=True,
                                        network_disabled=True, stdout=True, stderr=False)
        except Exception:
            return None
        return parse_df(out.decode(errors="replace") if isinstance(out, bytes) else str(out))
    return None
