# syntax=docker/dockerfile:1
# vigil's container image: built in one stage, run from a slim Debian as an unprivileged user.
# The compose cluster (docker-compose.yml) and the README's "Running in production" use it.

FROM rust:1.95-slim-bookworm AS build
# libpq for diesel's PostgreSQL backend; SQLite is compiled in (libsqlite3-sys "bundled").
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libpq-dev cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Build settings: SQLite's query-planner stability guarantee (see .cargo/config.toml).
COPY .cargo ./.cargo
COPY benches ./benches
COPY data ./data
COPY load ./load
COPY locales ./locales
COPY migrations ./migrations
COPY src ./src
COPY static ./static
COPY templates ./templates
RUN cargo build --release --locked --bin vigil \
 && strip target/release/vigil

FROM debian:bookworm-slim
# libpq5 for PostgreSQL, curl for the HEALTHCHECK, CA certificates for back-channel logout
# over https.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/vigil --create-home --shell /usr/sbin/nologin vigil
COPY --from=build /src/target/release/vigil /usr/local/bin/vigil
# The test GeoIP databases (CC BY-SA 4.0, geoip/README.md); mount real ones over this directory
# or point VIGIL_GEOIP_CITY / VIGIL_GEOIP_ASN elsewhere.
COPY geoip/ /usr/share/vigil/geoip/
ENV VIGIL_BIND=0.0.0.0:8080 \
    VIGIL_GEOIP_CITY=/usr/share/vigil/geoip/vigil-test-city.mmdb \
    VIGIL_GEOIP_ASN=/usr/share/vigil/geoip/vigil-test-asn.mmdb \
    VIGIL_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/vigil
EXPOSE 8080
# Liveness only: /healthz answers while the process runs; /readyz says whether it can serve.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/vigil"]
CMD ["serve"]
