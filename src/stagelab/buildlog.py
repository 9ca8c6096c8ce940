"""Read a build log once, for either builder, into ``BuildStep``s.

Classic builder (the SDK's decoded JSON stream): ``Step N/M : INSTRUCTION``, ``---> Using cache``,
``Successfully built <id>``. BuildKit (``--progress=plain``): ``#7 [builder 3/5] RUN npm ci``,
``#7 CACHED``, ``#9 writing image sha256:...``. Both give the same ``BuildStep``s, numbered
the Dockerfile's own way (its N-th instruction is step N; the lab's added LABEL steps are
never counted), so a failure names the learner's instruction and line.

``output_of(n)`` gives what step n printed (either builder; the integration tests read it).
``build`` feeds these while a build runs; ``BuildResult.steps`` is what they found; notebook
06/07 tables (``buildsteps``) and the exercise rules read those steps. Nothing runs on import.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .dockerfile import LAYER_KEYWORDS, Dockerfile, Instruction, Stage, expand, stage_name

_CLASSIC_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_CLASSIC_ID = re.compile(r"^---> ([0-9a-f]{12})$")
_BK_VERTEX = re.compile(r"^#(\d+) \[([^\]]+)\] (.*)$")
_BK_STEP_LABEL = re.compile(r"^(?:(.+?) )?(\d+)/(\d+)$")
_BK_OUTPUT = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")   # a command's output line: "#7 0.512 text"


@dataclass(frozen=True)
class BuildStep:
    """One step that does work (FROM, global ARGs and the lab's own LABEL steps are left out)."""

    number: int             # the Dockerfile's own numbering: its N-th instruction is step N
    stage: str
    instruction: str
    cached: bool
    line: int | None = None  # the Dockerfile line the instruction starts on, when known

    @property
    def keyword(self) -> str:
        return self.instruction.split(" ", 1)[0].upper()

    @property
    def makes_layer(self) -> bool:
        """RUN, COPY and ADD change the file system (the steps a cache hit saves work on)."""
        return self.keyword in LAYER_KEYWORDS


def _line_of(dockerfile: Dockerfile | None, number: int) -> int | None:
    if dockerfile is not None and 0 < number <= len(dockerfile.instructions):
        return dockerfile.instructions[number - 1].line
    return None


class ClassicLog:
    """Parses the classic builder's decoded JSON stream (``Step N/M : ...``) line by line.

    ``added_labels``: label keys passed to the API, which the classic builder appends as
    LABEL steps after the Dockerfile's own; they are not counted as steps. The classic
    builder numbers every instruction (global ARGs and FROMs too), so its N is the
    Dockerfile's N.
    """

    def __init__(self, added_labels: Iterable[str] = (), dockerfile: Dockerfile | None = None) -> None:
        self.lines: list[str] = []
        self.step: int | None = None     # the log's N (may be one of the lab's LABEL steps)
        self.builder_total = 0           # M in "Step N/M" (includes FROM, ARG, label steps)
        self.instruction: str | None = None
        self.stages_run: list[str] = []
        self.image_id: str | None = None
        self.short_id: str | None = None
        self.last_aux_id: str | None = None
        self.error: str | None = None
        self.created_ids: list[str] = []  # ids of the (intermediate) images the build made
        self._dockerfile = dockerfile
        self._added_labels = tuple(added_labels)
        self._counted: dict[int, tuple[str, str]] = {}   # step -> (stage, instruction)
        self._cached: set[int] = set()
        self._from_step = False
        self._buffer = ""
        self._new_steps: list[tuple[int, int, str]] = []

    @classmethod
    def from_lines(cls, lines: Iterable[str], added_labels: Iterable[str] = (),
                   dockerfile: Dockerfile | None = None) -> ClassicLog:
        """A log already split into lines (``BuildResult.log``)."""
        log = cls(added_labels, dockerfile)
        for line in lines:
            log._parse(line)
            log.lines.append(line)
        return log

    @property
    def steps(self) -> list[BuildStep]:
        return [BuildStep(n, stage, ins, n in self._cached, _line_of(self._dockerfile, n))
                for n, (stage, ins) in sorted(self._counted.items())]

    def output_of(self, number: int) -> list[str]:
        """The lines step ``number`` printed (stripped; ``---> Running in`` and the like included)."""
        out: list[str] = []
        inside = False
        for line in self.lines:
            m = _CLASSIC_STEP.match(line.strip())
            if m:
                inside = int(m.group(1)) == number
            elif inside and line.strip():
                out.append(line.strip())
        return out

    @property
    def dockerfile_total(self) -> int:
        """M of "Step N/M" without the LABEL steps the API appends: the Dockerfile's own count.

        Once a step line was read and the appended label keys are known, that is the log's M
        minus one LABEL per key: exact with ``--target`` too, where the classic builder counts
        only the stages up to the target. Before that, the Dockerfile's instruction count.
        """
        if self._added_labels and self.builder_total > len(self._added_labels):
            return self.builder_total - len(self._added_labels)
        if self._dockerfile is not None and self._dockerfile.instructions:
            return len(self._dockerfile.instructions)
        return self.builder_total

    @property
    def in_added_labels(self) -> bool:
        """The build got past the Dockerfile's last step: it was adding the lab's labels."""
        return bool(self.step and self.dockerfile_total and self.step > self.dockerfile_total)

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
        m = _CLASSIC_STEP.match(line.strip())
        if m:
            n, total = int(m.group(1)), int(m.group(2))
            self.step, self.builder_total = n, total
            self.instruction = m.group(3).strip()
            self._new_steps.append((n, total, self.instruction))
            keyword, _, rest = self.instruction.partition(" ")
            self._from_step = keyword.upper() == "FROM"
            if self._from_step:
                self.stages_run.append(stage_name(rest, len(self.stages_run)))
            elif self.stages_run and not self._is_added_label(n, total, self.instruction):
                self._counted[n] = (self.stages_run[-1], self.instruction)
            return
        stripped = line.strip()
        if stripped == "---> Using cache" and self.step is not None:
            self._cached.add(self.step)
            return
        m = _CLASSIC_ID.match(stripped)
        if m:  # the id after a FROM step is the base image's, after a cached step an old one
            if (not self._from_step and self.step not in self._cached
                    and m.group(1) not in self.created_ids):
                self.created_ids.append(m.group(1))
            return
        m = re.match(r"^Successfully built ([0-9a-f]+)$", stripped)
        if m:
            self.short_id = m.group(1)
            if self.last_aux_id and self.last_aux_id.split(":", 1)[-1].startswith(self.short_id):
                self.image_id = self.last_aux_id


def _stage_named(dockerfile: Dockerfile | None, name: str) -> Stage | None:
    if dockerfile is None:
        return None
    # BuildKit's progress lines name a stage in lower case (`AS Builder` shows as [builder 2/4])
    return next((st for st in dockerfile.stages if st.name and st.name.lower() == name.lower()), None)


class BuildkitLog:
    """Parses ``docker build --progress=plain`` output (BuildKit) line by line.

    Steps are the ``#N [stage i/m] INSTRUCTION`` vertices (FROM vertices left out, like the
    classic count); BuildKit shows only the stages the target needs, so ``stages_run`` is
    exactly what ran (or came from cache). With the ``dockerfile`` model, ``[builder 2/4]``
    becomes the Dockerfile's own step number and line.
    """

    def __init__(self, dockerfile: Dockerfile | None = None) -> None:
        self.lines: list[str] = []
        self.vertices: dict[str, tuple[int, str, str]] = {}   # vertex -> (number, stage, instruction)
        self.labels: dict[str, str] = {}                      # vertex -> "builder 2/4"
        self.internal: dict[str, str] = {}                    # vertex -> "[internal] ..." text
        self.cached: set[str] = set()
        self.stages_run: list[str] = []
        self.image_id: str | None = None
        self.named: list[str] = []
        self.error: str | None = None
        self.error_vertex: str | None = None
        self.final_errors: list[str] = []
        self.created_ids: list[str] = []  # BuildKit makes no intermediate images
        self._dockerfile = dockerfile
        self._lines_of: dict[int, int] = {}
        self._in_error_block = False
        self._new_steps: list[tuple[int, str]] = []

    @classmethod
    def from_lines(cls, lines: Iterable[str], dockerfile: Dockerfile | None = None) -> BuildkitLog:
        """A log already split into lines (``BuildResult.log``)."""
        log = cls(dockerfile)
        for line in lines:
            log.feed(line)
        return log

    def _counted(self) -> dict[str, tuple[int, str, str]]:
        return {v: info for v, info in self.vertices.items()
                if not info[2].upper().startswith("FROM ")}

    @property
    def steps(self) -> list[BuildStep]:
        return [BuildStep(n, stage, ins, vertex in self.cached, self._lines_of.get(n))
                for vertex, (n, stage, ins) in sorted(self._counted().items(), key=lambda kv: kv[1][0])]

    @property
    def steps_total(self) -> int:
        return len(self._counted())

    def output_of(self, number: int) -> list[str]:
        """The lines step ``number``'s command printed (``#7 0.512 ok ...`` -> ``ok ...``)."""
        vertices = {v for v, info in self.vertices.items() if info[0] == number}
        out: list[str] = []
        for line in self.lines:
            m = _BK_OUTPUT.match(line)
            if m and m.group(1) in vertices:
                out.append(m.group(2).strip())
        return out

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
        """The failing (else last) step: ``step 7 (line 12, [builder 2/4])`` with the model."""
        vertex = self.error_vertex
        if vertex is None or vertex not in self.labels:
            vertex = max(self.vertices, key=lambda v: self.vertices[v][0], default=None)
        if vertex not in self.labels:
            return None
        n = self.vertices[vertex][0]
        if n in self._lines_of:
            total = len(self._dockerfile.instructions) if self._dockerfile else None
            return f"step {n}/{total} (line {self._lines_of[n]}, [{self.labels[vertex]}])"
        return f"step [{self.labels[vertex]}]"

    def take_new_steps(self) -> list[tuple[int, str]]:
        """Steps started since the last call: (n, instruction)."""
        steps, self._new_steps = self._new_steps, []
        return steps

    def _number(self, stage: str, index: int) -> int:
        """The Dockerfile's step number of ``[stage index/m]`` (else the order of appearance)."""
        st = _stage_named(self._dockerfile, stage)
        if st is not None and self._dockerfile is not None:
            ins: Instruction | None = None
            # BuildKit counts a stage's FROM as 1/m, except FROM scratch, which has no step
            offset = 0 if expand(st.base, self._dockerfile.global_args).lower() == "scratch" else 1
            if index == 1 and offset:
                ins = next((i for i in self._dockerfile.instructions if i.line == st.line), None)
            elif 0 < index - offset <= len(st.instructions):
                ins = st.instructions[index - offset - 1]
            if ins is not None:
                n = self._dockerfile.instructions.index(ins) + 1
                self._lines_of[n] = ins.line
                return n
        return len(self.vertices) + 1

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
                number = self._number(stage, int(lm.group(2)))
                self.vertices[vertex] = (number, stage, rest.strip())
                self.labels[vertex] = label.strip()
                if stage not in self.stages_run:
                    self.stages_run.append(stage)
                self._new_steps.append((number, rest.strip()))
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


def parse_log(lines: Iterable[str], builder: str | None = None,
              dockerfile: Dockerfile | None = None) -> ClassicLog | BuildkitLog:
    """Parse a finished log (``BuildResult.log``); ``builder`` None: tell by its first step line."""
    lines = list(lines)
    if builder is None:
        builder = "classic" if any(_CLASSIC_STEP.match(x.strip()) for x in lines) else "buildkit"
    if builder == "classic":
        return ClassicLog.from_lines(lines, dockerfile=dockerfile)
    return BuildkitLog.from_lines(lines, dockerfile)


def created_ids(lines: Iterable[str]) -> list[str]:
    """Ids of the images a classic build created (not cached, not a FROM's base; tests clean them)."""
    return ClassicLog.from_lines(lines).created_ids
