"""commands: the docker command lines shown as "try it in a terminal" (no engine)."""
from __future__ import annotations

import shlex

import pytest

from stagelab import commands
from stagelab.build import BuildResult
from stagelab.variants import get_variant


def _result(**kw) -> BuildResult:
    base = dict(app="go-server", variant="scratch", tag="stagelab/t/go-server:scratch", image_id="sha256:" + "a" * 64,
                seconds=1.0, steps_total=3, steps_cached=0, log=[], profile="offline", base_images={},
                builder="classic", stages_run=[], target=None, dockerfile="Dockerfile.scratch",
                build_args={"GOLANG_IMAGE": "stagelab-offline/golang:x"})
    base.update(kw)
    return BuildResult(**base)


def test_build_command_carries_dockerfile_target_args_and_builder() -> None:
    var = get_variant("go-server", "scratch")
    res = _result(dockerfile=var.dockerfile.name, target="final", build_args={"A": "1 2", "B": "x"})
    cmd = commands.build_command(res)
    argv = list(cmd.argv)
    assert argv[:2] == ["docker", "build"]
    assert argv[argv.index("-f") + 1].endswith(var.dockerfile.name)
    assert argv[argv.index("--target") + 1] == "final"
    assert ["--build-arg", "A=1 2"] == argv[argv.index("--build-arg"):argv.index("--build-arg") + 2]
    assert "B=x" in argv
    assert argv[argv.index("-t") + 1] == "go-server:scratch"
    assert cmd.env == {"DOCKER_BUILDKIT": "0"}
    assert (cmd.cwd / argv[-1]).resolve() == var.context.resolve()
    # the shell line quotes the space and parses back to the same argv
    line = cmd.line()
    assert shlex.split(line)[1:] == argv and line.startswith("DOCKER_BUILDKIT=0 ")


def test_buildkit_results_ask_for_buildkit_and_no_target_means_no_flag() -> None:
    cmd = commands.build_command(_result(builder="buildkit"))
    assert cmd.env["DOCKER_BUILDKIT"] == "1"
    assert "--target" not in cmd.argv and "--progress=plain" not in cmd.argv


def test_folder_builds_need_their_folder(tmp_path) -> None:
    res = _result(app=None, variant=None)
    with pytest.raises(commands.NoCommand, match="folder"):
        commands.build_command(res)
    (tmp_path / "Dockerfile.scratch").write_text("FROM scratch\n")
    cmd = commands.build_command(res, tmp_path)
    assert cmd.argv[-1] == "." and cmd.cwd == tmp_path.resolve()


def test_run_publishes_on_localhost_only() -> None:
    cmd = commands.run("img:1", 8080, 18080)
    assert cmd.argv == ("docker", "run", "--rm", "-p", "127.0.0.1:18080:8080", "img:1")
    assert "18080" in cmd.note
    assert commands.run("img:1").argv == ("docker", "run", "--rm", "img:1")


def test_try_it_shows_every_command_as_text_and_html() -> None:
    box = commands.try_it(_result(), commands.image_ls("go-server:scratch"), commands.history("go-server:scratch"))
    text, page = str(box), box._repr_html_()
    assert len(box.commands) == 3
    assert "docker image ls go-server:scratch" in text and "docker history --no-trunc go-server:scratch" in text
    assert "Try it in a terminal" in page and "&amp;&amp;" in page   # cd <root> && docker build, escaped


def test_try_it_rejects_what_it_cannot_show() -> None:
    with pytest.raises(commands.NoCommand, match="BuildResult"):
        commands.try_it("go-server:scratch")
    with pytest.raises(commands.NoCommand):
        commands.try_it()
