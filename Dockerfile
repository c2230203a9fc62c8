# nanofaas watchdog image: a single static binary at /watchdog, nothing else.
#
#   docker build -t nanofaas/watchdog:latest .      (or scripts/build-images.sh)
#
# Function images take the binary from it:
#   FROM nanofaas/watchdog:latest AS watchdog
#   ...
#   COPY --from=watchdog /watchdog /usr/local/bin/watchdog
#
# Only the watchdog module is built (watchdog/, module nanofaas.dev/watchdog):
# its binary needs the standard library and golang.org/x/sys, nothing else,
# so that is all the build downloads. The workspace (go.work) is not used.
#
# On machines without an image registry, scripts/base-images.sh provides the
# golang:1.26-bookworm base locally.

FROM golang:1.26-bookworm AS build
WORKDIR /src/watchdog
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod
# Compile the standard library once with the flags used below: it is most of
# the compile time (~45 s on 2 cores) and depends only on the toolchain, so
# this layer survives any change to the repository.
RUN go build -trimpath std
COPY watchdog/go.mod watchdog/go.sum ./
# The binary's only module dependency, from the Go module proxy (default
# GOPROXY). The module's test-only requirements are not downloaded.
RUN go mod download golang.org/x/sys
COPY watchdog/ ./
RUN go build -trimpath -ldflags='-s -w' -o /out/watchdog ./cmd/watchdog

# --- final image -------------------------------------------------------------
FROM scratch
COPY --from=build /out/watchdog /watchdog
ENTRYPOINT ["/watchdog"]
