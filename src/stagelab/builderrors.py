"""Why a build stopped, said so a learner can act on it: ``BuildFailed`` and its kin.

``explain`` turns a raw builder error (either builder) into a message and a fix that name
the learner's own instruction and line; ``check_classic`` stops a classic build before it
starts when the Dockerfile uses a feature only BuildKit has (``NeedsBuildkit``). Used by
``build`` for every build; the notebooks only see the boxes these errors draw.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping

from .buildlog import BuildkitLog, ClassicLog
from .dockerfile import INSTRUCTIONS, Dockerfile, expand, from_parts
from .errors import StagelabError

TAIL_LINES = 30

# --- errors -------------------------------------------------------------------------------


class BuildFailed(StagelabError):
    """A build stopped: which step, its instruction, the error and the last log lines."""

    def __init__(
        self,
        message: str,
        fix: str | None = None,
        *,
        step: int | None = None,
        steps_total: int | None = None,
        instruction: str | None = None,
        error: str | None = None,
        tail: Iterable[str] = (),
        tag: str | None = None,
        dockerfile: str | None = None,
        log_total: int | None = None,
    ) -> None:
        super().__init__(message, fix)
        self.step = step
        self.steps_total = steps_total
        self.log_total = log_total      # M of the log's "Step N/M" when it differs from steps_total
        self.instruction = instruction
        self.error = error
        self.tail = list(tail)[-TAIL_LINES:]
        self.tag = tag
        self.dockerfile = dockerfile

    @property
    def tail_title(self) -> str:
        """"last N log lines", and why the log counts more steps than the Dockerfile, if it does."""
        title = f"last {len(self.tail)} log lines"
        if self.log_total and self.steps_total and self.log_total > self.steps_total:
            extra = self.log_total - self.steps_total
            title += (f" (the log counts {self.log_total} steps: the Dockerfile's {self.steps_total}"
                      f" + {extra} LABEL step{'s' if extra > 1 else ''} the lab appends to tag its images)")
        return title

    def __str__(self) -> str:
        parts = [self.message]
        if self.tail:
            parts.append(f"  {self.tail_title}:")
            parts.extend("    | " + line for line in self.tail)
        if self.fix:
            parts.append(f"  fix: {self.fix}")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        esc = html.escape
        tail = ""
        if self.tail:
            tail = (
                f"<details><summary>{esc(self.tail_title)}</summary>"
                "<pre style='font-size:85%;max-height:24em;overflow:auto;margin:4px 0'>"
                f"{esc(chr(10).join(self.tail))}</pre></details>"
            )
        fix = f"<div><b>Fix:</b> <code>{esc(self.fix)}</code></div>" if self.fix else ""
        return (
            '<div class="stagelab-error" style="border-left:4px solid #c0392b;'
            'background:#fdecea;padding:8px 12px;margin:4px 0;font-family:sans-serif">'
            f"<b>{esc(type(self).__name__)}</b>: "
            f"<span style='white-space:pre-wrap'>{esc(self.message)}</span>{tail}{fix}</div>"
        )


class BuildkitUnavailable(StagelabError):
    """``builder="buildkit"`` was asked for, but no docker CLI here can do BuildKit builds."""


class NeedsBuildkit(StagelabError):
    """The Dockerfile uses a feature the classic builder does not have (heredoc, RUN --mount, ...)."""


HOW_TO_GET_BUILDKIT = (
    "build with BuildKit: set STAGELAB_BUILDER=buildkit (the lab then builds through a docker CLI "
    "that has BuildKit: the buildx plugin, or Debian's docker.io client with DOCKER_BUILDKIT=1), "
    "or use Docker 23+ where BuildKit is the default"
)


def check_classic(model: Dockerfile, dockerfile: str) -> None:
    """Raise ``NeedsBuildkit`` when the classic builder would stop on one of the file's features."""
    blocking = [f for f in model.buildkit_features() if f.classic_fails]
    if not blocking:
        return
    first = blocking[0]
    names = sorted({f.name for f in blocking})
    lines = ", ".join(str(f.line) for f in blocking)
    raise NeedsBuildkit(
        f"{dockerfile} uses {', '.join(f'`{n}`' for n in names)} (line{'s' if len(blocking) > 1 else ''} "
        f"{lines}), which only BuildKit understands; this build uses the classic builder.\n"
        f"line {first.line}: {shorten(first.text)}",
        HOW_TO_GET_BUILDKIT,
    )


