"""The build context: which folder and Dockerfile a build sends, and what ``.dockerignore`` leaves out.

The one place that reads ``.dockerignore`` (``build`` packs the classic builder's context
with it; notebook 07's ``context_size`` measures it). ``patched_copy`` makes a temporary copy
of a context with a modified Dockerfile (``versions`` builds a learner's ``FROM golang:1.25``
against a local stand-in with it). Nothing runs on import.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .builderrors import BuildFailed
from .dockerfile import parse


def dockerignore_patterns(folder: str | os.PathLike) -> list[str]:
    """The patterns of ``folder/.dockerignore`` (empty when there is none)."""
    path = Path(folder) / ".dockerignore"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def resolve_paths(context: str | os.PathLike, dockerfile: str | os.PathLike) -> tuple[Path, Path, str]:
    """(context folder, Dockerfile path, the Dockerfile's name as shown in messages); clear errors."""
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


def context_tar(ctx: Path, df_path: Path, *, dockerignore: bool = True) -> tuple[IO[bytes], str, int]:
    """(tar file of the context as the classic builder gets it, Dockerfile name in it, its bytes)."""
    from docker import utils
    from docker.api.build import process_dockerfile

    df_name, df_inline = process_dockerfile(str(df_path), str(ctx))
    exclude = dockerignore_patterns(ctx) if dockerignore else []
    tarball = utils.tar(str(ctx), exclude=exclude, dockerfile=(df_name, df_inline))
    tarball.seek(0, os.SEEK_END)
    size = tarball.tell()
    tarball.seek(0)
    return tarball, df_name, size


def context_size(folder: str | os.PathLike, *, dockerignore: bool = True) -> int:
    """Bytes of the tar a build sends for ``folder`` (notebook 07: with and without .dockerignore)."""
    from docker import utils

    exclude = dockerignore_patterns(folder) if dockerignore else []
    with utils.tar(str(folder), exclude=exclude) as tarball:
        tarball.seek(0, os.SEEK_END)
        return tarball.tell()


def rewrite_dockerfile(text: str, from_images: Mapping[str, str] | None = None,
                       *, drop_syntax: bool = False) -> str:
    """``text`` with each ``FROM <image>`` (and ``--from=<image>``, ``--mount=...,from=<image>``) in ``from_images`` replaced.

    Keys are image references as written in the file (``golang:1.25``); ``drop_syntax``
    removes the ``# syntax=`` directive line. Line numbers stay the same.
    """
    lines = text.splitlines(keepends=True)
    model = parse(text)
    if drop_syntax and "syntax" in model.directives:
        number = model.directives["syntax"][0]
        lines[number - 1] = "\n"  # an empty line keeps every later line number
    for old, new in (from_images or {}).items():
        ref = re.escape(old)
        for ins in model.instructions:
            if ins.keyword not in ("FROM", "COPY", "ADD", "RUN"):
                continue
            i = ins.line - 1
            if ins.keyword == "FROM":
                lines[i] = re.sub(rf"^(\s*FROM\s+(?:--\S+\s+)*){ref}(?=\s|$)", rf"\g<1>{new}", lines[i],
                                  flags=re.I)
            else:
                # COPY/ADD --from=<image>, and RUN --mount=...,from=<image> (or --mount=from=<image>)
                lines[i] = re.sub(rf"((?:--|--mount=|,)from=){ref}(?=[\s,]|$)", rf"\g<1>{new}", lines[i])
    return "".join(lines)


@contextmanager
def patched_copy(context: str | os.PathLike, dockerfile: str | os.PathLike = "Dockerfile",
                 from_images: Mapping[str, str] | None = None, *,
                 drop_syntax: bool = False) -> Iterator[tuple[Path, Path]]:
    """A temporary copy of a build context whose Dockerfile has other base images.

        with patched_copy(folder, "Dockerfile", {"golang:1.25": "stagelab-offline/golang:1.25"},
                          drop_syntax=True) as (ctx, df):
            build_context(ctx, df, tag=...)

    Only the files the context sends are copied (``.dockerignore`` applies); the copy and its
    modified Dockerfile (``rewrite_dockerfile``) are removed when the ``with`` block ends.
    """
    from docker.utils.build import exclude_paths

    ctx, df_path, shown = resolve_paths(context, dockerfile)
    text = rewrite_dockerfile(df_path.read_text(errors="replace"), from_images, drop_syntax=drop_syntax)
    with tempfile.TemporaryDirectory(prefix="stagelab-context-") as tmp:
        root = Path(tmp) / "context"
        root.mkdir()
        for rel in sorted(exclude_paths(str(ctx), dockerignore_patterns(ctx))):
            src = ctx / rel
            dst = root / rel
            if src.is_dir() and not src.is_symlink():
                dst.mkdir(parents=True, exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst, follow_symlinks=False)
        new_df = root / shown if not Path(shown).is_absolute() else root / "Dockerfile.stagelab"
        new_df.parent.mkdir(parents=True, exist_ok=True)
        new_df.write_text(text)
        yield root, new_df
