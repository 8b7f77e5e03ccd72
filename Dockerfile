# dkim_exporter container image.
#
#   docker build -t dkim_exporter:0.2.0 -t dkim_exporter:latest \
#     --build-arg DKIM_EXPORTER_REVISION="$(git rev-parse --short=12 HEAD)" .
#   podman build -t dkim_exporter:0.2.0 -t dkim_exporter:latest \
#     --build-arg DKIM_EXPORTER_REVISION="$(git rev-parse --short=12 HEAD)" .
#   docker run --rm -p 10053:10053 \
#     -v "$PWD/dkim_exporter.yml:/etc/dkim_exporter/dkim_exporter.yml:ro" dkim_exporter:0.2.0
#
# The build pulls two images: rust:1.95-bookworm (docker.io/library/rust) to compile in, and
# gcr.io/distroless/cc-debian12:nonroot to run on. The image runs as an unprivileged user (65532)
# with no shell and works on a read-only root. The example config is baked in at
# /etc/dkim_exporter/dkim_exporter.yml; mount your own over it (readable by 65532). Arguments
# after the image name are added to the entrypoint's (e.g. --log.format=json, or
# --config.file=/other.yml: the last value of a flag wins). For the one-shot diagnosis, replace
# the entrypoint:
#   docker run --rm --entrypoint /usr/local/bin/dkim_exporter dkim_exporter:0.2.0 check example.com ...
#
# CI builds this file unchanged with podman and runs the image in the end-to-end test's DNS world
# (deploy/image/check, tests/e2e/run).

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build

WORKDIR /src

# Dependencies first, against placeholder sources, so that a change to src/ does not rebuild
# every crate: this layer is reused while Cargo.toml, Cargo.lock and build.rs stay the same.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir src \
 && printf '//! placeholder\nfn main() {}\n' > src/main.rs \
 && printf '//! placeholder\n' > src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src \
    target/release/dkim_exporter \
    target/release/deps/dkim_exporter-* \
    target/release/deps/libdkim_exporter-* \
    target/release/.fingerprint/dkim_exporter-*

# build.rs stamps dkim_exporter_build_info{revision=...} from this when .git is not in the
# context (it is excluded by .dockerignore).
ARG DKIM_EXPORTER_REVISION=unknown
ENV DKIM_EXPORTER_REVISION=${DKIM_EXPORTER_REVISION}

COPY src ./src
# COPY keeps the context's timestamps, which may be older than the placeholder build's.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && ./target/release/dkim_exporter --version

COPY config.example.yaml ./config.example.yaml
RUN ./target/release/dkim_exporter --config.check --config.file config.example.yaml

# ---------------------------------------------------------------------------------------------
# Runtime stage: glibc and libgcc (the binary links them dynamically), nothing else.
# ---------------------------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot

ARG DKIM_EXPORTER_REVISION=unknown
LABEL org.opencontainers.image.title="dkim_exporter" \
      org.opencontainers.image.description="Prometheus exporter that watches DKIM DNS records across resolvers" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.2.0" \
      org.opencontainers.image.revision="${DKIM_EXPORTER_REVISION}"

COPY --from=build /src/target/release/dkim_exporter /usr/local/bin/dkim_exporter
COPY --from=build /src/config.example.yaml /etc/dkim_exporter/dkim_exporter.yml

# 65532 is distroless's "nonroot" user; numeric so that Kubernetes runAsNonRoot can verify it.
USER 65532:65532

EXPOSE 10053

# No HEALTHCHECK: the image has no shell or HTTP client. Probe /-/healthy and /-/ready from the
# orchestrator instead (see deploy/kubernetes/deployment.yaml).
ENTRYPOINT ["/usr/local/bin/dkim_exporter", "--config.file=/etc/dkim_exporter/dkim_exporter.yml"]
