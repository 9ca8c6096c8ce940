"""variants.toml reading, and the rules every app Dockerfile follows (no engine needed)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stagelab import dockerfile, variants
from stagelab.dockerfile import Dockerfile, Stage
from stagelab.errors import StagelabError
from stagelab.naming import repo_root
from stagelab.catalogue import roles

ROLE_DEFAULTS = {role.arg: role.upstream for role in roles()}
APPS = variants.app_names()
ALL_VARIANTS = [(a, v) for a in APPS for v in variants.load_app(a).variants]
# the deliberate single-stage baselines (root, whole toolchain) of issue 4
BASELINES = {"single"}
# build-only targets: their RUN is the point (go test runs while building); nobody ships or runs them
BUILD_ONLY = {("go-server", "test")}
RUNTIME_VARIANTS = [av for av in ALL_VARIANTS if av not in BUILD_ONLY]


# --- the Dockerfiles, read with the package's own model -------------------------------------


def parse_dockerfile(path: Path) -> Dockerfile:
    df = dockerfile.read(path)
    first_from = df.stages[0].line if df.stages else 0
    before = [ins.keyword for ins in df.instructions if ins.line < first_from]
    assert set(before) <= {"ARG"}, f"{path.name}: {before} before the first FROM"
    return df


def dockerfile_of(app: str, name: str) -> tuple[variants.Variant, Dockerfile, Stage]:
    var = variants.get_variant(app, name)
    df = parse_dockerfile(var.dockerfile)
    try:
        return var, df, df.stage(var.target or None)
    except KeyError:
        raise AssertionError(f"{var.dockerfile.name}: no stage named {var.target!r}") from None


def effective(df: Dockerfile, stage: Stage, keyword: str) -> str | None:
    """The last ``keyword`` (USER, CMD, HEALTHCHECK ...) in effect for ``stage``, inherited via FROM <stage>."""
    for st in df.chain(stage):
        found = st.all(keyword)
        if found:
            return found[-1]
    return None


# --- loading variants.toml --------------------------------------------------------------------


def test_both_apps_are_listed():
    assert {"go-server", "ts-server"} <= set(APPS)


def test_issue_4_variants_exist():
    go = variants.load_app("go-server")
    assert {"single", "scratch", "scratch-unstripped", "scratch-cgo", "scratch-certs", "distroless"} <= set(go.variants)
    ts = variants.load_app("ts-server")
    assert {"single", "multi", "multi-slim", "distroless", "bundle", "development", "test", "production"} <= set(ts.variants)
    assert go.port == 8080 and go.binary == "/server"
    assert ts.port == 3000


def test_variant_fields():
    var = variants.get_variant("go-server", "scratch")
    assert var.app == "go-server" and var.name == "scratch"
    assert var.dockerfile == repo_root() / "apps" / "go-server" / "Dockerfile"
    assert var.context == repo_root() / "apps" / "go-server"
    assert var.target is None and var.starts and var.final_base == "scratch"
    assert var.title and var.lesson
    dev = variants.get_variant("ts-server", "development")
    assert dev.target == "development"
    assert variants.get_variant("go-server", "scratch-cgo").starts is False


def test_unknown_app_and_variant_messages():
    with pytest.raises(variants.UnknownApp) as exc:
        variants.load_app("go-sever")
    assert "go-server" in str(exc.value) and isinstance(exc.value, StagelabError)
    with pytest.raises(variants.UnknownVariant) as exc:
        variants.get_variant("go-server", "scrach")
    assert "Did you mean 'scratch'" in exc.value.message
    assert "distroless" in exc.value.fix


def _write_app(root: Path, toml: str, files: tuple[str, ...] = ("Dockerfile",)) -> Path:
    app = root / "apps" / "demo"
    app.mkdir(parents=True)
    for name in files:
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text("FROM scratch\n")
    (app / "variants.toml").write_text(toml)
    (root / "pyproject.toml").write_text("")
    return app


GOOD = """
[app]
name = "demo"
port = 8000
binary = "/demo"
[variants.one]
dockerfile = "Dockerfile"
title = "One"
lesson = "A  lesson
  on two lines"
