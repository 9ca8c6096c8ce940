"""One fixture set for the engine tests: a client, a namespace per test, and a tracker.

The shape of jupyter/docker-stacks' test harness: every test gets a namespace of its own
(``STAGELAB_NAMESPACE=itest-<hex>``, so its tags, names and labels collide with nobody's on
a shared engine) and a ``Tracker`` that removes, at teardown and also when the test failed,

- every container, image and network labelled with the tracker's namespaces (through
  ``stagelab.cleanup.clean``, the same code ``stagelab clean`` runs),
- everything registered by exact id or tag: unlabelled objects the test made on purpose,
  and the classic builder's untagged stage images that a build log says it created.

Fixtures:
    docker_client    session: the lab's engine client (``stagelab.engine.client()``)
    namespace        per test: sets STAGELAB_NAMESPACE (and so the subprocesses' and kernels')
    tracker          per test: a Tracker on that namespace
    module_tracker   per module: a namespace and Tracker shared by a module's tests (builds
                     made once per module, as in test_apps)

Nothing is removed by name pattern or by pruning: only what carries the tracker's namespace
label or was registered, so a test never deletes another helper's or learner's objects.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from typing import Any

import docker.errors
import pytest

from stagelab import cleanup, engine, naming
from stagelab.buildlog import created_ids


def new_namespace(prefix: str = "itest") -> str:
    """A namespace no other test run uses: ``itest-<8 hex>``."""
    return f"{prefix}-{secrets.token_hex(4)}"


class Tracker:
    """What one test made on the engine; ``remove_all`` removes it, whatever the test did."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.namespaces = [namespace]
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.images: list[str] = []        # ids or tags the test made: removed with force
        self.stage_images: list[str] = []  # build-log ids: removed only while untagged, never forced

    # --- registering --------------------------------------------------------------------------

    def also_namespace(self, namespace: str) -> str:
        """Clean this namespace's lab objects too (a second learner, a subprocess's namespace)."""
        if namespace not in self.namespaces:
            self.namespaces.append(namespace)
        return namespace

    def container(self, container: Any) -> Any:
        """Register a container (object or id) for removal; returns it."""
        self.containers.append(getattr(container, "id", container))
        return container

    def network(self, network: Any) -> Any:
        """Register a network (object or id) for removal; returns it."""
        self.networks.append(getattr(network, "id", network))
        return network

    def image(self, ref: str) -> str:
        """Register an image id or tag the test made (removed with force); returns it."""
        self.images.append(ref)
        return ref

    def build_log(self, log: Iterable[str]) -> list[str]:
        """Register the stage images a classic build log says were created (not the cached ones)."""
        ids = created_ids(log)
        self.stage_images.extend(i for i in ids if i not in self.stage_images)
        return ids

    # --- making -------------------------------------------------------------------------------

    def create_container(self, image: str, purpose: str = "test", **kwargs: Any) -> Any:
        """``containers.create`` with the lab's labels and a unique name, registered for removal."""
        kwargs.setdefault("labels", naming.lab_labels(purpose=purpose))
        kwargs.setdefault("name", naming.resource_name(purpose))
        return self.container(self.client.containers.create(image, **kwargs))

    def create_network(self, purpose: str = "net", **kwargs: Any) -> Any:
        """``networks.create`` with the lab's labels and a unique name, registered for removal."""
        kwargs.setdefault("labels", naming.lab_labels(purpose=purpose))
        return self.network(self.client.networks.create(naming.resource_name(purpose), **kwargs))

    def has_path(self, image: str, path: str) -> bool:
        """Whether ``path`` (file or folder) exists in ``image``, through a created, never started container."""
        container = self.create_container(image, purpose="probe", command=["/nonexistent"])
        try:
            container.get_archive(path)
            return True
        except docker.errors.NotFound:
            return False
        finally:
            container.remove(force=True)

    # --- removing -----------------------------------------------------------------------------

    def remove_all(self) -> list[str]:
        """Remove everything tracked; returns what could not be removed (empty when all went)."""
        left: list[str] = []
        for cid in self.containers:
            left += _remove(lambda: self.client.containers.get(cid).remove(force=True), f"container {cid[:12]}")
        for ns in self.namespaces:
            report = cleanup.clean(client=self.client, namespace=ns)
            left += [f"namespace {ns}: {item}" for item in report.failed]
        for nid in self.networks:
            left += _remove(lambda: self.client.networks.get(nid).remove(), f"network {nid[:12]}")
        for ref in reversed(self.images):
            left += _remove(lambda: self.client.images.remove(ref, force=True, noprune=False), f"image {ref}")
        for image_id in reversed(self.stage_images):
            try:
                if self.client.images.get(image_id).tags:
                    continue  # tagged by someone since: not a leftover of ours
                self.client.images.remove(image_id, noprune=False)
            except docker.errors.APIError:
                pass  # gone with its child, or a later build (maybe someone else's) builds on it
        return left


def _remove(action: Any, what: str) -> list[str]:
    """Run one removal; [] when done or already gone, else one line saying what stayed and why."""
    try:
        action()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        return [f"{what}: {getattr(exc, 'explanation', None) or exc}"]
    return []


def _tracked(client: Any, namespace: str) -> Iterator[Tracker]:
    tracker = Tracker(client, namespace)
    try:
        yield tracker
    finally:
        left = tracker.remove_all()
        if left:
            pytest.fail("the test left objects on the engine:\n" + "\n".join(left), pytrace=False)


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """The lab's engine client; a test that needs the engine fails with the fix when none answers."""
    return engine.client()


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch) -> str:
    """A namespace of this test's own, set as STAGELAB_NAMESPACE (inherited by subprocesses and kernels)."""
    ns = new_namespace()
    monkeypatch.setenv("STAGELAB_NAMESPACE", ns)
    return ns


@pytest.fixture
def tracker(docker_client: Any, namespace: str) -> Iterator[Tracker]:
    """Removes what the test made (its namespace's lab objects and everything registered), even on failure."""
    yield from _tracked(docker_client, namespace)


@pytest.fixture(scope="module")
def module_tracker(docker_client: Any) -> Iterator[Tracker]:
    """A namespace and Tracker for a whole module (STAGELAB_NAMESPACE set while its tests run)."""
    with pytest.MonkeyPatch.context() as mp:
        ns = new_namespace()
        mp.setenv("STAGELAB_NAMESPACE", ns)
        yield from _tracked(docker_client, ns)
