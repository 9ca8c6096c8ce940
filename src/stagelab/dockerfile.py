"""Read a Dockerfile once: its instructions, ARGs, stages and the edges between stages.

The one Dockerfile model of the package. ``build`` uses it for build args, base-image
messages and the BuildKit feature check; ``buildlog`` maps log steps back to the learner's
own instructions (line numbers, the Dockerfile's numbering); notebook 06 lists the stages
and which of them a ``--target`` needs; ``scorecard`` and the exercises read stages and ARGs.

    df = parse(text)                 # or read(path)
    df.instructions                  # Instruction(line, keyword, args, text, end_line, heredocs)
    df.stages                        # Stage(index, name, base, line, ...)
    df.needed("production")          # the stages that target depends on, in file order
    df.buildkit_features()           # `# syntax=`, RUN --mount=type=..., heredocs, COPY --link ...

Nothing here talks to an engine.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

INSTRUCTIONS = frozenset({
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
    "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
})
LAYER_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})  # instructions that change the file system

_DIRECTIVE = re.compile(r"^\s*#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuation lines joined (``text`` as written, ``args`` after the keyword)."""

    line: int                       # 1-based line where it starts
    keyword: str                    # upper case
    args: str
    text: str
    end_line: int = 0               # last line, heredoc bodies included
    heredocs: tuple[str, ...] = ()  # the heredoc words (``EOF``) this instruction opens

    @property
    def flags(self) -> dict[str, str]:
        """Leading ``--name=value`` flags (``--from``, ``--mount``, ``--link``; last one wins)."""
        found: dict[str, str] = {}
        for word in self.args.split():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name.lower()] = value
        return found

    @property
    def mounts(self) -> list[dict[str, str]]:
        """The ``RUN --mount=...`` options, each as a dict (``type`` defaults to ``bind``)."""
        out = []
        for word in self.args.split():
            if not word.startswith("--"):
                break
            if word.lower().startswith("--mount="):
                opts = dict(part.partition("=")[::2] for part in word[len("--mount="):].split(","))
                opts.setdefault("type", "bind")
                out.append(opts)
        return out


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and the instructions up to the next."""

    index: int
    name: str                       # the ``AS`` name, else ``stage-<index>`` (as BuildKit names it)
    base: str                       # the image reference as written (may contain ``${ARG}``)
    line: int = 0
    alias: str | None = None        # the ``AS`` name as written, None when the stage has none
    platform: str | None = None
    instructions: tuple[Instruction, ...] = ()

    def all(self, keyword: str) -> list[str]:
        """The ``args`` of this stage's ``keyword`` instructions, in order."""
        return [ins.args for ins in self.instructions if ins.keyword == keyword.upper()]


