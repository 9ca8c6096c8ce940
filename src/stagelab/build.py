"""Build an app variant (or any folder) and report what happened: ``BuildResult`` / ``BuildFailed``.

Every notebook that builds calls ``build(app, variant)``; exercises and notebook 08 ("your
own project") call ``build_context(folder, dockerfile, tag=...)``. The builder is the
engine's default, as with ``docker build`` (``builders``): BuildKit through the docker CLI,
or the classic builder through the SDK. Both logs become the same ``BuildResult``
(``buildlog``); failures are explained by ``builderrors``.
"""
from __future__ import annotations

import html
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import builders
from .buildcontext import resolve_paths
from .builderrors import (  # noqa: F401  (re-exported: notebooks and exercises catch them from here)
    BuildFailed, BuildkitUnavailable, FrontendTooOld, FrontendUnavailable, NeedsBuildkit, check_classic, explain,
)
from .buildlog import BuildStep
from .dockerfile import (  # noqa: F401  (re-exported: notebook 06 and scorecard import them from here)
    Dockerfile, declared_args, dockerfile_stages, expand, parse,
)
from .errors import StagelabError


# --- results ------------------------------------------------------------------------------


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
    notes: list[str] = field(default_factory=list)   # what the lab changed for this build (stand-ins)

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
        return "\n".join([self.summary()] + [f"  note: {n}" for n in self.notes])

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
        if self.notes:
            rows.append(("built from a copy", "<br>".join(esc(n) for n in self.notes)))
        body = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td style='text-align:left'>{v}</td></tr>"
            for k, v in rows
        )
        title = f"{esc(self.app)}:{esc(self.variant)}" if self.app else esc(self.tag)
        return f"<div><b>Built {title}</b><table>{body}</table></div>"


# --- building -----------------------------------------------------------------------------


def _check_bases(base_args: dict[str, str], profile_obj) -> None:
    """Fail early, with the role and the fix, when a base image of the profile is missing."""
    if not base_args:
        return
    from .bases import check_bases

    check_bases(base_args, profile_obj)


def _select_build_args(
    model: Dockerfile, profile: str | None, build_args: Mapping[str, str] | None
) -> tuple[dict[str, str], dict[str, str], str | None, object | None]:
    """(all build args to pass, base-image args among them, profile name, profile object)."""
    declared = model.args()
    base: dict[str, str] = {}
    profile_name: str | None = None
    profile_obj = None
    if profile is not None or declared:  # a file without ARGs (FROM scratch ...) needs no profile
        from .catalogue import roles
        from .profiles import active_profile

        if profile is None and not any(role.arg in declared for role in roles()):
            return {k: str(v) for k, v in (build_args or {}).items()}, {}, None, None
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
    builder: str | None = None,
    labels: Mapping[str, str] | None = None,
    nocache: bool = False,
    progress: str | None = "auto",
    build_args: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    _app: str | None = None,
    _variant: str | None = None,
) -> BuildResult:
    """Build any folder (exercises, notebook 08) with the profile's base images as build args.

    ``builder``: None follows ``STAGELAB_BUILDER`` (default ``auto``: the engine's default
    builder); "classic" or "buildkit" force one. Only the ARGs the Dockerfile declares are
    passed (no "unused build-arg" warnings); every image gets the lab labels (so ``stagelab
    clean`` can remove it), a label naming the builder, plus ``labels``. ``secrets`` (id ->
    value, BuildKit only) are passed with ``--secret`` (notebook 04).
    """
    from . import naming
    from .engine import client as engine_client

    wanted = builders.wanted_builder(builder)  # an unknown name fails before anything else
    if secrets and wanted == "classic":
        raise StagelabError("Build secrets (--secret) need BuildKit; the classic builder has none.",
                            'build with builder="buildkit" (or STAGELAB_BUILDER=buildkit)')
    ctx, df_path, df_shown = resolve_paths(context, dockerfile)
    model = parse(df_path.read_text(errors="replace"))
    cli = engine_client()
    # secrets need BuildKit: with auto they choose it, as `docker build --secret` would need it
    chosen = builders.choose_builder("buildkit" if secrets and wanted == "auto" else wanted, cli)
    if chosen == "classic":
        check_classic(model, df_shown)
    target = target or None
    passed, base_args, profile_name, profile_obj = _select_build_args(model, profile, build_args)
    all_labels = naming.lab_labels(profile=profile_name) if profile_name else naming.lab_labels()
    all_labels[builders.BUILDER_LABEL] = chosen
    all_labels.update(labels or {})
    _check_bases(base_args, profile_obj)

    arg_values: dict[str, str | None] = dict(model.args())
    arg_values.update(passed)
    job = builders.BuildJob(ctx=ctx, df_path=df_path, df_shown=df_shown, model=model, tag=tag,
                            target=target, labels=all_labels, build_args=passed, arg_values=arg_values,
                            nocache=nocache, progress=progress, secrets=dict(secrets or {}))
    started = time.monotonic()
    if chosen == "buildkit":
        parsed, image_id, context_bytes = builders.run_buildkit(job)
    else:
        parsed, image_id, context_bytes = builders.run_classic(cli, job)
    seconds = time.monotonic() - started
    return BuildResult(
        app=_app, variant=_variant, tag=tag, image_id=image_id, seconds=seconds,
        steps_total=parsed.steps_total, steps_cached=parsed.steps_cached, log=list(parsed.lines),
        profile=profile_name, base_images=dict(base_args), builder=chosen,
        stages_run=list(parsed.stages_run), target=target, steps=parsed.steps,
        context_bytes=context_bytes, dockerfile=df_shown, build_args=dict(passed),
    )


def build(
    app: str,
    variant: str,
    *,
    profile: str | None = None,
    nocache: bool = False,
    builder: str | None = None,
    progress: str | None = "auto",
    extra_args: Mapping[str, str] | None = None,
) -> BuildResult:
    """Build ``app``'s ``variant`` (apps/<app>/variants.toml) as ``stagelab/<namespace>/<app>:<variant>``.

    ``extra_args`` are further build args (passed as given); ``builder`` as in ``build_context``.
    Used by every notebook that builds.
    """
    from . import naming
    from .variants import get_variant

    var = get_variant(app, variant)
    labels = naming.lab_labels(app=app, variant=variant)   # build_context adds the profile it resolves
    return build_context(
        var.context, var.dockerfile, tag=naming.image_tag(app, variant), target=var.target or None,
        profile=profile, builder=builder, labels=labels, nocache=nocache, progress=progress,
        build_args=extra_args, _app=app, _variant=variant,
    )
