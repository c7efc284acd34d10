# syntax=docker/dockerfile:1
#
# Container image of the CR8TOR Publish Service.
#
#   docker build -t cr8tor-publish-service:latest .
#
# Two stages: a Rust builder and a Debian slim runtime. The runtime stage is kept in step with
# deploy/image/Containerfile.runtime, which builds the same runtime on a local base image from a
# host-built binary (how the image is built and tested on machines without a registry; see
# tools/image-build and tools/image-test).

# ---- builder ------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# DuckDB is compiled from its bundled C++ sources by libduckdb-sys (the `bundled` feature), so
# the builder needs g++ (the rust:*-bookworm images ship gcc/g++; installed here explicitly in
# case the base changes). That compile is the bulk of the build: about 25 minutes on 2 cores,
# every time the dependency layer is not cached. ccache makes a rebuild with a warm cache cheap
# (tools/cc-wrapper uses it when present).
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ ccache \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# rust-toolchain.toml says "stable"; use the toolchain this image already has rather than
# downloading another one (the workspace needs Rust 1.89 or newer).
# The cache mounts (BuildKit) keep the cargo registry, the target directory and ccache's cache
# between builds on the same builder; the binary is copied out in the same step.
# STRIP_DEBUG=1 (default) drops the release profile's line tables (~120 MB of the ~210 MB
# binary); the symbol table stays, so backtraces still name functions. 0 keeps them.
ARG STRIP_DEBUG=1
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    --mount=type=cache,target=/root/.cache/ccache \
    RUSTUP_TOOLCHAIN="${RUST_VERSION:-stable}" \
    cargo build --release -p publish-server --locked \
 && install -D -m 0755 target/release/publish-server /out/publish-server \
 && if [ "$STRIP_DEBUG" = 1 ]; then objcopy --strip-debug /out/publish-server; fi

# ---- runtime ------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: rustls verifies the Databricks workspace's certificate against them.
# libstdc++6/libgcc-s1: the bundled DuckDB is C++ (already in the slim base; named so it stays).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/*

# A non-root user with a fixed uid/gid (10001), so volume permissions and Kubernetes'
# runAsUser/fsGroup can name it. Only the parent folders of the mounts are made here: the
# service never creates a destination's staging/ or production/ folder (a missing one means a
# volume that is not mounted), so the image does not either.
RUN groupadd --gid 10001 appuser \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /home/appuser --create-home \
      --shell /usr/sbin/nologin appuser \
 && install -d -o 10001 -g 10001 -m 0750 \
      /home/appuser/secrets /home/appuser/outputs /home/appuser/outputs/lsc \
      /home/appuser/dlt /home/appuser/dlt/pipelines

COPY --from=builder /out/publish-server /usr/local/bin/publish-server

# The reference service's paths and port; plain-text logs (NO_COLOR) for the log collector.
# Further destinations: set TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH and mount
# <path>/staging and <path>/production.
ENV SECRETS_MNT_PATH=/home/appuser/secrets \
    TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH=/home/appuser/outputs/lsc \
    TARGET_STORAGE_ACCOUNT_NW_SDE_MNT_PATH=/home/appuser/outputs/nw \
    DLTHUB_PIPELINE_WORKING_DIR=/home/appuser/dlt/pipelines \
    PUBLISH_BIND_ADDR=0.0.0.0:8003 \
    RUST_LOG=info \
    NO_COLOR=1

USER 10001:10001
WORKDIR /home/appuser
EXPOSE 8003
ENTRYPOINT ["/usr/local/bin/publish-server"]
