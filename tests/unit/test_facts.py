"""The facts exercise checks read: the Dockerfile model, ELF sections, CA bundles (no engine)."""
from __future__ import annotations

import os
import struct
import sys

import pytest

from stagelab import facts as F


def _elf64(names: list[str]) -> bytes:
    """A minimal little-endian ELF64 file whose section headers carry ``names`` (+ .shstrtab)."""
    names = ["", *names, ".shstrtab"]
    strtab = b"".join(n.encode() + b"\0" for n in names)
    offsets = [sum(len(n) + 1 for n in names[:i]) for i in range(len(names))]
    shoff = 64 + len(strtab)
    head = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    head += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(names), len(names) - 1)
    sections = b""
    for i, off in enumerate(offsets):
        data_off, size = (64, len(strtab)) if i == len(names) - 1 else (0, 0)
        sections += struct.pack("<IIQQQQIIQQ", off, 1, 0, 0, data_off, size, 0, 0, 1, 0)
    return head + strtab + sections


def test_elf_sections_lists_what_the_header_table_names():
    assert F.elf_sections(_elf64([".text", ".symtab", ".debug_info"])) == [".text", ".symtab", ".debug_info", ".shstrtab"]
    assert F.elf_sections(_elf64([".text"])) == [".text", ".shstrtab"]
    with pytest.raises(ValueError, match="not an ELF"):
        F.elf_sections(b"#!/bin/sh\necho hi\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads this interpreter's own ELF binary")
def test_elf_sections_reads_a_real_binary():
    with open(os.path.realpath(sys.executable), "rb") as fh:
        sections = F.elf_sections(fh.read())
    assert ".text" in sections and ".shstrtab" in sections


def test_count_certificates_parses_pem_and_rejects_empty_or_junk():
    trustme = pytest.importorskip("trustme")
    one = trustme.CA().cert_pem.bytes()
    two = one + trustme.CA().cert_pem.bytes()
    assert F.count_certificates(one) == 1 and F.count_certificates(two) == 2
    with pytest.raises(ValueError):
        F.count_certificates(b"")
    with pytest.raises(ValueError):
        F.count_certificates(b"-----BEGIN NOTHING-----\nabc\n")


def test_the_dockerfile_helpers_give_bases_copies_and_secret_mounts():
    df = F.read_dockerfile(
        "ARG GO=golang:1.22\nFROM ${GO} AS builder\n"
        "RUN --mount=type=cache,target=/c --mount=type=secret,id=git_token,required=true \\\n  go build\n"
        "FROM builder AS tested\nRUN --mount=type=secret,target=/run/secrets/npmrc true\n"
        "FROM scratch\nCOPY --from=builder /server /server\nCOPY --from=1 /etc/passwd /etc/\n")
    builder, tested, final = df.stages
    assert F.final_stage(df) is final and F.final_stage(F.read_dockerfile("# empty\n")) is None
    assert F.base_image(df, builder) == "golang:1.22"
    assert F.secret_mounts(builder) == ["git_token"] and F.secret_mounts(tested) == ["npmrc"]
    assert F.copied_from(df, final) == [builder, tested]
    assert F.copied_from(df, tested) == []   # its base is not a copy


def test_glob_matches_patterns_and_folders():
    files = ["package.json", "tsconfig.json", "src/a.ts", "src/b.ts", "src/x.json"]
    assert F.glob_matches("*.json", files) == ["package.json", "tsconfig.json"]
    assert F.glob_matches("./src/", files) == ["src/a.ts", "src/b.ts", "src/x.json"]


def test_count_certificates_counts_the_blocks_that_parse():
    trustme = pytest.importorskip("trustme")
    good = trustme.CA().cert_pem.bytes()
    broken = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    assert F.count_certificates(broken + good) == 1
    with pytest.raises(ValueError, match="none of its 1"):
        F.count_certificates(broken)
    with pytest.raises(ValueError, match="no PEM certificate"):
        F.count_certificates(b"root:x:0:\n")
