"""The rules exercise checks apply: pure functions of (ImageReport, BuildResult, facts).

Used by ``stagelab.exercises`` (the table of which exercise applies which rules) for every
notebook's exercise (00-07). A rule returns ``None`` when the answer satisfies it, else one
sentence of feedback that says what was measured and what to change. Each :class:`Rule`
names the facts it needs (``stagelab.facts``): rules that need only ``dockerfile`` are
*static* and run without an engine (unit tests, the wrong-answer corpus in
``tests/exercises/``); the others need the built image.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import facts as F
from .dockerfile import Dockerfile
from .units import human_size

Facts = Mapping[str, Any]
Check = Callable[[Any, Any, Facts], "str | None"]

#: The fake token the secret exercise and notebook 04 use (never a real secret).
DEMO_TOKEN = "stagelab-demo-token-8f3a61c2"

#: Packages that only the build needs (ts-server's devDependencies and what they pull in).
DEV_ONLY_PACKAGES: tuple[str, ...] = ("typescript", "tsx", "esbuild", "@types", "@esbuild")

#: Files a dependency install may depend on (manifests, lockfiles, npm/tsc config): copying
#: only these before `npm ci` keeps the install cached while sources change.
INSTALL_INPUTS = re.compile(
    r"^(package(-lock)?\.json|npm-shrinkwrap\.json|\.npmrc|yarn\.lock|pnpm-lock\.yaml|tsconfig[^/]*\.json)$"
)

#: The glibc dynamic loader by image architecture (what a cgo binary on scratch lacks).
LOADERS = {"amd64": "/lib64/ld-linux-x86-64.so.2", "arm64": "/lib/ld-linux-aarch64.so.1"}

IMAGE = "image"   # the needs of a rule that reads the ImageReport only


@dataclass(frozen=True)
class Rule:
    """One rule: ``check(report, build, facts)`` and the facts it needs (``stagelab.facts`` keys)."""

    check: Check
    needs: frozenset[str] = frozenset({IMAGE})
    paths: tuple[str, ...] = ()     # files of the image the rule reads (ELF sections, CA bundle)
    secret: str | None = None       # the BuildKit --secret id the check must pass for this rule

    def __call__(self, report: Any, build: Any, facts: Facts) -> str | None:
        return self.check(report, build, facts)

    @property
    def static(self) -> bool:
        """True when the Dockerfile alone decides (no build, no engine)."""
        return self.needs <= {F.DOCKERFILE, F.CONTEXT_FILES}


def _rule(*needs: str, paths: tuple[str, ...] = (), secret: str | None = None) -> Callable[[Check], Rule]:
    return lambda fn: Rule(fn, frozenset(needs or (IMAGE,)), paths, secret)


def _file(report: Any, path: str) -> Any:
    files = getattr(report, "files", None) or {}
    return files.get(path) or files.get(path.rstrip("/"))


def _size(report: Any) -> str:
    return f"{human_size(report.size)} (uncompressed)"


# --- static rules: the Dockerfile alone ---------------------------------------------------------


def single_stage(hint: str) -> Rule:
    """Fails when the Dockerfile has more than one stage (exercise 01 measures one stage)."""

    @_rule(F.DOCKERFILE)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        df = facts[F.DOCKERFILE]
        if len(df.stages) <= 1:
            return None
        return (f"Your Dockerfile has {len(df.stages)} stages ({', '.join(st.name for st in df.stages)}): that is the "
                f"multi-stage answer of notebook 02, not this exercise. {hint}")

    return rule


_NO_FROM = "Your Dockerfile has no FROM: "


def copies_from_earlier_stage(hint: str) -> Rule:
    """Fails unless the final stage is a new stage that ``COPY --from``s an earlier one."""

    @_rule(F.DOCKERFILE)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        df, final = facts[F.DOCKERFILE], F.final_stage(facts[F.DOCKERFILE])
        if final is None:
            return _NO_FROM + hint
        if len(df.stages) < 2:
            return (f"Your Dockerfile has one stage (FROM {final.base}): whatever it installs and then "
                    f"prunes stays in that stage's layers. {hint}")
        if not F.copied_from(df, final):
            return (f"Your final stage `{final.name}` copies nothing from an earlier stage "
                    f"(no COPY --from={df.stages[0].name}): {hint}")
        return None

    return rule


def final_base(arg: str, word: str, hint: str) -> Rule:
    """Fails unless the final stage starts from ``${arg}`` or an image whose name contains ``word``."""

    @_rule(F.DOCKERFILE)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        df, final = facts[F.DOCKERFILE], F.final_stage(facts[F.DOCKERFILE])
        if final is None:
            return _NO_FROM + hint
        if arg in final.base or word in F.base_image(df, final):
            return None
        return f"Your final stage starts FROM {final.base}, but the task asks for {word}: {hint}"

    return rule


def secret_mount(secret_id: str, hint: str) -> Rule:
    """Fails unless a RUN of a stage before the final one mounts the BuildKit secret ``secret_id``."""

    @_rule(F.DOCKERFILE, secret=secret_id)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        df = facts[F.DOCKERFILE]
        stages = df.stages[:-1] if len(df.stages) > 1 else df.stages
        if any(secret_id in F.secret_mounts(st) for st in stages):
            return None
        found = [i for st in df.stages for i in F.secret_mounts(st)]
        if found:
            return (f"Your Dockerfile mounts the secret(s) {', '.join(found)}, not `{secret_id}` in a builder "
                    f"stage (the check passes --secret id={secret_id}): {hint}")
        return f"No RUN receives the token through a BuildKit secret mount (RUN --mount=type=secret,id={secret_id}): {hint}"

    return rule


def last_stage_is(name: str, keep: tuple[str, ...] = ()) -> Rule:
    """Fails when the Dockerfile's last stage is not ``name`` or a stage in ``keep`` is gone."""

    @_rule(F.DOCKERFILE)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        stages = [st.name for st in facts[F.DOCKERFILE].stages]
        if not stages:
            return f"Your Dockerfile has no FROM: keep the stages {', '.join((name,) + keep)}."
        missing = [k for k in (name,) + keep if k not in stages]
        if missing:
            return (f"The stage(s) {', '.join(missing)} are gone: keep them (they are the other targets), "
                    f"only change the order.")
        if stages[-1] != name:
            return (f"A build without --target builds the stage `{stages[-1]}`, because it is the last one in "
                    f"the file (stages in order: {', '.join(stages)}): move the `{name}` stage to the end.")
        return None

    return rule


