# zipfleet's container image: `zipfleet`, `zipfleet-api` and `zipfleet-worker`
# on PATH, running as an unprivileged user.
#
#   docker build -t zipfleet .                 # from source (the last stage, `image`)
#   infra/image.sh                             # the same runtime from binaries built on the host
#
# Stages:
#   runtime-base  Debian bookworm-slim + ca-certificates + the zipfleet user; no binaries.
#   runtime       runtime-base + binaries COPYed from the build context (BIN_DIR). Buildable
#                 alone (`--target runtime`): infra/image.sh builds it from a context that
#                 holds only the host-built binaries, so no Rust toolchain image is needed.
#   build         compiles the workspace from source (rust:*-bookworm: the runtime's glibc).
#   image         runtime-base + the binaries from `build`: what `docker build .` produces.
# The stages after `runtime` are never touched by `--target runtime`.

# No HEALTHCHECK: one image serves two programs on different ports (API 8080, worker 9090);
# each deployment probes its own /healthz and /readyz (Kubernetes probes, ECS health checks,
# compose healthcheck).
# checkov:skip=CKV_DOCKER_2:the API and the worker are probed by their orchestrator on different ports; see the comment above

FROM debian:bookworm-slim AS runtime-base
# ca-certificates: workers fetch https images and talk to S3/SQS over TLS (rustls reads the
# system roots through webpki/native roots). Nothing else: no shell tools are needed at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 zipfleet \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/zipfleet --no-create-home \
      --shell /usr/sbin/nologin zipfleet \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/zipfleet /var/spool/zipfleet
# Container defaults: listen on every interface of the container's network namespace, JSON
# logs, and spool downloads and zips under /var/spool/zipfleet, which a deployment mounts as a
# writable scratch volume (emptyDir / tmpfs) so the root filesystem can be read-only.
ENV ZIPFLEET_LISTEN=0.0.0.0:8080 \
    ZIPFLEET_WORKER_LISTEN=0.0.0.0:9090 \
    ZIPFLEET_LOG_FORMAT=json \
    ZIPFLEET_WORK_DIR=/var/spool/zipfleet
WORKDIR /var/lib/zipfleet
# Numeric so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080 9090
# Each deployment names the binary to run (zipfleet-api or zipfleet-worker).
CMD ["zipfleet", "--help"]

FROM runtime-base AS runtime
ARG BIN_DIR=.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="zipfleet" \
      org.opencontainers.image.description="Training-data zips for ML classrooms: API, workers and CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
COPY --chown=0:0 --chmod=0755 ${BIN_DIR}/zipfleet ${BIN_DIR}/zipfleet-api ${BIN_DIR}/zipfleet-worker /usr/local/bin/

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The full (non-slim) rust image brings gcc, g++ and make: libjpeg-turbo, libwebp and aws-lc
# are compiled from C by `cc` (no nasm, cmake or system -dev packages needed).
COPY . .
RUN cargo build --profile dist --locked -p zipfleet-cli -p zipfleet-api -p zipfleet-worker \
 && install -d /out \
 && install -m 0755 target/dist/zipfleet target/dist/zipfleet-api target/dist/zipfleet-worker /out/

FROM runtime-base AS image
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="zipfleet" \
      org.opencontainers.image.description="Training-data zips for ML classrooms: API, workers and CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
COPY --from=build --chown=0:0 --chmod=0755 /out/ /usr/local/bin/
