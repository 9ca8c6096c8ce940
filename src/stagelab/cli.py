"""The ``stagelab`` command: the notebooks' instrument for terminals and CI.

``stagelab doctor | bases | build | inspect | compare | report | clean | progress``.
Every subcommand prints one clear message (and the fix) instead of a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import StagelabError
from .units import human_size


# --- doctor ------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    from . import engine

    if args.fix:
        try:
            engine.start_engine()
        except StagelabError as exc:
            print(f"✗ {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # apt or dockerd failures
            print(f"✗ could not bring up an engine: {exc}\n  fix: read the output above", file=sys.stderr)
            return 1
    diag = engine.diagnose()
    print(f"engine address : {diag.address} ({diag.transport})")
    if diag.reachable and not diag.problems:
        print(f"engine         : ✓ Docker {diag.version} (API {diag.api_version}, {diag.os_arch}, {diag.storage_driver})")
        print(f"builder        : {diag.builder}; BuildKit CLI: {diag.buildkit_cli or 'none'}")
        if diag.free_bytes is not None:
            print(f"free disk      : {human_size(diag.free_bytes)} under {diag.root_dir}")
        else:  # a remote engine: this machine cannot see its disk
            from .workshop import engine_free_bytes

            free = engine_free_bytes()
            print(f"free disk      : {human_size(free)} under {diag.root_dir} on the engine's host"
                  + (" (df in a throw-away container)" if free is not None
                     else " (no base image to run df in yet; `ssh HOST df -h " + str(diag.root_dir) + "`)"))
    from .naming import namespace

    print(f"namespace      : {namespace()} (STAGELAB_NAMESPACE, else your user name; tags stagelab/{namespace()}/...)")
    if diag.ok:
        from .workshop import describe_need, per_learner_need

        try:
            print(f"per learner    : {describe_need(per_learner_need())}")
        except Exception as exc:  # never let the estimate break doctor
            print(f"per learner    : could not measure ({type(exc).__name__}: {exc})")
    if not args.quick:
        from .profiles import active_profile, registry_answers

        answers = registry_answers()
        print(f"registry       : {'✓ answers' if answers else '✗ does not answer (offline profile will be used)'}")
        prof = active_profile()
        print(f"profile        : {prof.name} ({prof.reason})")
    for message, fix in diag.warnings:
        print(f"! {message}\n  fix: {fix}")
    for message, fix in diag.problems:
        print(f"✗ {message}" + (f"\n  fix: {fix}" if fix else ""), file=sys.stderr)
    return 0 if diag.ok else 1


# --- compare -----------------------------------------------------------------------------

def _size_arg(text: str) -> int:
    from .units import SizeParseError, parse_size

    try:
        return parse_size(text)
    except SizeParseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ratio_arg(text: str) -> float:
    try:
        value = float(text.lower().rstrip("x"))
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a ratio: {text!r} (give how many times smaller, e.g. 10)")
    return value


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_images
    from .inspect import ImageNotFound

    try:
        comp = compare_images(args.images, baseline=args.baseline, compressed=args.compressed)
    except ImageNotFound as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 2
    violations = comp.check(max_size=args.max_size, min_ratio=args.min_ratio)
    if args.json:
        print(comp.to_json(violations))
    elif args.markdown:
        print(comp.to_markdown())
        for v in violations:
            print(f"- ✗ {v}")
    else:
        print(comp.to_text())
    for v in violations:
        print(f"✗ {v}", file=sys.stderr)
    if violations:
        return 1
    if args.max_size is not None or args.min_ratio is not None:
        print("✓ all thresholds met", file=sys.stderr)
    return 0


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare images against a baseline; CI thresholds exit 1")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="local image names or ids")
    p.add_argument("--baseline", metavar="IMAGE",
                   help="reference image for the ratios (default: the largest image)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output (sizes in bytes)")
    fmt.add_argument("--markdown", action="store_true", help="a Markdown table (e.g. a CI job summary)")
    p.add_argument("--max-size", type=_size_arg, metavar="SIZE",
                   help="fail (exit 1) if an image's size (uncompressed, sum of the files in all layers) is larger, "
                        "e.g. 20MB (decimal: 1 MB = 1,000,000 bytes)")
    p.add_argument("--min-ratio", type=_ratio_arg, metavar="N",
                   help="fail (exit 1) if an image is less than N times smaller than the baseline")
    p.add_argument("--compressed", action="store_true",
                   help="also measure the compressed (pull) size; slower")
    p.set_defaults(func=cmd_compare)


# --- build / clean -----------------------------------------------------------------------

def _build_arg(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key, value


def cmd_build(args: argparse.Namespace) -> int:
    import json

    from .build import build

    result = build(args.app, args.variant, profile=args.profile, nocache=args.no_cache,
                   builder=args.builder, progress=args.progress,
                   extra_args=dict(args.build_arg) or None)
    if args.json:
        data = {k: v for k, v in vars(result).items() if k != "log"}
        data["steps"] = [vars(step) for step in result.steps]
        print(json.dumps(data, indent=2))
    else:
        print(f"✓ {result.summary()}")
        print(f"  image id   : {result.image_id}")
        print(f"  stages run : {', '.join(result.stages_run) or '-'}")
        for role, image in result.base_images.items():
            print(f"  base       : {role} = {image}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from .cleanup import clean

    report = clean(dry_run=args.dry_run, all_namespaces=args.all_namespaces)
    print(report.as_text())
    return 1 if report.failed else 0


def _add_build_clean_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build an app variant as stagelab/<namespace>/<app>:<variant>")
    p.add_argument("app", help="an app under apps/, e.g. go-server")
    p.add_argument("variant", help="a variant of its variants.toml, e.g. scratch")
    p.add_argument("--profile", choices=["auto", "upstream", "offline"], default=None,
                   help="base-image profile (default: STAGELAB_PROFILE or auto)")
    p.add_argument("--no-cache", action="store_true", help="build without the build cache")
    p.add_argument("--builder", choices=["auto", "classic", "buildkit"], default=None,
                   help="default STAGELAB_BUILDER or auto: the engine's default builder, as `docker build`; "
                        "classic (Docker SDK) or buildkit (docker CLI)")
    p.add_argument("--progress", choices=["auto", "terminal", "none"], default="auto",
                   help="progress display on stderr (default: one line per step)")
    p.add_argument("--build-arg", type=_build_arg, action="append", default=[], metavar="KEY=VALUE",
                   help="an extra build argument (repeatable)")
    p.add_argument("--json", action="store_true", help="print the BuildResult as JSON (without the log)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("clean", help="remove the lab's containers, images and networks (by label only)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    p.add_argument("--all-namespaces", action="store_true",
                   help="every learner's lab objects on this engine, not just STAGELAB_NAMESPACE's")
    p.set_defaults(func=cmd_clean)


# --- bases ----------------------------------------------------------------------------------

def cmd_bases(args: argparse.Namespace) -> int:
    """Run ``stagelab bases status|prepare|export|import``."""
    from .bases import (PREPARE_FIX, export_bundle, import_bundle, prepare, status, status_text,
                        table_markdown)
    from .bases.common import _resolve

    action = args.bases_command
    if action == "status":
        if args.markdown:
            print(table_markdown())
            return 0
        prof = _resolve(args.profile)
        rows = status(prof, helpers=prof.name == "offline")
        print(status_text(rows, prof))
        missing = [r for r in rows if not r.present and r.role]
        if missing:
            fix = PREPARE_FIX if prof.name == "offline" else "stagelab bases prepare --profile upstream"
            print(f"✗ {len(missing)} base image(s) missing\n  fix: {fix}", file=sys.stderr)
            return 1
        return 0
    if action == "prepare" and args.for_dirs:
        from .bases.project import prepare_for

        for folder in args.for_dirs:
            made = prepare_for(folder, rebuild=args.rebuild, progress="terminal")
            print(f"{made.project}:\n" + "\n".join(f"  {line}" for line in made.lines() or [str(made)]))
        return 0
    if action == "prepare":
        roles = args.role or None
        rows = prepare(args.profile, rebuild=args.rebuild, roles=roles, progress="terminal")
        print(status_text(rows, args.profile))
        return 0
    if action == "export":
        images = None
        if args.for_dirs:
            from .bases.project import bundle_tags

            images = bundle_tags(args.for_dirs, progress="terminal")
        path = export_bundle(args.file, args.profile, images=images, progress="terminal")
        print(f"✓ bundle written: {path} ({human_size(path.stat().st_size)})")
        return 0
    if action == "import":
        tags = import_bundle(args.file, progress="terminal")
        print(f"✓ {len(tags)} images loaded and verified:")
        for tag in tags:
            print(f"  {tag}")
        return 0
    return 2


def _add_bases_parser(sub: argparse._SubParsersAction) -> None:
    """``stagelab bases {status,prepare,export,import}``."""
    from . import profiles as _profiles

    p = sub.add_parser("bases", help="base images of a profile: status, prepare, export, import")
    bsub = p.add_subparsers(dest="bases_command", required=True)
    profile_help = "auto (default: STAGELAB_PROFILE or auto), upstream or offline"

    q = bsub.add_parser("status", help="each role, its image, present or missing, size")
    q.add_argument("--profile", choices=_profiles.CHOICES, default=None, help=profile_help)
    q.add_argument("--markdown", action="store_true", help="the stand-ins table of the README, measured on this engine")
    q = bsub.add_parser("prepare", help="pull (upstream) or build (offline) the base images; skips present ones")
    q.add_argument("--profile", choices=_profiles.CHOICES, default=None, help=profile_help)
    q.add_argument("--rebuild", action="store_true", help="rebuild / re-pull everything (no build cache)")
    q.add_argument("--role", action="append", metavar="ARG",
                   help="only this role, e.g. GOLANG_ALPINE_IMAGE (repeatable)")
    q.add_argument("--for", dest="for_dirs", action="append", metavar="DIR", default=[],
                   help="build stand-ins for the versions this project's Dockerfiles, go.mod and "
                        "package.json ask for (repeatable)")
    q = bsub.add_parser("export", help="write all images of a profile into one archive (workshop bundle)")
    q.add_argument("file", help="the archive to write, e.g. stagelab-bases.tar")
    q.add_argument("--profile", choices=_profiles.CHOICES, default=None, help=profile_help)
    q.add_argument("--for", dest="for_dirs", action="append", metavar="DIR", default=[],
                   help="also carry the stand-ins this project asks for (built first if missing; repeatable)")
    q = bsub.add_parser("import", help="verify a bundle's checksums, then load its images")
    q.add_argument("file", help="an archive made by `stagelab bases export`")
    p.set_defaults(func=cmd_bases)


# --- parser ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stagelab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check the Docker engine, builder, disk and registry")
    p.add_argument("--fix", action="store_true",
                   help="install and start a Docker engine if none answers (Linux, root, apt)")
    p.add_argument("--quick", action="store_true", help="skip the registry and profile checks")
    p.set_defaults(func=cmd_doctor)

    # Other subcommands register themselves below (one small block each).
    _add_compare_parser(sub)
    _add_build_clean_parsers(sub)
    _add_bases_parser(sub)  # stagelab bases status|prepare|export|import
    from .report import add_cli as _add_report_cli  # stagelab report [NOTEBOOK...]

    _add_report_cli(sub)
    from .inspect import add_cli as _add_inspect_cli  # stagelab inspect IMAGE

    _add_inspect_cli(sub)
    from .journal import add_cli as _add_progress_cli  # stagelab progress

    _add_progress_cli(sub)
    from .versionsync import add_cli as _add_versions_cli  # stagelab versions sync [--check]

    _add_versions_cli(sub)
    return parser


def _reader_went_away() -> int:
    """``stagelab ... | head``: the reader closed the pipe. Stop quietly, without a traceback.

    Python flushes stdout once more at exit; pointing it at /dev/null keeps that flush from
    failing (and printing "Exception ignored ... BrokenPipeError") too.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
            return int(args.func(args) or 0)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, inside main, not at interpreter exit
    except BrokenPipeError:
        return _reader_went_away()
    except StagelabError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
