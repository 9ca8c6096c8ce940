"""What an exercise check measures besides the ImageReport: the facts its rules read.

Used by ``stagelab.exercises.check`` (every notebook's exercise, 00-07). Two kinds:

- **static** facts come from the Dockerfile alone (:func:`read_dockerfile`, the model of
  ``stagelab.dockerfile``): its stages, each stage's base, ``COPY --from`` sources and
  secret mounts. No engine; unit tests and
  the wrong-answer corpus (``tests/exercises/``) use them directly.
- **measured** facts need the built image: HTTP answers of the running container
  (:func:`probe`), the contents of a few files (:func:`read_files`: ELF sections of the
  binary, the CA bundle), dev-only packages in any layer, an HTTPS ``/fetch`` against the
  lab's own server (:func:`fetch_through_lab`) and whether a build without the secret fails.

Every function returns plain values (dicts, lists, strings) stored in ``facts[<key>]``;
the keys are the constants below, so rules and gatherers name them the same way.
"""
from __future__ import annotations

import fnmatch
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .dockerfile import Dockerfile, Stage, expand, parse
from .errors import StagelabError

# --- fact keys ---------------------------------------------------------------------------------
DOCKERFILE = "dockerfile"                 # stagelab.dockerfile.Dockerfile
CONTEXT_FILES = "context_files"           # relative paths in the build context (for COPY globs)
START_ERROR = "start_error"               # None, or why the container did not start
ELF_SECTIONS = "elf_sections"             # {path: [section names]} or {path: "error text"}
CA_CERTIFICATES = "ca_certificates"       # number of certificates the bundle parses to, or error text
LAYER_PACKAGES = "dev_packages_in_layers" # dev-only packages written by any layer of the image
FETCH = "GET /fetch"                      # (status, body) of /fetch against the lab's HTTPS server
WITHOUT_SECRET = "build_without_secret"   # "failed" | "succeeded" (a build with no --secret)


def get_path(path: str) -> str:
    """The facts key of a probed path: ``"GET /healthz"``."""
    return f"GET {path}"


# --- the Dockerfile (the model of stagelab.dockerfile) --------------------------------------------


def read_dockerfile(text: str) -> Dockerfile:
    """Parse ``text`` (pure; unit tests and the corpus use it)."""
    return parse(text)


def final_stage(df: Dockerfile) -> Stage | None:
    """The stage a build without ``--target`` makes: the last one (None without a FROM)."""
    return df.stages[-1] if df.stages else None


def base_image(df: Dockerfile, stage: Stage) -> str:
    """The stage's base with the ARG defaults filled in: ``${GOLANG_IMAGE}`` -> ``golang:1.22``."""
    return expand(stage.base, df.global_args)


def copied_from(df: Dockerfile, stage: Stage) -> list[Stage]:
    """The earlier stages ``stage`` takes files from (``COPY --from``, ``RUN --mount=from``), not its base."""
    base = df.base_stage(stage)
    return [st for st in df.depends_on(stage) if st is not base]


def secret_mounts(stage: Stage) -> list[str]:
    """The ids of ``RUN --mount=type=secret`` in ``stage`` (the id defaults to the target's file name)."""
    ids = []
    for ins in stage.instructions:
        if ins.keyword != "RUN":
            continue
        for mount in ins.mounts:
            if mount.get("type") == "secret":
                target = mount.get("target") or mount.get("dst") or mount.get("destination") or ""
                ids.append(mount.get("id") or target.rsplit("/", 1)[-1])
    return ids


def glob_matches(pattern: str, files: Iterable[str]) -> list[str]:
    """The context files a COPY source pattern (``*.json``, ``src/``) names (``*`` stays in one folder, as in Docker)."""
    pattern = pattern.removeprefix("./").rstrip("/")
    out = []
    for path in files:
        same_depth = path.count("/") == pattern.count("/")
        if (same_depth and fnmatch.fnmatchcase(path, pattern)) or path.startswith(pattern + "/"):
            out.append(path)
    return out


# --- files inside the image ----------------------------------------------------------------------

def read_files(image: str, paths: Sequence[str], *, seen: Callable[[str], None] | None = None,
               client: Any = None) -> dict[str, bytes]:
    """The final-tree contents of ``paths`` in ``image`` (one ``docker save`` stream).

    ``seen(path)`` is called for every regular file of every layer (also those a later
    layer deletes): how :func:`dev_packages_in_layers` sees what pruning hid.
    """
    from .export import read_export, stream_image

    if client is None:
        from .engine import client as engine_client

        client = engine_client()
    wanted = set(paths)

    def keep(path: str, size: int) -> bool:
        if seen is not None:
            seen(path)
        return path in wanted

    reader = stream_image(client, image)
    try:
        export = read_export(reader, keep=keep)
    finally:
        reader.close()
    return {p: export.small_files[p] for p in paths if p in export.small_files}


