"""What the lab calls an image's size: one quantity on every engine and image store.

Used by :mod:`stagelab.inspect` (``ImageReport.size``), by notebook 01's size-definition
check (:func:`check_size`) and by ``stagelab.compare`` / ``stagelab.scorecard`` captions.

The lab's size is **the sum of the uncompressed layers**: the bytes of the files each
layer's tar adds (what ``docker history`` adds up to and ``docker image ls`` shows on the
classic image store). The engine's own numbers are *not* that everywhere:

* classic store (Engine 20.10 to 28 by default, ``overlay2``): ``Size`` is the sum of the
  uncompressed layers, ``docker image ls`` shows it and ``docker history`` adds up to it;
* containerd image store (Engine 29 and Docker Desktop on fresh installs; driver type
  ``io.containerd.snapshotter.v1``): ``Size`` is the *compressed* content, and
  ``docker image ls`` shows content plus the unpacked snapshot (about both added up).
  ``docker history`` shows each snapshot's *disk usage*: every file rounded up to a 4 KiB
  block, a block per directory. That is above the files' bytes, by a lot for images of
  many small files, so on that store the lab checks the history against the same
  layers unpacked into blocks (:func:`entry_disk_usage`), not against its size.

So the lab never reports the engine's ``Size`` as its size, nor, on the containerd store,
the sum of ``docker history`` (where only metadata is read, :func:`stored_size`, that sum is
shown labelled "on disk").
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import StagelabError
from .units import human_size

#: How ``ImageReport.size`` was measured, shown next to every size.
SIZE_LABEL = "uncompressed (sum of the files in all layers)"
#: The same quantity when only the engine's metadata was read (``contents=False``) on the classic store.
HISTORY_LABEL = "uncompressed (sum of docker history)"
#: What the sum of ``docker history`` measures on the containerd store: not the lab's size.
DISK_LABEL = "on disk (sum of docker history: the containerd image store rounds every file up to a 4 KiB block)"

CLASSIC_STORE = "classic"
CONTAINERD_STORE = "containerd"
CONTAINERD_DRIVER_TYPE = "io.containerd.snapshotter.v1"

#: What ``docker image ls`` shows on each store (said next to the lab's size).
IMAGE_LS_MEANING = {
    CLASSIC_STORE: "docker image ls shows the same uncompressed size on this engine (classic image store)",
    CONTAINERD_STORE: ("docker image ls shows more on this engine: the containerd image store counts the "
                       "compressed content plus the unpacked snapshot; the engine's Size is the compressed part"),
}

#: File-system block of ext4 and xfs as created by default (Docker Desktop's VM and most Linux hosts).
BLOCK = 4096
#: ext4 keeps a symlink target shorter than this in the inode itself: no block.
FAST_SYMLINK = 60


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
    key = getattr(client.api, "base_url", None)   # no address (a stand-in client): ask every time
    if key is None or key not in _ENGINES:
        info = client.info()
        store = image_store(info)
        facts = (store, f"Docker {info.get('ServerVersion', '?')}, {store} image store")
        if key is None:
            return facts
        _ENGINES[key] = facts
    return _ENGINES[key]


def history_label(store: str | None) -> str:
    """What the sum of ``docker history`` measures on ``store``: the lab's size (classic) or disk usage (containerd)."""
    return DISK_LABEL if store == CONTAINERD_STORE else HISTORY_LABEL


