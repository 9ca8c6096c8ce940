"""``stagelab clean`` on the real engine never removes anything without the lab label.

The test creates, in a namespace of its own: an unlabelled image (tagged like a lab image,
to prove that names do not matter) and an unlabelled container; a base-style image
(``org.stagelab.base=true`` only); lab-labelled objects in another namespace; and
lab-labelled objects in its own namespace. Only the last group may go. Everything else is
removed at the end by exact id.
"""
from __future__ import annotations

import io
import secrets
import tarfile

import docker.errors
import pytest

from stagelab import cleanup, engine, naming
from stagelab.naming import BASE_LABEL, NAMESPACE_LABEL

pytestmark = pytest.mark.engine


def _context(content: str) -> io.BytesIO:
    """A build context with a Dockerfile ``FROM scratch`` + one file of unique content."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY f /f\n"), ("f", content.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


class Created:
    """Exact ids of what the test made, removed at the end whatever happened."""

    def __init__(self, client):
        self.client = client
        self.containers: list[str] = []
        self.images: list[str] = []
        self.networks: list[str] = []

    def remove_all(self) -> None:
        for cid in self.containers:
            try:
                self.client.containers.get(cid).remove(force=True)
            except docker.errors.NotFound:
                pass
        for nid in self.networks:
            try:
                self.client.networks.get(nid).remove()
            except docker.errors.NotFound:
                pass
        for iid in self.images:
            try:
                self.client.images.remove(iid, force=True)
            except docker.errors.NotFound:
                pass


def _build(created: Created, tag: str, labels: dict[str, str] | None) -> str:
    image, _ = created.client.images.build(fileobj=_context(secrets.token_hex(16)), custom_context=True,
                                           tag=tag, labels=labels or None, rm=True, forcerm=True)
    created.images.append(image.id)
    return image.id


@pytest.fixture
def made(monkeypatch):
    ns = f"itest-{secrets.token_hex(4)}"
    other = f"itest-other-{secrets.token_hex(4)}"
    monkeypatch.setenv("STAGELAB_NAMESPACE", ns)
    client = engine.client()
    created = Created(client)
    mine = naming.lab_labels()
    theirs = {**mine, NAMESPACE_LABEL: other}
    try:
        ids = {}
        ids["plain_image"] = _build(created, f"stagelab/{ns}/unlabelled:1", None)
        ids["base_image"] = _build(created, f"stagelab-itest-base/{ns}:1", {BASE_LABEL: "true"})
        ids["their_image"] = _build(created, f"stagelab/{other}/app:v", theirs)
        ids["my_dangling"] = _build(created, f"stagelab/{ns}/app:v", mine)
        ids["my_image"] = _build(created, f"stagelab/{ns}/app:v", mine)  # a rebuild: the tag moves,
        assert client.images.get(ids["my_dangling"]).tags == []  # the old image keeps only its labels
        cmd = ["/f"]  # never started: scratch has nothing to run
        for key, image, labels in (("plain_ctr", ids["plain_image"], {}),
                                   ("their_ctr", ids["their_image"], theirs),
                                   ("my_ctr", ids["my_image"], mine)):
            ctr = client.containers.create(image, command=cmd, labels=labels,
                                           name=naming.resource_name(key.replace("_", "-")))
            ids[key] = ctr.id
            created.containers.append(ctr.id)
        for key, labels in (("plain_net", {}), ("their_net", theirs), ("my_net", mine)):
            net = client.networks.create(naming.resource_name(key.replace("_", "-")), labels=labels)
            ids[key] = net.id
            created.networks.append(net.id)
        yield client, ids, ns
    finally:
        created.remove_all()


def _exists(client, kind: str, oid: str) -> bool:
    try:
        getattr(client, kind).get(oid)
        return True
    except docker.errors.NotFound:
        return False


def test_clean_removes_only_labelled_objects_of_this_namespace(made):
    client, ids, ns = made
    kinds = {"image": "images", "ctr": "containers", "net": "networks", "dangling": "images"}

    def kind(key: str) -> str:
        return kinds[key.rsplit("_", 1)[1]]

    dry = cleanup.clean(dry_run=True)
    assert all(_exists(client, kind(k), oid) for k, oid in ids.items())  # dry run removed nothing
    assert any(f"stagelab/{ns}/app:v" in line for line in dry)

    wide = cleanup.clean(dry_run=True, all_namespaces=True)  # never run for real on a shared engine
    assert any(ids["their_ctr"][:12] in line for line in wide)
    assert not any(ids["plain_ctr"][:12] in line for line in wide)
    assert not any(ids["base_image"].split(":")[1][:12] in line for line in wide)

    report = cleanup.clean()
    assert report.failed == []
    gone = ("my_image", "my_dangling", "my_ctr", "my_net")
    for key in gone:
        assert not _exists(client, kind(key), ids[key]), f"{key} should have been removed"
    for key in ("plain_image", "base_image", "their_image", "plain_ctr", "their_ctr", "plain_net", "their_net"):
        assert _exists(client, kind(key), ids[key]), f"{key} must survive stagelab clean"
    assert client.images.get(ids["plain_image"]).tags == [f"stagelab/{ns}/unlabelled:1"]
    assert sorted(report) == sorted(dry)  # the dry run listed exactly what went
    assert len(report) == 4

    assert list(cleanup.clean()) == []  # nothing left of ours: a second run removes nothing


def test_clean_never_prunes(monkeypatch, made):
    client, _, _ = made
    pruned = []
    for collection in ("containers", "images", "networks", "volumes"):
        monkeypatch.setattr(getattr(client, collection), "prune",
                            lambda *a, _c=collection, **k: pruned.append(_c), raising=False)
    monkeypatch.setattr(client.api, "prune_builds", lambda *a, **k: pruned.append("builds"), raising=False)
    report = cleanup.clean(client=client)
    assert pruned == []
    assert len(report) == 4
