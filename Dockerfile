# syntax=docker/dockerfile:1
# Vigil's image for people with Docker (BuildKit); `make image` builds the same image
# without a daemon (docs/image.md). Multi-arch:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) -t REGISTRY/vigil:0.1.0 --push .

# The builder runs on the build host and cross-compiles: vigil is pure Go (CGO_ENABLED=0).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH VERSION=dev COMMIT=unknown
# The Makefile's `make build` line (test/image checks they stay the same), for the target.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X vigil.dev/vigil/internal/version.Version=${VERSION} -X vigil.dev/vigil/internal/version.Commit=${COMMIT}" -o /out/vigil ./cmd/vigil

# Nothing but the CA bundle (for TLS to the API server) and the static binary. No USER:
# the pod sets one per component (the agent needs root for NET_ADMIN and NET_RAW).
FROM scratch
ARG VERSION=dev COMMIT=unknown
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/vigil /vigil
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /
LABEL org.opencontainers.image.title=vigil \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.revision=${COMMIT} \
      org.opencontainers.image.source=https://github.com/vigil-dev/vigil \
      org.opencontainers.image.licenses=Apache-2.0
ENTRYPOINT ["/vigil"]
