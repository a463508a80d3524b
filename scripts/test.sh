#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis.
#
# Without DATABASE_URL/REDIS_URL it starts private instances under
# target/test-services/ (PostgreSQL on 127.0.0.1:55433, Redis on :56380),
# installing the packages first when run as root on Debian/Ubuntu, and stops
# whatever it started when the tests end. Extra arguments go to `cargo test`.
#
# Without extra arguments it then runs a subset (stock, scanner, read_pool,
# pgbouncer) again with the application's pool going through PgBouncer in
# transaction pooling (127.0.0.1:TEST_PGBOUNCER_PORT, default PostgreSQL's
# port + 13, clear of bench.sh's PostgreSQL on 55436), built once from
# Debian's source when the installed PgBouncer is older than 1.21 (see
# scripts/lib/services.sh); skip that with
# TEST_PGBOUNCER=0. It needs the private PostgreSQL (no DATABASE_URL given).
# TEST_PGBOUNCER_MAX_PREPARED_STATEMENTS=0 turns PgBouncer's prepared
# statement tracking off, to see the subset fail without it.
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
  bouncer_port=${TEST_PGBOUNCER_PORT:-$((pg_port + 13))}
  stop_pgbouncer "$pgbouncer_dir"
  check_port "$bouncer_port" TEST_PGBOUNCER_PORT
  ensure_pgbouncer "$PWD/target/tools"
  # PgBouncer cannot carry the API's session limits (the startup packet's
  # "options") onto shared server connections, so, as docs/deployment.md tells
  # operators, the role it logs in as carries them: the API's defaults
  # (src/config.rs), which tests/pgbouncer.rs relies on. Membership in
  # postgres, which owns the test databases' tables, lets it use them.
  "$(pg_bindir)/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT 'CREATE ROLE api_via_pgbouncer LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'api_via_pgbouncer')\gexec
GRANT postgres TO api_via_pgbouncer;
ALTER ROLE api_via_pgbouncer SET statement_timeout = '10s';
ALTER ROLE api_via_pgbouncer SET lock_timeout = '5s';
ALTER ROLE api_via_pgbouncer SET idle_in_transaction_session_timeout = '15s';
SQL
  # 4 server connections per database against the API's pool of 20 (16 in
  # tests/pgbouncer.rs): every server connection runs statements that several
  # client connections prepared, as in production.
  # Idle server connections close after 1 s, so each test database can be
  # dropped when its test ends (DROP DATABASE waits 5 s for sessions, then
  # fails and leaves it to the sweep below): 48 s -> 21 s for the scanner tests.
  PGBOUNCER_SERVER_IDLE_TIMEOUT=1 PGBOUNCER_POOL_SIZE=4 PGBOUNCER_MAX_PREPARED_STATEMENTS=${TEST_PGBOUNCER_MAX_PREPARED_STATEMENTS:-200} \
    start_pgbouncer "$pgbouncer_dir" "$bouncer_port" "$pg_port" api_via_pgbouncer
  log "stock, scanner, read_pool and pgbouncer tests again, the API's pool through PgBouncer"
  bouncer_started=$SECONDS
  TEST_APP_THROUGH_PGBOUNCER=$bouncer_port cargo test --workspace --test stock --test scanner --test read_pool --test pgbouncer
  log "the PgBouncer subset passed in $((SECONDS - bouncer_started)) s"
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
