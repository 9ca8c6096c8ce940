#!/bin/sh
# Make a Debian stand-in behave like an Alpine image where lessons can tell (run in the recipes
# of the golang and node alpine stand-ins): no bash, no tzdata (Go's own zoneinfo.zip stays),
# no useradd/groupadd on PATH but BusyBox-style adduser/addgroup. dash stays as /bin/sh (BusyBox
# ash upstream); libc stays glibc (musl can't be had from Debian): the README table says so.
set -eu
dpkg --purge --force-remove-essential --force-depends tzdata bash >/dev/null 2>&1 || true
rm -rf /usr/share/zoneinfo /bin/bash /usr/bin/bash
mkdir -p /usr/lib/stagelab
for tool in useradd groupadd usermod; do
  if [ -e "/usr/sbin/$tool" ]; then mv "/usr/sbin/$tool" /usr/lib/stagelab/; fi
done
install -m 0755 /tmp/alpine/adduser /tmp/alpine/addgroup /usr/sbin/
rm -rf /tmp/alpine
