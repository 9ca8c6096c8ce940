"""The plain ``docker`` command line for what a notebook cell just did ("try it in a terminal").

Every build, inspect and run cell of notebooks 00-08 can show the equivalent command, so a
learner can repeat the step outside the lab: ``try_it(result)`` for a build,
``try_it(image_ls(tag), history(tag))`` for inspection, ``try_it(run(tag, 8080))`` for a run.
The build command is assembled by ``stagelab.builders.buildkit_command`` (the argv the lab itself
runs for BuildKit builds), so the two can never drift apart.
"""
from __future__ import annotations

import html
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StagelabError


class NoCommand(StagelabError):
    """``try_it`` was given something it cannot turn into a docker command."""


@dataclass(frozen=True)
class Command:
    """One docker command: ``argv`` run in ``cwd`` with ``env`` added; ``note`` says why/what."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    note: str = ""

    def line(self) -> str:
        """The command as one shell line (env prefix, quoted arguments), without the ``cd``."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.argv)

    def shell(self) -> str:
        """The line a terminal runs as is: ``cd <cwd> && <line>`` when a folder matters."""
        return f"cd {shlex.quote(str(self.cwd))} && {self.line()}" if self.cwd else self.line()

    def run_env(self) -> dict[str, str]:
        """The environment to run ``argv`` with (``os.environ`` plus ``env``): used by the tests."""
        return {**os.environ, **self.env}

    def __str__(self) -> str:
        return self.shell()


def _relative(path: Path, base: Path) -> str:
    try:
        rel = path.resolve().relative_to(base.resolve())
    except ValueError:
        return str(path)
    return str(rel) or "."


def build_command(result: Any, context: str | os.PathLike | None = None, *, tag: str | None = None,
                  labels: Mapping[str, str] | None = None) -> Command:
    """``docker build`` for a ``BuildResult``: same Dockerfile, target, build args and builder.

    ``context`` is needed for ``build_context`` results (app builds know their folder).
    ``tag`` defaults to a plain ``<app>:<variant>`` (not the lab's tag: the lab never removes
    an image a learner built by hand, and this keeps the lab's own image untouched).
    """
    from .builders import buildkit_command
    from .naming import repo_root

    if context is None:
        if not getattr(result, "app", None):
            raise NoCommand("This build result came from a folder; the command needs that folder.",
                            "pass it: try_it(result, context='path/to/folder')")
        from .variants import get_variant

        context = get_variant(result.app, result.variant).context
    ctx = Path(context).resolve()
    dockerfile = ctx / (result.dockerfile or "Dockerfile")
    if tag is None:
        tag = f"{result.app}:{result.variant}" if getattr(result, "app", None) else f"{ctx.name.lower()}:try"
    root = repo_root()
    cwd = root if ctx.is_relative_to(root) else ctx
    argv = buildkit_command("docker", ctx=Path(_relative(ctx, cwd)), df_path=Path(_relative(dockerfile, cwd)),
                            tag=tag, target=result.target, labels=dict(labels or {}),
                            build_args=dict(result.build_args), nocache=False)
    argv = [a for a in argv if a != "--progress=plain"]
    buildkit = result.builder == "buildkit"
    note = ("BuildKit, as the lab used" if buildkit else
            "the classic builder, as the lab used (drop DOCKER_BUILDKIT=0 for your engine's default builder)")
    return Command(tuple(argv), {"DOCKER_BUILDKIT": "1" if buildkit else "0"}, cwd, note)


def image_ls(image: str) -> Command:
    """``docker image ls <repository[:tag]>``: the image with the size the engine reports."""
    return Command(("docker", "image", "ls", image), note="SIZE: the size this engine reports for the image")


def history(image: str) -> Command:
    """``docker history <image>``: one row per instruction, with the size its layer adds."""
    return Command(("docker", "history", "--no-trunc", image), note="one row per instruction; CREATED BY shows it")


def run(image: str, port: int | None = None, host_port: int | None = None, *,
        args: Sequence[str] = ()) -> Command:
    """``docker run --rm`` publishing ``port`` on 127.0.0.1 only, as the lab does."""
    argv = ["docker", "run", "--rm"]
    if port is not None:
        argv += ["-p", f"127.0.0.1:{host_port or port}:{port}"]
    argv += [image, *args]
    note = f"then open http://127.0.0.1:{host_port or port}/ ; Ctrl-C stops it" if port else ""
    return Command(tuple(argv), note=note)


@dataclass(frozen=True)
class TryIt:
    """A "try it in a terminal" box: one or more commands, shown as text and as HTML."""

    commands: tuple[Command, ...]

    def __str__(self) -> str:
        return "\n".join(["Try it in a terminal:"] + [f"  $ {c.shell()}" + (f"   # {c.note}" if c.note else "")
                                                      for c in self.commands])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<div><code style='white-space:pre-wrap'>$ {html.escape(c.shell())}</code>"
            + (f"<br><small style='color:#555'>{html.escape(c.note)}</small>" if c.note else "") + "</div>"
            for c in self.commands)
        return ('<div class="stagelab-try-it" style="border-left:4px solid #2c7be5;background:#eef4fd;'
                'padding:6px 10px;margin:4px 0;font-family:sans-serif"><b>Try it in a terminal</b>'
                f"{rows}</div>")


def try_it(*items: Any, context: str | os.PathLike | None = None) -> TryIt:
    """The commands for ``items``: ``Command`` objects, or ``BuildResult`` s (-> ``build_command``).

    Notebooks 00-08 end build, inspect and run cells with it.
    """
    commands: list[Command] = []
    for item in items:
        if isinstance(item, Command):
            commands.append(item)
        elif hasattr(item, "image_id") and hasattr(item, "build_args"):
            commands.append(build_command(item, context))
        else:
            raise NoCommand(f"try_it() cannot show a command for {type(item).__name__}.",
                            "pass a BuildResult or a command from stagelab.commands (image_ls, history, run)")
    if not commands:
        raise NoCommand("try_it() needs at least one build result or command.",
                        "e.g. try_it(result) after a build")
    return TryIt(tuple(commands))
