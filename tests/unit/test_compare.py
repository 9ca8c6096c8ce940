"""stagelab.compare on small made-up ImageReports: ratios, thresholds, renderings."""
from __future__ import annotations

import hashlib
import json
import math
import re

import pytest

from stagelab.compare import Comparison, UnknownBaseline, compare
from stagelab.inspect import ImageReport, LayerInfo, Surface
from stagelab.naming import APP_LABEL, PROFILE_LABEL, VARIANT_LABEL
from stagelab.sizes import SIZE_LABEL


def make_report(variant: str, size: int, *, app: str = "go-server", profile: str = "offline",
                layers: int = 2, compressed: int | None = None, user: str = "",
                shell: str | None = "/bin/sh", package_managers: list[str] | None = None,
                compilers: list[str] | None = None, contents: bool = True) -> ImageReport:
    per = size // layers
    sizes = [per] * (layers - 1) + [size - per * (layers - 1)]
    return ImageReport(
        ref=f"stagelab/test/{app}:{variant}",
        image_id="sha256:" + hashlib.sha256(f"{app}:{variant}".encode()).hexdigest(),
        size=size,
        compressed_size=compressed,
        layers=[LayerInfo(index=i, size=s, created_by=f"/bin/sh -c #(nop) COPY step{i} /") for i, s in enumerate(sizes)],
        user=user,
        labels={APP_LABEL: app, VARIANT_LABEL: variant, PROFILE_LABEL: profile},
        profile=profile,
        surface=Surface(
            shell=shell if contents else None,
            package_managers=(package_managers or []) if contents else None,
            compilers=(compilers or []) if contents else None,
            executables=12 if contents else None,
            setuid=["/bin/su"] if contents and shell else ([] if contents else None),
            os_packages=90 if contents and shell else None,
            runs_as_root=user in ("", "root", "0"),
            from_contents=contents,
        ),
        contents=contents,
    )


@pytest.fixture
def reports() -> list[ImageReport]:
    return [
        make_report("single", 946_000_000, layers=8, compilers=["go", "gcc"], package_managers=["apt", "dpkg"],
                    compressed=310_000_000),
        make_report("alpine", 18_500_000, layers=4, package_managers=["apk"]),
        make_report("scratch", 4_800_000, layers=1, shell=None, user="65532:65532", compressed=2_300_000),
    ]


def test_ratios_against_explicit_baseline(reports: list[ImageReport]) -> None:
    comp = compare(reports, baseline="single")
    single, alpine, scratch = comp.rows
    assert single.is_baseline and not scratch.is_baseline
    assert single.ratio == pytest.approx(1.0)
    assert scratch.ratio == pytest.approx(946_000_000 / 4_800_000)
    assert scratch.percent_of_baseline == pytest.approx(100 * 4_800_000 / 946_000_000)
    assert alpine.ratio == pytest.approx(946_000_000 / 18_500_000)
    assert comp.ratio("go-server:scratch") == scratch.ratio
    assert comp.baseline == reports[0].ref


def test_default_baseline_is_largest_whatever_the_order(reports: list[ImageReport]) -> None:
    comp = compare(list(reversed(reports)))
    assert [r.variant for r in comp.rows] == ["scratch", "alpine", "single"]
    assert comp.row("single").is_baseline
    assert all(r.ratio >= 1 for r in comp.rows)


def test_baseline_given_as_report_outside_the_list_is_shown_first(reports: list[ImageReport]) -> None:
    comp = compare(reports[1:], baseline=reports[0])
    assert [r.variant for r in comp.rows] == ["single", "alpine", "scratch"]
    # the baseline was only a reference point: --max-size does not apply to it
    assert comp.check(max_size="20MB") == []
    assert [v.image for v in compare(reports, baseline=reports[0]).check(max_size="20MB")] == [reports[0].ref]


