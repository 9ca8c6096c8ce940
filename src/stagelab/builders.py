"""The two builders, and which one a build uses: the engine's own default, as ``docker build`` does.

- ``engine_builder``: the engine's ``/_ping`` answer carries ``Builder-Version: 2`` when its
  default builder is BuildKit (Docker 23+); Docker 20.10 sends none, which means classic.
- ``choose_builder``: an explicit ``builder=`` wins, then ``STAGELAB_BUILDER=auto|buildkit|classic``;
  ``auto`` (the default) follows the engine, and falls back to classic when no docker CLI
  here can run BuildKit builds.
- ``run_classic``: the classic builder through the SDK's low-level API, a streamed log.
- ``run_buildkit``: BuildKit through the docker CLI: ``docker buildx build --load``, or
  ``DOCKER_BUILDKIT=1 docker build`` with a CLI that has BuildKit built in (20.10).

``build.build_context`` calls these for every build; ``describe`` names the builder in
``stagelab doctor``, the Setup cell and every build box. Nothing runs on import.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .buildcontext import context_tar
from .builderrors import (
    BuildFailed, BuildkitUnavailable, shorten, explain, failure_from, stopped_during,
)
from .buildlog import BuildkitLog, ClassicLog
from .dockerfile import Dockerfile
from .errors import StagelabError

BUILDERS = ("classic", "buildkit")
BUILDER_LABEL = "org.stagelab.builder"  # on every image the lab builds: which builder made it
_CLASSIC_TIMEOUT = None  # a build streams for as long as its steps take


@dataclass
class BuildJob:
    """Everything one build needs, whichever builder runs it."""

    ctx: Path
    df_path: Path
    df_shown: str
    model: Dockerfile
    tag: str
    target: str | None
    labels: dict[str, str]
    build_args: dict[str, str]
    arg_values: dict[str, str | None]
    nocache: bool = False
    progress: str | None = "auto"
    secrets: dict[str, str] = field(default_factory=dict)

    def title(self, builder: str) -> str:
        extra = f" --target {self.target}" if self.target else ""
        return f"build {self.tag}{extra} ({builder})"


# --- which builder -------------------------------------------------------------------------


def engine_builder(client: Any) -> str:
    """The engine's default builder from its ``/_ping`` headers: "buildkit" or "classic"."""
    try:
        response = client.api._get(client.api._url("/_ping"))
        version = response.headers.get("Builder-Version")
    except Exception:  # noqa: BLE001  (an engine that can't answer a ping fails the build anyway)
        version = None
    return "buildkit" if version == "2" else "classic"


def buildkit_cli() -> tuple[str, bool] | None:
    """(docker CLI path, whether it has buildx) for BuildKit builds, or None when there is none."""
    from .engine import buildkit_cli_found

    return buildkit_cli_found()


def wanted_builder(requested: str | None = None) -> str:
    """``requested``, else ``STAGELAB_BUILDER``, else "auto"; checked (no engine needed)."""
    wanted = (requested or os.environ.get("STAGELAB_BUILDER") or "auto").strip().lower()
    if wanted not in (*BUILDERS, "auto"):
        source = f"builder={requested!r}" if requested else f"STAGELAB_BUILDER={wanted!r}"
        raise StagelabError(f"Unknown builder: {source}.",
                            "use auto (the engine's default), buildkit or classic")
    return wanted


def choose_builder(requested: str | None, client: Any, *, default: str | None = None) -> str:
    """``requested`` (or ``STAGELAB_BUILDER``, default ``auto``) resolved to "classic" or "buildkit".

    ``default``: the engine's default builder when the caller already asked (:func:`engine_builder`).
    """
    wanted = wanted_builder(requested)
    if wanted != "auto":
        return wanted
    if (default or engine_builder(client)) == "buildkit" and buildkit_cli() is not None:
        return "buildkit"
    return "classic"


