"""Build an app variant (or any folder) and report what happened: ``BuildResult`` / ``BuildFailed``.

Every notebook that builds calls ``build(app, variant)``; exercises and notebook 08 ("your
own project") call ``build_context(folder, dockerfile, tag=...)``. The classic builder runs
through the Docker SDK's low-level API with a streamed, decoded log; ``builder="buildkit"``
runs a BuildKit-capable docker CLI with ``--progress=plain`` (notebook 06: which stages run
for a ``--target``). Both logs are parsed into the same ``BuildResult``.
"""
from __future__ import annotations

import html
import json
import os
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StagelabError

TAIL_LINES = 30
_CLASSIC_TIMEOUT = None  # a build streams for as long as its steps take

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


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildStep:
    """One step that does work (FROM, global ARGs and the lab's own LABEL steps are left out)."""

    number: int         # the builder's own step number ("Step 4/12", or BuildKit's order)
    stage: str
    instruction: str
    cached: bool


@dataclass
class BuildResult:
    """What a build did (all notebooks that build; ``stagelab build`` prints it)."""

    app: str | None
    variant: str | None
    tag: str
    image_id: str
    seconds: float
    steps_total: int
    steps_cached: int
    log: list[str]
    profile: str | None
    base_images: dict[str, str]
    builder: str
    stages_run: list[str]
    target: str | None = None
    steps: list[BuildStep] = field(default_factory=list)
    context_bytes: int | None = None
    dockerfile: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def steps_run(self) -> int:
        """Steps that were executed (not taken from the build cache)."""
        return self.steps_total - self.steps_cached

    @property
    def short_id(self) -> str:
        return self.image_id.split(":", 1)[-1][:12]

    def summary(self) -> str:
        """One line: tag, id, time, cache use, builder, profile."""
        what = f"{self.app}:{self.variant} -> " if self.app else ""
        prof = f", profile {self.profile}" if self.profile else ""
        return (
            f"{what}{self.tag} ({self.short_id}) in {self.seconds:.1f} s, "
            f"{self.steps_cached} of {self.steps_total} steps cached, {self.builder} builder{prof}"
        )

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [
            ("image", f"<code>{esc(self.tag)}</code> ({esc(self.short_id)})"),
            ("time", f"{self.seconds:.1f} s"),
            ("steps", f"{self.steps_total} ({self.steps_cached} cached, {self.steps_run} run)"),
            ("stages run", esc(", ".join(self.stages_run) or "-")
             + (f" (target <code>{esc(self.target)}</code>)" if self.target else "")),
            ("builder", esc(self.builder)),
            ("profile", esc(self.profile or "-")),
        ]
        if self.base_images:
            rows.append(("base images", "<br>".join(
                f"{esc(k)} = <code>{esc(v)}</code>" for k, v in self.base_images.items())))
        body = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td style='text-align:left'>{v}</td></tr>"
            for k, v in rows
        )
        title = f"{esc(self.app)}:{esc(self.variant)}" if self.app else esc(self.tag)
        return f"<div><b>Built {title}</b><table>{body}</table></div>"


# --- Dockerfile reading -------------------------------------------------------------------

_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
    "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}


