"""What fills an image: the categories a file of the final tree counts under (``ImageReport.categories()``).

Used by notebooks 01 and 05 (bytes by category), ``stagelab.plots.breakdown`` and
``stagelab inspect``. Each category has a stable ``key`` (what code and notebooks index
by, e.g. ``report.categories()["node_modules_dev"]``) and a display ``label``
(``"node_modules (dev-only)"``), so wording can change without breaking callers.
node_modules are split into production and dev-only packages with the app's
``package-lock.json`` (:func:`parse_lockfile`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .naming import APP_LABEL, repo_root


@dataclass(frozen=True)
class Category:
    """One category: ``key`` for code, ``label`` for people."""

    key: str
    label: str


#: Every category, in display order.
CATEGORIES: tuple[Category, ...] = (
    Category("app", "the app"),
    Category("node_modules_prod", "node_modules (production)"),
    Category("node_modules_dev", "node_modules (dev-only)"),
    Category("node_runtime", "Node.js runtime"),
    Category("go_toolchain", "Go toolchain"),
    Category("build_tools", "compilers and build tools"),
    Category("package_caches", "package manager caches and lists"),
    Category("docs", "docs, man pages, locales"),
    Category("os", "OS libraries and files"),
    Category("other", "other"),
)
KEYS: tuple[str, ...] = tuple(c.key for c in CATEGORIES)
_LABELS = {c.key: c.label for c in CATEGORIES}


def label(key: str) -> str:
    """The display label of a category key (an unknown key is shown as it is)."""
    return _LABELS.get(key, key)


_GO = ("/usr/local/go/", "/root/go/", "/go/pkg/", "/root/.cache/go-build/", "/usr/lib/go-", "/usr/share/go-")
_NODE = ("/usr/local/lib/node_modules/npm/", "/usr/local/lib/node_modules/corepack/",
         "/usr/local/include/node/", "/nodejs/", "/opt/yarn-", "/usr/local/share/doc/node/",
         "/usr/local/share/systemtap/tapset/node")
_NODE_FILES = frozenset({"/usr/local/bin/node", "/usr/local/bin/nodejs", "/usr/bin/node", "/usr/bin/nodejs",
                         "/usr/local/bin/npm", "/usr/local/bin/npx", "/usr/local/bin/corepack",
                         "/usr/local/bin/yarn", "/usr/local/bin/yarnpkg", "/usr/local/bin/docker-entrypoint.sh"})
_CACHES = ("/var/lib/apt/lists/", "/var/cache/", "/root/.npm/", "/root/.cache/", "/usr/local/share/.cache/",
           "/root/.yarn/", "/root/.local/share/pnpm/", "/tmp/npm-", "/var/lib/apk/", "/etc/apk/cache/")
_HOME_CACHES = re.compile(r"^/home/[^/]+/\.(npm|cache|yarn)/")
_SKEL = re.compile(r"^/home/[^/]+/\.(bashrc|profile|bash_logout)$")   # copied from /etc/skel
_DOCS = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/", "/usr/lib/locale/",
         "/usr/share/i18n/", "/usr/share/doc-base/", "/usr/share/lintian/", "/usr/share/linda/",
         "/usr/local/share/man/", "/usr/local/share/doc/", "/usr/share/gtk-doc/", "/usr/share/help/",
         "/usr/share/groff/", "/usr/share/common-licenses/")
_BUILD_DIRS = ("/usr/lib/gcc/", "/usr/libexec/gcc/", "/usr/lib/gcc-cross/", "/usr/include/", "/usr/local/include/",
               "/usr/lib/git-core/", "/usr/share/git-core/", "/usr/lib/bfd-plugins/", "/usr/share/gcc/",
               "/usr/share/gdb/", "/usr/lib/llvm-", "/usr/lib/clang/", "/usr/share/perl5/Git", "/usr/share/make/")
_BUILD_TOOLS = frozenset({
    "gcc", "cc", "c++", "g++", "cpp", "c89", "c99", "c89-gcc", "c99-gcc", "as", "ld", "ld.bfd", "ld.gold", "gold",
    "ar", "nm", "objdump", "objcopy", "ranlib", "readelf", "strip", "size", "strings", "addr2line",
    "c++filt", "elfedit", "gprof", "gprofng", "make", "gmake", "git", "clang", "tcc", "dwp", "lto-dump",
    "gcov", "gcov-dump", "gcov-tool", "gcc-ar", "gcc-nm", "gcc-ranlib", "cmake", "ninja", "pkg-config",
    "pkgconf", "autoconf", "automake", "libtool", "bison", "flex", "m4", "patch", "dpkg-buildpackage",
    "scalar", "git-shell", "git-receive-pack", "git-upload-pack", "git-upload-archive", "gitk",
})
_BUILD_PREFIXES = ("gcc-", "g++-", "cpp-", "gcov-", "clang-", "lto-dump-", "x86_64-linux-gnu-",
                   "aarch64-linux-gnu-", "arm-linux-gnueabihf-", "git-")
_BUILD_LIBS = ("libbfd", "libopcodes", "libctf", "libgprofng", "libsframe", "libasan", "liblsan", "libtsan",
               "libubsan", "libhwasan", "libitm", "libcc1", "libisl", "libmpc", "libmpfr", "libquadmath",
               "libgomp", "libatomic")
_BIN_DIRS = ("/usr/bin/", "/bin/", "/usr/local/bin/", "/usr/sbin/", "/sbin/")
_OS = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/usr/", "/etc/", "/var/", "/run/",
       "/boot/", "/srv/", "/opt/", "/root/")


def _lock_key(path: str) -> str | None:
    """``/app/node_modules/@s/a/node_modules/b/x.js`` -> ``node_modules/@s/a/node_modules/b``."""
    cut = path.find("/node_modules/")
    if cut < 0:
        return None
    parts = path[cut + 1:].split("/")
    key: list[str] = []
    i = 0
    while i + 1 < len(parts) and parts[i] == "node_modules":
        name = parts[i + 1]
        if name.startswith("@"):
            if i + 2 >= len(parts):
                break
            key += ["node_modules", name, parts[i + 2]]
            i += 3
        else:
            if name.startswith("."):
                break   # .bin, .package-lock.json
            key += ["node_modules", name]
            i += 2
    return "/".join(key) if key else None


def parse_lockfile(data: bytes | str | dict) -> dict[str, bool]:
    """package-lock.json -> {``node_modules/<pkg>``: dev-only?} (lockfile v1, v2 and v3)."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, bool] = {}
    packages = data.get("packages")
    if isinstance(packages, dict):
        for key, meta in packages.items():
            if key and isinstance(meta, dict) and "node_modules/" in key:
                key = key[key.find("node_modules/"):]
                out[key] = bool(meta.get("dev") or meta.get("devOptional") and not meta.get("optional"))
        return out

    def walk(deps: dict, prefix: str) -> None:   # lockfile v1
        for name, meta in deps.items():
            if not isinstance(meta, dict):
                continue
            key = f"{prefix}node_modules/{name}"
            out[key] = bool(meta.get("dev"))
            if isinstance(meta.get("dependencies"), dict):
                walk(meta["dependencies"], key + "/")

    if isinstance(data.get("dependencies"), dict):
        walk(data["dependencies"], "")
    return out


