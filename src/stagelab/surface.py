"""The attack surface of an image: what an attacker (or a learner) finds inside (``Surface``).

Used by notebook 04's attack-surface table, ``stagelab.compare`` and the exercise rules, through
``ImageReport.surface`` (built by :mod:`stagelab.inspect`): shells, package managers, compilers,
executables, setuid files, OS packages, whether it runs as root, where a secret is found.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # type hints only: inspect imports this module
    from .inspect import ImageReport

@dataclass
class Surface:
    """What an attacker (or a learner) finds inside: notebook 04's "attack surface" table.

    Fields that need the file tree are None when the report was made with ``contents=False``.
    """

    shell: str | None = None                      # first shell found (/bin/sh, /bin/bash, /bin/ash, busybox)
    shells: list[str] = field(default_factory=list)
    package_managers: list[str] | None = None      # of apt, dpkg, apk, npm, yarn, pip
    compilers: list[str] | None = None             # of gcc, cc, go, tsc, clang
    executables: int | None = None                 # regular files with an execute bit
    setuid: list[str] | None = None                # setuid/setgid files
    os_packages: int | None = None                 # dpkg status / apk installed entries (None: no database)
    os_package_db: str | None = None               # "dpkg" | "apk" | None
    runs_as_root: bool = True                      # config User empty, 0 or root
    secret_hits: list[str] = field(default_factory=list)  # "/path" for files, "history: ..."/"env: ..."/"label: ..." otherwise
    from_contents: bool = True                     # False: only config-based fields are known

    @property
    def has_shell(self) -> bool | None:
        return None if not self.from_contents else self.shell is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "shell": self.shell, "shells": list(self.shells),
            "package_managers": self.package_managers, "compilers": self.compilers,
            "executables": self.executables, "setuid": self.setuid,
            "os_packages": self.os_packages, "os_package_db": self.os_package_db,
            "runs_as_root": self.runs_as_root, "secret_hits": list(self.secret_hits),
            "from_contents": self.from_contents,
        }



_SHELLS = ("/bin/sh", "/bin/bash", "/bin/ash", "/bin/dash", "/bin/zsh", "/usr/bin/bash", "/usr/bin/sh")
_PACKAGE_MANAGERS = {"apt": ("apt-get", "apt"), "dpkg": ("dpkg",), "apk": ("apk",), "npm": ("npm",),
                     "yarn": ("yarn", "yarnpkg"), "pip": ("pip", "pip3")}
_COMPILERS = {"gcc": ("gcc",), "cc": ("cc",), "go": ("go",), "tsc": ("tsc",), "clang": ("clang",)}
_NPM_CLI = "/usr/local/lib/node_modules/npm/bin/npm-cli.js"


def user_is_root(user: str, passwd: bytes | None) -> bool:
    name = (user or "").split(":")[0].strip()
    if name in ("", "0", "root"):
        return True
    if name.isdigit():
        return False
    if passwd:
        for line in passwd.decode(errors="replace").splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[0] == name:
                return fields[2].strip() == "0"
    return False


def _count_os_packages(small: dict[str, bytes]) -> tuple[int | None, str | None]:
    status = small.get("/var/lib/dpkg/status")
    status_d = [v for k, v in small.items() if k.startswith("/var/lib/dpkg/status.d/")]
    if status is not None or status_d:
        count = 0
        if status is not None:
            for stanza in re.split(rb"\n\s*\n", status):
                m = re.search(rb"^Status:\s*(.*)$", stanza, re.M)
                if m and m.group(1).strip().endswith(b" installed") and b"not-installed" not in m.group(1):
                    count += 1
        for data in status_d:
            count += len(re.findall(rb"^Package:", data, re.M))
        return count, "dpkg"
    apk = small.get("/lib/apk/db/installed")
    if apk is not None:
        return len(re.findall(rb"^P:", apk, re.M)), "apk"
    return None, None


def surface_of(report: ImageReport, small: dict[str, bytes], file_hits: list[str]) -> Surface:
    tree = report.files
    shells: list[str] = []
    for path in _SHELLS:
        entry = report.resolve(path)
        if entry is None or not entry.is_executable:
            continue
        if path.startswith("/usr/bin/") and "/bin/" + path[len("/usr/bin/"):] in shells:
            continue   # merged /usr: /usr/bin/bash is /bin/bash
        shells.append(path)
    busybox = report.which("busybox")
    if busybox:
        shells.append(busybox)
    managers = [name for name, cmds in _PACKAGE_MANAGERS.items() if any(report.which(c) for c in cmds)]
    if "npm" not in managers and report.resolve(_NPM_CLI) is not None:
        managers.append("npm")
    compilers = [name for name, cmds in _COMPILERS.items() if any(report.which(c) for c in cmds)]
    if "go" not in compilers and (report.resolve("/usr/local/go/bin/go") or report.resolve("/usr/lib/go/bin/go")):
        compilers.append("go")
    if "tsc" not in compilers and any(
            p.endswith(("/node_modules/.bin/tsc", "/node_modules/typescript/bin/tsc")) for p in tree):
        compilers.append("tsc")
    executables = sum(1 for e in tree.values() if e.is_executable)
    setuid = sorted(e.path for e in tree.values() if e.is_setuid)
    os_packages, db = _count_os_packages(small)
    return Surface(
        shell=shells[0] if shells else None, shells=shells, package_managers=managers,
        compilers=[c for c in _COMPILERS if c in compilers], executables=executables, setuid=setuid,
        os_packages=os_packages, os_package_db=db,
        runs_as_root=user_is_root(report.user, small.get("/etc/passwd")),
        secret_hits=list(file_hits), from_contents=True,
    )
