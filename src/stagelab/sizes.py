"""What the lab calls an image's size: one quantity on every engine and image store.

Used by :mod:`stagelab.inspect` (``ImageReport.size``), by notebook 01's size-definition
check (:func:`check_size`) and by ``stagelab.compare`` / ``stagelab.scorecard`` captions.

The lab's size is **the sum of the uncompressed layers**: the bytes of the files each
layer's tar adds (what ``docker history`` adds up to, and what ``docker image ls``
shows on the classic image store). The engine's own ``Size`` is *not* that everywhere:

* classic store (Engine 20.10 to 28 by default, ``overlay2``): ``Size`` is the sum of the
  uncompressed layers, and ``docker image ls`` shows it;
* containerd image store (Engine 29 and Docker Desktop on fresh installs; driver type
  ``io.containerd.snapshotter.v1``): ``Size`` is the *compressed* content, and
  ``docker image ls`` shows content plus the unpacked snapshot (about both added up).
  ``docker history`` shows each snapshot's disk usage (file sizes rounded up to
  file-system blocks), so it is close to, and a little above, the files' bytes.

So the lab never reports the engine's ``Size`` as its size.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import StagelabError
from .units import human_size

#: How ``ImageReport.size`` was measured, shown next to every size.
SIZE_LABEL = "uncompressed (sum of the files in all layers)"
#: The same quantity when only the engine's metadata was read (``contents=False``, no cached listing).
HISTORY_LABEL = "uncompressed (sum of docker history)"

CLASSIC_STORE = "classic"
CONTAINERD_STORE = "containerd"
CONTAINERD_DRIVER_TYPE = "io.containerd.snapshotter.v1"

#: What ``docker image ls`` shows on each store (said next to the lab's size).
IMAGE_LS_MEANING = {
    CLASSIC_STORE: "docker image ls shows the same uncompressed size on this engine (classic image store)",
    CONTAINERD_STORE: ("docker image ls shows more on this engine: the containerd image store counts the "
                       "compressed content plus the unpacked snapshot; the engine's Size is the compressed part"),
}

#: Tolerance of :func:`check_size` against ``docker history``: on the containerd store the
#: history is disk usage (files rounded up to blocks), a little above the files' bytes.
HISTORY_TOLERANCE = {CLASSIC_STORE: 0.01, CONTAINERD_STORE: 0.05}
#: File-system block: on the containerd store each file and directory may add up to one to the history.
BLOCK = 4096


class SizeMismatch(StagelabError):
    """A measured size disagrees with the lab's definition (sum of the uncompressed layers)."""


def image_store(info: Mapping[str, Any]) -> str:
    """``"containerd"`` or ``"classic"`` from the engine's ``docker info`` (its ``DriverStatus``)."""
    for pair in info.get("DriverStatus") or []:
        if len(pair) == 2 and pair[0] == "driver-type" and pair[1] == CONTAINERD_DRIVER_TYPE:
            return CONTAINERD_STORE
    return CLASSIC_STORE


_ENGINES: dict[str, tuple[str, str]] = {}   # engine address -> (store, description)


def engine_facts(client: Any) -> tuple[str, str]:
    """(image store, ``"Docker 28.5.2, containerd image store"``) of ``client``'s engine, asked once per address."""
    key = str(getattr(client.api, "base_url", id(client)))
    if key not in _ENGINES:
        info = client.info()
        store = image_store(info)
        _ENGINES[key] = (store, f"Docker {info.get('ServerVersion', '?')}, {store} image store")
    return _ENGINES[key]


def history_size(api_history: Sequence[Mapping[str, Any]] | None) -> int | None:
    """Sum of the ``Size`` of every ``docker history`` entry (None without a history)."""
    if not api_history:
        return None
    return sum(int(entry.get("Size") or 0) for entry in api_history)


def image_size(client: Any, image: Any) -> int | None:
    """The lab's size of a local image (object or id) from the engine's metadata alone, no export.

    The sum of ``docker history`` (:data:`HISTORY_LABEL`): uncompressed on every image store,
    unlike the engine's ``Size`` (compressed on the containerd store). Used by
    ``stagelab.bases`` (status table, bundle manifest, prepare messages) and ``stagelab.claims``.
    """
    return history_size(client.api.history(getattr(image, "id", image)))


@dataclass(frozen=True)
class SizeCheck:
    """The cross-checks of one image's size (:func:`check_size`), all in bytes."""

    image: str
    size: int              # ImageReport.size, the lab's size
    files: int             # bytes of the files in the final tree
    wasted: int            # bytes later layers delete or overwrite (whiteouts, overwrites)
    history: int | None    # the sum of docker history
    engine_size: int | None
    store: str | None

    @property
    def tree_and_wasted(self) -> int:
        """What the layers must add up to: the final tree's files plus what was deleted or overwritten."""
        return self.files + self.wasted

    def describe(self) -> str:
        """One line per source, for the notebook and the error message."""
        lines = [f"{self.image}: size {self.size:,} B ({human_size(self.size)}, {SIZE_LABEL})",
                 f"  files in the final tree + deleted/overwritten bytes: {self.tree_and_wasted:,} B",
                 f"  sum of docker history: {'not read' if self.history is None else f'{self.history:,} B'}"]
        if self.engine_size is not None:
            lines.append(f"  the engine's Size ({self.store or '?'} image store): {self.engine_size:,} B")
        return "\n".join(lines)


def check_size(report: Any, *, tolerance: float = 0.01) -> SizeCheck:
    """Check ``report.size`` against the files it is made of and against ``docker history``.

    Raises :class:`SizeMismatch` when the size differs by more than ``tolerance`` from the
    final tree's files plus the deleted/overwritten bytes (needs contents), or from the
    sum of ``docker history`` (by more than :data:`HISTORY_TOLERANCE` for the store).
    The engine's compressed ``Size`` on the containerd store fails both.
    """
    if not report.contents:
        raise SizeMismatch(f"{report.name}: the size check needs the image's files.",
                           fix=f"inspect({report.name!r}) with contents=True (the default)")
    files = sum(e.size for e in report.files.values() if e.is_regular)
    check = SizeCheck(image=report.name, size=report.size, files=files, wasted=report.wasted,
                      history=report.history_size, engine_size=report.engine_size, store=report.image_store)
    problems = []
    if abs(check.size - check.tree_and_wasted) > tolerance * max(check.tree_and_wasted, 1):
        problems.append(f"expected {check.tree_and_wasted:,} B (files in the final tree + deleted/overwritten), "
                        f"measured {check.size:,} B")
    if check.history is not None:
        allowed = max(tolerance, HISTORY_TOLERANCE.get(check.store or CLASSIC_STORE, tolerance))
        slack = 0
        if check.store == CONTAINERD_STORE:   # disk usage: every entry of every layer rounded up to a block
            entries = sum(layer.files or 0 for layer in report.layers)
            entries += sum(1 for e in report.files.values() if e.type == "dir")
            slack = BLOCK * entries
        over = check.history - check.size
        if over < -allowed * check.history or over > allowed * check.history + slack:
            extra = f" + up to {slack:,} B of block rounding" if slack else ""
            problems.append(f"expected about {check.history:,} B (sum of docker history, ±{allowed:.0%}{extra}), "
                            f"measured {check.size:,} B")
    if problems:
        raise SizeMismatch(f"{report.name}: the size is not the sum of the uncompressed layers: "
                           + "; ".join(problems) + ".\n" + check.describe(),
                           fix="report this: the lab's size must be measured from the layers, not the engine's Size")
    return check
