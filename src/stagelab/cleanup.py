"""Remove what the lab created, and nothing else: ``stagelab clean`` and notebook 00's last cell.

Only objects that carry ``org.stagelab.lab=true`` and (unless ``all_namespaces``) the
learner's namespace label are touched: containers first, then images, then networks. It
never prunes, and never removes base images (``org.stagelab.base=true`` without the lab
label) or tags outside ``stagelab/``.
"""
from __future__ import annotations

from collections.abc import Iterable

from .naming import LAB_LABEL, NAMESPACE_LABEL
from .naming import namespace as current_namespace

LAB_TAG_PREFIX = "stagelab/"


class CleanReport(list):
    """The removed objects (one line each, a ``list[str]``) plus ``failed``: what could not go."""

    def __init__(self, items: Iterable[str] = (), *, dry_run: bool = False) -> None:
        super().__init__(items)
        self.failed: list[str] = []
        self.kept: list[str] = []
        self.dry_run = dry_run

    def as_text(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"{verb}: {item}" for item in self] or [f"nothing to remove ({verb} 0 objects)"]
        lines += [f"kept: {item}" for item in self.kept]
        lines += [f"could not remove: {item}" for item in self.failed]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(self.as_text()) + "</pre>"


def _filters(namespace: str | None) -> list[str]:
    """Engine label filters: the lab label, and the namespace label unless ``namespace`` is None (all)."""
    labels = [f"{LAB_LABEL}=true"]
    if namespace is not None:
        labels.append(f"{NAMESPACE_LABEL}={namespace}")
    return labels


def _is_ours(labels: dict | None, namespace: str | None) -> bool:
    """Second check on the labels themselves (the engine's filter is the first)."""
    labels = labels or {}
    if labels.get(LAB_LABEL) != "true":  # base images carry BASE_LABEL only: never ours to remove
        return False
    return namespace is None or labels.get(NAMESPACE_LABEL) == namespace


def _short(object_id: str) -> str:
    return object_id.split(":", 1)[-1][:12]


def _error_text(exc: Exception) -> str:
    return " ".join(str(getattr(exc, "explanation", None) or exc).split())[:200]


def clean(*, dry_run: bool = False, all_namespaces: bool = False, client=None,
          namespace: str | None = None) -> CleanReport:
    """Remove the lab's containers, images and networks (this namespace only, unless told).

    ``namespace`` names another learner's namespace than ``STAGELAB_NAMESPACE`` (the
    integration tests' tracker cleans each namespace it made). Returns what was removed
    (with ``dry_run``: what would be), one line per object.
    """
    import docker.errors

    if client is None:
        from .engine import client as engine_client

        client = engine_client()
    report = CleanReport(dry_run=dry_run)
    ns = None if all_namespaces else (namespace or current_namespace())
    label_filter = {"label": _filters(ns)}

    # 1. containers (force: a running lab container is stopped and removed)
    for container in client.containers.list(all=True, filters=label_filter):
        if not _is_ours(container.labels, ns):
            continue
        line = f"container {container.name} ({_short(container.id)})"
        if dry_run:
            report.append(line)
            continue
        try:
            container.remove(force=True)
            report.append(line)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            report.failed.append(f"{line}: {_error_text(exc)}")

    # 2. images: untag the lab's own tags; an image without any tag left is deleted by id
    images = [img for img in client.images.list(filters=label_filter) if _is_ours(img.labels, ns)]
    pending = []
    for image in images:
        lab_tags = [t for t in image.tags if t.startswith(LAB_TAG_PREFIX)]
        other_tags = [t for t in image.tags if not t.startswith(LAB_TAG_PREFIX)]
        name = ", ".join(lab_tags) or "<untagged>"
        line = f"image {name} ({_short(image.id)})"
        if other_tags:
            report.kept.append(f"image {_short(image.id)} stays: also tagged {', '.join(other_tags)} "
                               f"(outside the lab)" + (f"; untagged {name}" if lab_tags else ""))
        if dry_run:
            if not other_tags:
                report.append(line)
            continue
        for tag in lab_tags:
            try:
                client.images.remove(tag, noprune=False)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                report.failed.append(f"image {tag}: {_error_text(exc)}")
        if not other_tags:
            pending.append((image.id, line))
    # Deleting by id: children before parents; a few passes settle lab images built on each other.
    for _ in range(3):
        if not pending:
            break
        still: list[tuple[str, str]] = []
        errors: dict[str, str] = {}
        for image_id, line in pending:
            try:
                client.images.remove(image_id, noprune=False)
                report.append(line)
            except docker.errors.NotFound:
                report.append(line)  # untagging its last lab tag already deleted it
            except docker.errors.APIError as exc:
                still.append((image_id, line))
                errors[image_id] = _error_text(exc)
        if len(still) == len(pending):
            report.failed.extend(f"{line}: {errors[image_id]}" for image_id, line in still)
            pending = []
            break
        pending = still
    else:
        report.failed.extend(f"{line}: still in use" for _, line in pending)

    # 3. networks
    for network in client.networks.list(filters=label_filter):
        if not _is_ours(network.attrs.get("Labels"), ns):
            continue
        line = f"network {network.name} ({_short(network.id)})"
        if dry_run:
            report.append(line)
            continue
        try:
            network.remove()
            report.append(line)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            report.failed.append(f"{line}: {_error_text(exc)}")
    return report
