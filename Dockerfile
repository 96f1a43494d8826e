# syntax=docker/dockerfile:1
#
# weft: a static binary on distroless, running as a non-root user.
#
#   docker build -t weft --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm weft version
#
# docker-compose.yml builds this file; the cmd/weft compose tests (compose*_test.go) check that the
# two agree (entrypoint, command, state directory).

ARG GO_VERSION=1.26

# ---- build ------------------------------------------------------------------
# Runs on the builder's own platform and cross-compiles for the target one
# (pure Go, no cgo), so an arm64 image builds fast on an amd64 machine and back.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src

# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
# CGO_ENABLED=0 gives a static binary. Pebble then compresses with the pure-Go
# zstd (klauspost/compress) instead of the cgo one (DataDog/zstd); both read
# and write the same zstd format, so stores move freely between builds.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/weft ./cmd/weft \
 && mkdir -p /out/state

# ---- runtime ----------------------------------------------------------------
# distroless/static: CA certificates, tzdata and /etc/passwd, no shell.
# The :nonroot tag runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="weft" \
      org.opencontainers.image.description="A stateful stream processor for Kafka whose traces survive state" \
      org.opencontainers.image.source="https://github.com/weftstream/weft" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/weft /usr/local/bin/weft
# The state directory must exist and belong to the non-root user before it is
# declared a volume: a new volume takes the owner of the image's directory.
COPY --from=build --chown=65532:65532 /out/state /var/lib/weft

# Pebble stores (processors/<group>/<table>/<partition>) live here; they are
# rebuilt from the table topics when the volume is empty.
ENV WEFT_STATE_DIR=/var/lib/weft \
    WEFT_LOG_FORMAT=json
WORKDIR /var/lib/weft
VOLUME /var/lib/weft
USER 65532:65532

ENTRYPOINT ["/usr/local/bin/weft"]
CMD ["run"]