@dataclass(frozen=True)
class Instruction:
    """One instruction of a Dockerfile, continuation lines joined."""

    line: int       # 1-based line where it starts
    keyword: str    # upper case
    args: str
    text: str       # as written (first line + continuations joined with spaces)


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` of a Dockerfile."""

    index: int
    name: str       # the ``AS`` name, else ``stage-<index>`` (as BuildKit names it)
    base: str       # the image reference as written (may contain ``${ARG}``)


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile (comments, blank lines and continuations handled)."""
    escape = "\\"
    lines = text.splitlines()
    for raw in lines:  # parser directives come first
        m = re.match(r"^\s*#\s*escape\s*=\s*(\S)\s*$", raw, re.I)
        if m:
            escape = m.group(1)
            break
        if not re.match(r"^\s*#\s*\w+\s*=", raw):
            break
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i + 1
        parts = [stripped]
        continued = stripped.endswith(escape)
        if continued:
            parts[-1] = stripped[:-1].rstrip()
        while continued and i + 1 < len(lines):
            i += 1
            nxt = lines[i].strip()
            if not nxt or nxt.startswith("#"):  # comments inside a continuation are dropped
                continue
            continued = nxt.endswith(escape)
            parts.append(nxt[:-1].rstrip() if continued else nxt)
        joined = " ".join(p for p in parts if p)
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip(), joined))
        i += 1
    return out


def declared_args(text: str) -> dict[str, str | None]:
    """``ARG NAME[=default]`` declarations of a Dockerfile: name -> default (None if none)."""
    found: dict[str, str | None] = {}
    for ins in parse_dockerfile(text):
        if ins.keyword != "ARG":
            continue
        try:
            tokens = shlex.split(ins.args, comments=False)
        except ValueError:
            tokens = ins.args.split()
        for token in tokens:
            name, eq, default = token.partition("=")
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name not in found:
                found[name] = default if eq else None
    return found


def _from_parts(args: str) -> tuple[str, str | None]:
    tokens = [t for t in args.split() if not t.startswith("--")]
    image = tokens[0] if tokens else ""
    name = tokens[2] if len(tokens) >= 3 and tokens[1].upper() == "AS" else None
    return image, name


def dockerfile_stages(text: str) -> list[Stage]:
    """The stages of a Dockerfile in file order."""
    stages = []
    for ins in parse_dockerfile(text):
        if ins.keyword == "FROM":
            image, name = _from_parts(ins.args)
            idx = len(stages)
            stages.append(Stage(idx, name or f"stage-{idx}", image))
    return stages


def expand(value: str, args: Mapping[str, str | None]) -> str:
    """Expand ``$NAME``, ``${NAME}``, ``${NAME:-default}`` with build args (for messages)."""

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        default = m.group(2)
        got = args.get(name)
        if got:
            return got
        return default if default is not None else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, value)


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


def _shorten(text: str, limit: int = 160) -> str:
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
    recent = "\n".join(list(tail)[-8:] + [error])
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
                message += f" in `{_shorten(line_text)}`"
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
            image = expand(_from_parts(instruction.strip()[4:].strip())[0], args)
        elif metadata:
            image = _short_ref(metadata.group(1).rstrip(":"))
            step, instruction = None, f"FROM {image}"
        if any(word in low for word in _PULL_WORDS) or "not found" in low:
            at = f"{where}: " if where else ""
            message = (f"Base image `{image or '?'}` is not on this engine, and it cannot be pulled "
                       f"(no registry reachable)" + (f" ({at}{_shorten(instruction)})" if instruction else ""))
            fix = _missing_image_fix(image, args)
            return message, fix, step, instruction

    m = re.search(r'exec: "([^"]+)": stat \S+: no such file or directory', recent)
    if m:
        program = m.group(1)
        if program == "/bin/sh":
            message = (f"{where or 'a step'} failed: `{_shorten(instruction or '?')}` needs a shell, "
                       "but this stage's image has no /bin/sh (scratch or distroless)")
            fix = ("run commands in a stage whose base has a shell (the builder), or use the exec form "
                   '`RUN ["/path/to/binary", "arg"]` with a binary that exists in the image')
        else:
            message = (f"{where or 'a step'} failed: `{_shorten(instruction or '?')}`: the program "
                       f"{program} does not exist in this stage's image")
            fix = f"copy {program} into this stage first, or run it in the stage that has it"
        return message, fix, step, instruction

    m = re.search(r"returned a non-zero code: (\d+)|exit code: (\d+)", error)
    if m:
        code = m.group(1) or m.group(2)
        message = f"{where or 'a step'} failed: `{_shorten(instruction or '?')}` exited with code {code}"
        fix = (f"read the command's own output in the log lines above, fix that instruction in "
               f"{dockerfile}, then build again")
        return message, fix, step, instruction

    if re.search(r"copy failed|failed to compute cache key|not found in build context|"
                 r"file not found|no source files were specified", low):
        message = f"{where or 'a step'} failed: `{_shorten(instruction or '?')}`: {_shorten(error)}"
        fix = (f"check that the source path exists inside the build context {context} "
               "(paths are relative to it) and is not excluded by .dockerignore; for "
               "`COPY --from=<stage>` check the path inside that stage")
        return message, fix, step, instruction

    message = f"{where or 'the build'} failed" + (f": `{_shorten(instruction)}`" if instruction else "")
    message += f"\n{_shorten(error, 400)}"
    fix = f"read the log lines above, fix {dockerfile}, then build again"
    return message, fix, step, instruction


def _closest_instruction(word: str) -> str | None:
    import difflib

    hits = difflib.get_close_matches(word.upper(), sorted(_INSTRUCTIONS), n=1, cutoff=0.6)
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


def engine_stopped(step: int | None, steps_total: int | None, instruction: str | None,
                   detail: str, tail: list[str], dockerfile: str, tag: str,
                   log_total: int | None = None) -> BuildFailed:
    """The error for an engine that stopped answering while a build ran."""
    where = f"step {step}/{steps_total}" if step and steps_total else (f"step {step}" if step else "the start")
    what = f" (`{_shorten(instruction)}`)" if instruction else ""
    return BuildFailed(
        f"The Docker engine stopped answering during {where}{what} of the build of {tag}.\n"
        f"(detail: {_shorten(detail, 300)})",
        "`stagelab doctor` to check the engine (restart Docker if needed), then build again",
        step=step, steps_total=steps_total, instruction=instruction, error=detail,
        tail=tail, tag=tag, dockerfile=dockerfile, log_total=log_total,
    )


# --- log parsers --------------------------------------------------------------------------


class ClassicLog:
    """Parses the classic builder's decoded JSON stream (``Step N/M : ...``) line by line.

    ``added_labels``: label keys passed to the API, which the classic builder appends as
    LABEL steps after the Dockerfile's own; they are not counted as steps.
    """

    def __init__(self, added_labels: Iterable[str] = ()) -> None:
        self.lines: list[str] = []
        self.step: int | None = None
        self.builder_total = 0           # M in "Step N/M" (includes FROM, ARG, label steps)
        self.instruction: str | None = None
        self.stages_run: list[str] = []
        self.image_id: str | None = None
        self.short_id: str | None = None
        self.last_aux_id: str | None = None
        self.error: str | None = None
        self.error_code: int | None = None
        self._added_labels = tuple(added_labels)
        self._counted: dict[int, tuple[str, str]] = {}   # step -> (stage, instruction)
        self._cached: set[int] = set()
        self._buffer = ""
        self._new_steps: list[tuple[int, int, str]] = []

    @property
    def steps(self) -> list[BuildStep]:
        return [BuildStep(n, stage, ins, n in self._cached)
                for n, (stage, ins) in sorted(self._counted.items())]

    @property
    def dockerfile_total(self) -> int:
        """M of "Step N/M" without the LABEL steps the API appends: the Dockerfile's own count."""
        if self.builder_total > len(self._added_labels):
            return self.builder_total - len(self._added_labels)
        return self.builder_total

    @property
    def steps_total(self) -> int:
        return len(self._counted)

    @property
    def steps_cached(self) -> int:
        return len(self._cached & set(self._counted))

    def feed(self, chunk: Mapping) -> list[str]:
        """Take one decoded chunk; return the complete log lines it finished."""
        new: list[str] = []
        if "stream" in chunk:
            self._buffer += str(chunk["stream"])
            while "\n" in self._buffer:
                line, self._buffer = self._buffer.split("\n", 1)
                new.append(line)
        if "status" in chunk and "progress" not in chunk:
            ident = f"{chunk['id']}: " if chunk.get("id") else ""
            new.append(f"{ident}{chunk['status']}")
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            self.last_aux_id = str(aux["ID"])
        if "errorDetail" in chunk or "error" in chunk:
            detail = chunk.get("errorDetail") or {}
            self.error = str(detail.get("message") or chunk.get("error") or "unknown error")
            code = detail.get("code")
            self.error_code = int(code) if isinstance(code, int) else None
            new.append(f"ERROR: {self.error}")
        for line in new:
            self._parse(line)
        self.lines.extend(new)
        return new

    def flush(self) -> list[str]:
        """Lines left in the buffer when the stream ends."""
        if not self._buffer:
            return []
        rest = [self._buffer]
        self._buffer = ""
        for line in rest:
            self._parse(line)
        self.lines.extend(rest)
        return rest

    def take_new_steps(self) -> list[tuple[int, int, str]]:
        """Steps started since the last call: (n, total, instruction)."""
        steps, self._new_steps = self._new_steps, []
        return steps

    def _is_added_label(self, n: int, total: int, instruction: str) -> bool:
        keyword, _, rest = instruction.partition(" ")
        return (keyword.upper() == "LABEL" and n > total - len(self._added_labels)
                and any(rest.strip().startswith(f"{key}=") for key in self._added_labels))

    def _parse(self, line: str) -> None:
        m = re.match(r"^Step (\d+)/(\d+) : (.*)$", line)
        if m:
            n, total = int(m.group(1)), int(m.group(2))
            self.step, self.builder_total = n, total
            self.instruction = m.group(3).strip()
            self._new_steps.append((n, total, self.instruction))
            keyword, _, rest = self.instruction.partition(" ")
            if keyword.upper() == "FROM":
                _, name = _from_parts(rest)
                self.stages_run.append(name or f"stage-{len(self.stages_run)}")
            elif self.stages_run and not self._is_added_label(n, total, self.instruction):
                self._counted[n] = (self.stages_run[-1], self.instruction)
            return
        stripped = line.strip()
        if stripped == "---> Using cache" and self.step is not None:
            self._cached.add(self.step)
            return
        m = re.match(r"^Successfully built ([0-9a-f]+)$", stripped)
        if m:
            self.short_id = m.group(1)
            if self.last_aux_id and self.last_aux_id.split(":", 1)[-1].startswith(self.short_id):
                self.image_id = self.last_aux_id


_BK_VERTEX = re.compile(r"^#(\d+) \[([^\]]+)\] (.*)$")
_BK_STEP_LABEL = re.compile(r"^(?:(.+?) )?(\d+)/(\d+)$")


class BuildkitLog:
    """Parses ``docker build --progress=plain`` output (BuildKit) line by line.

    Steps are the ``#N [stage i/m] INSTRUCTION`` vertices (FROM vertices left out, like the
    classic count); BuildKit shows only the stages the target needs, so ``stages_run`` is
    exactly what ran (or came from cache).
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.vertices: dict[str, tuple[int, str, str]] = {}   # vertex -> (order, stage, instruction)
        self.labels: dict[str, str] = {}                      # vertex -> "builder 2/4"
        self.internal: dict[str, str] = {}                    # vertex -> "[internal] ..." text
        self.cached: set[str] = set()
        self.stages_run: list[str] = []
        self.image_id: str | None = None
        self.named: list[str] = []
        self.error: str | None = None
        self.error_vertex: str | None = None
        self.final_errors: list[str] = []
        self._in_error_block = False
        self._new_steps: list[tuple[int, str]] = []

    def _counted(self) -> dict[str, tuple[int, str, str]]:
        return {v: info for v, info in self.vertices.items()
                if not info[2].upper().startswith("FROM ")}

    @property
    def steps(self) -> list[BuildStep]:
        return [BuildStep(order, stage, ins, vertex in self.cached)
                for vertex, (order, stage, ins) in sorted(self._counted().items(), key=lambda kv: kv[1][0])]

    @property
    def steps_total(self) -> int:
        return len(self._counted())

    @property
    def steps_cached(self) -> int:
        return len(self.cached & set(self._counted()))

    @property
    def step(self) -> int | None:
        if self.error_vertex and self.error_vertex in self.vertices:
            return self.vertices[self.error_vertex][0]
        return max((v[0] for v in self.vertices.values()), default=None)

    @property
    def instruction(self) -> str | None:
        if self.error_vertex:
            if self.error_vertex in self.vertices:
                return self.vertices[self.error_vertex][2]
            if self.error_vertex in self.internal:
                return self.internal[self.error_vertex]
        if self.vertices:
            return max(self.vertices.values())[2]
        return None

    @property
    def where(self) -> str | None:
        """The failing (else last) step as BuildKit labels it: ``step [builder 2/4]``."""
        vertex = self.error_vertex
        if vertex is None or vertex not in self.labels:
            vertex = max(self.vertices, key=lambda v: self.vertices[v][0], default=None)
        return f"step [{self.labels[vertex]}]" if vertex in self.labels else None

    def take_new_steps(self) -> list[tuple[int, str]]:
        """Steps started since the last call: (n, instruction)."""
        steps, self._new_steps = self._new_steps, []
        return steps

    def feed(self, line: str) -> None:
        """Take one output line."""
        line = line.rstrip("\r\n")
        self.lines.append(line)
        m = _BK_VERTEX.match(line)
        if m:
            vertex, label, rest = m.groups()
            if label.startswith("internal"):
                self.internal.setdefault(vertex, f"[{label}] {rest}")
                return
            lm = _BK_STEP_LABEL.match(label.strip())
            if lm and vertex not in self.vertices:
                stage = lm.group(1) or "stage-0"
                order = len(self.vertices) + 1
                self.vertices[vertex] = (order, stage, rest.strip())
                self.labels[vertex] = label.strip()
                if stage not in self.stages_run:
                    self.stages_run.append(stage)
                self._new_steps.append((order, rest.strip()))
            return
        m = re.match(r"^#(\d+) (.*)$", line)
        if m:
            vertex, rest = m.groups()
            rest = rest.strip()
            if rest == "CACHED":
                self.cached.add(vertex)
            elif rest.startswith("ERROR"):
                self.error = rest[5:].lstrip(": ").strip()
                self.error_vertex = vertex
            else:
                wm = re.match(r"^writing image (sha256:[0-9a-f]{64})", rest)
                if wm:
                    self.image_id = wm.group(1)
                nm = re.match(r"^naming to (\S+)", rest)
                if nm:
                    self.named.append(nm.group(1))
            return
        stripped = line.strip()
        if stripped == "------":
            self._in_error_block = not self._in_error_block
            return
        if not stripped or self._in_error_block:
            return
        low = stripped.lower()
        if low.startswith(("error", "failed to", "cannot connect")) or "failed to solve" in low:
            self.final_errors.append(stripped)

    @property
    def final_error(self) -> str | None:
        """The error the CLI printed last (or the failing vertex's)."""
        if self.final_errors:
            return self.final_errors[-1]
        return self.error


# --- building -----------------------------------------------------------------------------


def _read_dockerignore(context: Path) -> list[str] | None:
    path = context / ".dockerignore"
    if not path.exists():
        return None
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _resolve_paths(context: str | os.PathLike, dockerfile: str | os.PathLike) -> tuple[Path, Path, str]:
    ctx = Path(context).expanduser().resolve()
    if not ctx.is_dir():
        raise BuildFailed(f"The build context {ctx} is not a folder.",
                          "pass the folder that holds your app's files (and usually its Dockerfile)")
    df = Path(dockerfile).expanduser()
    df_abs = df if df.is_absolute() else ctx / df
    if not df_abs.is_file():
        raise BuildFailed(f"No Dockerfile at {df_abs}.",
                          f"check the name: `ls {df_abs.parent}`", dockerfile=str(df))
    try:
        shown = str(df_abs.relative_to(ctx))
    except ValueError:
        shown = str(df_abs)
    return ctx, df_abs.resolve(), shown


def _role_args() -> set[str]:
    from .profiles import ROLES

    return {role.arg for role in ROLES}


def _check_bases(base_args: dict[str, str], profile_obj, client) -> None:
    """Fail early, with the role and the fix, when a base image of the profile is missing."""
    if not base_args:
        return
    try:
        from .bases import check_bases
    except ImportError:
        check_bases = None
    if check_bases is not None:
        check_bases(base_args, profile_obj)
        return
    import docker.errors

    for arg, image in base_args.items():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            try:
                from .bases import missing_base_error
            except ImportError:
                name = getattr(profile_obj, "name", profile_obj)
                raise StagelabError(
                    f"Base image {image} (role {arg}, profile {name}) is not on this engine.",
                    "`stagelab bases prepare` (or `make bases`)",
                ) from None
            raise missing_base_error(arg, profile_obj) from None


def _select_build_args(
    dockerfile_text: str, profile: str | None, build_args: Mapping[str, str] | None
) -> tuple[dict[str, str], dict[str, str], str | None, object | None]:
    """(all build args to pass, base-image args among them, profile name, profile object)."""
    declared = declared_args(dockerfile_text)
    base: dict[str, str] = {}
    profile_name: str | None = None
    profile_obj = None
    try:
        roles = _role_args()
    except ImportError:
        roles = {name for name in declared if name.endswith("_IMAGE")}
    if profile is not None or any(name in roles for name in declared):
        from .profiles import active_profile

        profile_obj = active_profile(profile)
        profile_name = profile_obj.name
        base = {k: v for k, v in profile_obj.build_args().items() if k in declared}
    passed = dict(base)
    for key, value in (build_args or {}).items():
        passed[key] = str(value)
    base = {key: passed[key] for key in base}  # an explicit build arg wins over the profile
    return passed, base, profile_name, profile_obj


def build_context(
    context: str | os.PathLike,
    dockerfile: str | os.PathLike = "Dockerfile",
    *,
    tag: str,
    target: str | None = None,
    profile: str | None = None,
    builder: str = "classic",
    labels: Mapping[str, str] | None = None,
    nocache: bool = False,
    progress: str | None = "auto",
    build_args: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    _app: str | None = None,
    _variant: str | None = None,
) -> BuildResult:
    """Build any folder (exercises, notebook 08) with the profile's base images as build args.

    Only the ARGs the Dockerfile declares are passed (no "unused build-arg" warnings); every
    image gets the lab labels (so ``stagelab clean`` can remove it) plus ``labels``.
    ``secrets`` (id -> value, BuildKit only) are passed with ``--secret`` (notebook 04).
    """
    from . import naming

    if builder not in ("classic", "buildkit"):
        raise StagelabError(f"Unknown builder {builder!r}.", 'use builder="classic" or builder="buildkit"')
    if secrets and builder != "buildkit":
        raise StagelabError("Build secrets (--secret) need BuildKit; the classic builder has none.",
                            'build with builder="buildkit"')
    ctx, df_path, df_shown = _resolve_paths(context, dockerfile)
    text = df_path.read_text(errors="replace")
    target = target or None
    passed, base_args, profile_name, profile_obj = _select_build_args(text, profile, build_args)
    all_labels = naming.lab_labels(profile=profile_name) if profile_name else naming.lab_labels()
    all_labels.update(labels or {})

    from .engine import client as engine_client

    cli = engine_client()
    _check_bases(base_args, profile_obj, cli)

    arg_values: dict[str, str | None] = dict(declared_args(text))
    arg_values.update(passed)
    common = dict(
        ctx=ctx, df_path=df_path, df_shown=df_shown, text=text, tag=tag, target=target,
        labels=all_labels, build_args=passed, nocache=nocache, progress=progress,
        arg_values=arg_values,
    )
    started = time.monotonic()
    if builder == "buildkit":
        parsed, image_id, context_bytes = _run_buildkit(**common, secrets=dict(secrets or {}))
    else:
        parsed, image_id, context_bytes = _run_classic(cli, **common)
    seconds = time.monotonic() - started
    return BuildResult(
        app=_app, variant=_variant, tag=tag, image_id=image_id, seconds=seconds,
        steps_total=parsed.steps_total, steps_cached=parsed.steps_cached, log=list(parsed.lines),
        profile=profile_name, base_images=dict(base_args), builder=builder,
        stages_run=list(parsed.stages_run), target=target, steps=parsed.steps,
        context_bytes=context_bytes,
        dockerfile=df_shown, build_args=dict(passed),
    )


def build(
    app: str,
    variant: str,
    *,
    profile: str | None = None,
    nocache: bool = False,
    builder: str = "classic",
    progress: str | None = "auto",
    extra_args: Mapping[str, str] | None = None,
) -> BuildResult:
    """Build ``app``'s ``variant`` (apps/<app>/variants.toml) as ``stagelab/<namespace>/<app>:<variant>``.

    ``extra_args`` are further build args (passed as given). Used by every notebook that builds.
    """
    from . import naming
    from .variants import get_variant

    var = get_variant(app, variant)
    profile_name = None
    try:
        from .profiles import active_profile

        profile_name = active_profile(profile).name
    except ImportError:
        pass
    labels = naming.lab_labels(app=app, variant=variant, profile=profile_name)
    return build_context(
        var.context, var.dockerfile, tag=naming.image_tag(app, variant), target=var.target or None,
        profile=profile, builder=builder, labels=labels, nocache=nocache, progress=progress,
        build_args=extra_args, _app=app, _variant=variant,
    )


def _progress_title(tag: str, target: str | None, builder: str) -> str:
    extra = f" --target {target}" if target else ""
    return f"build {tag}{extra} ({builder})"


def _run_classic(cli, *, ctx: Path, df_path: Path, df_shown: str, text: str, tag: str,
                 target: str | None, labels: dict[str, str], build_args: dict[str, str],
                 nocache: bool, progress: str | None, arg_values: dict) -> tuple[ClassicLog, str, int | None]:
    import docker.errors
    import requests
    import urllib3
    from docker import utils
    from docker.api.build import process_dockerfile

    from .progress import open_progress

    df_name, df_inline = process_dockerfile(str(df_path), str(ctx))
    context_file = utils.tar(str(ctx), exclude=_read_dockerignore(ctx), dockerfile=(df_name, df_inline))
    context_file.seek(0, os.SEEK_END)
    context_bytes = context_file.tell()
    context_file.seek(0)

    parsed = ClassicLog(added_labels=labels.keys())
    prog = open_progress(_progress_title(tag, target, "classic"), None, progress, log_title="Build log")

    def fail(exc: BuildFailed) -> BuildFailed:
        prog.close(_shorten(exc.message.splitlines()[0], 100), ok=False)
        return exc

    try:
        stream = cli.api.build(
            fileobj=context_file, custom_context=True, dockerfile=df_name, tag=tag, target=target,
            labels=labels, buildargs=build_args or None, nocache=nocache, rm=True, forcerm=True,
            decode=True, timeout=_CLASSIC_TIMEOUT,
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
                detail, step=None, steps_total=None, instruction=None, dockerfile=df_shown,
                context=str(ctx), args=arg_values, dockerfile_text=text)
            raise fail(BuildFailed(message, fix, step=step, instruction=instruction, error=detail,
                                   tail=[f"ERROR: {detail}"], tag=tag, dockerfile=df_shown)) from None
        raise fail(engine_stopped(parsed.step, parsed.dockerfile_total, parsed.instruction, detail,
                                  parsed.lines[-TAIL_LINES:], df_shown, tag,
                                  log_total=parsed.builder_total or None)) from None
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            json.JSONDecodeError, OSError) as exc:
        raise fail(engine_stopped(parsed.step, parsed.dockerfile_total, parsed.instruction, str(exc),
                                  parsed.lines[-TAIL_LINES:], df_shown, tag,
                                  log_total=parsed.builder_total or None)) from None
    except KeyboardInterrupt:  # the engine cancels a classic build when its client goes away
        prog.close(f"interrupted at step {parsed.step or 0}", ok=False)
        raise
    finally:
        context_file.close()

    if parsed.error is not None:
        raise fail(_failure_from(parsed, parsed.error, df_shown, ctx, arg_values, text, tag)) from None
    image_id = parsed.image_id
    if image_id is None and parsed.short_id:
        try:
            found = cli.images.get(tag).id
        except docker.errors.DockerException:
            found = ""
        image_id = found if found.split(":", 1)[-1].startswith(parsed.short_id) else None
    if image_id is None:  # the stream ended before "Successfully built": the engine went away
        raise fail(engine_stopped(parsed.step, parsed.dockerfile_total, parsed.instruction,
                                  "the build log ended before the build finished",
                                  parsed.lines[-TAIL_LINES:], df_shown, tag,
                                  log_total=parsed.builder_total or None)) from None
    prog.close(f"{tag} built, {parsed.steps_cached} of {parsed.steps_total} steps cached")
    return parsed, image_id, context_bytes


def _failure_from(parsed: ClassicLog | BuildkitLog, error: str, df_shown: str, ctx: Path,
                  arg_values: dict, text: str, tag: str) -> BuildFailed:
    step = parsed.step
    instruction = parsed.instruction
    log_total = None
    if isinstance(parsed, ClassicLog):
        total = parsed.dockerfile_total or None
        log_total = parsed.builder_total or None
        where = None
    else:
        total = None
        where = parsed.where
    lowered = error.lower()
    if any(word in lowered for word in _ENGINE_GONE_WORDS) and "load metadata" not in lowered:
        return engine_stopped(step, total, instruction, error, parsed.lines[-TAIL_LINES:], df_shown, tag,
                              log_total=log_total)
    message, fix, step, instruction = explain(
        error, step=step, steps_total=total, instruction=instruction, dockerfile=df_shown,
        context=str(ctx), args=arg_values, dockerfile_text=text, tail=parsed.lines, where=where)
    return BuildFailed(message, fix, step=step, steps_total=total, instruction=instruction,
                       error=error, tail=parsed.lines[-TAIL_LINES:], tag=tag, dockerfile=df_shown,
                       log_total=log_total)


def buildkit_command(cli_path: str, *, ctx: Path, df_path: Path, tag: str, target: str | None,
                     labels: Mapping[str, str], build_args: Mapping[str, str], nocache: bool,
                     secret_files: Mapping[str, Path] | None = None) -> list[str]:
    """The ``docker build`` command line for a BuildKit build (shown in notebook 06)."""
    cmd = [cli_path, "build", "--progress=plain"]
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


def _estimate_steps(text: str) -> int:
    """An upper bound on BuildKit's steps: instructions after the first FROM (no FROM scratch)."""
    count, seen_from = 0, False
    for ins in parse_dockerfile(text):
        if ins.keyword == "FROM":
            seen_from = True
            if _from_parts(ins.args)[0].lower() != "scratch":
                count += 1
        elif seen_from:
            count += 1
    return max(count, 1)


def _run_buildkit(*, secrets: Mapping[str, str] | None = None, **kwargs: Any) -> tuple[BuildkitLog, str, int | None]:
    """A BuildKit build; each secret (id -> value) in a private file that exists for this build only."""
    if not secrets:
        return _run_buildkit_cli(**kwargs, secret_files={})
    with tempfile.TemporaryDirectory(prefix="stagelab-secret-") as tmp:
        files: dict[str, Path] = {}
        for secret_id, value in secrets.items():
            files[secret_id] = Path(tmp) / secret_id
            files[secret_id].write_text(value)
            os.chmod(files[secret_id], 0o600)
        return _run_buildkit_cli(**kwargs, secret_files=files)


def _run_buildkit_cli(*, ctx: Path, df_path: Path, df_shown: str, text: str, tag: str,
                      target: str | None, labels: dict[str, str], build_args: dict[str, str],
                      nocache: bool, progress: str | None, arg_values: dict,
                      secret_files: Mapping[str, Path]) -> tuple[BuildkitLog, str, int | None]:
    from .engine import buildkit_cli
    from .progress import open_progress

    cli_path = buildkit_cli()
    if cli_path is None:
        raise BuildkitUnavailable(
            "No docker CLI here can run BuildKit builds (DOCKER_BUILDKIT=1): the first `docker` on "
            "PATH has no buildx plugin and is 23.0 or newer.",
            "install the buildx plugin (`apt-get install docker-buildx` / Docker Desktop has it), "
            "or Debian's `docker.io` client, or point STAGELAB_DOCKER_CLI at a docker CLI that has it",
        )
    cmd = buildkit_command(cli_path, ctx=ctx, df_path=df_path, tag=tag, target=target,
                           labels=labels, build_args=build_args, nocache=nocache, secret_files=secret_files)
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    env.setdefault("BUILDKIT_PROGRESS", "plain")
    parsed = BuildkitLog()
    estimate = _estimate_steps(text)
    prog = open_progress(_progress_title(tag, target, "buildkit"), estimate, progress, log_title="Build log")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", bufsize=1, env=env, stdin=subprocess.DEVNULL)
    except OSError as exc:
        prog.close("could not start the docker CLI", ok=False)
        raise BuildkitUnavailable(f"Could not run {cli_path}: {exc}",
                                  "check the docker CLI (`stagelab doctor`)") from None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            parsed.feed(line)
            for n, instruction in parsed.take_new_steps():
                prog.step(n, max(estimate, n), instruction)
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
            image_id = engine_client().images.get(tag).id
        except docker.errors.DockerException:
            image_id = None
    if returncode != 0 or image_id is None:
        error = parsed.final_error or f"docker build exited with code {returncode}"
        exc = _failure_from(parsed, error, df_shown, ctx, arg_values, text, tag)
        prog.close(_shorten(exc.message.splitlines()[0], 100), ok=False)
        raise exc
    prog.close(f"{tag} built, {parsed.steps_cached} of {parsed.steps_total} steps cached")
    return parsed, image_id, None