def describe(client: Any) -> str:
    """One line naming the builder ``auto`` picks here and why (doctor, the Setup cell)."""
    default = engine_builder(client)
    try:
        chosen = choose_builder(None, client, default=default)
    except StagelabError as exc:  # a wrong STAGELAB_BUILDER: doctor says so instead of failing
        return f"? ({exc.message} Fix: {exc.fix})"
    source = ("STAGELAB_BUILDER" if os.environ.get("STAGELAB_BUILDER", "auto").lower() != "auto"
              else "the engine's default")
    if chosen == "classic":
        note = "" if default == "classic" else " (no docker CLI with BuildKit here)"
        return f"classic ({source}, through the Docker SDK){note}"
    cli = buildkit_cli()
    how = "no BuildKit CLI!" if cli is None else (
        f"{cli[0]} buildx build" if cli[1] else f"DOCKER_BUILDKIT=1 {cli[0]} build")
    return f"BuildKit ({source}, {how})"


# --- classic, through the SDK ----------------------------------------------------------------


def run_classic(client: Any, job: BuildJob) -> tuple[ClassicLog, str, int | None]:
    """A classic build through the SDK: (parsed log, image id, context bytes)."""
    import docker.errors
    import requests
    import urllib3

    from .progress import open_progress

    context_file, df_name, context_bytes = context_tar(job.ctx, job.df_path)
    parsed = ClassicLog(added_labels=job.labels.keys(), dockerfile=job.model)
    prog = open_progress(job.title("classic"), None, job.progress, log_title="Build log")

    def fail(exc: BuildFailed) -> BuildFailed:
        prog.close(shorten(exc.message.splitlines()[0], 100), ok=False)
        return exc

    try:
        stream = client.api.build(
            fileobj=context_file, custom_context=True, dockerfile=df_name, tag=job.tag, target=job.target,
            labels=job.labels, buildargs=job.build_args or None, nocache=job.nocache, rm=True,
            forcerm=True, decode=True, timeout=_CLASSIC_TIMEOUT,
        )
        for chunk in stream:
            for line in parsed.feed(chunk):
                for n, _, instruction in parsed.take_new_steps():
                    shown = parsed.dockerfile_total
                    if n <= shown:
                        prog.step(n, shown, instruction)
                    elif n == shown + 1:  # the API's own LABEL steps: one line for all of them
                        prog.step(shown, shown, "adding the lab's labels")
                prog.log(line)
        for line in parsed.flush():
            prog.log(line)
    except docker.errors.APIError as exc:
        detail = str(getattr(exc, "explanation", None) or exc)
        if not parsed.lines:  # refused before the first step: a Dockerfile or request problem
            message, fix, step, instruction = explain(
                detail, step=None, steps_total=None, instruction=None, dockerfile=job.df_shown,
                context=str(job.ctx), args=job.arg_values, dockerfile_text=job.model.text)
            raise fail(BuildFailed(message, fix, step=step, instruction=instruction, error=detail,
                                   tail=[f"ERROR: {detail}"], tag=job.tag, dockerfile=job.df_shown)) from None
        raise fail(stopped_during(parsed, detail, job.df_shown, job.tag)) from None
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            json.JSONDecodeError, OSError) as exc:
        raise fail(stopped_during(parsed, str(exc), job.df_shown, job.tag)) from None
    except KeyboardInterrupt:  # the engine cancels a classic build when its client goes away
        prog.close(f"interrupted at step {parsed.step or 0}", ok=False)
        raise
    finally:
        context_file.close()

    if parsed.error is not None:
        raise fail(failure_from(parsed, parsed.error, job.df_shown, str(job.ctx), job.arg_values,
                                job.model, job.tag)) from None
    image_id = parsed.image_id
    if image_id is None and parsed.short_id:
        try:
            found = client.images.get(job.tag).id
        except docker.errors.DockerException:
            found = ""
        image_id = found if found.split(":", 1)[-1].startswith(parsed.short_id) else None
    if image_id is None:  # the stream ended before "Successfully built": the engine went away
        raise fail(stopped_during(parsed, "the build log ended before the build finished",
                                  job.df_shown, job.tag)) from None
    prog.close(f"{job.tag} built, {parsed.steps_cached} of {parsed.steps_total} steps cached")
    return parsed, image_id, context_bytes


# --- BuildKit, through the docker CLI --------------------------------------------------------