def entry_disk_usage(kind: str, size: int, linkname: str = "") -> int:
    """Bytes one layer entry takes unpacked on a 4 KiB-block file system: what containerd's snapshot usage counts.

    A regular file takes its size rounded up to blocks, a directory one block, a long
    symlink one block; hardlinks share their file's blocks, and short symlinks, devices and
    whiteouts take none. Used by :func:`stagelab.layers.stack_layers` (``LayerStats.disk_usage``).
    """
    if kind == "file":
        return -(-size // BLOCK) * BLOCK
    if kind == "dir":
        return BLOCK
    if kind == "symlink" and len(linkname) >= FAST_SYMLINK:
        return BLOCK
    return 0


def history_size(api_history: Sequence[Mapping[str, Any]] | None) -> int | None:
    """Sum of the ``Size`` of every ``docker history`` entry (None without a history)."""
    if not api_history:
        return None
    return sum(int(entry.get("Size") or 0) for entry in api_history)


def image_size(client: Any, image: Any) -> int | None:
    """The lab's size of a local image (object or id): the sum of its uncompressed layers.

    On the classic store that is the sum of ``docker history`` (metadata only). On the
    containerd store the history is disk usage, so the layers' listings are read instead,
    through the layer cache (an export only for layers not read before). Used by
    ``stagelab.claims`` (notebook 01's table, the report) and the README's stand-in table.
    """
    store, _ = engine_facts(client)
    if store != CONTAINERD_STORE:
        return history_size(client.api.history(getattr(image, "id", image)))
    from .layercache import read_image_cached

    attrs = image.attrs if hasattr(image, "attrs") else client.api.inspect_image(image)
    return read_image_cached(client, attrs).size


def stored_size(client: Any, image: Any) -> tuple[int | None, str]:
    """(sum of ``docker history``, what it measured on this engine's store): metadata only, no export.

    The lab's size on the classic store, disk usage on the containerd store
    (:func:`history_label`). Used where only metadata is read quickly: ``stagelab.bases``
    (the Setup cells' base table, ``stagelab bases status``, prepare messages, bundles).
    """
    store, _ = engine_facts(client)
    return history_size(client.api.history(getattr(image, "id", image))), history_label(store)


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
    disk_usage: int = 0    # the layers unpacked into 4 KiB blocks (entry_disk_usage), what containerd's history counts

    @property
    def tree_and_wasted(self) -> int:
        """What the layers must add up to: the final tree's files plus what was deleted or overwritten."""
        return self.files + self.wasted

    @property
    def history_expected(self) -> int:
        """What the sum of ``docker history`` should be on this store: the size, or the disk usage on containerd."""
        return self.disk_usage if self.store == CONTAINERD_STORE else self.size

    def describe(self) -> str:
        """One line per source, for the notebook and the error message."""
        lines = [f"{self.image}: size {self.size:,} B ({human_size(self.size)}, {SIZE_LABEL})",
                 f"  files in the final tree + deleted/overwritten bytes: {self.tree_and_wasted:,} B"]
        if self.store == CONTAINERD_STORE:
            lines.append(f"  the same layers unpacked into {BLOCK // 1024} KiB blocks: {self.disk_usage:,} B")
        history = "not read" if self.history is None else f"{self.history:,} B, {history_label(self.store)}"
        lines.append(f"  sum of docker history: {history}")
        if self.engine_size is not None:
            lines.append(f"  the engine's Size ({self.store or '?'} image store): {self.engine_size:,} B")
        return "\n".join(lines)


def check_size(report: Any, *, tolerance: float = 0.01) -> SizeCheck:
    """Check ``report.size`` against the files it is made of, and the layers against ``docker history``.

    Raises :class:`SizeMismatch` when the size differs by more than ``tolerance`` from the
    final tree's files plus the deleted/overwritten bytes (needs contents), or when the sum
    of ``docker history`` differs by more than ``tolerance`` from what the same layers
    measure on this store: their bytes on the classic store, their 4 KiB-block disk usage on
    the containerd store. The engine's compressed ``Size`` on the containerd store fails.
    Used by notebook 01 and the integration tests (every lab image, on both engines).
    """
    if not report.contents:
        raise SizeMismatch(f"{report.name}: the size check needs the image's files.",
                           fix=f"inspect({report.name!r}) with contents=True (the default)")
    files = sum(e.size for e in report.files.values() if e.is_regular)
    disk = sum(getattr(layer, "disk_usage", None) or 0 for layer in report.layers)
    check = SizeCheck(image=report.name, size=report.size, files=files, wasted=report.wasted,
                      history=report.history_size, engine_size=report.engine_size, store=report.image_store,
                      disk_usage=disk)
    problems = []
    if abs(check.size - check.tree_and_wasted) > tolerance * max(check.tree_and_wasted, 1):
        problems.append(f"expected {check.tree_and_wasted:,} B (files in the final tree + deleted/overwritten), "
                        f"measured {check.size:,} B")
    if check.history is not None:
        expected = check.history_expected
        if abs(check.history - expected) > tolerance * max(expected, 1):
            what = ("the layers unpacked into blocks" if check.store == CONTAINERD_STORE
                    else "the sum of the uncompressed layers")
            problems.append(f"expected the sum of docker history to be {expected:,} B ({what}, ±{tolerance:.0%}), "
                            f"read {check.history:,} B")
    if problems:
        raise SizeMismatch(f"{report.name}: the size is not the sum of the uncompressed layers: "
                           + "; ".join(problems) + ".\n" + check.describe(),
                           fix="report this: the lab's size must be measured from the layers, not the engine's Size")
    return check
