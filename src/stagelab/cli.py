"""The ``stagelab`` command: the notebooks' instrument for terminals and CI.

``stagelab doctor | bases | build | inspect | compare | report | clean``.
Every subcommand prints one clear message (and the fix) instead of a traceback.
"""
from __future__ import annotations

import argparse
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
        try:
            from .profiles import active_profile, registry_answers

            answers = registry_answers()
            print(f"registry       : {'✓ answers' if answers else '✗ does not answer (offline profile will be used)'}")
            prof = active_profile()
            print(f"profile        : {prof.name} ({prof.reason})")
        except ImportError:
            pass
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
                   help="fail (exit 1) if an image is larger, e.g. 20MB (decimal, as docker image ls)")
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
    p.add_argument("--builder", choices=["classic", "buildkit"], default="classic",
                   help="classic (Docker SDK, default) or buildkit (docker CLI, DOCKER_BUILDKIT=1)")
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
    from .bases import add_cli as _add_bases_cli  # stagelab bases status|prepare|export|import

    _add_bases_cli(sub)
    from .report import add_cli as _add_report_cli  # stagelab report [NOTEBOOK...]

    _add_report_cli(sub)
    from .inspect import add_cli as _add_inspect_cli  # stagelab inspect IMAGE

    _add_inspect_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StagelabError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
