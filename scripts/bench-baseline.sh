#!/usr/bin/env bash
# Movement throughput of this checkout against an earlier commit (by default
# c6bdb43, the last commit of v1), measured side by side so the machine's
# drift cancels out (issue 13: "no more than 15 % below v1").
#
#   scripts/bench-baseline.sh [REV]
#
# Builds REV in a git worktree (target/bench-baseline/src, its own target
# directory), seeds a database for each version in ONE PostgreSQL (the bench's
# cluster under target/bench-services, production settings, fsync on) with
# BENCH_PRODUCTS (10000) products in 2 warehouses, then runs BENCH_ROUNDS (4)
# rounds. Each round measures, back to back, each version's own pgbench
# script (bench/movement.sql of that version) and each version's API under
# this checkout's load tool (c=16 over BENCH_MOVE_PRODUCTS (1000) products,
# BENCH_MOVE_SECONDS (10) s after 3 s of warm-up), the order alternating
# between rounds (A B B A). It prints every round's figures and ratios and the
# medians of the ratios. Nothing asserts; the exit status is non-zero only
# when the set-up fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh
# shellcheck source=scripts/lib/bench_tools.sh
. scripts/lib/bench_tools.sh

base_rev=${1:-c6bdb43}
rounds=${BENCH_ROUNDS:-4}
seconds=${BENCH_MOVE_SECONDS:-10}
products=${BENCH_PRODUCTS:-10000}
move_products=${BENCH_MOVE_PRODUCTS:-1000}
warmup=3
concurrency=16
pg_port=${BENCH_PG_PORT:-55436}
redis_port=${BENCH_REDIS_PORT:-56381}
api_port=${BENCH_API_PORT:-18097}
api_url="http://127.0.0.1:$api_port"
clerk_email=bench-clerk@bench.invalid
password=bench-password-not-secret
state_dir="$PWD/target/bench-services"
base_dir="$PWD/target/bench-baseline"
out="$base_dir/out"

bench_prerequisites
git rev-parse --verify --quiet "$base_rev^{commit}" >/dev/null || die "unknown revision $base_rev"
if curl -fsS -o /dev/null "$api_url/health" 2>/dev/null; then
  die "something already answers on $api_url: stop it or set BENCH_API_PORT"
fi
mkdir -p "$out" "$state_dir"

api_pid=""
started_pg="" started_redis=""
cleanup() {
  if [ -n "$api_pid" ]; then kill "$api_pid" 2>/dev/null || true; fi
  if [ "$started_redis" = 1 ]; then stop_redis "$state_dir/redis" "$redis_port" || true; fi
  if [ "$started_pg" = 1 ]; then stop_postgres "$state_dir/pg" || true; fi
}
trap cleanup EXIT

log "building $base_rev in target/bench-baseline/src"
if [ -d "$base_dir/src" ]; then
  git -C "$base_dir/src" checkout --quiet --detach "$base_rev"
else
  git worktree add --force --detach "$base_dir/src" "$base_rev" >/dev/null
fi
(cd "$base_dir/src" && CARGO_TARGET_DIR="$base_dir/target" cargo build --release --quiet)
log "building this checkout ($(git rev-parse --short HEAD)) and the load tool"
cargo build --release --quiet
build_load_tool

# The same PostgreSQL settings as scripts/bench.sh (production's, no huge
# pages: both versions pay the same).
pg_flags=()
while IFS= read -r setting; do pg_flags+=(-c "$setting"); done < <(production_pg_settings)
start_postgres "$state_dir/pg" "$pg_port" "${pg_flags[@]}"
started_pg=$PG_STARTED
start_redis "$state_dir/redis" "$redis_port"
started_redis=$REDIS_STARTED

sql() { "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$1" -tAqX -c "$2"; }

# Version table: name, binary, database, pgbench script, backlog query (v1
# marks published rows; v2 keeps consumer cursors).
names=(base head)
bins=("$base_dir/target/release/inventory-api" "$PWD/target/release/inventory-api")
dbs=(inventory_baseline inventory_head)
scripts=("$base_dir/src/bench/movement.sql" "$PWD/bench/movement.sql")

backlog() {
  if sql "$1" "SELECT 1 FROM information_schema.tables WHERE table_name = 'outbox_consumers'" | grep -q 1; then
    sql "$1" "SELECT (SELECT count(*) FROM outbox WHERE position IS NULL)
              + (SELECT count(*) FROM outbox WHERE position >
                   (SELECT position FROM outbox_consumers WHERE name = 'redis'))"
  else
    sql "$1" "SELECT count(*) FROM outbox WHERE published_at IS NULL"
  fi
}

