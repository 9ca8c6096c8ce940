"""Working copies of an app (notebooks 06 and 07): fresh, without host artefacts, never outside the cache."""
from __future__ import annotations

import pytest

from stagelab.variants import UnknownApp
from stagelab.workspace import WorkspaceError, app_copy, working_copy


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGELAB_CACHE", str(tmp_path))
    return tmp_path


def test_copy_has_the_sources_and_not_the_host_artefacts(cache):
    copy = app_copy("ts-server", "t-copy")
    assert copy == cache / "notebooks" / "t-copy"
    assert (copy / "src" / "app.ts").read_text() != ""
    assert (copy / "Dockerfile").is_file()
    assert not (copy / "lessons").exists()


def test_a_second_copy_starts_from_the_app_again(cache):
    copy = app_copy("ts-server", "t-fresh")
    (copy / "src" / "app.ts").write_text("edited")
    (copy / "node_modules").mkdir()
    again = app_copy("ts-server", "t-fresh")
    assert (again / "src" / "app.ts").read_text() != "edited"
    assert not (again / "node_modules").exists()


def test_also_puts_a_lesson_file_next_to_the_dockerfiles(cache):
    copy = app_copy("ts-server", "t-also", also=["lessons/Dockerfile.bad-order"])
    assert (copy / "Dockerfile.bad-order").is_file()


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "/abs"])
def test_a_name_that_is_not_a_folder_name_is_refused(cache, name):
    with pytest.raises(WorkspaceError, match="plain folder name"):
        app_copy("ts-server", name)
    assert not (cache / "notebooks").exists()


def test_a_missing_extra_file_names_it(cache):
    with pytest.raises(WorkspaceError, match="no file .*lessons/Dockerfile.nope"):
        app_copy("ts-server", "t-missing", also=["lessons/Dockerfile.nope"])


def test_an_unknown_app_is_the_apps_error(cache):
    with pytest.raises(UnknownApp):
        app_copy("no-such-app", "t-unknown")


def test_an_extra_file_outside_the_app_is_refused(cache):
    with pytest.raises(WorkspaceError, match="to copy"):
        app_copy("ts-server", "t-outside", also=["../go-server/main.go"])


def test_any_folder_can_be_copied(cache, tmp_path):
    source = tmp_path / "pattern"
    (source / "node_modules").mkdir(parents=True)
    (source / "Dockerfile").write_text("FROM scratch\n")
    copy = working_copy(source, "t-folder")
    assert (copy / "Dockerfile").read_text() == "FROM scratch\n"
    assert not (copy / "node_modules").exists()


def test_a_missing_folder_is_named(cache, tmp_path):
    with pytest.raises(WorkspaceError, match="no folder"):
        working_copy(tmp_path / "nope", "t-nope")
