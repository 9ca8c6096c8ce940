# Stand-in for node:20-alpine: the node:20-slim stand-in under another name (same layers, so
# no extra disk), with its own labels (set by `stagelab bases prepare`). Upstream is Alpine
# (musl, busybox, about 130 MB); this one is Debian 12 slim (glibc, bash), so it is larger.
ARG BASE_IMAGE=stagelab-offline/node:20-slim
FROM ${BASE_IMAGE}