class FrontendUnavailable(BuildFailed):
    """``# syntax=`` names a frontend image that BuildKit could not fetch (no registry)."""


class FrontendTooOld(BuildFailed):
    """BuildKit's built-in Dockerfile frontend on this engine predates a feature the file uses."""


def frontend_too_old(model: Dockerfile, dockerfile: str, error: str, tail: Iterable[str],
                     tag: str) -> FrontendTooOld | None:
    """The error for a parse error on a line that holds a newer feature (heredoc, COPY --link), else None."""
    m = re.search(r"dockerfile parse error (?:on )?line (\d+): (unknown instruction|unknown flag)", error, re.I)
    if not m:
        return None
    lineno = int(m.group(1))
    ins = next((i for i in model.instructions if i.line <= lineno <= max(i.end_line, i.line)), None)
    features = [f for f in model.buildkit_features() if ins is not None and f.line == ins.line]
    if not features:
        return None
    names = ", ".join(f"`{f.name}`" for f in features)
    return FrontendTooOld(
        f"{dockerfile} line {ins.line} uses {names}, which this engine's built-in Dockerfile frontend "
        f"does not know yet (Dockerfile syntax 1.4+, built into Docker 23 and newer).\n"
        f"line {ins.line}: {shorten(ins.text)}",
        "build on Docker 23 or newer, or add `# syntax=docker/dockerfile:1` as the first line where a "
        "registry answers, or rewrite it without the feature (a heredoc as one RUN with &&)",
        step=model.instructions.index(ins) + 1, instruction=ins.text, error=error, tail=tail, tag=tag,
        dockerfile=dockerfile,
    )


def frontend_unavailable(model: Dockerfile, dockerfile: str, error: str, tail: Iterable[str],
                         tag: str) -> FrontendUnavailable | None:
    """The error for a ``# syntax=`` frontend that could not be fetched, else None."""
    if not model.syntax:
        return None
    recent = "\n".join(list(tail)[-12:] + [error]).lower()
    frontend = model.syntax.lower()
    mentions = frontend in recent or frontend.split(":")[0] in recent or "frontend" in recent
    if not (mentions and (any(word in recent for word in _PULL_WORDS) or "not found" in recent)):
        return None
    line = model.directives["syntax"][0]
    return FrontendUnavailable(
        f"{dockerfile} line {line} (`# syntax={model.syntax}`) asks BuildKit to fetch that Dockerfile "
        "frontend image from a registry, and no registry answers here.",
        f"delete the `# syntax=` line of {dockerfile} to use the engine's built-in frontend (it reads "
        "RUN --mount too), or `docker pull docker/dockerfile:1` on a machine with registry access and "
        "`docker save`/`docker load` it here",
        error=error, tail=tail, tag=tag, dockerfile=dockerfile,
    )


# --- failure explanations -----------------------------------------------------------------

_PULL_WORDS = (
    "pull access denied", "no such host", "manifest unknown", "repository does not exist",
    "failed to resolve", "failed to do request", "dial tcp", "toomanyrequests",
    "not found: manifest", "no such image", "i/o timeout", "connection refused",
    "server misbehaving", "unauthorized", "tls handshake timeout",
)
_ENGINE_GONE_WORDS = (
    "cannot connect to the docker daemon", "error during connect", "connection reset",
    "unexpected eof", "broken pipe", "connection aborted", "is the docker daemon running",
)


def shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def explain(
    error: str,
    *,
    step: int | None,
    steps_total: int | None,
    instruction: str | None,
    dockerfile: str,
    context: str,
    args: Mapping[str, str | None] | None = None,
    dockerfile_text: str | None = None,
    tail: Iterable[str] = (),
    where: str | None = None,
) -> tuple[str, str, int | None, str | None]:
    """Turn a raw build error into (message, fix, step, instruction) a learner can act on."""
    args = args or {}
    low = error.lower()
    lines = list(tail)
    recent = "\n".join(lines[-8:] + [error])
    # BuildKit prints the failing step's output, then an excerpt of the Dockerfile and the error:
    # the step's own lines (e.g. runc's "exec ... no such file") sit further up than the last 8.
    wider = "\n".join(lines[-40:] + [error])
    if where is None:
        where = f"step {step}/{steps_total}" if step and steps_total else (f"step {step}" if step else "")

    m = re.search(r"dockerfile parse error (?:on )?line (\d+): (.*)", error, re.I)
    if m:
        lineno, what = int(m.group(1)), m.group(2).strip()
        line_text = None
        if dockerfile_text is not None:
            lines = dockerfile_text.splitlines()
            if 0 < lineno <= len(lines):
                line_text = lines[lineno - 1].strip()
        unknown = re.search(r"unknown instruction:\s*(\S+)", what, re.I)
        if unknown:
            word = unknown.group(1)
            message = f"{dockerfile} line {lineno}: unknown instruction `{word}`"
            if line_text:
                message += f" in `{shorten(line_text)}`"
            guess = _closest_instruction(word)
            hint = f" (did you mean {guess}?)" if guess else ""
            fix = f"correct the instruction on line {lineno} of {dockerfile}{hint}, then build again"
        else:
            message = f"{dockerfile} line {lineno}: {what}"
            fix = f"correct line {lineno} of {dockerfile}, then build again"
        return message, fix, None, line_text

    if re.search(r"cannot locate specified dockerfile|dockerfile.*(no such file|not found)", low):
        return (f"No Dockerfile {dockerfile} in the build context {context}",
                f"check the file name; `ls {context}`", step, instruction)

    m = re.search(r"failed to reach build target (\S+)|target stage (\S+) could not be found", error)
    if m:
        target = (m.group(1) or m.group(2)).strip("\"'")
        return (f"{dockerfile} has no stage named `{target}`",
                f"use one of the `FROM ... AS <name>` names in {dockerfile} as the target", step, instruction)

    is_from = bool(instruction and instruction.strip().upper().startswith("FROM"))
    metadata = re.search(r"load metadata for (\S+)", f"{instruction or ''} {error}")
    if is_from or metadata:
        image = None
        if is_from:
            image = expand(from_parts(instruction.strip()[4:].strip())[0], args)
        elif metadata:
            image = _short_ref(metadata.group(1).rstrip(":"))
            step, instruction = None, f"FROM {image}"
        if any(word in low for word in _PULL_WORDS) or "not found" in low:
            at = f"{where}: " if where else ""
            message = (f"Base image `{image or '?'}` is not on this engine, and it cannot be pulled "
                       f"(no registry reachable)" + (f" ({at}{shorten(instruction)})" if instruction else ""))
            fix = _missing_image_fix(image, args)
            return message, fix, step, instruction

    m = re.search(r'exec: "([^"]+)": stat \S+: no such file or directory', wider)
    if m:
        program = m.group(1)
        if program == "/bin/sh":
            message = (f"{where or 'a step'} failed: `{shorten(instruction or '?')}` needs a shell, "
                       "but this stage's image has no /bin/sh (scratch or distroless)")
            fix = ("run commands in a stage whose base has a shell (the builder), or use the exec form "
                   '`RUN ["/path/to/binary", "arg"]` with a binary that exists in the image')
        else:
            message = (f"{where or 'a step'} failed: `{shorten(instruction or '?')}`: the program "
                       f"{program} does not exist in this stage's image")
            fix = f"copy {program} into this stage first, or run it in the stage that has it"
        return message, fix, step, instruction

    m = re.search(r"returned a non-zero code: (\d+)|exit code: (\d+)", error)
    if m:
        code = m.group(1) or m.group(2)
        message = f"{where or 'a step'} failed: `{shorten(instruction or '?')}` exited with code {code}"
        fix = (f"read the command's own output in the log lines above, fix that instruction in "
               f"{dockerfile}, then build again")
        return message, fix, step, instruction

    if re.search(r"copy failed|failed to compute cache key|not found in build context|"
                 r"file not found|no source files were specified", low):
        message = f"{where or 'a step'} failed: `{shorten(instruction or '?')}`: {shorten(error)}"
        fix = (f"check that the source path exists inside the build context {context} "
               "(paths are relative to it) and is not excluded by .dockerignore; for "
               "`COPY --from=<stage>` check the path inside that stage")
        return message, fix, step, instruction

    message = f"{where or 'the build'} failed" + (f": `{shorten(instruction)}`" if instruction else "")
    message += f"\n{shorten(error, 400)}"
    fix = f"read the log lines above, fix {dockerfile}, then build again"
    return message, fix, step, instruction


def _closest_instruction(word: str) -> str | None:
    import difflib

    hits = difflib.get_close_matches(word.upper(), sorted(INSTRUCTIONS), n=1, cutoff=0.6)
    return hits[0] if hits else None


