"""stagelab.cleanup on a fake engine: only the lab's own objects in this namespace go (no engine)."""
from __future__ import annotations

import docker.errors
import pytest

from stagelab import cleanup
from stagelab.naming import BASE_LABEL, LAB_LABEL, NAMESPACE_LABEL

NS = "unit-ns"
OURS = {LAB_LABEL: "true", NAMESPACE_LABEL: NS}
THEIRS = {LAB_LABEL: "true", NAMESPACE_LABEL: "someone-else"}
BASE = {BASE_LABEL: "true"}


class Obj:
    def __init__(self, engine, kind, oid, name, labels, tags=()):
        self.engine, self.kind, self.id, self.name = engine, kind, oid, name
        self.labels = labels
        self.tags = list(tags)
        self.attrs = {"Labels": labels}

    def remove(self, force=False):
        self.engine.remove(self.kind, self)


class Collection:
    def __init__(self, engine, kind):
        self.engine, self.kind = engine, kind

    def list(self, all=False, filters=None):
        self.engine.calls.append(("list", self.kind))
        items = list(self.engine.objects[self.kind])
        if self.engine.honour_filters and filters:
            for want in filters.get("label", []):
                key, _, value = want.partition("=")
                items = [o for o in items if o.labels.get(key) == value]
        return items

    # images only
    def remove(self, ref, noprune=False):
        images = self.engine.objects["image"]
        for img in images:
            if ref in img.tags:
                if ref in self.engine.fail:
                    raise docker.errors.APIError("conflict: in use")
                img.tags.remove(ref)
                self.engine.calls.append(("untag", ref))
                if not img.tags:
                    self.engine.remove("image", img)
                return
            if ref == img.id:
                if img.tags and len(img.tags) > 0:
                    raise docker.errors.APIError("conflict: image is referenced in multiple repositories")
                self.engine.remove("image", img)
                return
        raise docker.errors.NotFound(ref)


class FakeEngine:
    def __init__(self, honour_filters=True):
        self.honour_filters = honour_filters
        self.calls: list[tuple[str, str]] = []
        self.fail: set[str] = set()
        self.objects = {"container": [], "image": [], "network": []}
        self.containers = Collection(self, "container")
        self.images = Collection(self, "image")
        self.networks = Collection(self, "network")

    def add(self, kind, oid, name, labels, tags=()):
        obj = Obj(self, kind, oid, name, dict(labels), tags)
        self.objects[kind].append(obj)
        return obj

    def remove(self, kind, obj):
        if obj.name in self.fail:
            raise docker.errors.APIError("conflict: in use")
        self.objects[kind].remove(obj)
        self.calls.append(("remove", kind))

    def names(self, kind):
        return sorted(o.name for o in self.objects[kind])


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.setenv("STAGELAB_NAMESPACE", NS)
    eng = FakeEngine()
    eng.add("container", "c1", "ours-c", OURS)
    eng.add("container", "c2", "theirs-c", THEIRS)
    eng.add("container", "c3", "plain-c", {})
    eng.add("image", "sha256:" + "1" * 64, "ours-i", OURS, tags=[f"stagelab/{NS}/go-server:scratch"])
    eng.add("image", "sha256:" + "2" * 64, "theirs-i", THEIRS, tags=["stagelab/someone-else/go-server:scratch"])
    eng.add("image", "sha256:" + "3" * 64, "plain-i", {}, tags=[f"stagelab/{NS}/looks-like-ours:1"])
    eng.add("image", "sha256:" + "4" * 64, "base-i", BASE, tags=["stagelab-offline/golang:1.22"])
    eng.add("image", "sha256:" + "5" * 64, "dangling-ours", OURS, tags=[])
    eng.add("network", "n1", "ours-n", OURS)
    eng.add("network", "n2", "theirs-n", THEIRS)
    eng.add("network", "n3", "bridge", {})
    return eng