def test_baseline_by_id_prefix_and_unknown_baseline(reports: list[ImageReport]) -> None:
    prefix = reports[1].image_id.removeprefix("sha256:")[:12]
    assert compare(reports, baseline=prefix).row("alpine").is_baseline
    with pytest.raises(UnknownBaseline) as info:
        compare(reports, baseline="go-server:nope")
    assert "go-server:nope" in str(info.value) and info.value.fix


def test_labels_give_app_variant_profile(reports: list[ImageReport]) -> None:
    row = compare(reports).row("scratch")
    assert (row.app, row.variant, row.profile, row.name) == ("go-server", "scratch", "offline", "go-server:scratch")
    assert row.layers == 1
    assert row.compressed_size == 2_300_000
    assert row.shell is None and row.user_text == "65532:65532" and row.runs_as_root is False
    single = compare(reports).row("single")
    assert single.compilers == ("go", "gcc") and single.setuid == 1 and single.user_text == "root"


def test_single_image_has_no_ratio() -> None:
    comp = compare([make_report("scratch", 1000)])
    assert comp.rows[0].ratio is None and comp.baseline is None
    assert "vs baseline" in comp.to_text()


def test_check_max_size_names_image_measured_and_limit(reports: list[ImageReport]) -> None:
    comp = compare(reports, baseline="single")
    violations = comp.check(max_size="20MB")
    assert [v.image for v in violations] == [reports[0].ref]
    v = violations[0]
    assert v.check == "max-size" and v.measured == 946_000_000 and v.limit == 20_000_000
    assert reports[0].ref in v.message and "946 MB" in v.message and "20 MB" in v.message
    assert comp.check(max_size=1_000_000_000) == []


def test_check_min_ratio_exempts_baseline(reports: list[ImageReport]) -> None:
    comp = compare(reports, baseline="single")
    assert comp.check(min_ratio=10) == []
    violations = comp.check(min_ratio=100)
    assert [v.image for v in violations] == [reports[1].ref]  # alpine is ~51x, scratch ~197x
    assert "51.1x" in violations[0].message and "100" in violations[0].message
    both = comp.check(max_size="10MB", min_ratio=100)
    assert {v.check for v in both} == {"max-size", "min-ratio"}


def test_min_ratio_without_baseline_is_a_violation() -> None:
    comp = compare([make_report("scratch", 1000)])
    (v,) = comp.check(min_ratio=2)
    assert math.isnan(v.measured) and "--baseline" in v.message


def test_json_shape_and_units(reports: list[ImageReport]) -> None:
    comp = compare(reports, baseline="single")
    data = json.loads(comp.to_json(comp.check(max_size="20MB")))
    assert data["schema"] == "stagelab.compare/1"
    assert data["baseline"] == reports[0].ref and data["profiles"] == ["offline"]
    assert "bytes" in data["units"]["size"] and SIZE_LABEL in data["units"]["size"]
    assert "percent" in data["units"]["percent_of_baseline"]
    names = [i["name"] for i in data["images"]]
    assert names == ["go-server:single", "go-server:alpine", "go-server:scratch"]
    scratch = data["images"][2]
    assert scratch["size"] == 4_800_000 and scratch["compressed_size"] == 2_300_000
    assert scratch["percent_of_baseline"] < 2
    assert data["images"][1]["compressed_size"] is None
    assert set(scratch) >= {"image", "image_id", "app", "variant", "profile", "ratio", "layers", "shell",
                            "package_managers", "compilers", "executables", "setuid", "os_packages",
                            "user", "runs_as_root", "is_baseline"}
    assert data["ok"] is False and data["violations"][0]["check"] == "max-size"
    assert "violations" not in json.loads(comp.to_json())


def test_json_nan_is_null() -> None:
    comp = compare([make_report("scratch", 1000)])
    text = comp.to_json(comp.check(min_ratio=2))
    assert "NaN" not in text and json.loads(text)["violations"][0]["measured"] is None