final_base = "scratch"
"""


def test_load_from_another_root(tmp_path, monkeypatch):
    _write_app(tmp_path, GOOD.replace('lesson = "A  lesson\n  on two lines"', 'lesson = """A  lesson\n  on two lines"""'))
    monkeypatch.setenv("STAGELAB_ROOT", str(tmp_path))
    assert variants.app_names() == ["demo"]
    app = variants.load_app("demo")
    one = app.variant("one")
    assert one.target is None and one.starts is True  # defaults
    assert one.lesson == "A lesson on two lines"
    assert one.dockerfile.name == "Dockerfile" and one.dockerfile.parent == one.context


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda t: t.replace('port = 8000', 'port = "8000"'), "port must be an integer"),
        (lambda t: t.replace('binary = "/demo"', 'binary = "demo"'), "absolute path"),
        (lambda t: t.replace('name = "demo"', 'name = "other"'), "differs from its folder"),
        (lambda t: t.replace('dockerfile = "Dockerfile"', 'dockerfile = "Dockerfile.nope"'), "does not exist"),
        (lambda t: t.replace('dockerfile = "Dockerfile"', 'dockerfile = "../../Dockerfile"'), "outside"),
        (lambda t: t.replace('title = "One"', 'titel = "One"'), "unknown keys: titel"),
        (lambda t: t.replace('final_base = "scratch"', 'final_base = "scratch"\nstarts = "no"'), "starts must be"),
        (lambda t: t.replace('binary = "/demo"\n', ''), "lacks binary"),
        (lambda t: t + "[[", "Cannot read"),
        (lambda t: t.split("[variants.one]")[0], "lists no [variants"),
    ],
)
def test_bad_variants_file(tmp_path, monkeypatch, edit, expected):
    good = GOOD.replace('lesson = "A  lesson\n  on two lines"', 'lesson = "x"')
    _write_app(tmp_path, edit(good))
    monkeypatch.setenv("STAGELAB_ROOT", str(tmp_path))
    with pytest.raises(variants.BadVariantsFile) as exc:
        variants.load_app("demo")
    assert expected in exc.value.message
    assert exc.value.fix


# --- the rules every Dockerfile follows -------------------------------------------------------


@pytest.mark.parametrize("app, name", ALL_VARIANTS)
def test_base_images_are_role_args_with_official_defaults(app, name):
    var, df, stage = dockerfile_of(app, name)
    for st in df.stages:
        m = re.fullmatch(r"\$\{?(\w+)\}?", st.base)
        if m:
            arg = m.group(1)
            assert arg in df.global_args, f"{var.dockerfile.name}: FROM ${{{arg}}} without ARG before the first FROM"
            assert arg in ROLE_DEFAULTS, f"{var.dockerfile.name}: {arg} is not a base-image role of stagelab.profiles"
            assert df.global_args[arg] == ROLE_DEFAULTS[arg], (
                f"{var.dockerfile.name}: ARG {arg} default {df.global_args[arg]!r}, role upstream {ROLE_DEFAULTS[arg]!r}")
        else:
            names = {s.alias for s in df.stages[: st.index] if s.alias}
            assert st.base == "scratch" or st.base in names, f"{var.dockerfile.name}: FROM {st.base} is hard-coded"
    # the variant's final_base says which role the final stage (or the stage it builds on) uses
    root = df.chain(stage)[-1].base
    assert root.strip("${}") == var.final_base


@pytest.mark.parametrize("app, name", RUNTIME_VARIANTS)
def test_final_stage_runs_as_non_root(app, name):
    var, df, stage = dockerfile_of(app, name)
    user = effective(df, stage, "USER")
    if name in BASELINES:
        assert user is None, "the single-stage baseline deliberately runs as root"
        return
    assert user, f"{var.dockerfile.name}: no USER in the final stage"
    assert user.split(":")[0] not in ("root", "0"), user


@pytest.mark.parametrize("app, name", RUNTIME_VARIANTS)
def test_exec_form_cmd_and_no_package_managers(app, name):
    var, df, stage = dockerfile_of(app, name)
    cmd = effective(df, stage, "CMD")
    assert cmd is not None, f"{var.dockerfile.name}: no CMD"
    assert isinstance(json.loads(cmd), list), f"shell-form CMD {cmd!r}"
    hc = effective(df, stage, "HEALTHCHECK")
    if hc:
        assert isinstance(json.loads(hc.split(" CMD ", 1)[1]), list), f"shell-form HEALTHCHECK {hc!r}"
    # stand-ins are Debian even for *-alpine roles: no apk/apt in the app Dockerfiles
    for st in df.stages:
        for run in st.all("RUN"):
            assert not re.search(r"\b(apk|apt-get|apt)\b", run), f"{var.dockerfile.name}: {run}"


@pytest.mark.parametrize("app, name", ALL_VARIANTS)
def test_copy_from_names_an_earlier_stage(app, name):
    var, df, _ = dockerfile_of(app, name)
    for st in df.stages:
        earlier = {s.alias for s in df.stages[: st.index] if s.alias}
        for copy in st.all("COPY"):
            for ref in re.findall(r"--from=(\S+)", copy):
                assert ref in earlier, f"{var.dockerfile.name}: COPY --from={ref} names no earlier stage"
            # the source article's mistake: COPY of a path from another stage without --from
            if "--from" not in copy:
                assert not re.search(r"(^|\s)/(app|out|src)/", copy), f"{var.dockerfile.name}: {copy}"


@pytest.mark.parametrize("app, name", [(a, v) for a, v in RUNTIME_VARIANTS if v not in BASELINES])
def test_multi_stage_variants_have_named_stages_and_labels(app, name):
    var, df, stage = dockerfile_of(app, name)
    assert len(df.stages) >= 2
    assert all(st.alias for st in df.stages[:-1]), f"{var.dockerfile.name}: unnamed stage"
    labels = " ".join(lab for st in df.chain(stage) for lab in st.all("LABEL"))
    assert "org.opencontainers.image.title=" in labels
    if var.dockerfile.parent == var.context:  # the apps' own Dockerfiles (lessons/ may be terser)
        for key in ("source", "description"):
            assert f"org.opencontainers.image.{key}=" in labels, f"{var.dockerfile.name}: no {key} label"


@pytest.mark.parametrize("app, name", [(a, v) for a, v in ALL_VARIANTS
                                       if v not in BASELINES | {"development"}
                                       and variants.get_variant(a, v).starts])
def test_production_variants_have_a_healthcheck_without_curl(app, name):
    var, df, stage = dockerfile_of(app, name)
    hc = effective(df, stage, "HEALTHCHECK")
    assert hc, f"{var.dockerfile.name}: no HEALTHCHECK"
    assert "curl" not in hc and "wget" not in hc


def test_lockfiles_and_module_files_are_copied_before_sources():
    for app, name in ALL_VARIANTS:
        var, df, _ = dockerfile_of(app, name)
        for st in df.stages:
            copies = [c for c in st.all("COPY") if "--from" not in c]
            if not copies:
                continue
            manifest = next((i for i, c in enumerate(copies) if "go.mod" in c or "package-lock.json" in c), None)
            source = next((i for i, c in enumerate(copies) if re.search(r"\*\.go|src/|^\. ", c)), None)
            if source is not None and any(("go.mod" in c or "package" in c) for c in copies):
                assert manifest is not None and manifest < source, f"{var.dockerfile.name} stage {st.name}"


def test_go_sum_is_not_copied():
    """A standard-library module has no go.sum; COPY of a missing file fails the build."""
    app = variants.load_app("go-server")
    assert not (app.path / "go.sum").exists()
    assert "require" not in (app.path / "go.mod").read_text()
    for var in app.variants.values():
        for st in parse_dockerfile(var.dockerfile).stages:
            for copy in st.all("COPY"):
                assert "go.sum" not in copy, f"{var.dockerfile.name}: {copy}"


def test_go_variants_differ_where_the_lesson_says():
    def shipped_build(name: str) -> str:
        """The `go build` RUN that writes the file the final stage copies to /server."""
        _, df, final = dockerfile_of("go-server", name)
        src = next(c.split()[1] for c in final.all("COPY") if c.endswith(" /server"))
        runs = [r for st in df.stages for r in st.all("RUN") if "go build" in r and f"-o {src} " in r]
        assert len(runs) == 1, runs
        return runs[0]

    assert "-w -s" in shipped_build("scratch") and "-w -s" not in shipped_build("scratch-unstripped")
    assert "-X main.version=" in shipped_build("scratch-unstripped")
    _, df, _ = dockerfile_of("go-server", "scratch")
    assert "CGO_ENABLED=0" in " ".join(df.stages[0].all("ENV"))
    _, df, _ = dockerfile_of("go-server", "scratch-cgo")
    assert "CGO_ENABLED=1" in " ".join(df.stages[0].all("ENV"))
    assert df.stages[0].base == "${GOLANG_IMAGE}"  # the Debian toolchain has gcc
    _, df, final = dockerfile_of("go-server", "scratch-certs")
    copies = " ".join(final.all("COPY"))
    for needed in ("ca-certificates.crt", "zoneinfo.zip", "passwd", "group"):
        assert needed in copies
    assert "ZONEINFO=" in " ".join(final.all("ENV"))
    assert final.all("HEALTHCHECK")[-1].endswith('CMD ["/server", "-healthcheck"]')


def test_go_builders_share_cached_steps():
    """The static variants' builders repeat the default one step for step: layer-cache hits."""
    def builder(name: str) -> list[tuple[str, str]]:
        _, df, _ = dockerfile_of("go-server", name)
        return [("FROM", df.stages[0].base)] + [(i.keyword, i.args) for i in df.stages[0].instructions]

    reference = builder("scratch")
    for name in ("scratch-unstripped", "scratch-certs", "distroless"):
        assert builder(name)[: len(reference)] == reference, name