def package_of(path: str) -> str | None:
    """The npm package a path in a node_modules folder belongs to (``@types/node`` -> ``@types``)."""
    parts = path.split("/node_modules/")
    if len(parts) < 2:
        return None
    rest = parts[-1].split("/")
    name = rest[0]
    if name.startswith("@") and len(rest) > 1 and name not in ("@types", "@esbuild"):
        name = f"{name}/{rest[1]}"
    return name


def elf_sections(data: bytes) -> list[str]:
    """Section names of an ELF file (``.text``, ``.symtab``, ``.debug_info`` ...); raises ValueError."""
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    is64, little = data[4] == 2, data[5] == 1
    end = "<" if little else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)
    if not shoff or not shnum or shstrndx >= shnum or shoff + shnum * shentsize > len(data):
        return []

    def header(i: int) -> tuple[int, int, int]:   # (name offset, file offset, size)
        base = shoff + i * shentsize
        if is64:
            name, = struct.unpack_from(end + "I", data, base)
            offset, size = struct.unpack_from(end + "QQ", data, base + 0x18)
        else:
            name, = struct.unpack_from(end + "I", data, base)
            offset, size = struct.unpack_from(end + "II", data, base + 0x10)
        return name, offset, size

    _, str_off, str_size = header(shstrndx)
    strings = data[str_off:str_off + str_size]
    names = []
    for i in range(shnum):
        name_off = header(i)[0]
        names.append(strings[name_off:strings.find(b"\0", name_off)].decode("ascii", "replace"))
    return [n for n in names if n]


def usable_bundle(count: Any) -> bool:
    """True when the ``CA_CERTIFICATES`` fact says the bundle parsed to at least one certificate."""
    return isinstance(count, int) and count > 0


def count_certificates(data: bytes) -> int:
    """How many PEM blocks of a CA bundle parse as X.509 certificates; raises ValueError when none does.

    Each block is parsed on its own, so one odd certificate of a real bundle does not
    reject the others.
    """
    import warnings

    from cryptography import x509

    if not data.strip():
        raise ValueError("the file is empty")
    blocks = _PEM_CERT.findall(data)
    count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # e.g. a negative serial number in an old root certificate
        for block in blocks:
            try:
                x509.load_pem_x509_certificate(block)
            except ValueError:
                continue
            count += 1
    if not count:
        raise ValueError(f"none of its {len(blocks)} PEM certificate block(s) parses" if blocks
                         else "it has no PEM certificate block")
    return count


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


# --- running the image ----------------------------------------------------------------------------

def probe(image: str, app: str, paths: Sequence[str]) -> dict[str, Any]:
    """Run ``image``, GET each path through 127.0.0.1: ``start_error`` and ``GET <path>`` -> (status, body)."""
    from .containers import run
    from .variants import load_app

    port = load_app(app).port
    facts: dict[str, Any] = {START_ERROR: None}
    try:
        with run(image, port=port) as container:
            for path in paths:
                facts[get_path(path)] = response(container.get(path))
    except StagelabError as exc:
        facts[START_ERROR] = exc.message
    return facts


def response(resp: Any) -> tuple[int, Any]:
    """(status, JSON body or text) of what ``RunningContainer.get`` returns."""
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text
    return int(resp.status), body


def fetch_through_lab(image: str, app: str, bundle: bytes, tag: str) -> tuple[int, Any]:
    """``/fetch`` of the lab's own HTTPS server from ``image`` with ``bundle`` + the lab's CA.

    The image's bundle stays first in the file, so a path or format the program cannot
    read still fails; nothing outside the lab's containers is contacted (``stagelab.tlslab``).
    """
    from .containers import run
    from .tlslab import TLSLab, with_ca_image
    from .variants import load_app

    from .engine import client

    with TLSLab(image) as tls:
        built = with_ca_image(image, tls.bundle(bundle), tag, progress="none")
        try:
            with run(built.tag, port=load_app(app).port, network=tls.network) as container:
                return response(container.get(tls.fetch_path("/healthz")))
        finally:
            client().images.remove(built.tag)   # the lab's own image, built just now for this call
