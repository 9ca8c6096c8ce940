"""``stagelab clean`` on the real engine never removes anything without the lab label.

The test creates, in a namespace of its own: an unlabelled image (tagged like a lab image,
to prove that names do not matter) and an unlabelled container; a base-style image
(``org.stagelab.base=true`` only); lab-labelled objects in another namespace; and
lab-labelled objects in its own namespace. Only the last group may go. Everything else is
removed at the end by the tracker (tests/integration/conftest.py).
"""
from __future__ import annotations

import io
import secrets
import tarfile

import docker.errors
import pytest

from stagelab import cleanup, naming
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


def _build(tracker, tag: str, labels: dict[str, str] | None) -> str:
    image, _ = tracker.client.images.build(fileobj=_context(secrets.token_hex(16)), custom_context=True,
                                           tag=tag, labels=labels or None, rm=True, forcerm=True)
    return tracker.image(image.id)


@pytest.fixture
def made(tracker):
    """Objects of every kind in this test's namespace, in another namespace and without labels."""
    client, ns = tracker.client, tracker.namespace
    other = tracker.also_namespace(f"itest-other-{secrets.token_hex(4)}")
    mine = naming.lab_labels()
    theirs = {**mine, NAMESPACE_LABEL: other}
    ids = {}
    ids["plain_image"] = _build(tracker, f"stagelab/{ns}/unlabelled:1", None)
    ids["base_image"] = _build(tracker, f"stagelab-itest-base/{ns}:1", {BASE_LABEL: "true"})
    ids["their_image"] = _build(tracker, f"stagelab/{other}/app:v", theirs)
    ids["my_dangling"] = _build(tracker, f"stagelab/{ns}/app:v", mine)
    ids["my_image"] = _build(tracker, f"stagelab/{ns}/app:v", mine)  # a rebuild: the tag moves,
    assert client.images.get(ids["my_dangling"]).tags == []  # the old image keeps only its labels
    cmd = ["/f"]  # never started: scratch has nothing to run
    for key, image, labels in (("plain_ctr", ids["plain_image"], {}),
                               ("their_ctr", ids["their_image"], theirs),
                               ("my_ctr", ids["my_image"], mine)):
        ids[key] = tracker.create_container(image, purpose=key.replace("_", "-"), command=cmd, labels=labels).id
    for key, labels in (("plain_net", {}), ("their_net", theirs), ("my_net", mine)):
        ids[key] = tracker.create_network(key.replace("_", "-"), labels=labels).id
    return client, ids, ns


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
    # Every prune of the SDK ends in one of these APIClient methods (client.containers.prune()
    # and the like call them); patching the collections would patch throw-away objects, since
    # client.containers returns a new collection on every access.
    pruned = []
    for what in ("containers", "images", "networks", "volumes", "builds"):
        monkeypatch.setattr(client.api, f"prune_{what}", lambda *a, _w=what, **k: pruned.append(_w))
    report = cleanup.clean(client=client)
    assert pruned == []
    assert len(report) == 4


def test_the_tracker_removes_what_a_test_made(tracker):
    """The fixture every engine test relies on: labelled and registered objects all go."""
    client, ns = tracker.client, tracker.namespace
    labelled, _ = client.images.build(fileobj=_context(secrets.token_hex(16)), custom_context=True,
                                      tag=f"stagelab/{ns}/tracked:1", labels=naming.lab_labels(), rm=True)
    unlabelled = _build(tracker, f"stagelab-itest-unlabelled/{ns}:1", None)
    # not registered: the tracker finds it by its namespace label
    ctr = client.containers.create(labelled.id, command=["/f"], labels=naming.lab_labels(),
                                   name=naming.resource_name("unregistered"))
    registered = tracker.create_container(unlabelled, command=["/f"], labels={})
    net = tracker.create_network("tracked", labels={})
    assert tracker.remove_all() == []  # what the fixture's teardown runs, also after a failure
    assert not _exists(client, "images", labelled.id)
    assert not _exists(client, "images", unlabelled)
    assert not _exists(client, "containers", ctr.id)
    assert not _exists(client, "containers", registered.id)
    assert not _exists(client, "networks", net.id)


def test_the_tracker_removes_the_stage_images_a_build_log_names(tracker, tmp_path):
    """A classic multi-stage build leaves its builder stage's image untagged and unlabelled:
    only the build log says it was made, and the tracker removes it by that id."""
    from stagelab.build import build_context

    (tmp_path / "f").write_text(secrets.token_hex(16))  # unique: no step can come from the cache
    (tmp_path / "Dockerfile").write_text("FROM scratch AS stage\nCOPY f /f\n\nFROM scratch\nCOPY --from=stage /f /g\n")
    result = build_context(tmp_path, "Dockerfile", tag=naming.image_tag("itest-tracker", "stages"),
                           labels=naming.lab_labels(), progress="none", nocache=True,
                           builder="classic")  # the subject: the classic builder's stage images
    created = tracker.build_log(result.log)
    client = tracker.client
    stage_ids = [i for i in created if not result.image_id.split(":")[-1].startswith(i)]
    assert stage_ids, f"the log names no stage image besides the result:\n{''.join(result.log)}"
    assert all(_exists(client, "images", i) and not client.images.get(i).tags for i in stage_ids)
    assert tracker.remove_all() == []
    assert not [i for i in stage_ids if _exists(client, "images", i)], "stage images left behind"
    assert not _exists(client, "images", result.image_id)
