"""The apps and their image variants, as listed in ``apps/<app>/variants.toml``.

Every notebook that builds picks a variant by name (``build("go-server", "scratch")``);
this module turns the TOML entries into ``App`` / ``Variant`` records and checks them, so a
typo in a notebook or in a variants.toml fails with one clear message.

The variants.toml format (one file per app folder, ``apps/<app>/variants.toml``)::

    [app]
    name = "go-server"        # the app folder's name (checked)
    port = 8080               # the port the server listens on inside the container
    binary = "/server"        # absolute path of the app's artefact in the final images

    [variants.scratch]        # the variant's name: build("go-server", "scratch")
    dockerfile = "Dockerfile" # relative to the app folder, which is the build context
    target = ""               # optional: the --target stage; "" (default) builds the last stage
    title = "..."             # one line, shown in tables and charts
    lesson = "..."            # what the variant teaches (whitespace is collapsed)
    starts = true             # optional, default true; false: not a server answering /healthz
    final_base = "scratch"    # "scratch", or the role (build arg) of the final stage's base

Every other key is required and no key outside these is allowed; ``parse_app`` names
the file, the table and the fix when one is wrong.
"""
from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StagelabError
from .naming import repo_root

VARIANTS_FILE = "variants.toml"
_VARIANT_KEYS = {"dockerfile", "target", "title", "lesson", "starts", "final_base"}
_APP_KEYS = {"name", "port", "binary"}


class UnknownApp(StagelabError):
    """No apps/<name>/variants.toml."""


class UnknownVariant(StagelabError):
    """The app's variants.toml has no such variant."""


class BadVariantsFile(StagelabError):
    """A variants.toml that cannot be read or is missing required keys."""


@dataclass(frozen=True)
class Variant:
    """One buildable image of an app: a Dockerfile (+ optional ``--target``) in the app folder."""

    app: str
    name: str
    dockerfile: Path          # absolute path
    context: Path             # the build context: the app folder
    target: str | None        # --target, None for the last stage
    title: str
    lesson: str
    starts: bool              # False when the image is not a server that answers /healthz
    final_base: str           # "scratch" or the role (build arg) of the final stage's base


@dataclass(frozen=True)
class App:
    """An app folder under apps/: its container port, main artefact and variants."""

    name: str
    path: Path
    port: int
    binary: str
    variants: dict[str, Variant] = field(default_factory=dict)

    def variant(self, name: str) -> Variant:
        """The named variant, or UnknownVariant listing the ones that exist."""
        try:
            return self.variants[name]
        except KeyError:
            raise _unknown_variant(self, name) from None


def apps_dir() -> Path:
    """The folder holding the apps (``<repo>/apps``)."""
    return repo_root() / "apps"


def app_names() -> list[str]:
    """Names of the apps that have a variants.toml, sorted (``load_app``'s "did you mean")."""
    root = apps_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{VARIANTS_FILE}"))


def load_app(name: str) -> App:
    """Read ``apps/<name>/variants.toml`` (every notebook, through ``build``)."""
    path = apps_dir() / name
    toml_path = path / VARIANTS_FILE
    if not toml_path.is_file():
        known = app_names()
        hint = _did_you_mean(name, known)
        raise UnknownApp(
            f"There is no app {name!r} (no {toml_path}).{hint} Apps: {', '.join(known) or 'none found'}.",
            f"use one of: {', '.join(known)}" if known else "run from the lab's checkout or set STAGELAB_ROOT",
        )
    try:
        with toml_path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BadVariantsFile(f"Cannot read {toml_path}: {exc}", f"fix the TOML syntax in {toml_path}") from exc
    return parse_app(data, path, source=str(toml_path))


def parse_app(data: dict[str, Any], path: Path, *, source: str = VARIANTS_FILE) -> App:
    """Build an ``App`` from parsed variants.toml data; checks keys, types and Dockerfile paths."""
    app_data = data.get("app")
    if not isinstance(app_data, dict):
        raise BadVariantsFile(f"{source} has no [app] table.", f"add [app] with {', '.join(sorted(_APP_KEYS))}")
    missing = _APP_KEYS - app_data.keys()
    if missing:
        raise BadVariantsFile(f"{source}: [app] lacks {', '.join(sorted(missing))}.",
                              f"add {', '.join(sorted(missing))} to [app] in {source}")
    name = str(app_data["name"])
    if name != path.name:
        raise BadVariantsFile(f"{source}: [app] name {name!r} differs from its folder {path.name!r}.",
                              f'set name = "{path.name}" in {source}')
    port = app_data["port"]
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise BadVariantsFile(f"{source}: [app] port must be an integer 1-65535, got {port!r}.",
                              f"fix port in {source}")
    binary = str(app_data["binary"])
    if not binary.startswith("/"):
        raise BadVariantsFile(f"{source}: [app] binary must be an absolute path in the image, got {binary!r}.",
                              f"fix binary in {source}")

    raw_variants = data.get("variants")
    if not isinstance(raw_variants, dict) or not raw_variants:
        raise BadVariantsFile(f"{source} lists no [variants.<name>] tables.", f"add a variant to {source}")
    context = path.resolve()
    variants: dict[str, Variant] = {}
    for vname, entry in raw_variants.items():
        where = f"{source} [variants.{vname}]"
        if not isinstance(entry, dict):
            raise BadVariantsFile(f"{where} is not a table.", f"write it as [variants.{vname}]")
        unknown = entry.keys() - _VARIANT_KEYS
        if unknown:
            raise BadVariantsFile(f"{where} has unknown keys: {', '.join(sorted(unknown))}.",
                                  f"use only {', '.join(sorted(_VARIANT_KEYS))}")
        for key in ("dockerfile", "title", "lesson", "final_base"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise BadVariantsFile(f"{where} needs a non-empty string {key!r}.", f"add {key} = \"...\" to {where}")
        starts = entry.get("starts", True)
        if not isinstance(starts, bool):
            raise BadVariantsFile(f"{where}: starts must be true or false, got {starts!r}.", f"fix starts in {where}")
        target = entry.get("target", "")
        if not isinstance(target, str):
            raise BadVariantsFile(f"{where}: target must be a string, got {target!r}.", f"fix target in {where}")
        dockerfile = (context / entry["dockerfile"]).resolve()
        if context not in dockerfile.parents:
            raise BadVariantsFile(f"{where}: dockerfile {entry['dockerfile']!r} is outside {context}.",
                                  "give a path relative to the app folder")
        if not dockerfile.is_file():
            raise BadVariantsFile(f"{where}: dockerfile {entry['dockerfile']!r} does not exist in {context}.",
                                  f"create {dockerfile} or fix the dockerfile key")
        variants[vname] = Variant(
            app=name, name=vname, dockerfile=dockerfile, context=context, target=target.strip() or None,
            title=entry["title"].strip(), lesson=" ".join(entry["lesson"].split()), starts=starts,
            final_base=entry["final_base"].strip(),
        )
    return App(name=name, path=context, port=port, binary=binary, variants=variants)


def get_variant(app: str, variant: str) -> Variant:
    """``load_app(app).variant(variant)``: what ``stagelab.build.build`` builds."""
    return load_app(app).variant(variant)


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _unknown_variant(app: App, name: str) -> UnknownVariant:
    known = list(app.variants)
    return UnknownVariant(
        f"{app.name} has no variant {name!r}.{_did_you_mean(name, known)} Variants: {', '.join(known)}.",
        f"use one of: {', '.join(known)} (listed in apps/{app.name}/{VARIANTS_FILE})",
    )
