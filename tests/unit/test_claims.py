"""The article's claims table: look-ups, measured rows from a fake engine, rendering."""
from __future__ import annotations

import docker.errors
import pytest

from stagelab import claims
from stagelab.naming import PROFILE_LABEL, image_tag


class _Image:
    """``size``: the sum of its layers; the engine's ``Size`` a compressed third of it (what the lab must not read)."""

    def __init__(self, size: int, profile: str) -> None:
        self.id = f"sha256:{size:064x}"
        self.history = [{"Size": size - size // 4}, {"Size": size // 4}, {"Size": 0}]
        self.attrs = {"Size": size // 3, "Created": "2024-11-27T05:10:11.123456789Z",
                      "Config": {"Labels": {PROFILE_LABEL: profile}}}


class _Images:
    def __init__(self, known: dict[str, _Image]) -> None:
        self.known = known

    def get(self, tag: str) -> _Image:
        if tag not in self.known:
            raise docker.errors.ImageNotFound(tag)
        return self.known[tag]


class _API:
    def __init__(self, known: dict[str, _Image]) -> None:
        self.by_id = {img.id: img for img in known.values()}

    def history(self, image_id: str) -> list[dict]:
        return self.by_id[image_id].history


class _Client:
    """A classic-store engine (no containerd driver-type): its history is the lab's size."""

    def __init__(self, known: dict[str, _Image]) -> None:
        self.images = _Images(known)
        self.api = _API(known)

    def info(self) -> dict:
        return {"ServerVersion": "20.10.24", "DriverStatus": [["Backing Filesystem", "extfs"]]}


def test_the_four_article_sizes_are_listed() -> None:
    keys = {(c.app, c.variant): c.article_size for c in claims.CLAIMS}
    assert keys[("go-server", "single")] > keys[("go-server", "scratch")]
    assert keys[("ts-server", "single")] > keys[("ts-server", "multi")]
    assert claims.get_claim("multi", app="ts-server").key == "ts-multi"
    with pytest.raises(KeyError):
        claims.get_claim("nope")


def test_measured_row_reads_size_profile_and_date_and_missing_images() -> None:
    single = claims.get_claim("go-single")
    client = _Client({image_tag("go-server", "single"): _Image(946_000_000, "offline")})
    rows = claims.measure_claims(client)
    got = {r.claim.key: r for r in rows}
    assert got["go-single"].measured == 946_000_000
    assert got["go-single"].profile == "offline"
    assert got["go-single"].built == "2024-11-27 05:10 UTC"
    assert got["go-single"].ratio == pytest.approx(946 / 823)
    assert got["go-scratch"].measured is None and got["go-scratch"].measured_text == "not built yet"
    md = claims.claims_markdown(rows)
    assert single.article_text in md and "946" in md and "not built yet" in md
    assert "href='01-the-single-stage-problem.html'" in claims.claims_html(rows, link_notebooks=True)


def test_the_table_says_which_versions_each_side_used() -> None:
    from stagelab import versions

    v = versions.current()
    md = claims.claims_markdown([])
    assert f"Go {v.article_go}, Node.js {v.article_node}" in md.splitlines()[0]
    assert f"Go {v.go_minor}, Node.js {v.node_major}, Debian {v.debian}" in md.splitlines()[0]
    from stagelab.sizes import SIZE_LABEL

    assert SIZE_LABEL in md.splitlines()[0] and "docker image ls" not in md
    assert f"Go {v.go_minor}" in claims.claims_html([])