def test_go_test_stage_is_not_a_dependency_of_the_final_stage():
    _, df, final = dockerfile_of("go-server", "scratch")
    test = df.stage("test")
    assert any("go test" in r for r in test.all("RUN"))
    assert all("--from=test" not in c for c in final.all("COPY")) and final.base == "scratch"
    assert test not in df.needed(final.alias)  # so BuildKit skips it when building the final stage
    assert variants.get_variant("go-server", "test").target == "test"


def test_ts_targets_and_corrections():
    _, df, _ = dockerfile_of("ts-server", "production")
    names = [st.name for st in df.stages]
    assert names == ["base", "development", "test", "builder", "production"]
    assert df.stages[-1].name == "production"  # last stage = the default target
    dev = df.stage("development")
    assert "watch" in effective(df, dev, "CMD")
    assert json.loads(effective(df, df.stage("test"), "CMD")) == ["npm", "test"]
    for name in ("multi", "multi-slim", "production"):
        _, df, final = dockerfile_of("ts-server", name)
        runs = " ".join(r for st in df.stages for r in st.all("RUN"))
        assert "--only=production" not in runs and "useradd" not in runs
        assert "npm ci --omit=dev" in " ".join(final.all("RUN"))
        assert any(c.startswith("--from=builder") for c in final.all("COPY"))
        assert effective(df, final, "USER") == "node"
    _, df, final = dockerfile_of("ts-server", "distroless")
    assert json.loads(final.all("CMD")[-1]) == ["dist/index.js"]  # node is the distroless ENTRYPOINT
    assert not final.all("RUN")  # no shell there
    _, df, final = dockerfile_of("ts-server", "bundle")
    assert not any("node_modules" in c for c in final.all("COPY"))