def buildkit_command(cli_path: str, *, ctx: Path, df_path: Path, tag: str, target: str | None,
                     labels: Mapping[str, str], build_args: Mapping[str, str], nocache: bool,
                     secret_files: Mapping[str, Path] | None = None, buildx: bool = False) -> list[str]:
    """The docker CLI command line of a BuildKit build (shown in notebook 06)."""
    cmd = [cli_path, "buildx", "build", "--load"] if buildx else [cli_path, "build"]
    cmd.append("--progress=plain")
    for secret_id, path in (secret_files or {}).items():
        cmd += ["--secret", f"id={secret_id},src={path}"]
    for key, value in labels.items():
        cmd += ["--label", f"{key}={value}"]
    for key, value in build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if nocache:
        cmd.append("--no-cache")
    cmd += ["-t", tag]
    if target:
        cmd += ["--target", target]
    cmd += ["-f", str(df_path), str(ctx)]
    return cmd


def _estimate_steps(model: Dockerfile, target: str | None) -> int:
    """About BuildKit's step count: the instructions of the stages the target needs."""
    try:
        stages = model.needed(target)
    except KeyError:
        stages = list(model.stages)
    return max(sum(len(st.instructions) + (st.base.lower() != "scratch") for st in stages), 1)


def run_buildkit(job: BuildJob) -> tuple[BuildkitLog, str, int | None]:
    """A BuildKit build; each secret (id -> value) in a private file that exists for this build only."""
    if not job.secrets:
        return _run_buildkit_cli(job, {})
    with tempfile.TemporaryDirectory(prefix="stagelab-secret-") as tmp:
        files: dict[str, Path] = {}
        for secret_id, value in job.secrets.items():
            files[secret_id] = Path(tmp) / secret_id
            files[secret_id].write_text(value)
            os.chmod(files[secret_id], 0o600)
        return _run_buildkit_cli(job, files)


def _run_buildkit_cli(job: BuildJob, secret_files: Mapping[str, Path]) -> tuple[BuildkitLog, str, int | None]:
    from .progress import open_progress

    found = buildkit_cli()
    if found is None:
        raise BuildkitUnavailable(
            "No docker CLI here can run BuildKit builds: the first `docker` on PATH has no buildx "
            "plugin and is 23.0 or newer.",
            "install the buildx plugin (`apt-get install docker-buildx` / Docker Desktop has it), "
            "or Debian's `docker.io` client, or point STAGELAB_DOCKER_CLI at a docker CLI that has it",
        )
    cli_path, buildx = found
    cmd = buildkit_command(cli_path, ctx=job.ctx, df_path=job.df_path, tag=job.tag, target=job.target,
                           labels=job.labels, build_args=job.build_args, nocache=job.nocache,
                           secret_files=secret_files, buildx=buildx)
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    env.setdefault("BUILDKIT_PROGRESS", "plain")
    parsed = BuildkitLog(job.model)
    estimate = _estimate_steps(job.model, job.target)
    prog = open_progress(job.title("buildkit"), estimate, job.progress, log_title="Build log")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", bufsize=1, env=env, stdin=subprocess.DEVNULL)
    except OSError as exc:
        prog.close("could not start the docker CLI", ok=False)
        raise BuildkitUnavailable(f"Could not run {cli_path}: {exc}",
                                  "check the docker CLI (`stagelab doctor`)") from None
    assert proc.stdout is not None
    seen = 0
    try:
        for line in proc.stdout:
            parsed.feed(line)
            for _n, instruction in parsed.take_new_steps():
                seen += 1
                prog.step(seen, max(estimate, seen), instruction)
            prog.log(line.rstrip("\n"))
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        prog.close("interrupted", ok=False)
        raise
    image_id = parsed.image_id
    if returncode == 0 and image_id is None:  # a CLI that words its progress differently
        import docker.errors

        from .engine import client as engine_client

        try:
            image_id = engine_client().images.get(job.tag).id
        except docker.errors.DockerException:
            image_id = None
    if returncode != 0 or image_id is None:
        error = parsed.final_error or f"docker build exited with code {returncode}"
        exc = failure_from(parsed, error, job.df_shown, str(job.ctx), job.arg_values, job.model, job.tag)
        prog.close(shorten(exc.message.splitlines()[0], 100), ok=False)
        raise exc
    prog.close(f"{job.tag} built, {parsed.steps_cached} of {parsed.steps_total} steps cached")
    return parsed, image_id, None