def _short_ref(ref: str) -> str:
    """``docker.io/library/node:20`` -> ``node:20`` (how Dockerfiles and profiles write it)."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


def _missing_image_fix(image: str | None, args: Mapping[str, str | None]) -> str:
    role = next((name for name, value in args.items() if value and value == image), None)
    if role and role.endswith("_IMAGE"):
        return (f"`stagelab bases prepare` (or `make bases`) creates the base images of the "
                f"profile ({role} = {image})")
    return (f"`docker pull {image}` on a machine with registry access (or `docker load` it), "
            "or change FROM to an image that `docker images` lists")


def _from_step(model: Dockerfile, image: str, args: Mapping[str, str | None]) -> int | None:
    """The Dockerfile's step number of the first ``FROM`` whose image is ``image``."""
    for number, ins in enumerate(model.instructions, start=1):
        if ins.keyword == "FROM" and _short_ref(expand(from_parts(ins.args)[0], args)) == _short_ref(image):
            return number
    return None


def engine_stopped(step: int | None, steps_total: int | None, instruction: str | None,
                   detail: str, tail: list[str], dockerfile: str, tag: str,
                   log_total: int | None = None, where: str | None = None) -> BuildFailed:
    """The error for an engine that stopped answering while a build ran."""
    if where is None:
        where = f"step {step}/{steps_total}" if step and steps_total else (f"step {step}" if step else "the start")
    what = f" (`{shorten(instruction)}`)" if instruction else ""
    return BuildFailed(
        f"The Docker engine stopped answering during {where}{what} of the build of {tag}.\n"
        f"(detail: {shorten(detail, 300)})",
        "`stagelab doctor` to check the engine (restart Docker if needed), then build again",
        step=step, steps_total=steps_total, instruction=instruction, error=detail,
        tail=tail, tag=tag, dockerfile=dockerfile, log_total=log_total,
    )


def learner_step(parsed: ClassicLog | BuildkitLog) -> tuple[int | None, int | None, str | None, str | None]:
    """(step, steps_total, instruction, where) in the Dockerfile's own terms.

    The classic log also counts the LABEL steps the lab appends; a failure there is placed
    after the Dockerfile's last step, never as "step 11/10" of a LABEL the learner did not write.
    """
    if isinstance(parsed, ClassicLog):
        total = parsed.dockerfile_total or None
        if parsed.in_added_labels:
            return None, total, None, f"the lab's labelling of the image, after step {total}/{total}"
        return parsed.step, total, parsed.instruction, None
    return parsed.step, None, parsed.instruction, parsed.where


def stopped_during(parsed: ClassicLog | BuildkitLog, detail: str, dockerfile: str, tag: str) -> BuildFailed:
    """``engine_stopped`` for the step the log had reached."""
    step, total, instruction, where = learner_step(parsed)
    log_total = parsed.builder_total or None if isinstance(parsed, ClassicLog) else None
    return engine_stopped(step, total, instruction, detail, parsed.lines[-TAIL_LINES:], dockerfile, tag,
                          log_total=log_total, where=where)


def failure_from(parsed: ClassicLog | BuildkitLog, error: str, df_shown: str, ctx: str,
                 arg_values: Mapping[str, str | None], model: Dockerfile, tag: str) -> BuildFailed:
    """The ``BuildFailed`` for a build whose log ended in ``error``."""
    lowered = error.lower()
    if any(word in lowered for word in _ENGINE_GONE_WORDS) and "load metadata" not in lowered:
        return stopped_during(parsed, error, df_shown, tag)
    frontend = (frontend_unavailable(model, df_shown, error, parsed.lines, tag)
                or frontend_too_old(model, df_shown, error, parsed.lines, tag))
    if frontend is not None:
        return frontend
    step, total, instruction, where = learner_step(parsed)
    log_total = parsed.builder_total or None if isinstance(parsed, ClassicLog) else None
    message, fix, step, instruction = explain(
        error, step=step, steps_total=total, instruction=instruction, dockerfile=df_shown,
        context=ctx, args=arg_values, dockerfile_text=model.text, tail=parsed.lines, where=where)
    if step is None and instruction and instruction.upper().startswith("FROM "):
        step = _from_step(model, instruction[5:].strip(), arg_values)  # BuildKit: a metadata error
    return BuildFailed(message, fix, step=step, steps_total=total, instruction=instruction,
                       error=error, tail=parsed.lines[-TAIL_LINES:], tag=tag, dockerfile=df_shown,
                       log_total=log_total)