def test_markdown_table(reports: list[ImageReport]) -> None:
    md = compare(reports, baseline="single").to_markdown()
    lines = md.strip().splitlines()
    assert lines[0].startswith(f"_Size = {SIZE_LABEL}") and "profile: offline" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 3
    ncols = table[0].count("|")
    assert all(line.count("|") - line.count("\\|") == ncols for line in table)
    assert "**go-server:single**" in table[2]
    assert "197x smaller" in table[4] and "4.8 MB" in table[4]


def test_text_table_is_aligned(reports: list[ImageReport]) -> None:
    text = compare(reports, baseline="single").to_text()
    lines = text.splitlines()
    assert SIZE_LABEL in lines[0]
    assert lines[1].startswith("image") and set(lines[2]) <= {"-", " "}
    assert "baseline" in lines[3] and "51x smaller" in lines[4] and "197x smaller" in lines[5]


def test_html_caption_says_what_was_measured(reports: list[ImageReport]) -> None:
    page = compare(reports, baseline="single")._repr_html_()
    caption = re.search(r"<caption[^>]*>(.*?)</caption>", page).group(1)
    assert SIZE_LABEL in caption
    assert "profile: offline" in caption and re.search(r"measured \d{4}-\d\d-\d\d", caption)
    assert 'class="stagelab-comparison"' in page
    assert page.count("<tr") == 1 + 3 and page.count('class="stagelab-baseline"') == 1


def test_html_escapes_names() -> None:
    rep = make_report("x", 10)
    rep.ref = "<script>"
    rep.labels = {}
    assert "<script>" not in compare([rep])._repr_html_()


def test_mixed_profiles_are_flagged(reports: list[ImageReport]) -> None:
    reports[1].profile = "upstream"
    comp = compare(reports)
    assert comp.profiles == ["offline", "upstream"]
    assert "MIXED" in comp.caption()


def test_unknown_surface_shows_question_marks() -> None:
    comp = compare([make_report("a", 100, contents=False), make_report("b", 10, shell=None)])
    a, b = comp.rows
    assert not a.surface_known and a.package_managers is None
    cells = comp._cells(a)
    assert cells[7] == "?" and cells[8] == "?" and cells[12] == "?"
    assert comp._cells(b)[7] == "no" and comp._cells(b)[12] == "none"
    assert json.loads(comp.to_json())["images"][0]["package_managers"] is None


def test_empty_is_an_error() -> None:
    with pytest.raises(Exception, match="nothing to compare"):
        compare([])


def test_comparison_type(reports: list[ImageReport]) -> None:
    comp = compare(reports)
    assert isinstance(comp, Comparison) and len(comp) == 3
    text = str(comp).splitlines()
    # the caption first, then the header row, a rule, and one line per image in the given order
    assert text[0].startswith("Size = ") and text[1].split()[:2] == ["image", "profile"]
    assert set(text[2].replace(" ", "")) == {"-"}
    assert [line.split()[0] for line in text[3:]] == [r.name for r in comp.rows]


# --- the `stagelab compare` command (inspect replaced by fakes: no engine) ------------------

