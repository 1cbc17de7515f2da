# syntax=docker/dockerfile:1
# The container image of your etl-app: your models are compiled in, so build it from your
# checkout (`docker build -t registry.example.com/etl-app:1.0 .`). The dependencies' build is
# cached apart from your models (BuildKit cache mounts), so a changed model rebuilds in about a
# minute. Without a registry to pull the base images from, `cargo xtask image` builds the same
# runtime from Debian's packages.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p etl-app --bin etl-app \
    && cp target/release/etl-app /etl-app \
    && strip /etl-app

# What the binary links (checked by `cargo xtask image`): glibc, libgcc, and libpq with its
# libraries (Diesel's connection for the tasks' lookups); CA certificates for TLS to
# PostgreSQL, S3 and Glue.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libpq5 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 etl \
    && useradd --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin etl \
    && mkdir /data && chown etl:etl /data
COPY --from=build /etl-app /usr/local/bin/etl-app
USER 10001:10001
WORKDIR /data
ENV ETL_STAGING_DIR=/tmp
ENTRYPOINT ["/usr/local/bin/etl-app"]
CMD ["--help"]