@pytest.mark.parametrize("honour", [True, False])
def test_removes_only_labelled_objects_of_this_namespace(engine, honour):
    engine.honour_filters = honour  # the label check holds even if the engine ignored the filter
    report = cleanup.clean(client=engine)
    assert engine.names("container") == ["plain-c", "theirs-c"]
    assert engine.names("image") == ["base-i", "plain-i", "theirs-i"]
    assert engine.names("network") == ["bridge", "theirs-n"]
    assert any("ours-c" in line for line in report)
    assert any(f"stagelab/{NS}/go-server:scratch" in line for line in report)
    assert any("<untagged>" in line for line in report)
    assert any("ours-n" in line for line in report)
    assert report.failed == []
    assert len(report) == 4


def test_order_is_containers_images_networks(engine):
    cleanup.clean(client=engine)
    kinds = [kind for what, kind in engine.calls if what == "remove"]
    assert kinds == sorted(kinds, key=["container", "image", "network"].index)


def test_dry_run_lists_and_removes_nothing(engine):
    before = {k: engine.names(k) for k in ("container", "image", "network")}
    report = cleanup.clean(dry_run=True, client=engine)
    assert {k: engine.names(k) for k in before} == before
    assert len(report) == 4
    assert report.as_text().startswith("would remove: ")


def test_all_namespaces_still_spares_unlabelled_and_bases(engine):
    report = cleanup.clean(all_namespaces=True, client=engine)
    assert engine.names("container") == ["plain-c"]
    assert engine.names("image") == ["base-i", "plain-i"]
    assert engine.names("network") == ["bridge"]
    assert len(report) == 7


def test_a_named_namespace_instead_of_this_one(engine):
    report = cleanup.clean(client=engine, namespace="someone-else")  # STAGELAB_NAMESPACE is NS
    assert engine.names("container") == ["ours-c", "plain-c"]
    assert engine.names("image") == ["base-i", "dangling-ours", "ours-i", "plain-i"]
    assert engine.names("network") == ["bridge", "ours-n"]
    assert len(report) == 3 and report.failed == []


def test_image_with_a_tag_outside_the_lab_is_only_untagged(engine):
    engine.objects["image"][0].tags.append("myapp:latest")
    report = cleanup.clean(client=engine)
    mine = [o for o in engine.objects["image"] if o.name == "ours-i"]
    assert mine and mine[0].tags == ["myapp:latest"]
    assert any("myapp:latest" in line for line in report.kept)
    assert not any("go-server:scratch" in line for line in report)


def test_failures_are_reported_not_hidden(engine):
    engine.fail.add("ours-c")
    report = cleanup.clean(client=engine)
    assert any("ours-c" in line and "in use" in line for line in report.failed)
    assert "could not remove" in report.as_text()
    assert not any("ours-c" in line for line in report)


def test_nothing_to_remove(monkeypatch):
    monkeypatch.setenv("STAGELAB_NAMESPACE", NS)
    report = cleanup.clean(client=FakeEngine())
    assert list(report) == [] and "nothing to remove" in report.as_text()


def test_cli_clean_prints_report_and_fails_on_leftovers(monkeypatch, capsys):
    from stagelab import cli

    seen = {}

    def fake_clean(*, dry_run, all_namespaces):
        seen.update(dry_run=dry_run, all_namespaces=all_namespaces)
        report = cleanup.CleanReport(["image stagelab/x/y:z (abc)"], dry_run=dry_run)
        if not dry_run:
            report.failed.append("network n (1): in use")
        return report

    monkeypatch.setattr(cleanup, "clean", fake_clean)
    assert cli.main(["clean", "--dry-run"]) == 0
    assert seen == {"dry_run": True, "all_namespaces": False}
    assert "would remove: image stagelab/x/y:z" in capsys.readouterr().out
    assert cli.main(["clean", "--all-namespaces"]) == 1
    assert seen["all_namespaces"] is True
    assert "could not remove: network n" in capsys.readouterr().out
