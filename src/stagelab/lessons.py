"""Small measurements only notebooks 02-04 need: a file from an image, an ELF loader, a failed start.

- ``read_file``: one file's bytes from an image without running it (02: the cgo binary,
  03: the CA bundle a scratch image got from its builder).
- ``elf_interpreter``: the dynamic loader an ELF binary asks the kernel for (02).
- ``glibc_loader``: the loader glibc's dynamic binaries name on an image's architecture (02).
- ``build_lesson``: build one of the lesson-only Dockerfiles in ``apps/<app>/lessons/`` (03, 04).
- ``build_with_secret``: a BuildKit build that passes a secret with ``--secret`` (04).

Running containers is ``stagelab.containers``' job; the one container made here (``read_file``)
carries the lab labels and is removed before the function returns.
"""
from __future__ import annotations

import io
import struct
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import StagelabError


class LessonError(StagelabError):
    """A lesson helper could not do its job (the message says which image and why)."""


def _client() -> Any:
    from .engine import client

    return client()


def read_file(image: str, path: str) -> bytes:
    """The contents of ``path`` in ``image`` (a created, never started container; removed after)."""
    import docker.errors

    from .naming import lab_labels, resource_name

    cli = _client()
    container = cli.containers.create(image, command=["/nonexistent"], name=resource_name("read"),
                                      labels=lab_labels(purpose="read-file"))
    try:
        try:
            chunks, _stat = container.get_archive(path)
        except docker.errors.NotFound:
            raise LessonError(f"{path} is not in {image}.", f"`stagelab inspect {image}` lists its files") from None
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            for member in tar:
                if member.isfile():
                    handle = tar.extractfile(member)
                    return handle.read() if handle else b""
        raise LessonError(f"{path} in {image} is not a regular file.", "give the path of a file")
    finally:
        container.remove(force=True)


def elf_interpreter(data: bytes) -> str | None:
    """The PT_INTERP path of an ELF binary (``/lib64/ld-linux-x86-64.so.2``), None if static.

    A dynamically linked program names the loader the kernel must start first; if that
    file is missing, exec fails with "no such file or directory" (notebook 02, scratch-cgo).
    """
    if data[:4] != b"\x7fELF":
        raise LessonError("Not an ELF binary.", "give the bytes of a compiled Linux program")
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    for i in range(phnum):
        base = phoff + i * phentsize
        p_type, = struct.unpack_from(endian + "I", data, base)
        if p_type != 3:  # PT_INTERP
            continue
        if is64:
            offset, = struct.unpack_from(endian + "Q", data, base + 0x08)
            size, = struct.unpack_from(endian + "Q", data, base + 0x20)
        else:
            offset, = struct.unpack_from(endian + "I", data, base + 0x04)
            size, = struct.unpack_from(endian + "I", data, base + 0x10)
        return data[offset:offset + size].rstrip(b"\x00").decode()
    return None


#: glibc's dynamic loader per image architecture (``docker image inspect``'s ``Architecture``).
GLIBC_LOADERS: dict[str, str] = {
    "amd64": "/lib64/ld-linux-x86-64.so.2",
    "arm64": "/lib/ld-linux-aarch64.so.1",
    "arm": "/lib/ld-linux-armhf.so.3",
    "386": "/lib/ld-linux.so.2",
    "ppc64le": "/lib64/ld64.so.2",
    "s390x": "/lib/ld64.so.1",
    "riscv64": "/lib/ld-linux-riscv64-lp64d.so.1",
}


def glibc_loader(architecture: str) -> str:
    """The loader a glibc-linked binary names on ``architecture`` (notebook 02's cgo lesson).

    x86-64 binaries ask for ``/lib64/ld-linux-x86-64.so.2``, arm64 ones (Apple silicon under
    Docker Desktop) for ``/lib/ld-linux-aarch64.so.1``.
    """
    try:
        return GLIBC_LOADERS[architecture]
    except KeyError:
        raise LessonError(f"No known glibc loader for architecture {architecture!r}.",
                          f"read it from the binary instead: elf_interpreter(...); known: {', '.join(GLIBC_LOADERS)}"
                          ) from None


def lesson_dockerfile(app: str, name: str) -> Path:
    """``apps/<app>/lessons/<name>`` (shown with ``show_file`` before it is built)."""
    from .naming import repo_root

    path = repo_root() / "apps" / app / "lessons" / name
    if not path.is_file():
        raise LessonError(f"No lesson Dockerfile {path}.", "run the notebook from the lab's checkout")
    return path


def build_lesson(app: str, dockerfile: str, name: str, *, build_args: Mapping[str, str] | None = None,
                 builder: str | None = None, progress: str | None = "auto") -> Any:
    """Build ``apps/<app>/lessons/<dockerfile>`` (context ``apps/<app>/``) as ``stagelab/<ns>/<app>:<name>``."""
    from .build import build_context
    from .naming import image_tag, lab_labels

    path = lesson_dockerfile(app, dockerfile)
    context = path.parent.parent
    return build_context(context, path.relative_to(context), tag=image_tag(app, name),
                         labels=lab_labels(app=app, variant=name), build_args=build_args,
                         builder=builder, progress=progress)


def build_with_secret(app: str, dockerfile: str, name: str, *, secret_id: str, value: str,
                      target: str | None = None, progress: str | None = "auto") -> Any:
    """BuildKit build of a lesson Dockerfile with ``--secret id=<secret_id>`` holding ``value`` (04).

    The same build as ``build_lesson(..., builder="buildkit")`` (base images, errors with their
    fix, progress); the secret lives in a private temporary file for the build's duration only.
    """
    from .build import build_context
    from .naming import image_tag, lab_labels

    path = lesson_dockerfile(app, dockerfile)
    context = path.parent.parent
    return build_context(context, path.relative_to(context), tag=image_tag(app, name),
                         labels=lab_labels(app=app, variant=name), target=target, builder="buildkit",
                         secrets={secret_id: value}, progress=progress)
