"""The lab's size from engine metadata (sizes.image_size) as bases reports it: never the engine's Size."""
from __future__ import annotations

from types import SimpleNamespace

from stagelab import sizes
from stagelab.bases.status import BaseStatus, status_text, table_sizes
from stagelab.units import human_size


class _Engine:
    """One image whose engine ``Size`` is compressed (containerd store) and whose history is not."""

    def __init__(self, tag: str, layers: list[int], compressed: int) -> None:
        self.image = SimpleNamespace(id="sha256:" + "ab" * 32, attrs={"Size": compressed, "Config": {"Labels": {}}})
        self.tag, self.layers = tag, layers
        self.images = SimpleNamespace(get=self._get)
        self.api = SimpleNamespace(history=self._history)

    def _get(self, ref: str):
        import docker.errors

        if ref != self.tag:
            raise docker.errors.ImageNotFound(ref)
        return self.image

    def _history(self, image_id: str) -> list[dict]:
        assert image_id == self.image.id
        return [{"Size": n, "CreatedBy": f"step {i}"} for i, n in enumerate(self.layers)]


def test_image_size_is_the_sum_of_history_not_the_engines_size() -> None:
    engine = _Engine("x:1", [70_000_000, 0, 5_123_456], compressed=25_000_000)
    assert sizes.image_size(engine, engine.image) == 75_123_456
    assert sizes.image_size(engine, engine.image.id) == 75_123_456   # an id works too


def test_the_bases_table_reads_the_labs_size() -> None:
    from stagelab import catalogue

    tag = catalogue.standins()[0].tag
    engine = _Engine(tag, [40_000_000, 2_500_000], compressed=15_000_000)
    assert table_sizes(engine) == {tag: human_size(42_500_000)}
    text = status_text([BaseStatus("ROLE", tag, True, 42_500_000, engine.image.id)])
    assert sizes.HISTORY_LABEL in text and human_size(42_500_000) in text
