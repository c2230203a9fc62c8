# nanofaas watchdog image: a single static binary at /watchdog, nothing else.
#
#   docker build -t nanofaas/watchdog:latest .      (or scripts/build-images.sh)
#
# Function images take the binary from it:
#   FROM nanofaas/watchdog:latest AS watchdog
#   ...
#   COPY --from=watchdog /watchdog /usr/local/bin/watchdog
#
# On machines without an image registry, scripts/base-images.sh provides the
# golang:1.26-bookworm base locally.

# --- module manifests only ---------------------------------------------------
# The repo is a go.work workspace (root module nanofaas.dev + ./watchdog,
# ./emulator, ...). Keep every go.mod / go.sum / go.work* at its path and drop
# everything else, so the dependency layers below stay cached until a manifest
# changes, whatever modules the workspace gains. (examples/ and testdata/ hold
# separate modules that the watchdog build does not use.)
FROM golang:1.26-bookworm AS manifests
WORKDIR /src
COPY . .
RUN find . \( -path ./examples -o -name testdata \) -prune -exec rm -rf {} + \
 && find . -type f ! -name go.mod ! -name go.sum ! -name go.work ! -name go.work.sum -delete \
 && find . -depth -mindepth 1 -type d -empty -delete

# --- build -------------------------------------------------------------------
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
# Compile the standard library once with the flags used below: it is most of
# the compile time (~45 s on 2 cores) and depends only on the toolchain, so
# this layer survives any change to the repository.
RUN go build -trimpath std
COPY --from=manifests /src/ ./
# Modules come from the Go module proxy (default GOPROXY).
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags='-s -w' -o /out/watchdog ./cmd/watchdog

# --- final image -------------------------------------------------------------
FROM scratch
COPY --from=build /out/watchdog /watchdog
ENTRYPOINT ["/watchdog"]
