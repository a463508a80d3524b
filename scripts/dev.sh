#!/usr/bin/env bash
# Starts the service for development with everything it needs.
#
# Without DATABASE_URL/REDIS_URL it runs private PostgreSQL (127.0.0.1:55432)
# and Redis (:56379) instances under .dev/, installing the packages first when
# run as root on Debian/Ubuntu. It builds and starts the API on
# http://127.0.0.1:8080 (BIND_ADDR to change), creates a first admin and prints
# the login. Ctrl-C stops everything this script started. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

ensure_rust
state_dir="$PWD/.dev"
pg_port=${DEV_PG_PORT:-55432}
redis_port=${DEV_REDIS_PORT:-56379}
mkdir -p "$state_dir"
started_pg=0
started_redis=0
api_pid=""

cleanup() {
  trap - EXIT INT TERM
  if [ -n "$api_pid" ]; then kill -TERM "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true; fi
  [ "$started_pg" = 1 ] && { log "stopping PostgreSQL"; stop_postgres "$state_dir/pg"; }
  [ "$started_redis" = 1 ] && { log "stopping Redis"; stop_redis "$redis_port"; }
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# A stable development secret and admin, kept in .dev/ so tokens survive restarts.
if [ -z "${JWT_SECRET:-}" ]; then
  [ -f "$state_dir/jwt_secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state_dir/jwt_secret"
  export JWT_SECRET_FILE="$state_dir/jwt_secret"
fi
export BOOTSTRAP_ADMIN_EMAIL=${BOOTSTRAP_ADMIN_EMAIL:-admin@example.com}
if [ -z "${BOOTSTRAP_ADMIN_PASSWORD:-}" ]; then
  [ -f "$state_dir/admin_password" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state_dir/admin_password"
  export BOOTSTRAP_ADMIN_PASSWORD_FILE="$state_dir/admin_password"
  admin_password=$(cat "$state_dir/admin_password")
else
  admin_password=$BOOTSTRAP_ADMIN_PASSWORD
fi
export BIND_ADDR=${BIND_ADDR:-127.0.0.1:8080}
export LOG_FORMAT=${LOG_FORMAT:-pretty}

log "building inventory-api"
cargo build --bin inventory-api
./target/debug/inventory-api serve &
api_pid=$!

url="http://${BIND_ADDR/0.0.0.0/127.0.0.1}"
for _ in $(seq 1 100); do
  curl -fs "$url/health" >/dev/null 2>&1 && break
  kill -0 "$api_pid" 2>/dev/null || die "inventory-api exited during start-up (see above)"
  sleep 0.2
done

cat <<MSG

  Inventory API is running.
    Swagger UI:  $url/docs
    Login:       $BOOTSTRAP_ADMIN_EMAIL / $admin_password
                 (POST /api/v1/auth/login, then Authorize with the access_token)
    Metrics:     $url/metrics
  Ctrl-C stops the API$( [ "$started_pg$started_redis" != 00 ] && echo ", PostgreSQL and Redis" ).

MSG
wait "$api_pid"
