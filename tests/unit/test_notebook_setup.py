"""The notebooks' Setup helper, without an engine."""
from __future__ import annotations

from dataclasses import dataclass

from stagelab.errors import EngineUnavailable
from stagelab.notebook import Lab, _show_error


@dataclass
class _Profile:
    name: str = "offline"
    reason: str = "no registry answered within 3 s"


@dataclass
class _Base:
    role: str
    image: str
    present: bool


def _lab(*present: bool) -> Lab:
    bases = [_Base(f"ROLE_{i}", f"stagelab-offline/img:{i}", p) for i, p in enumerate(present)]
    return Lab(engine="unix:///var/run/docker.sock", engine_version="20.10.24", api_version="1.41",
               profile=_Profile(), bases=bases, namespace="ada")


def test_lab_says_which_profile_and_which_bases_are_missing() -> None:
    lab = _lab(True, False)
    html = lab._repr_html_()
    assert "Base-image profile: offline" in html and "no registry answered" in html
    assert "1 base image(s) missing" in html and "make bases" in html
    assert [b.role for b in lab.missing_bases()] == ["ROLE_1"]
    assert "MISSING" in repr(lab)


def test_complete_lab_shows_no_missing_hint() -> None:
    lab = _lab(True, True)
    html = lab._repr_html_()
    # every row says present, no row and no hint says missing (the row marker included)
    assert html.count("✓ present") == 2, html
    assert "missing" not in html.lower(), html
    assert lab.missing_bases() == []
    assert "MISSING" not in repr(lab)


def test_each_missing_base_is_marked_in_its_own_row() -> None:
    html = _lab(False, True, False)._repr_html_()
    assert html.count("✗ missing") == 2 and html.count("✓ present") == 1, html
    assert "2 base image(s) missing" in html


def test_error_box_has_message_and_fix_but_no_traceback(capsys) -> None:
    err = EngineUnavailable("Docker engine not reachable at unix:///x", fix="stagelab doctor --fix")
    box = err._repr_html_()
    assert "Docker engine not reachable" in box and "stagelab doctor --fix" in box
    assert "Traceback" not in box
    sent = []

    class Shell:  # records what reaches the frontend as the cell's error output
        def _showtraceback(self, etype, value, stb):
            sent.append((etype, value, stb))

    shown = _show_error(Shell(), EngineUnavailable, err, None)  # displays without raising
    # one line, sent as a real error (nbval/papermill fail the cell), instead of a traceback
    assert shown == [f"EngineUnavailable: {err}"], shown
    assert sent == [(EngineUnavailable, err, shown)], sent