# prepare I: a fresh database for version I, migrated and seeded by its own binary.
prepare() {
  local i=$1 db=${dbs[$1]} url
  url="postgres://postgres@127.0.0.1:$pg_port/${dbs[$1]}"
  log "${names[$i]}: database $db, $products products in 2 warehouses"
  sql postgres "DROP DATABASE IF EXISTS $db" >/dev/null
  sql postgres "CREATE DATABASE $db" >/dev/null
  DATABASE_URL=$url "${bins[$i]}" migrate >/dev/null
  DATABASE_URL=$url "${bins[$i]}" seed --products "$products" --warehouses 2 >"$out/seed-${names[$i]}.log"
  printf '%s' "$password" | DATABASE_URL=$url "${bins[$i]}" create-user --email "$clerk_email" --role clerk >/dev/null
  sql "$db" "VACUUM ANALYZE" >/dev/null
}
prepare 0
prepare 1

start_api() {
  local i=$1
  env REDIS_URL="redis://127.0.0.1:$redis_port" JWT_SECRET="bench-jwt-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    BIND_ADDR="127.0.0.1:$api_port" LOG_FORMAT=json RUST_LOG=warn DATABASE_MAX_CONNECTIONS=32 \
    DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/${dbs[$i]}" "${bins[$i]}" serve >>"$out/api-${names[$i]}.log" 2>&1 &
  api_pid=$!
  for _ in $(seq 1 3000); do
    curl -fsS -o /dev/null "$api_url/health" 2>/dev/null && break
    kill -0 "$api_pid" 2>/dev/null || die "the ${names[$i]} API exited during start-up ($out/api-${names[$i]}.log)"
    sleep 0.01
  done
  # pgbench's events of the round before are relayed before anything is measured.
  for _ in $(seq 1 600); do
    [ "$(backlog "${dbs[$i]}")" = 0 ] && break
    sleep 0.2
  done
}
stop_api() { kill "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true; api_pid=""; }

# run_pgbench I FILE: prints tps
run_pgbench() {
  local i=$1 db=${dbs[$1]} warehouse actor args
  warehouse=$(sql "$db" "SELECT id FROM warehouses WHERE code = 'SEED-01'")
  actor=$(sql "$db" "SELECT id FROM users WHERE lower(email) = '$clerk_email'")
  args=(-h 127.0.0.1 -p "$pg_port" -U postgres -n -M prepared -c "$concurrency" -j 2 -f "${scripts[$i]}"
    -D products="$move_products" -D warehouse="$warehouse" -D actor="$actor" "$db")
  "$pgbench" "${args[@]}" -T "$warmup" >/dev/null 2>&1 || die "pgbench failed on $db"
  sql "$db" "CHECKPOINT" >/dev/null
  "$pgbench" "${args[@]}" -T "$seconds" >"$2" 2>&1 || { cat "$2" >&2; die "pgbench failed on $db"; }
  awk '/^tps = / { printf "%.1f", $3; exit }' "$2"
}

# run_api I FILE: prints movements/s
run_api() {
  local i=$1
  start_api "$i"
  sql "${dbs[$i]}" "CHECKPOINT" >/dev/null
  "$load_bin" movements --url "$api_url" --email "$clerk_email" --password "$password" -c "$concurrency" \
    --duration "$seconds" --warmup "$warmup" --products "$move_products" --warehouse SEED-01 \
    --server-pids "$api_pid" >"$2"
  stop_api
  awk '$1 == "RESULT" && $2 == "movements_per_s" { printf "%.1f", $3 }' "$2"
}

# Ratios between versions differ by a few thousandths: three decimals.
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
median_decimals=3

pg_ratios=() api_ratios=()
printf '%-6s %12s %12s %8s %12s %12s %8s\n' round "pgbench $base_rev" "pgbench head" "ratio" "API $base_rev" "API head" "ratio" | tee "$out/rounds.txt"
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order=(0 1); else order=(1 0); fi
  declare -A pg=() api=()
  for i in "${order[@]}"; do
    log "round $r: pgbench, ${names[$i]}"
    pg[$i]=$(run_pgbench "$i" "$out/pgbench-r$r-${names[$i]}.txt")
    [ -n "${pg[$i]}" ] || die "no tps from pgbench on ${dbs[$i]} ($out/pgbench-r$r-${names[$i]}.txt)"
  done
  for i in "${order[@]}"; do
    log "round $r: API, ${names[$i]}"
    api[$i]=$(run_api "$i" "$out/api-r$r-${names[$i]}.txt")
    [ -n "${api[$i]}" ] || die "no movements/s from the ${names[$i]} API ($out/api-r$r-${names[$i]}.txt)"
  done
  pg_ratios+=("$(calc "${pg[1]} / ${pg[0]}")") api_ratios+=("$(calc "${api[1]} / ${api[0]}")")
  printf '%-6s %12s %12s %8s %12s %12s %8s\n' "$r" "${pg[0]}" "${pg[1]}" "${pg_ratios[-1]}" \
    "${api[0]}" "${api[1]}" "${api_ratios[-1]}" | tee -a "$out/rounds.txt"
  unset pg api
done
echo "head / $base_rev, medians of $rounds rounds: pgbench $(median "${pg_ratios[@]}"), API $(median "${api_ratios[@]}")" \
  | tee -a "$out/rounds.txt"
