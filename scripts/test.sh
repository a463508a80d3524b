#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis.
#
# Without DATABASE_URL/REDIS_URL it starts private instances under
# target/test-services/ (PostgreSQL on 127.0.0.1:55433, Redis on :56380),
# installing the packages first when run as root on Debian/Ubuntu, and stops
# whatever it started when the tests end. Extra arguments go to `cargo test`.
# Then scripts/console-test.sh runs the browser tests of the web console.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

check_prerequisites --services
state_dir="$PWD/target/test-services"
pg_port=${TEST_PG_PORT:-55433}
redis_port=${TEST_REDIS_PORT:-56380}
started_pg=0
started_redis=0

cleanup() {
  [ "$started_pg" = 1 ] && stop_postgres "$state_dir/pg"
  [ "$started_redis" = 1 ] && stop_redis "$redis_port"
  return 0
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ] && [ ! -f "$state_dir/pg/postmaster.pid" ]; then check_port "$pg_port" TEST_PG_PORT; fi
if [ -z "${REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
  check_port "$redis_port" TEST_REDIS_PORT
fi
if [ -z "${DATABASE_URL:-}" ]; then
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

# The web console in a real headless Chromium, on whole-suite runs
# (CONSOLE_TESTS=0 skips it, CONSOLE_TESTS=1 runs it with cargo test arguments too).
if [ "${CONSOLE_TESTS:-$([ $# -eq 0 ] && echo 1 || echo 0)}" = 1 ]; then
  scripts/console-test.sh
fi