@dataclass(frozen=True)
class Feature:
    """A Dockerfile feature that only BuildKit has (``classic_fails``: the classic builder stops on it)."""

    name: str                       # e.g. "RUN --mount=type=cache", "heredoc", "# syntax="
    line: int
    text: str
    classic_fails: bool = True


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: directives, instructions, global ARGs and stages."""

    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    directives: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (line, value)
    global_args: dict[str, str | None] = field(default_factory=dict)      # ARGs before the first FROM
    text: str = ""                                                         # the text it was parsed from

    @property
    def syntax(self) -> str | None:
        """The ``# syntax=`` frontend image, if the file names one."""
        found = self.directives.get("syntax")
        return found[1] if found else None

    def args(self) -> dict[str, str | None]:
        """Every ``ARG NAME[=default]`` of the file: name -> default (first declaration wins)."""
        found: dict[str, str | None] = {}
        for ins in self.instructions:
            if ins.keyword == "ARG":
                for name, default in _arg_pairs(ins.args):
                    found.setdefault(name, default)
        return found

    def stage(self, target: str | None = None) -> Stage:
        """The stage named ``target`` (or with that index); the last stage for None."""
        if not self.stages:
            raise KeyError("the Dockerfile has no FROM")
        if target is None:
            return self.stages[-1]
        for st in self.stages:
            if st.alias and st.alias.lower() == target.lower():
                return st
        if target.isdigit() and int(target) < len(self.stages):
            return self.stages[int(target)]
        raise KeyError(target)

    def _ref(self, ref: str, before: int) -> Stage | None:
        """The earlier stage a ``FROM``/``--from=`` reference names, None for an image."""
        ref = expand(ref, self.global_args)
        for st in self.stages[:before]:
            if st.alias and st.alias.lower() == ref.lower():
                return st
        if ref.isdigit() and int(ref) < before:
            return self.stages[int(ref)]
        return None

    def base_stage(self, stage: Stage) -> Stage | None:
        """The earlier stage ``stage`` is built ``FROM``, None when it starts from an image."""
        return self._ref(stage.base, stage.index)

    def chain(self, stage: Stage) -> list[Stage]:
        """``stage`` and the stages it is built ``FROM`` (nearest first; the last starts from an image)."""
        out = [stage]
        while (parent := self.base_stage(out[-1])) is not None:
            out.append(parent)
        return out

    def depends_on(self, stage: Stage) -> list[Stage]:
        """Stages ``stage`` uses directly: its ``FROM <stage>``, ``COPY --from``, ``RUN --mount=from=``."""
        refs = [stage.base]
        for ins in stage.instructions:
            if ins.keyword in ("COPY", "ADD") and "from" in ins.flags:
                refs.append(ins.flags["from"])
            refs.extend(m["from"] for m in ins.mounts if m.get("from"))
        out: list[Stage] = []
        for ref in refs:
            found = self._ref(ref, stage.index)
            if found is not None and found not in out:
                out.append(found)
        return out

    def needed(self, target: str | None = None) -> list[Stage]:
        """The stages a build of ``target`` (None: the last stage) needs, in file order.

        This is what BuildKit builds; the classic builder builds every stage up to the target.
        """
        todo, seen = [self.stage(target)], set()
        while todo:
            st = todo.pop()
            if st.index in seen:
                continue
            seen.add(st.index)
            todo.extend(self.depends_on(st))
        return [st for st in self.stages if st.index in seen]

    def buildkit_features(self) -> list[Feature]:
        """Features only BuildKit understands, in file order (``# syntax=`` does not stop classic)."""
        out: list[Feature] = []
        if "syntax" in self.directives:
            line, value = self.directives["syntax"]
            out.append(Feature("# syntax=", line, f"# syntax={value}", classic_fails=False))
        for ins in self.instructions:
            if ins.heredocs:
                out.append(Feature("heredoc", ins.line, ins.text))
            if ins.keyword == "RUN":
                out.extend(Feature(f"RUN --mount=type={m['type']}", ins.line, ins.text) for m in ins.mounts)
                for flag in ("network", "security"):
                    if flag in ins.flags:
                        out.append(Feature(f"RUN --{flag}", ins.line, ins.text))
            if ins.keyword in ("COPY", "ADD"):
                for flag in ("link", "chmod", "parents", "exclude", "checksum", "keep-git-dir"):
                    if flag in ins.flags:
                        out.append(Feature(f"{ins.keyword} --{flag}", ins.line, ins.text))
        return out


