#!/bin/sh
# Slim a `debootstrap --variant=minbase SUITE` tree the way debian:SUITE-slim is
# slimmed (debuerreotype's "slimify" and "minimizing-config" steps), in place.
# Usage: slim.sh ROOTFS SUITE    (run as root on the host; used by `stagelab bases prepare`,
#                                 SUITE from versions.toml, e.g. trixie)
# ROOTFS may be a hard-linked copy of the cached tree: files are only ever removed or
# written anew (put), never edited in place.
set -eu
root="$1"
suite="${2:?slim.sh: give the Debian suite (codename) as the second argument}"
[ -d "$root/etc/apt" ] || { echo "slim.sh: $root is not a Debian tree" >&2; exit 2; }
put() { rm -f "$1"; cat > "$1"; }

# 1. dpkg path excludes, so packages installed later stay slim too (as in the official image)
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
put "$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
# Drop docs, man pages, info and locales, like the official debian:*-slim (debuerreotype slimify).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG

# dpkg without fsync inside image builds (docker-apt-speedup, as in the official image)
echo 'force-unsafe-io' | put "$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"

# 2. apt settings of the official images: no caches, no translations, gzipped indexes
mkdir -p "$root/etc/apt/apt.conf.d"
put "$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::Languages "none";' | put "$root/etc/apt/apt.conf.d/docker-no-languages"
printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' \
  | put "$root/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' | put "$root/etc/apt/apt.conf.d/docker-autoremove-suggests"

# 3. sources: deb.debian.org, deb822 style like the official image
rm -f "$root/etc/apt/sources.list"
mkdir -p "$root/etc/apt/sources.list.d"
put "$root/etc/apt/sources.list.d/debian.sources" <<CFG
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
CFG

# 4. remove what the slim image does not carry
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
for d in usr/share/man usr/share/info usr/share/groff usr/share/linda usr/share/lintian/overrides usr/share/locale; do
  [ -d "$root/$d" ] && find "$root/$d" -mindepth 1 -delete
done
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/cache/apt/archives/partial/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
       "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/* "$root"/debootstrap
mkdir -p "$root/var/lib/apt/lists/partial"
put "$root/etc/machine-id" < /dev/null
rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
# the tree's top directory becomes the image's / : world-readable like any root
chmod 755 "$root"

# 5. no services start inside image builds (the official images ship the same policy)
printf '#!/bin/sh\nexit 101\n' | put "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