def test_ts_package_and_lockfile():
    app = variants.load_app("ts-server")
    pkg = json.loads((app.path / "package.json").read_text())
    lock = json.loads((app.path / "package-lock.json").read_text())
    assert "express" in pkg["dependencies"]
    for dev in ("typescript", "@types/node", "@types/express", "tsx", "esbuild"):
        assert dev in pkg["devDependencies"], dev
    assert set(pkg["dependencies"]).isdisjoint(pkg["devDependencies"])
    assert lock["lockfileVersion"] >= 2
    assert lock["packages"][""]["dependencies"] == pkg["dependencies"]
    assert lock["packages"][""]["devDependencies"] == pkg["devDependencies"]
    assert not lock["packages"]["node_modules/express"].get("dev", False)
    assert lock["packages"]["node_modules/typescript"]["dev"] is True
    tsconfig = json.loads((app.path / "tsconfig.json").read_text())
    assert tsconfig["compilerOptions"]["strict"] is True


@pytest.mark.parametrize("app", APPS)
def test_dockerignore_keeps_build_outputs_out(app):
    path = variants.load_app(app).path / ".dockerignore"
    patterns = {line.strip().rstrip("/").lstrip("/") for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert {".git", "node_modules"} <= patterns
    assert "dist" in patterns or "server" in patterns
    assert not any(p.startswith("Dockerfile") for p in patterns)  # the Dockerfiles stay in the context


@pytest.mark.parametrize("app, needles", [
    ("go-server", ("--from=builder", "go.sum", "go mod download", "--target", "BuildKit", "classic builder")),
    ("ts-server", ("--from=builder", "--only=production", "--omit=dev", "useradd", "adduser -S", "USER node",
                   "--target", "BuildKit", "classic builder")),
])
def test_readme_corrects_the_article(app, needles):
    text = (variants.load_app(app).path / "README.md").read_text()
    for needle in needles:
        assert needle in text, f"{app}/README.md does not mention {needle}"
    for name in variants.load_app(app).variants:
        assert f"`{name}`" in text, f"{app}/README.md does not describe variant {name}"