def _directives(lines: list[str]) -> dict[str, tuple[int, str]]:
    """Parser directives: ``# key=value`` lines at the very top (before any other line)."""
    found: dict[str, tuple[int, str]] = {}
    for number, raw in enumerate(lines, start=1):
        m = _DIRECTIVE.match(raw)
        if not m:
            break
        found.setdefault(m.group(1).lower(), (number, m.group(2)))
    return found


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile's text (comments, blank lines, continuations and heredocs handled)."""
    lines = text.splitlines()
    directives = _directives(lines)
    escape = directives.get("escape", (0, "\\"))[1][:1] or "\\"
    instructions: list[Instruction] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i + 1
        continued = stripped.endswith(escape)
        parts = [stripped[:-1].rstrip() if continued else stripped]
        while continued and i + 1 < len(lines):
            i += 1
            nxt = lines[i].strip()
            if not nxt or nxt.startswith("#"):  # comments inside a continuation are dropped
                continue
            continued = nxt.endswith(escape)
            parts.append(nxt[:-1].rstrip() if continued else nxt)
        joined = " ".join(p for p in parts if p)
        keyword, _, args = joined.partition(" ")
        keyword = keyword.upper()
        words: tuple[str, ...] = ()
        if keyword in LAYER_KEYWORDS:
            heredocs = _HEREDOC.findall(args)
            words = tuple(word for _, _, word in heredocs)
            for dash, _, word in heredocs:  # the bodies follow the instruction's line
                while i + 1 < len(lines):
                    i += 1
                    body = lines[i].lstrip("\t") if dash else lines[i]
                    if body.rstrip() == word:
                        break
        instructions.append(Instruction(start, keyword, args.strip(), joined, i + 1, words))
        i += 1
    return Dockerfile(tuple(instructions), _stages(instructions), directives, _global_args(instructions), text)


def read(path: str | Path) -> Dockerfile:
    """Parse the Dockerfile at ``path``."""
    return parse(Path(path).read_text(errors="replace"))


def from_parts(args: str) -> tuple[str, str | None, str | None]:
    """``FROM`` arguments -> (image, ``AS`` name or None, ``--platform`` or None)."""
    platform = None
    tokens = []
    for token in args.split():
        if token.startswith("--"):
            if token.lower().startswith("--platform="):
                platform = token.split("=", 1)[1]
            continue
        tokens.append(token)
    image = tokens[0] if tokens else ""
    name = tokens[2] if len(tokens) >= 3 and tokens[1].upper() == "AS" else None
    return image, name, platform


def stage_name(from_args: str, index: int) -> str:
    """The name a stage goes by in logs: its ``AS`` name, else ``stage-<index>``."""
    return from_parts(from_args)[1] or f"stage-{index}"


def _stages(instructions: list[Instruction]) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    body: list[Instruction] = []
    head: Instruction | None = None

    def close() -> None:
        if head is not None:
            image, alias, platform = from_parts(head.args)
            idx = len(stages)
            stages.append(Stage(idx, alias or f"stage-{idx}", image, head.line, alias, platform, tuple(body)))

    for ins in instructions:
        if ins.keyword == "FROM":
            close()
            head, body = ins, []
        elif head is not None:
            body.append(ins)
    close()
    return tuple(stages)


def _arg_pairs(args: str) -> list[tuple[str, str | None]]:
    try:
        tokens = shlex.split(args, comments=False)
    except ValueError:
        tokens = args.split()
    out = []
    for token in tokens:
        name, eq, default = token.partition("=")
        if _ARG_NAME.fullmatch(name):
            out.append((name, default if eq else None))
    return out


def _global_args(instructions: list[Instruction]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            for name, default in _arg_pairs(ins.args):
                found.setdefault(name, default)
    return found


# --- the functions the rest of the package calls ------------------------------------------


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile's text."""
    return list(parse(text).instructions)


def declared_args(text: str) -> dict[str, str | None]:
    """``ARG NAME[=default]`` declarations of a Dockerfile: name -> default (None if none)."""
    return parse(text).args()


def dockerfile_stages(text: str) -> list[Stage]:
    """The stages of a Dockerfile in file order (notebook 06 lists them)."""
    return list(parse(text).stages)


def expand(value: str, args: Mapping[str, str | None]) -> str:
    """Expand ``$NAME``, ``${NAME}``, ``${NAME:-default}`` with build args (for messages)."""

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        default = m.group(2)
        got = args.get(name)
        if got:
            return got
        return default if default is not None else ""

    return _VAR.sub(repl, value)
