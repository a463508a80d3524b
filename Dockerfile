# Inventory API image: `inventory-api serve` as a non-root user on Debian slim.
#
#   docker build -t inventory-api .          (docker-compose builds it as `api`)
#
# Two stages: the Rust toolchain compiles a release binary; the runtime stage
# holds that binary, CA certificates and nothing else worth mentioning. The
# builder and the runtime are the same Debian release (bookworm), so the
# binary's glibc matches. Works with the classic builder and with BuildKit.

# ---- build ----------------------------------------------------------------
# sqlx 0.9 needs Rust >= 1.94; 1.95 is the toolchain the project is built and
# tested with.
FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Keep symbol names (readable panics) but not debug info: a smaller binary.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    CARGO_TERM_COLOR=never
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Dependencies first, compiled against stub sources: this layer is reused until
# Cargo.toml, Cargo.lock or build.rs change, so a source edit rebuilds only the
# crate itself. Cargo refuses a manifest whose declared targets ([[bench]],
# [[test]], [[example]], [[bin]]) have no file, so each gets a stub too; the
# bench/test/example stubs stay for the real build, which never compiles them.
COPY Cargo.toml Cargo.lock build.rs ./
# sqlx-core with one pool option added (vendor/README.md), patched in by Cargo.toml.
COPY vendor ./vendor
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && awk 'function flush() { if (kind != "" && name != "") print (path != "" ? path : dir[kind] "/" name ".rs"); kind = name = path = "" } \
            BEGIN { dir["bin"] = "src/bin"; dir["bench"] = "benches"; dir["test"] = "tests"; dir["example"] = "examples" } \
            /^\[/ { flush() } \
            /^\[\[(bin|bench|test|example)\]\]/ { kind = $0; gsub(/[][ ]/, "", kind) } \
            kind != "" && /^ *name *=/ { name = $0; sub(/^[^"]*"/, "", name); sub(/".*/, "", name) } \
            kind != "" && /^ *path *=/ { path = $0; sub(/^[^"]*"/, "", path); sub(/".*/, "", path) } \
            END { flush() }' Cargo.toml \
       | while read -r target; do \
           [ -e "$target" ] || { mkdir -p "$(dirname "$target")" && echo 'fn main() {}' > "$target"; }; \
         done \
    && cargo build --release --locked --bin inventory-api \
    && rm -rf src

# The real sources. migrations/ is embedded by sqlx::migrate! at compile time,
# console/ (the web console) by include_bytes! in src/console.rs.
# build.rs asks git for the commit; there is no .git here, so the build-info
# metric reports "unknown".
COPY migrations ./migrations
COPY console ./console
COPY src ./src
# COPY keeps the files' own (older) times; make sure cargo sees them as newer
# than the stub build.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin inventory-api \
    && cp target/release/inventory-api /usr/local/bin/inventory-api \
    && /usr/local/bin/inventory-api --version

# ---- runtime --------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: for a DATABASE_URL/REDIS_URL with TLS to a managed service.
# Not version-pinned on purpose: it must follow Debian's security updates.
# The user has fixed ids (10001) so files and secrets can be granted to it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 inventory \
    && useradd --system --uid 10001 --gid inventory --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin inventory

COPY --from=builder /usr/local/bin/inventory-api /usr/local/bin/inventory-api

# Configuration is environment only (see .env.example); every variable can also
# be NAME_FILE, e.g. JWT_SECRET_FILE=/run/secrets/jwt_secret.
ENV BIND_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json

# Numeric, so orchestrators can verify "non-root" without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080

# Ready = the process answers and PostgreSQL is reachable (GET /ready is 200).
# No curl in the image: bash (part of every Debian) speaks the HTTP itself over
# /dev/tcp, on the port of BIND_ADDR.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${BIND_ADDR##*:}\" && printf 'GET /ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && IFS=' ' read -r -t 4 _ status _ <&3 && [ \"$status\" = 200 ]"]

# Migrations are applied by `serve` at start-up (concurrent replicas are
# serialised by sqlx's advisory lock). Other subcommands: migrate, openapi,
# create-user, e.g. `docker-compose run --rm api create-user --email ... --role admin`.
ENTRYPOINT ["inventory-api"]
CMD ["serve"]