_INSTALL = re.compile(r"\b(npm|pnpm|yarn)\s+(ci|install|i)\b")


def _context_copy_sources(args: str) -> list[str] | None:
    """Sources of a COPY/ADD from the build context (None: a COPY --from=...)."""
    if args.strip().startswith("["):
        tokens = re.findall(r'"([^"]*)"', args)
    else:
        tokens = args.split()
    if any(t.startswith("--from") for t in tokens):
        return None
    tokens = [t for t in tokens if not t.startswith("--")]
    return tokens[:-1] if len(tokens) > 1 else []


def copies_before_install(df: Dockerfile, context_files: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(stage, the COPY, the install) where a COPY of more than the install inputs precedes an install.

    A pattern source (``*.json``) is fine when every context file it matches is an install
    input (``context_files`` given); without the file list, a pattern counts as a source copy.
    """
    bad: list[tuple[str, str, str]] = []
    for stage in df.stages:
        copies: list[str] = []
        for ins in stage.instructions:
            sources = _context_copy_sources(ins.args) if ins.keyword in ("COPY", "ADD") else None
            if sources is not None:
                if any(not _install_input(src, context_files) for src in sources):
                    copies.append(f"{ins.keyword} {ins.args}")
            elif ins.keyword == "RUN" and _INSTALL.search(ins.args) and copies:
                bad.append((stage.name, copies[0], f"RUN {ins.args}"))
    return bad


def _install_input(source: str, context_files: list[str] | None) -> bool:
    source = source.removeprefix("./")
    if INSTALL_INPUTS.match(source):
        return True
    if context_files is None or not any(c in source for c in "*?["):
        return False
    matched = F.glob_matches(source, context_files)
    return bool(matched) and all(INSTALL_INPUTS.match(m) for m in matched)


def install_before_sources(hint: str = "") -> Rule:
    """Fails when a stage copies more than the package manifests (and tsconfig) before the install."""

    @_rule(F.DOCKERFILE, F.CONTEXT_FILES)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        bad = copies_before_install(facts[F.DOCKERFILE], facts.get(F.CONTEXT_FILES))
        if not bad:
            return None
        stage, copy, install = bad[0]
        return (f"In stage {stage}, `{copy}` comes before `{install}`: any change to a copied source file "
                "invalidates the cache from that COPY on, so every edit re-runs the install. "
                + (hint or "Copy package.json and package-lock.json first, run the install, then copy the sources."))

    return rule


# --- rules on the final image (ImageReport) -------------------------------------------------------


def no_compilers(hint: str = "did you start a new stage (FROM scratch) and COPY --from=builder only the binary?") -> Rule:
    """Fails when the final image still holds a compiler (go, gcc, tsc ...)."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        found = list(report.surface.compilers or [])
        if not found:
            return None
        return (f"Your image is {_size(report)} and still has {', '.join(found)}: the toolchain is "
                f"in the final stage — {hint}")

    return rule


def binary_present(path: str, hint: str = "") -> Rule:
    """Fails when the app's artefact is not at ``path`` in the final image."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        entry = _file(report, path)
        if entry is not None and getattr(entry, "type", "file") in ("file", "hardlink"):
            return None
        return (f"There is no file {path} in your image, so it has nothing to run. "
                + (hint or f"COPY the compiled program to {path} in the final stage."))

    return rule


def max_size_vs_binary(path: str, factor: float, hint: str) -> Rule:
    """Fails when the image is bigger than ``factor`` x the size of the file at ``path``."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        entry = _file(report, path)
        if entry is None or not entry.size:
            return None   # binary_present reports this
        if report.size <= factor * entry.size:
            return None
        return (f"Your image is {_size(report)} for a {human_size(entry.size)} binary "
                f"({report.size / entry.size:.1f} x; the target is at most {factor:g} x): {hint}")

    return rule


def no_shell(hint: str = "base the final stage on scratch or distroless, not on an OS image.") -> Rule:
    """Fails when a shell is found in the final image."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        shell = report.surface.shell
        if not shell:
            return None
        return f"Your final image has a shell ({shell}), so its final stage is an OS image: {hint}"

    return rule


def non_root(hint: str = "add `USER 65532:65532` (numeric: scratch has no /etc/passwd) to the final stage.") -> Rule:
    """Fails when the image runs as root (USER unset, 0 or root)."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        if not report.surface.runs_as_root:
            return None
        return f"Your image runs as root (USER {report.user or 'not set'}): {hint}"

    return rule


def file_present(path: str, hint: str) -> Rule:
    """Fails when ``path`` is missing from the final image."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        return None if _file(report, path) is not None else f"{path} is not in your image: {hint}"

    return rule


def file_absent(path: str, hint: str) -> Rule:
    """Fails when ``path`` is still in the final image."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        entry = _file(report, path)
        if entry is None:
            return None
        return f"{path} is still in your image (written by layer {entry.layer}): {hint}"

    return rule


def label_set(key: str, placeholder: str, hint: str) -> Rule:
    """Fails when label ``key`` is missing, empty or still ``placeholder``."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        value = (report.labels or {}).get(key, "").strip()
        if value and value != placeholder:
            return None
        shown = f"still {placeholder!r}" if value == placeholder else "missing"
        return f"The label {key} is {shown}: {hint}"

    return rule


def no_secret(hint_file: str, hint_history: str, *, redact: str | None = None) -> Rule:
    """Fails when the exercise's secret is in the image (files, history, env, labels); ``redact`` hides its value."""

    def shown(text: str) -> str:
        text = " ".join(text.split())
        return text.replace(redact, "***") if redact else text

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        hits = list(report.surface.secret_hits or [])
        if not hits:
            return None
        files = [h for h in hits if h.startswith("/")]
        other = [h for h in hits if not h.startswith("/")]
        parts = []
        if files:
            parts.append(f"in the file {', '.join(shown(f) for f in files[:3])} — {hint_file.rstrip('.')}")
        if other:
            example = shown(other[0])[:90]
            parts.append(f"in {len(other)} history/metadata entr{'y' if len(other) == 1 else 'ies'} "
                         f"(e.g. {example}) — {hint_history.rstrip('.')}")
        return "The token is in your final image: " + "; and ".join(parts) + "."

    return rule


def dev_packages_found(report: Any) -> list[str]:
    """Dev-only packages present in any node_modules of the final tree (``["typescript", "tsx"]``)."""
    found: list[str] = []
    for path, entry in (getattr(report, "files", None) or {}).items():
        if not getattr(entry, "is_regular", True):
            continue   # npm may leave an empty scope folder (node_modules/@types) behind
        name = F.package_of(path)
        if name in DEV_ONLY_PACKAGES and name not in found:
            found.append(name)
    return found


def ts_sources_found(report: Any) -> list[str]:
    """TypeScript sources (``.ts``, not ``.d.ts``) outside node_modules."""
    return sorted(p for p, e in (getattr(report, "files", None) or {}).items()
                  if p.endswith(".ts") and not p.endswith(".d.ts") and "/node_modules/" not in p
                  and getattr(e, "is_regular", True))


def no_dev_packages(hint: str = "") -> Rule:
    """Fails when typescript, tsx, esbuild or @types are in the final tree."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        found = dev_packages_found(report)
        if not found:
            return None
        return (f"Your final image still has the dev-only package(s) {', '.join(found)} in node_modules: "
                + (hint or "install only the runtime dependencies in the final stage with `npm ci --omit=dev` "
                   "(the article's `--only=production` is deprecated), and do not COPY node_modules from the builder."))

    return rule


def no_dev_packages_in_layers() -> Rule:
    """Fails when any layer of the image wrote a dev-only package, even one a later layer deleted."""

    @_rule(IMAGE, F.LAYER_PACKAGES)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        found = facts.get(F.LAYER_PACKAGES)
        if not found or dev_packages_found(report):
            return None   # not measured, or no_dev_packages already names them
        return (f"The final file tree is clean, but a layer of your image still holds the dev-only package(s) "
                f"{', '.join(found)}: a later `npm prune` or `rm` only hides them, and every pull downloads them. "
                "Install them in a builder stage and COPY --from=builder only dist/.")

    return rule


def no_ts_sources(hint: str = "copy only the compiled dist/ from the builder (COPY --from=builder /app/dist ./dist), "
                             "not the whole folder.") -> Rule:
    """Fails when .ts sources are in the final image."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        found = ts_sources_found(report)
        if not found:
            return None
        shown = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
        return f"The TypeScript sources are in your final image ({shown}): {hint}"

    return rule


def compiled_entry(path_suffix: str = "/dist/index.js",
                   hint: str = "COPY --from=builder the compiled dist/ folder into the final stage.") -> Rule:
    """Fails when no file ending in ``path_suffix`` is in the image (nothing compiled to run)."""

    @_rule()
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        if any(p.endswith(path_suffix) for p in (getattr(report, "files", None) or {})):
            return None
        return f"There is no {path_suffix.lstrip('/')} in your image, so `node dist/index.js` has nothing to run: {hint}"

    return rule


# --- rules on file contents and on the running container ----------------------------------------


def stripped(path: str) -> Rule:
    """Fails when the ELF binary at ``path`` still has a symbol table or debug sections."""

    @_rule(F.ELF_SECTIONS, paths=(path,))
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        sections = (facts.get(F.ELF_SECTIONS) or {}).get(path)
        if sections is None or isinstance(sections, str):
            return None   # not read (binary_present names a missing binary)
        debug = [s for s in sections if s.startswith((".debug_", ".zdebug_"))]
        found = ([("a symbol table (.symtab)")] if ".symtab" in sections else []) + (
            [f"{len(debug)} DWARF debug section(s) ({', '.join(debug[:3])}{' ...' if len(debug) > 3 else ''})"]
            if debug else [])
        if not found:
            return None
        return (f"{path} is not stripped: it still has {' and '.join(found)}, which the program does not "
                'need to run. Build with -ldflags="-w -s" (-s drops the symbol table, -w the DWARF debug info).')

    return rule


def ca_bundle_parses(path: str, hint: str) -> Rule:
    """Fails when the CA bundle at ``path`` holds no parseable certificate."""

    @_rule(F.CA_CERTIFICATES, paths=(path,))
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        got = facts.get(F.CA_CERTIFICATES)
        if got is None or F.usable_bundle(got):
            return None   # not read (file_present names a missing bundle), or fine
        return f"{path} is in your image but holds no certificate ({got}): {hint}"

    return rule


def fetch_works(hint: str) -> Rule:
    """Fails when ``/fetch`` of the lab's HTTPS server (through the image's CA bundle) did not answer 200."""

    @_rule(F.FETCH, F.CA_CERTIFICATES)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        got, ca = facts.get(F.FETCH), facts.get(F.CA_CERTIFICATES)
        if got is None or facts.get(F.START_ERROR) or not F.usable_bundle(ca):
            return None   # not tried, or no usable bundle: starts / file_present / ca_bundle_parses say why
        code, body = got
        if code == 200:
            return None
        detail = f" ({body['error']})" if isinstance(body, Mapping) and body.get("error") else ""
        return f"An HTTPS call from your image (/fetch of the lab's own server) answered {code}{detail}: {hint}"

    return rule


def fails_without_secret(secret_id: str) -> Rule:
    """Fails when a build without ``--secret id=<secret_id>`` succeeds (the build ignores the secret)."""

    @_rule(F.WITHOUT_SECRET, secret=secret_id)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        if facts.get(F.WITHOUT_SECRET) != "succeeded":
            return None
        return (f"A build WITHOUT --secret id={secret_id} succeeded too, so your build never uses the token. "
                f"Read it in the RUN that needs it (from /run/secrets/{secret_id}), and add required=true "
                "to the mount so a missing secret stops the build.")

    return rule


def starts(hint: str = "") -> Rule:
    """Fails when the container did not start (facts["start_error"])."""

    @_rule(F.START_ERROR)
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        error = facts.get(F.START_ERROR)
        if not error:
            return None
        low = str(error).lower()
        if "no such file or directory" in low and "exec" in low:
            loader = LOADERS.get(getattr(report, "architecture", "") or "", "the glibc loader ld-linux-*.so")
            why = ("the kernel could not run the binary although it is there: a dynamically linked "
                   f"binary needs a loader ({loader}) the image does not have — "
                   "build with CGO_ENABLED=0.")
        else:
            why = hint or "read the error and the container's logs."
        return f"The container did not start ({error}): {why}"

    return rule


def responds(path: str, *, status: int = 200, expect: Mapping[str, Any] | None = None, hint: str = "") -> Rule:
    """Fails when GET ``path`` (a probed path) did not answer ``status`` (and the ``expect`` fields)."""

    @_rule(F.get_path(path))
    def rule(report: Any, build: Any, facts: Facts) -> str | None:
        if facts.get(F.START_ERROR):
            return None   # `starts` reports it
        got = facts.get(F.get_path(path))
        if got is None:
            return f"GET {path} was not tried (no answer recorded): {hint or 'does the container start?'}"
        code, body = got
        if code != status:
            detail = f" ({body['error']})" if isinstance(body, Mapping) and body.get("error") else ""
            return f"GET {path} answered {code}{detail}, expected {status}: {hint}"
        for key, want in (expect or {}).items():
            have = body.get(key) if isinstance(body, Mapping) else None
            if have != want:
                return f"GET {path} answered {key}={have!r}, expected {want!r}: {hint}"
        return None

    return rule
