"""stagelab.workshop without an engine: layer accounting, the saved record, df parsing, transports."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stagelab import engine, workshop
from stagelab.workshop import NamespaceUsage, chain_ids, distinct_layer_bytes


def _d(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def test_chain_ids_follow_the_engine_formula() -> None:
    chains = chain_ids([_d(1), _d(2)])
    assert chains[0] == _d(1)
    assert chains[1] == "sha256:" + hashlib.sha256(f"{_d(1)} {_d(2)}".encode()).hexdigest()


def test_same_layer_on_another_parent_is_another_layer() -> None:
    # image A: base(1) + 2; image B: base(3) + 2: diff 2 on different parents is stored twice
    own, shared = distinct_layer_bytes([[(_d(1), 100), (_d(2), 10)], [(_d(3), 200), (_d(2), 10)]])
    assert (own, shared) == (320, 0)


def test_shared_layers_counted_once_and_bases_excluded() -> None:
    base = [(_d(1), 600), (_d(2), 50)]
    single = base + [(_d(3), 80)]
    variant = base + [(_d(4), 5)]
    scratch = [(_d(9), 4)]
    base_chains = set(chain_ids([d for d, _ in base]))
    own, shared = distinct_layer_bytes([single, variant, scratch, scratch], base_chains)
    assert own == 80 + 5 + 4
    assert shared == 650


@pytest.mark.parametrize("text, expected", [
    ("Filesystem 1024-blocks Used Available Capacity Mounted on\noverlay 263174212 27000000 75000000 27% /\n",
     75000000 * 1024),
    ("garbage", None),
    ("", None),
])
def test_parse_df(text: str, expected: int | None) -> None:
    assert workshop.parse_df(text) == expected


def _usage(own: int, ns: str = "ana") -> NamespaceUsage:
    return NamespaceUsage(namespace=ns, images=3, own_bytes=own, shared_bytes=10, measured_at="2026-01-01 10:00",
                          engine="unix:///var/run/docker.sock")


def test_saved_record_keeps_the_largest_per_namespace(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    assert workshop.load_saved("ana", "unix:///var/run/docker.sock", path) is None
    assert workshop.save_if_larger(_usage(500), path)
    assert not workshop.save_if_larger(_usage(300), path)          # a partial run does not shrink it
    assert workshop.save_if_larger(_usage(700, ns="ben"), path)    # another namespace is its own record
    saved = workshop.load_saved("ana", "unix:///var/run/docker.sock", path)
    assert saved is not None and saved.own_bytes == 500 and not saved.live
    assert workshop.load_saved("ana", "ssh://other", path) is None   # another engine


def test_describe_need_before_and_after_a_run() -> None:
    assert workshop.describe_need(None).startswith("not measured yet")
    text = workshop.describe_need(_usage(1_230_000_000))
    assert text.startswith("1.23 GB per learner") and "namespace 'ana'" in text and "measured now" in text


@pytest.mark.parametrize("address, env, expected", [
    ("unix:///var/run/docker.sock", {}, "local socket"),
    ("ssh://teacher@lab-engine", {}, "remote over SSH"),
    ("tcp://10.0.0.5:2376", {"DOCKER_TLS_VERIFY": "1"}, "remote over TCP with TLS"),
    ("tcp://10.0.0.5:2375", {}, "remote over TCP WITHOUT TLS"),
])
def test_transport_names_how_the_engine_is_reached(address: str, env: dict[str, str], expected: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert engine.transport(address).startswith(expected)


class _Img:
    def __init__(self, image_id: str, tags: list[str], labels: dict[str, str], diff_ids: list[str]) -> None:
        self.id, self.tags, self.labels = image_id, tags, labels
        self.attrs = {"RootFS": {"Layers": diff_ids}}


class _Images:
    def __init__(self, images: list[_Img]) -> None:
        self._images = images

    def list(self, filters: dict | None = None) -> list[_Img]:
        wanted = (filters or {}).get("label", [])
        return [i for i in self._images
                if all(i.labels.get(k) == v for k, v in (w.split("=", 1) for w in wanted))]


def test_namespace_usage_counts_tagged_images_and_reports_untagged_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = {"org.stagelab.lab": "true", "org.stagelab.namespace": "ana"}
    sizes = {_d(1): 600, _d(2): 80, _d(3): 5, _d(4): 70, _d(5): 9}
    images = [
        _Img("base", ["stagelab-offline/golang:1.22"], {"org.stagelab.base": "true"}, [_d(1)]),
        _Img("single", ["stagelab/ana/go-server:single"], lab, [_d(1), _d(2)]),
        _Img("scratch", ["stagelab/ana/go-server:scratch"], lab, [_d(3)]),
        _Img("old-single", [], lab, [_d(1), _d(4)]),      # the tag moved to a rebuild
        _Img("ben", ["stagelab/ben/go-server:scratch"], {**lab, "org.stagelab.namespace": "ben"}, [_d(5)]),
    ]
    client = type("C", (), {"images": _Images(images)})()
    by_id = {i.id: i for i in images}
    monkeypatch.setattr(workshop, "_layers_of",
                        lambda ref, client: [(d, sizes[d]) for d in by_id[ref].attrs["RootFS"]["Layers"]])
    usage = workshop.namespace_usage("ana", client=client)
    assert usage is not None
    assert (usage.images, usage.own_bytes, usage.shared_bytes) == (2, 85, 600)
    assert (usage.untagged_images, usage.untagged_bytes) == (1, 70)
    assert "1 untagged older build(s)" in usage.as_text()
    assert workshop.namespace_usage("nobody", client=client) is None


def test_df_images_follow_the_catalogue():
    """The images `df` may run in are the catalogue's (a version bump can't leave a stale tag here)."""
    from stagelab import catalogue, workshop

    known = {b.offline for b in catalogue.entries()} | {b.upstream for b in catalogue.entries()}
    images = workshop.df_images()
    assert images and all(i in known or i == "busybox:latest" for i in images), images