def classifier(app_paths: Sequence[str], lock: Mapping[str, bool]) -> Callable[[str], str]:
    """A function: absolute final-tree path -> category key.

    ``app_paths``: paths counted as "the app" (WORKDIR, the app's binary); ``lock``:
    :func:`parse_lockfile` of the app's lockfile (which packages are dev-only).
    """
    apps = tuple(p.rstrip("/") for p in app_paths if p and p.rstrip("/"))

    def classify(path: str) -> str:
        if "/node_modules/" in path:
            if path.startswith(_NODE):
                return "node_runtime"
            key = _lock_key(path)
            while key:
                dev = lock.get(key)
                if dev is not None:
                    return "node_modules_dev" if dev else "node_modules_prod"
                cut = key.rfind("/node_modules/")
                key = key[:cut] if cut > 0 else None
            return "node_modules_prod"
        if path.startswith(_GO):
            return "go_toolchain"
        if path in _NODE_FILES or path.startswith(_NODE):
            return "node_runtime"
        for a in apps:
            if path == a or path.startswith(a + "/"):
                return "app"
        if path.startswith(_CACHES) or _HOME_CACHES.match(path):
            return "package_caches"
        if path.startswith(_DOCS):
            return "docs"
        if path.startswith(_BUILD_DIRS):
            return "build_tools"
        slash = path.rfind("/")
        base = path[slash + 1:]
        if path.startswith(_BIN_DIRS) and (base in _BUILD_TOOLS or base.startswith(_BUILD_PREFIXES)):
            return "build_tools"
        if "/lib" in path[:slash + 1] and path.startswith(("/usr/lib/", "/lib/")):
            if base.startswith(_BUILD_LIBS) or base.endswith((".a", ".o")):
                return "build_tools"
        if path.startswith(_OS) or _SKEL.match(path):
            return "os"
        return "other"

    return classify


def clean_path(path: str) -> str:
    """``app//bin/`` -> ``/app/bin``: the form of every path in a file tree (also used by ``stagelab.inspect``)."""
    path = "/" + str(path).strip().strip("/")
    while "//" in path:
        path = path.replace("//", "/")
    return path


def app_paths_of(labels: Mapping[str, str], workdir: str) -> tuple[str, ...]:
    """The paths counted as "the app": WORKDIR and, for a lab image, its binary from variants.toml."""
    paths = []
    if workdir and workdir.strip("/"):
        paths.append(clean_path(workdir))
    app = labels.get(APP_LABEL)
    if app:
        try:
            from . import variants  # the app's main artefact from variants.toml

            binary = variants.load_app(app).binary
            if binary:
                paths.append(clean_path(binary))
        except Exception:
            pass
    return tuple(dict.fromkeys(paths))


def find_lockfile(labels: Mapping[str, str], small: Mapping[str, bytes], app_paths: Sequence[str]) -> dict[str, bool]:
    """The node_modules split of an image: the lab app's package-lock.json, else the image's own."""
    app = labels.get(APP_LABEL)
    if app:
        try:
            candidate = repo_root() / "apps" / app / "package-lock.json"
            if candidate.is_file():
                return parse_lockfile(candidate.read_bytes())
        except Exception:
            pass
    # the image's own lockfiles: under the app first, then npm's hidden one in node_modules
    for root in list(app_paths) + [""]:
        for name in (f"{root}/package-lock.json", f"{root}/node_modules/.package-lock.json"):
            if name in small:
                parsed = parse_lockfile(small[name])
                if parsed:
                    return parsed
    for name, data in small.items():
        if name.endswith("package-lock.json"):
            parsed = parse_lockfile(data)
            if parsed:
                return parsed
    return {}
