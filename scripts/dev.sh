#!/usr/bin/env bash
# Starts the service for development with everything it needs.
#
# Checks the prerequisites first (C compiler, curl, Rust, PostgreSQL and Redis
# servers, free ports) and prints the one command that installs what is
# missing (as root on Debian/Ubuntu it installs them itself). Without
# DATABASE_URL/REDIS_URL it runs private PostgreSQL and Redis instances under
# .dev/, builds and starts the API, and prints the login of the first admin
# once GET /ready answers. Ctrl-C, or SIGINT/SIGTERM when run in the
# background, stops everything this script started. Safe to run again.
#
# Settings (environment):
#   API_PORT    8080   the API on http://127.0.0.1:API_PORT (BIND_ADDR overrides)
#   PG_PORT     55432  the private PostgreSQL
#   REDIS_PORT  56379  the private Redis
#   DEV_STATE_DIR .dev  where their data, the JWT secret and the admin password live
#   DATABASE_URL, REDIS_URL  use these servers instead of private ones
#   BOOTSTRAP_ADMIN_EMAIL (admin@example.com), BOOTSTRAP_ADMIN_PASSWORD (generated)
set -euo pipefail
cd "$(dirname "$0")/.."

# Started in the background by a non-interactive shell, this script inherits
# SIGINT ignored, and bash cannot trap a signal ignored on entry: start again
# with the default action so `kill -INT` stops it like Ctrl-C does.
if [ "$(( 0x$(sed -n 's/^SigIgn:\s*//p' /proc/$$/status 2>/dev/null || echo 0) & 2 ))" -ne 0 ] \
  && [ -z "${DEV_SH_REEXEC:-}" ] && env --default-signal=INT true 2>/dev/null; then
  DEV_SH_REEXEC=1 exec env --default-signal=INT "$0" "$@"
fi

# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

state_dir=${DEV_STATE_DIR:-$PWD/.dev}
pg_port=${PG_PORT:-55432}
redis_port=${REDIS_PORT:-56379}
api_port=${API_PORT:-8080}
export BIND_ADDR=${BIND_ADDR:-127.0.0.1:$api_port}
export LOG_FORMAT=${LOG_FORMAT:-pretty}
started_pg=0
started_redis=0
child_pid=""

# shellcheck disable=SC2317 # run by the traps below
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$child_pid" ]; then
    kill -TERM "$child_pid" 2>/dev/null || true
    wait "$child_pid" 2>/dev/null || true
  fi
  if [ "$started_pg" = 1 ]; then log "stopping PostgreSQL"; stop_postgres "$state_dir/pg"; fi
  if [ "$started_redis" = 1 ]; then log "stopping Redis"; stop_redis "$redis_port"; fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_child CMD...: runs CMD in the background and waits for it, so that a
# signal is handled at once (bash runs traps only between commands, so a
# foreground `cargo build` would delay Ctrl-C or SIGTERM by minutes).
run_child() {
  "$@" &
  child_pid=$!
  local rc=0
  wait "$child_pid" || rc=$?
  child_pid=""
  return "$rc"
}

check_prerequisites --services
mkdir -p "$state_dir"
# Ports first: a taken one is reported before anything is built or started.
check_port "${BIND_ADDR##*:}" API_PORT
if [ -z "${DATABASE_URL:-}" ] && [ ! -f "$state_dir/pg/postmaster.pid" ]; then check_port "$pg_port" PG_PORT; fi
if [ -z "${REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
  check_port "$redis_port" REDIS_PORT
fi

if [ -z "${DATABASE_URL:-}" ]; then
  ensure_postgres_installed
  start_postgres "$state_dir/pg" "$pg_port"
  started_pg=$PG_STARTED
  create_database "$pg_port" inventory
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/inventory"
fi
if [ -z "${REDIS_URL:-}" ]; then
  ensure_redis_installed
  start_redis "$state_dir/redis" "$redis_port"
  started_redis=$REDIS_STARTED
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi

# A stable development secret, kept in the state directory so tokens survive restarts.
if [ -z "${JWT_SECRET:-}" ]; then
  [ -f "$state_dir/jwt_secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state_dir/jwt_secret"
  export JWT_SECRET_FILE="$state_dir/jwt_secret"
fi
# The first admin's password: BOOTSTRAP_ADMIN_PASSWORD, else the one kept in
# .dev/admin_password (generated on the first run). It only takes effect when
# no user exists yet; the banner prints what actually logs in (checked below).
export BOOTSTRAP_ADMIN_EMAIL=${BOOTSTRAP_ADMIN_EMAIL:-admin@example.com}
password_file=$state_dir/admin_password
[ -s "$password_file" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$password_file"
if [ -z "${BOOTSTRAP_ADMIN_PASSWORD:-}" ]; then
  export BOOTSTRAP_ADMIN_PASSWORD_FILE=$password_file
fi

if [ ! -x target/debug/inventory-api ]; then
  log "building inventory-api: the first build compiles ~350 crates and takes about 7 minutes on 2 cores (later builds: seconds)"
else
  log "building inventory-api"
fi
run_child cargo build --bin inventory-api || die "the build failed (above)"

./target/debug/inventory-api serve &
api_pid=$!
child_pid=$api_pid

url="http://${BIND_ADDR/0.0.0.0/127.0.0.1}"
# Ready means the socket is bound, migrations are applied and PostgreSQL answers.
ready=0
for _ in $(seq 1 300); do
  if curl -fs -o /dev/null --max-time 2 "$url/ready"; then ready=1; break; fi
  kill -0 "$api_pid" 2>/dev/null || { wait "$api_pid" || true; child_pid=""; die "inventory-api exited during start-up (its error is above)"; }
  sleep 0.2
done
[ "$ready" = 1 ] || die "inventory-api did not answer $url/ready within 60 s (its log is above)"

# login_works PASSWORD: the first admin logs in with it.
login_works() {
  local pw=${1//\\/\\\\}
  pw=${pw//\"/\\\"}
  local body
  body=$(printf '{"email":"%s","password":"%s"}' "$BOOTSTRAP_ADMIN_EMAIL" "$pw")
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'content-type: application/json' \
    --data-binary "$body" "$url/api/v1/auth/login")" = 200 ]
}
login="$BOOTSTRAP_ADMIN_EMAIL / "
if [ -n "${BOOTSTRAP_ADMIN_PASSWORD:-}" ] && login_works "$BOOTSTRAP_ADMIN_PASSWORD"; then
  # Keep it, so that the next run without the variable prints it too.
  printf '%s' "$BOOTSTRAP_ADMIN_PASSWORD" >"$password_file"
  login+="$BOOTSTRAP_ADMIN_PASSWORD  (kept in $password_file)"
elif login_works "$(cat "$password_file")"; then
  login+="$(cat "$password_file")  (kept in $password_file)"
else
  login+="(unknown: that admin was created earlier with another password, or changed it.
                 Add an admin: ./target/debug/inventory-api create-user --email you@example.com --role admin
                 with DATABASE_URL=$DATABASE_URL; or delete $state_dir for a fresh database)"
fi

cat <<MSG

  Inventory API is running (ready: $url/ready answered 200).
    Swagger UI:  $url/docs
    Login:       $login
                 (POST /api/v1/auth/login, then Authorize with the access_token)
    Metrics:     $url/metrics
  Ctrl-C (or kill -INT/-TERM $$) stops the API$([ "$started_pg$started_redis" != 00 ] && echo ", PostgreSQL and Redis").

MSG
rc=0
wait "$api_pid" || rc=$?
child_pid=""
exit "$rc"
