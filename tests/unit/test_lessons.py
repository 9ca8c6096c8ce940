"""Engine-free parts of the notebook helpers: ELF loader reading (02), CA bundle and tar (03)."""
from __future__ import annotations

import io
import struct
import tarfile

import pytest

from stagelab.lessons import LessonError, elf_interpreter, glibc_loader
from stagelab.containers import files_tar
from stagelab.tlslab import TLSLab, TLSLabError


def elf64(interp: bytes | None) -> bytes:
    """A minimal little-endian ELF64 header with one program header (PT_INTERP or PT_LOAD)."""
    phoff, phentsize = 64, 56
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5] = 2, 1
    struct.pack_into("<Q", header, 0x20, phoff)
    struct.pack_into("<HH", header, 0x36, phentsize, 1)
    payload_at = phoff + phentsize
    ph = bytearray(phentsize)
    if interp is None:
        struct.pack_into("<I", ph, 0, 1)          # PT_LOAD
    else:
        struct.pack_into("<I", ph, 0, 3)          # PT_INTERP
        struct.pack_into("<Q", ph, 0x08, payload_at)
        struct.pack_into("<Q", ph, 0x20, len(interp) + 1)
    return bytes(header) + bytes(ph) + (interp + b"\x00" if interp else b"")


def test_dynamic_binary_names_its_loader():
    assert elf_interpreter(elf64(b"/lib64/ld-linux-x86-64.so.2")) == "/lib64/ld-linux-x86-64.so.2"


def test_static_binary_has_no_loader():
    assert elf_interpreter(elf64(None)) is None


def test_the_loader_follows_the_architecture():
    assert glibc_loader("amd64") == "/lib64/ld-linux-x86-64.so.2"
    assert glibc_loader("arm64") == "/lib/ld-linux-aarch64.so.1"   # Apple silicon under Docker Desktop
    with pytest.raises(LessonError, match="mips") as info:
        glibc_loader("mips")
    assert "elf_interpreter" in info.value.fix


def test_not_an_elf_file_is_a_clear_error():
    with pytest.raises(LessonError, match="Not an ELF"):
        elf_interpreter(b"#!/bin/sh\necho hi\n")


def test_tar_for_put_archive_has_dirs_and_readable_files():
    data = files_tar({"tls/cert.pem": b"CERT", "tls/key.pem": b"KEY"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar}
    assert members["tls"].isdir()
    assert members["tls/key.pem"].mode == 0o644 and members["tls/key.pem"].uid == 65532


def test_bundle_appends_the_lab_ca():
    trustme = pytest.importorskip("trustme")
    lab = TLSLab("unused-image")
    with pytest.raises(TLSLabError):
        lab.ca_pem
    lab.ca = trustme.CA()
    bundle = lab.bundle(b"-----BEGIN CERTIFICATE-----\npublic\n-----END CERTIFICATE-----")
    assert bundle.count(b"BEGIN CERTIFICATE") == 2 and bundle.endswith(lab.ca_pem)
    assert lab.fetch_path("/healthz") == "/fetch?url=https%3A%2F%2Ftls.stagelab.test%3A8443%2Fhealthz"
