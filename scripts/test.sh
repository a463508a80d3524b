#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis.
#
# Without DATABASE_URL/REDIS_URL it starts private instances under
# target/test-services/ (PostgreSQL on 127.0.0.1:55433, Redis on :56380),
# installing the packages first when run as root on Debian/Ubuntu, and stops
# whatever it started when the tests end. Extra arguments go to `cargo test`.
#
# Without extra arguments it then runs a subset (stock, scanner, read_pool)
# again with the application's pool going through PgBouncer
# (127.0.0.1:TEST_PGBOUNCER_PORT, default PostgreSQL's port + 3); skip that with
# TEST_PGBOUNCER=0. It needs the private PostgreSQL (no DATABASE_URL given).
# Last, scripts/console-test.sh runs the browser tests of the web console.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh
reserve_service_ports

check_prerequisites --services
state_dir="$PWD/target/test-services"
pg_port=${TEST_PG_PORT:-55433}
redis_port=${TEST_REDIS_PORT:-56380}
started_pg=0
started_redis=0

pgbouncer_dir="$state_dir/pgbouncer"
cleanup() {
  stop_pgbouncer "$pgbouncer_dir"
  [ "$started_pg" = 1 ] && stop_postgres "$state_dir/pg"
  [ "$started_redis" = 1 ] && stop_redis "$redis_port"
  return 0
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ] && [ ! -f "$state_dir/pg/postmaster.pid" ]; then check_port "$pg_port" TEST_PG_PORT; fi
if [ -z "${REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
  check_port "$redis_port" TEST_REDIS_PORT
fi
own_pg=0
if [ -z "${DATABASE_URL:-}" ]; then
  own_pg=1
  ensure_postgres_installed
  # Test data is disposable: skip fsync so commits cost microseconds, not milliseconds.
  start_postgres "$state_dir/pg" "$pg_port" -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  started_pg=$PG_STARTED
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
fi
if [ -z "${REDIS_URL:-}" ]; then
  ensure_redis_installed
  start_redis "$state_dir/redis" "$redis_port"
  started_redis=$REDIS_STARTED
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi

if [ ! -d target/debug/deps ]; then
  log "the first build compiles ~350 crates and takes about 7 minutes on 2 cores (later runs: seconds)"
fi
log "cargo test (DATABASE_URL=$DATABASE_URL, REDIS_URL=$REDIS_URL)"
cargo test --workspace "$@"

if [ $# -eq 0 ] && [ "$own_pg" = 1 ] && [ "${TEST_PGBOUNCER:-1}" != 0 ]; then
  bouncer_port=${TEST_PGBOUNCER_PORT:-$((pg_port + 3))}
  start_pgbouncer "$pgbouncer_dir" "$bouncer_port" "$pg_port"
  log "stock, scanner and read_pool tests again, the API's pool through PgBouncer"
  TEST_APP_THROUGH_PGBOUNCER=$bouncer_port cargo test --workspace --test stock --test scanner --test read_pool
  stop_pgbouncer "$pgbouncer_dir"
  # PgBouncer held the test databases open when the harness dropped them.
  "$(pg_bindir)/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAc \
    "SELECT format('DROP DATABASE IF EXISTS %I;', datname) FROM pg_database WHERE datname LIKE '\_sqlx\_test\_%'" \
    | "$(pg_bindir)/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -q >/dev/null
fi

# The web console in a real headless Chromium, on whole-suite runs
# (CONSOLE_TESTS=0 skips it, CONSOLE_TESTS=1 runs it with cargo test arguments too).
if [ "${CONSOLE_TESTS:-$([ $# -eq 0 ] && echo 1 || echo 0)}" = 1 ]; then
  scripts/console-test.sh
fi
