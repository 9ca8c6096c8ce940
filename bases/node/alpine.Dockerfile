# Stand-in for node:<major>-alpine: the node slim stand-in (its layers are shared, so little
# extra disk) plus one layer that removes what Alpine lacks (bash, tzdata, useradd; adds
# BusyBox-style adduser/addgroup: bases/alpine/install.sh). Upstream is Alpine (musl, busybox);
# this one is Debian slim (glibc), so it is larger.
# BASE_IMAGE: the node slim stand-in (versions.toml), passed by `stagelab bases prepare`.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY alpine/ /tmp/alpine/
RUN sh /tmp/alpine/install.sh