@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch, reports: list[ImageReport]) -> list[str]:
    """Make stagelab.inspect.inspect answer from the fake reports; returns the names asked for."""
    import stagelab.inspect as inspect_mod

    by_name = {r.ref: r for r in reports}
    asked: list[str] = []

    def fake_inspect(image: str, **kwargs: object) -> ImageReport:
        asked.append(image)
        assert kwargs.get("contents", True), "compare needs contents for the surface columns"
        if image not in by_name:
            raise inspect_mod.ImageNotFound(f"no local image named {image!r}", "stagelab build ... or docker images")
        return by_name[image]

    monkeypatch.setattr(inspect_mod, "inspect", fake_inspect)
    return asked


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from stagelab.cli import main

    code = main(["compare", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_scratch_is_under_2_percent_of_single(fake_engine, reports, capsys) -> None:
    single, _, scratch = (r.ref for r in reports)
    code, out, err = _run(capsys, scratch, "--baseline", single, "--json")
    assert code == 0
    data = json.loads(out)
    assert [i["variant"] for i in data["images"]] == ["single", "scratch"]
    assert data["images"][1]["percent_of_baseline"] < 2 and data["ok"] is True


def test_cli_max_size_passes_for_scratch_and_fails_for_single(fake_engine, reports, capsys) -> None:
    single, _, scratch = (r.ref for r in reports)
    code, out, err = _run(capsys, scratch, "--max-size", "20MB")
    assert code == 0 and "all thresholds met" in err
    code, out, err = _run(capsys, single, "--max-size", "20MB")
    assert code == 1
    assert single in err and "946 MB" in err and "--max-size 20 MB" in err


def test_cli_min_ratio_says_which_image(fake_engine, reports, capsys) -> None:
    single, alpine, scratch = (r.ref for r in reports)
    code, out, err = _run(capsys, single, alpine, scratch, "--baseline", "go-server:single", "--min-ratio", "100")
    assert code == 1
    assert alpine in err and scratch not in err and "--min-ratio 100" in err
    assert "baseline" in out  # the table still printed on stdout
    code, *_ = _run(capsys, single, alpine, scratch, "--baseline", single, "--min-ratio", "10x")
    assert code == 0


def test_cli_markdown(fake_engine, reports, capsys) -> None:
    code, out, err = _run(capsys, *(r.ref for r in reports), "--markdown", "--max-size", "20MB")
    assert code == 1
    assert out.count("\n|") >= 4 and "- ✗ " + reports[0].ref in out


def test_cli_unknown_image_is_one_message_exit_2(fake_engine, reports, capsys) -> None:
    code, out, err = _run(capsys, reports[2].ref, "stagelab/test/nope:latest")
    assert code == 2
    assert out == "" and "nope" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    code, out, err = _run(capsys, reports[2].ref, "--baseline", "stagelab/test/nope:latest")
    assert code == 2 and "nope" in err


def test_cli_bad_threshold_values_exit_2(fake_engine, reports, capsys) -> None:
    from stagelab.cli import main

    for argv in (["--max-size", "twenty"], ["--min-ratio", "-3"], ["--json", "--markdown"]):
        with pytest.raises(SystemExit) as info:
            main(["compare", reports[2].ref, *argv])
        assert info.value.code == 2
    assert "20MB" in capsys.readouterr().err


def test_cli_baseline_by_other_name_of_a_listed_image_is_not_inspected_twice(fake_engine, reports, capsys) -> None:
    code, out, _ = _run(capsys, reports[0].ref, reports[2].ref, "--baseline", reports[0].ref, "--json")
    assert code == 0 and fake_engine == [reports[0].ref, reports[2].ref]
    assert len(json.loads(out)["images"]) == 2


def test_images_without_profile_label_are_said_unknown(reports: list[ImageReport]) -> None:
    reports[2].profile = None
    reports[2].labels = {}
    comp = compare(reports)
    assert comp.profile_text == "offline (other images: unknown)" and "MIXED" not in comp.caption()


def test_rows_carry_the_builder_and_the_engine(reports: list[ImageReport]) -> None:
    class Build:   # the fields of build.BuildResult that compare reads
        def __init__(self, image_id: str, builder: str) -> None:
            self.image_id, self.builder = image_id, builder

    for rep in reports:
        rep.engine = "Docker 28.5.2, containerd image store"
    comp = compare(reports, builds=[Build(reports[0].image_id, "buildkit"), Build("sha256:other", "classic")])
    assert [r.builder for r in comp.rows] == ["buildkit", None, None]
    assert {r.engine for r in comp.rows} == {"Docker 28.5.2, containerd image store"}
    assert "engine: Docker 28.5.2, containerd image store" in comp.caption() and "builder: buildkit" in comp.caption()
    data = json.loads(comp.to_json())
    assert data["engines"] == ["Docker 28.5.2, containerd image store"] and data["builders"] == ["buildkit"]
    assert data["images"][0]["builder"] == "buildkit" and data["images"][1]["builder"] is None
