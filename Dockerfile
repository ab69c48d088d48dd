# scalebench images: `workload` (the API under test) and `loadgen` (the load generator).
#
#   docker build --target workload -t scalebench/workload:0.1.0 .
#   docker build --target loadgen  -t scalebench/loadgen:0.1.0 .
#
# Works with the classic builder (docker-compose 1.29, docker without buildx) and with BuildKit:
# no cache mounts, no heredocs. Dependencies are compiled in their own layer (manifests plus
# dummy sources), so editing the code rebuilds only the two workspace crates.
#
# The binaries are linked statically against glibc (crt-static), so the runtime is distroless
# `static` (CA bundle, passwd, tzdata: about 2 MB) and the workload image stays far below 30 MB.
# glibc >= 2.34 resolves host names (files, dns) without loading NSS modules, which is all the
# loadgen (Compose service names) and the OTLP exporter need.
#
# Base images are pinned and chosen by build arguments. CI reaches no registry: it seeds local
# stand-ins under its own names (scalebench-seed/..., .ci/seed-images.sh) and passes them as
# --build-arg RUST_IMAGE=... --build-arg RUNTIME_IMAGE=..., never under these upstream tags.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot
# Only for the `own-service` stage (docs/own-service.md): any image to measure instead of the workload.
ARG TARGET_IMAGE=${RUNTIME_IMAGE}

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# `release` is what users get. CI may pass another profile defined in Cargo.toml to trade
# run-time speed for build time; `dev` lands in target/<triple>/debug.
ARG CARGO_PROFILE=release
# Static glibc, see the header. Empty it to build dynamic binaries for a `cc` runtime base.
ARG RUSTFLAGS="-C target-feature=+crt-static"
ENV CARGO_TERM_COLOR=never \
    CARGO_NET_RETRY=5 \
    CARGO_INCREMENTAL=0 \
    RUSTFLAGS=${RUSTFLAGS}
WORKDIR /src

# 1. Dependencies only: the manifests, the lock file and empty crate roots. This layer is reused
#    until Cargo.toml or Cargo.lock changes. `--target` keeps RUSTFLAGS off build scripts and
#    proc macros (they cannot be static).
COPY Cargo.toml Cargo.lock ./
COPY service/Cargo.toml service/Cargo.toml
COPY loadgen/Cargo.toml loadgen/Cargo.toml
RUN target="$(rustc -vV | sed -n 's/^host: //p')" \
 && for crate in service loadgen; do \
      mkdir -p "$crate/src" && echo 'fn main() {}' > "$crate/src/main.rs" && : > "$crate/src/lib.rs"; \
    done \
 && cargo build --locked --profile "$CARGO_PROFILE" --target "$target" -p workload -p loadgen --bins \
 && rm -rf service/src loadgen/src

# 2. The real sources. COPY keeps the context's mtimes, which may be older than the dummy build:
#    touch them so cargo rebuilds the two crates.
COPY service/src service/src
COPY loadgen/src loadgen/src
RUN target="$(rustc -vV | sed -n 's/^host: //p')" \
 && find service/src loadgen/src -type f -exec touch {} + \
 && cargo build --locked --profile "$CARGO_PROFILE" --target "$target" -p workload -p loadgen --bins \
 && outdir="target/$target/$(if [ "$CARGO_PROFILE" = dev ]; then echo debug; else echo "$CARGO_PROFILE"; fi)" \
 && mkdir -p /out \
 && cp "$outdir/workload" "$outdir/loadgen" /out/ \
 && /out/workload --help >/dev/null && /out/loadgen --help >/dev/null

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS loadgen
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="scalebench loadgen" \
      org.opencontainers.image.description="An honest HTTP load generator: open and closed loop, no coordinated omission" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/scalebench" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=builder /out/loadgen /usr/local/bin/loadgen
COPY loadgen/scenarios /usr/share/scalebench/scenarios
WORKDIR /usr/share/scalebench
# distroless `nonroot`; numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# Prometheus metrics while a run is in progress (--metrics-addr 0.0.0.0:9464).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/loadgen"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------
# Your own service in place of the workload (compose.own-service.yml, docs/own-service.md): the
# image TARGET_IMAGE unchanged (entrypoint, user, ports), plus the static `workload` binary as
# /usr/local/bin/scalebench-probe, so the compose healthcheck can GET its health path whether or
# not the image ships curl or a shell (statically linked: runs on glibc, musl or scratch images).
FROM ${TARGET_IMAGE} AS own-service
COPY --from=builder /out/workload /usr/local/bin/scalebench-probe

# ---------------------------------------------------------------------------------------------
# Last stage, so a plain `docker build .` produces the workload image.
FROM ${RUNTIME_IMAGE} AS workload
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="scalebench workload" \
      org.opencontainers.image.description="The HTTP API under test: CPU-bound, I/O-bound and CRUD endpoints, instrumented" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/scalebench" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=builder /out/workload /usr/local/bin/workload
ENV WORKLOAD_ADDR=0.0.0.0:8080 \
    WORKLOAD_METRICS_ADDR=0.0.0.0:9000 \
    WORKLOAD_LOG_FORMAT=json
# Writes nothing to disk: runs with a read-only root filesystem.
USER 65532:65532
# 8080: the API; 9000: /metrics, kept off the application port.
EXPOSE 8080 9000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/workload", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/workload"]
