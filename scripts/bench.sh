#!/usr/bin/env bash
# Benchmarks the API against the performance targets in DESIGN.md and prints
# the figures (see bench/README.md for what each one means).
#
#   scripts/bench.sh [all|movements|lookup|scanner|logins|search-mix|history|asof|stocktake|import|growth]
#
# all (the default) runs every mode below, one after the other (BENCH_MODES
# picks a subset), and ends with ONE table: each target of "Performance
# targets" and "v2 performance targets", the figure measured, held or missed
# (also written to target/bench-services/summary.md, with the date, machine
# and commit, for bench/README.md). It takes about an hour the first time
# (seeding 1,000,000 products and 10,000,000 ledger rows; those databases are
# kept for the next run).
#   movements  API movements/s vs pgbench running the same statement, over
#              BENCH_MOVE_PRODUCTS (1000) products and on one hot product,
#              with a bare poem + sqlx server between them (medians of
#              BENCH_MOVE_ROUNDS rounds); p99 at half of peak, and pgbench
#              alone at that rate; reservations on one product
#   lookup     cached barcode lookup vs a bare poem endpoint
#   scanner    scanner batches of 500 (c=1, c=4) and single events from 32 devices
#   logins     BENCH_LOGINS (40) concurrent logins x 5 rounds: peak RSS
#   search-mix the product search query mix over 1,000,000 products, c=1 and c=8
#   history    the transaction list per filter, first page and deep in the
#              cursor chain, over 10,000,000 ledger rows
#   asof       the SQL of the as-of reads over 10,000,000 ledger rows (no API)
#   stocktake  open a count, post lines as scanner batches, complete: 5,000
#              and 100,000 lines over positions
#   import     CSV import of 100,000 products and export of 1,000,000: time, RSS
#   growth     movements/s, search p99 and listing p99 at 10k/100k/1M products
#              (100k/1M/10M ledger rows); writes bench/growth.svg
# Each mode starts private PostgreSQL (127.0.0.1:55436, normal durability:
# fsync on; production's deploy/postgres/postgresql.conf) and Redis (:56381) under target/bench-services/, builds the release
# binary, starts the API on 127.0.0.1:18097 and stops everything it started
# when it ends. Nothing here asserts: figures are printed, and the exit status
# is non-zero only when the set-up fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh
# shellcheck source=scripts/lib/bench_tools.sh
. scripts/lib/bench_tools.sh

all_modes="movements lookup scanner logins search-mix history asof stocktake import growth"
mode=${1:-all}
case $mode in
  search) mode="search-mix" ;; # the name before v2
  all | movements | lookup | scanner | search-mix | history | logins | asof | stocktake | import | growth) ;;
  -h | --help)
    sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown mode '$mode' (all, ${all_modes// /, })" ;;
esac

state_dir="$PWD/target/bench-services"
mkdir -p "$state_dir"
# The summary: one row per target, TARGET<TAB>FIGURE<TAB>held|missed. `all`
# hands its file to every mode it runs; a single mode starts its own.
summary_file=${BENCH_SUMMARY_FILE:-$state_dir/summary-$mode.tsv}
[ -n "${BENCH_SUMMARY_FILE:-}" ] || : >"$summary_file"
# summary TARGET FIGURE VERDICT
summary() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$summary_file"; }
# verdict CONDITION (awk syntax over decimals): held or missed
verdict() { if awk "BEGIN { exit !($1) }"; then echo held; else echo missed; fi; }
# The table `all` ends with, in Markdown: the header says where it was measured.
print_summary() {
  local file=$1
  {
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB," \
      "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')," \
      "by \`scripts/bench.sh all\`."
    echo
    echo "| target | measured | |"
    echo "|---|---|---|"
    awk -F '\t' '{ printf "| %s | %s | %s |\n", $1, $2, ($3 == "held" ? "held" : "**" $3 "**") }' "$file"
  } | tee "$state_dir/summary.md"
  echo
  echo "(also in $state_dir/summary.md; held $(grep -c $'\theld$' "$file" || true), missed $(grep -vc $'\theld$' "$file" || true))"
}

if [ "$mode" = all ]; then
  summary_file="$state_dir/summary.tsv"
  : >"$summary_file"
  for m in ${BENCH_MODES:-$all_modes}; do
    log "=============== scripts/bench.sh $m ==============="
    if ! BENCH_SUMMARY_FILE="$summary_file" "$0" "$m"; then
      summary "scripts/bench.sh $m" "the run failed (its output is above)" missed
    fi
  done
  echo
  echo "================ Inventory API: every target ================"
  print_summary "$summary_file"
  exit 0
fi
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
pg_port=${BENCH_PG_PORT:-55436}
redis_port=${BENCH_REDIS_PORT:-56381}
api_port=${BENCH_API_PORT:-18097}
products=${BENCH_PRODUCTS:-10000}
warehouses=${BENCH_WAREHOUSES:-2}
move_products=${BENCH_MOVE_PRODUCTS:-1000}
[ "$move_products" -le "$products" ] || move_products=$products
concurrency=${BENCH_CONCURRENCY:-16}
duration=${BENCH_DURATION:-20}
move_rounds=${BENCH_MOVE_ROUNDS:-3}
move_duration=${BENCH_MOVE_SECONDS:-10}
warmup=${BENCH_WARMUP:-3}
lookup_duration=${BENCH_LOOKUP_DURATION:-10}
scanner_duration=${BENCH_SCANNER_DURATION:-10}
scan_rate=${BENCH_SCAN_RATE:-320}
search_products=${BENCH_SEARCH_PRODUCTS:-1000000}
search_queries=${BENCH_SEARCH_QUERIES:-2600}
history_products=${BENCH_HISTORY_PRODUCTS:-100000}
stocktake_lines=${BENCH_STOCKTAKE_LINES:-5000,100000}
history_rows=${BENCH_HISTORY_ROWS:-10000000}
growth_sizes=${BENCH_GROWTH_SIZES:-10000 100000 1000000}
warehouse_code=SEED-01
clerk_email=bench-clerk@bench.invalid
admin_email=bench-admin@bench.invalid
password=bench-password-not-secret
api_url="http://127.0.0.1:$api_port"
out="$state_dir/out"
bin="$target_dir/release/inventory-api"

api_pid=""
seed_pid=""
started_pg=0
started_redis=0
cleanup() {
  if [ -n "$seed_pid" ]; then kill "$seed_pid" 2>/dev/null || true; fi
  stop_api
  [ "$started_pg" = 1 ] && stop_postgres "$state_dir/pg"
  [ "$started_redis" = 1 ] && stop_redis "$redis_port"
  return 0
}
trap cleanup EXIT

# Peak resident memory of the API processes that served load (kB, VmHWM).
rss_kb=0
note_rss() {
  local kb
  [ -n "$api_pid" ] || return 0
  kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$api_pid/status" 2>/dev/null || echo 0)
  if [ "${kb:-0}" -gt "$rss_kb" ]; then rss_kb=$kb; fi
}

stop_api() {
  if [ -n "$api_pid" ]; then
    kill -TERM "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    api_pid=""
  fi
}

now_ms() { date +%s%3N; }

# RESULT lines printed by the load tool: value FILE KEY
value() { awk -v k="$2" '$1 == "RESULT" && $2 == k { v = $3 } END { print v }' "$1"; }
# Arithmetic on decimals: calc EXPR
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

bench_prerequisites
# Real durability: every commit waits for its WAL flush (fsync on), as in
# production, and production's settings (deploy/postgres/postgresql.conf: cache
# sizes, random_page_cost). pgbench runs on the same server, so the ratio is
# fair either way. pg_stat_statements is loaded (not created) so a run can be
# dissected afterwards: CREATE EXTENSION pg_stat_statements in the bench database.
pg_flags=(-c shared_preload_libraries=pg_stat_statements)
while IFS= read -r setting; do
  pg_flags+=(-c "$setting")
done < <(production_pg_settings)
# Huge pages for PostgreSQL's shared memory, as a tuned database host has them
# (docs/deployment.md "PostgreSQL's settings"). Without them every backend maps
# shared_buffers 4 KB at a time the first time it touches a page: a two-word
# search over 1,000,000 products took 16-17 ms in a fresh backend against
# 5.5 ms in one that had run it before; with them 6-8.5 and 4.4-5 ms, and the
# search mix's p99 fell from 19.4-19.8 to 11.6 ms sequentially and from 48-49
# to 31 ms at c=8 (bench/README "Huge pages"). Reserved when run as root;
# otherwise the run says so and goes on with 4 KB pages.
# Huge pages free to a new server: free minus those another process has
# claimed but not touched yet.
free_huge_pages() {
  awk '/^HugePages_Free:/ { f = $2 } /^HugePages_Rsvd:/ { r = $2 } END { print f - r }' /proc/meminfo
}
huge_pages_setting() {
  local kb buffers_kb pages free
  # A server already running keeps the memory it started with.
  "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -tAqX -c "SELECT 1" >/dev/null 2>&1 && return 0
  kb=$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo 2>/dev/null)
  [ -n "$kb" ] || return 0
  buffers_kb=$(production_pg_settings | awk -F= '$1 == "shared_buffers" {
    v = $2 + 0; if ($2 ~ /GB$/) v *= 1048576; else if ($2 ~ /MB$/) v *= 1024; print v }')
  # shared_buffers and ~10 % for the rest of PostgreSQL's shared memory.
  pages=$(( ${buffers_kb:-131072} * 11 / 10 / kb + 1 ))
  free=$(free_huge_pages)
  if [ "${free:-0}" -lt "$pages" ] && [ -w /proc/sys/vm/nr_hugepages ]; then
    echo $(( $(cat /proc/sys/vm/nr_hugepages) + pages - ${free:-0} )) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
    free=$(free_huge_pages)
  fi
  if [ "${free:-0}" -ge "$pages" ]; then
    echo "huge_pages=on"
  else
    log "no $pages huge pages free (reserving them needs root: sysctl vm.nr_hugepages); PostgreSQL runs with 4 KB pages and its backends pay for mapping shared memory" >&2
  fi
}
huge_pages=$(huge_pages_setting)
if [ -n "$huge_pages" ]; then pg_flags+=(-c "$huge_pages"); fi
if [ "$mode" = asof ]; then
  # shellcheck source=scripts/lib/bench_asof.sh
  . scripts/lib/bench_asof.sh
  bench_asof
  exit 0
fi
if curl -fsS -o /dev/null "$api_url/health" 2>/dev/null; then
  die "something already answers on $api_url: stop it or set BENCH_API_PORT"
fi
mkdir -p "$out"

start_postgres "$state_dir/pg" "$pg_port" "${pg_flags[@]}"
started_pg=$PG_STARTED
start_redis "$state_dir/redis" "$redis_port"
started_redis=$REDIS_STARTED
redis-cli -h 127.0.0.1 -p "$redis_port" flushall >/dev/null

log "cargo build --release (and the load tool)"
cargo build --release --quiet
[ -x "$bin" ] || die "$bin not found after the build"
build_load_tool

sql() { "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -tAqX -c "$1"; }
sql_admin() { "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAqX -c "$1"; }

# use_database DB: the database sql, the API (start_api) and the CLI use from now on.
use_database() {
  db=$1
  db_url="postgres://postgres@127.0.0.1:$pg_port/$db"
  export DATABASE_URL="$db_url"
}

# prepare_database DB PRODUCTS WAREHOUSES KEEP: makes DB current, migrated and
# seeded with PRODUCTS products in WAREHOUSES warehouses plus the bench users.
# KEEP=1 reuses a database that already holds exactly that seed (the large
# ones take minutes to make); KEEP=0 starts from an empty one, so the ledger
# and the outbox start empty.
prepare_database() {
  local name=$1 n=$2 nw=$3 keep=$4 started count
  use_database "$name"
  if [ "$keep" = 1 ] && [ "$(sql_admin "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] \
    && [ "$(sql "SELECT count(*) FROM products WHERE sku LIKE 'SEED-%'" 2>/dev/null || echo 0)" = "$n" ]; then
    log "reusing database $db ($n seeded products)"
    "$bin" migrate >/dev/null
    sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
    return 0
  fi
  sql_admin "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  create_database "$pg_port" "$db"
  "$bin" migrate >/dev/null
  log "seeding $n products in $nw warehouses (database $db)"
  started=$(now_ms)
  "$bin" seed --products "$n" --warehouses "$nw" >"$out/seed.log" 2>&1 &
  seed_pid=$!
  while kill -0 "$seed_pid" 2>/dev/null; do
    sleep 5
    if kill -0 "$seed_pid" 2>/dev/null; then
      count=$(sql "SELECT count(*) FROM products" 2>/dev/null || echo '?')
      log "  seeded $count / $n products ($(( ($(now_ms) - started) / 1000 )) s)"
    fi
  done
  wait "$seed_pid" || { cat "$out/seed.log" >&2; seed_pid=""; die "seeding failed"; }
  seed_pid=""
  cat "$out/seed.log"
  printf '%s' "$password" | "$bin" create-user --email "$clerk_email" --role clerk >/dev/null
  printf '%s' "$password" | "$bin" create-user --email "$admin_email" --role admin >/dev/null
  sql "VACUUM ANALYZE" >/dev/null
  sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
}

# build_indexes DEFS: runs each CREATE INDEX statement of DEFS (one per line).
build_indexes() {
  local def
  while IFS= read -r def; do
    [ -n "$def" ] && sql "SET maintenance_work_mem = '512MB'; $def" >/dev/null
  done <<<"$1"
}

# add_ledger_rows ROWS: tops the current database's ledger up to ROWS rows.
add_ledger_rows() {
  local target=$1 have started index_defs i
  have=$(sql "SELECT count(*) FROM stock_transactions")
  if [ "$have" -ge "$target" ]; then
    log "reusing $have ledger rows in $db"
    return 0
  fi
  log "adding $((target - have)) ledger rows to $db (set-based, generate_series)"
  started=$(now_ms)
  # Bulk-load shape: the ledger's secondary indexes are dropped and rebuilt
  # afterwards (one sorted build each instead of 10M random inserts), and
  # foreign-key triggers are off for the load (the ids are taken from the
  # tables they point to). Nothing else is changed: the same table, checks
  # and index definitions the migrations made.
  index_defs=$(sql "SELECT indexdef || ';' FROM pg_indexes WHERE tablename = 'stock_transactions'
                    AND indexname <> 'stock_transactions_pkey'")
  for i in $(sql "SELECT indexname FROM pg_indexes WHERE tablename = 'stock_transactions'
                  AND indexname <> 'stock_transactions_pkey'"); do
    sql "DROP INDEX $i" >/dev/null
  done
  # What the rows look like: bench/history-seed.sql.
  # The indexes come back whether or not the load worked: a kept database
  # without them would be reused as it is next time.
  if ! "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -qX -v ON_ERROR_STOP=1 \
    -v from="$have" -v to="$target" -f bench/history-seed.sql >"$out/history-seed.log" 2>&1; then
    cat "$out/history-seed.log" >&2
    log "  the load failed; rebuilding the ledger's indexes"
    build_indexes "$index_defs"
    die "loading the ledger failed"
  fi
  log "  rows in $(( ($(now_ms) - started) / 1000 )) s; rebuilding the ledger's indexes"
  build_indexes "$index_defs"
  sql "VACUUM ANALYZE stock_transactions" >/dev/null
  log "  $target ledger rows in $(( ($(now_ms) - started) / 1000 )) s (load, indexes, analyze)"
}

# bench_ids: the clerk's and the warehouse's ids in the current database.
bench_ids() {
  actor=$(sql "SELECT id FROM users WHERE lower(email) = '$clerk_email'")
  warehouse=$(sql "SELECT id FROM warehouses WHERE lower(code) = lower('$warehouse_code')")
  if [ -z "$actor" ] || [ -z "$warehouse" ]; then
    die "bench users or warehouse $warehouse_code missing in $db"
  fi
}

case $mode in
  # import: its export reads the search mix's 1,000,000 products (the import
  # itself goes to a database of its own: scripts/lib/bench_import.sh).
  search-mix | import) prepare_database inventory_bench_search "$search_products" "$warehouses" 1 ;;
  history)
    warehouses=4
    prepare_database inventory_bench_history "$history_products" "$warehouses" 1
    add_ledger_rows "$history_rows"
    ;;
  growth)
    # shellcheck source=scripts/lib/bench_growth.sh
    . scripts/lib/bench_growth.sh
    prepare_database "$(growth_database "${growth_sizes%% *}")" "${growth_sizes%% *}" "$warehouses" 1
    ;;
  *) prepare_database inventory_bench "$products" "$warehouses" 0 ;;
esac
seed_products=$(sql "SELECT count(*) FROM products WHERE sku LIKE 'SEED-%'")
bench_ids

# The API: release build, JSON logs at warn so logging does not dominate.
api_env=(
  REDIS_URL="redis://127.0.0.1:$redis_port"
  JWT_SECRET="bench-jwt-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  BIND_ADDR="127.0.0.1:$api_port"
  LOG_FORMAT=json
  RUST_LOG=warn
  DATABASE_MAX_CONNECTIONS=32
)
if [ -n "${PASSWORD_HASH_CONCURRENCY:-}" ]; then api_env+=(PASSWORD_HASH_CONCURRENCY="$PASSWORD_HASH_CONCURRENCY"); fi
# Starts the API and sets startup_last to the milliseconds from launch to
# /health answering (migrations are already applied: the start-up of a deploy).
start_api() {
  local launched i
  launched=$(now_ms)
  env "${api_env[@]}" DATABASE_URL="$db_url" "$bin" serve >>"$out/api.log" 2>&1 &
  api_pid=$!
  for i in $(seq 1 3000); do
    if curl -fsS -o /dev/null "$api_url/health" 2>/dev/null; then
      startup_last=$(($(now_ms) - launched))
      return 0
    fi
    kill -0 "$api_pid" 2>/dev/null || { tail -20 "$out/api.log" >&2; die "the API exited during start-up (log above)"; }
    [ "$i" = 3000 ] && die "the API did not answer /health within 30 s"
    sleep 0.01
  done
}
: >"$out/api.log"
startups=()
startup_last=""
for _ in 1 2 3; do
  stop_api
  start_api
  startups+=("$startup_last")
done
startup_ms=$(printf '%s\n' "${startups[@]}" | sort -n | sed -n 2p)
log "API up on $api_url (pid $api_pid); start-up ${startups[*]} ms, median $startup_ms ms"

# The load tool: load MODE OUTFILE ARGS...
load() {
  local what=$1 file=$2; shift 2
  "$load_bin" "$what" --url "$api_url" "$@" | tee "$file"
}
checkpoint() { sql "CHECKPOINT" >/dev/null; }
# The catalog (products, their barcodes, which every answer lists, and their
# indexes) read into PostgreSQL's cache before
# a search run, as a server that has been up for a while holds it: right after
# a restart the first pass over 1,000,000 products read it from the OS cache
# and the c=1 p99 was 207 ms, against 36 ms the next run.
prewarm_catalog() {
  # The word pairs' index but not their table: a search reads that index alone.
  sql "CREATE EXTENSION IF NOT EXISTS pg_prewarm;
       SELECT sum(pg_prewarm(oid)) FROM pg_class
        WHERE oid IN ('products'::regclass, 'product_barcodes'::regclass)
           OR oid IN (SELECT indexrelid FROM pg_index
                      WHERE indrelid IN ('products'::regclass, 'product_barcodes'::regclass,
                                         'product_search_pairs'::regclass))" >/dev/null
}
# Events not yet in the Redis stream (events::backlog: not yet numbered, or
# numbered after the relay's cursor; v2 no longer sets `published_at`).
unpublished() {
  sql "SELECT (SELECT count(*) FROM outbox WHERE position IS NULL)
            + (SELECT count(*) FROM outbox WHERE position >
                  (SELECT position FROM outbox_consumers WHERE name = 'redis'))"
}
# The API's outbox relay publishes every movement's event in the background;
# wait until it has caught up so one measurement's backlog does not load the next.
drain_outbox() {
  local i n
  for i in $(seq 1 600); do
    n=$(unpublished)
    [ "$n" = 0 ] && { [ "$i" = 1 ] || log "outbox relay caught up in $((i / 5)) s"; return 0; }
    sleep 0.2
  done
  log "the outbox still holds $n unpublished events after 120 s; going on"
}
redis_pid() { cat "$state_dir/redis/redis.pid" 2>/dev/null || true; }
# The API's pid (and Redis's) for the load tool's CPU figures.
server_pids() {
  local r; r=$(redis_pid)
  if [ -n "$r" ]; then echo "$api_pid,$r"; else echo "$api_pid"; fi
}
clerk=(--email "$clerk_email" --password "$password")
admin=(--email "$admin_email" --password "$password")

api_mps="" pg_tps="" move_ratio="" move_rounds_seen="" hot_rounds="" bare_mps="" bare_ratio="" hot_bare="" hot_bare_ratio="" half="" half_p50="" half_p99="" half_rate="" half_service_p99="" pg_half_p50="" pg_half_p99="" pg_half_max="" hot_api="" hot_pg="" hot_ratio=""
reservation_cycles=""
lookup_api="" lookup_bare="" lookup_ratio="" lookup_cpu_ratio="" lookup_api_core="" lookup_bare_core=""
batch_c1="" batch_c4="" single_c32="" single_p99="" paced_p99="" paced_rate="" scanner_note=""
search_c1_p99="" search_c8_p99="" search_c1_worst="" search_c8_worst=""
history_worst="" asof_product_p99="" asof_valuation_max="" asof_products=""
logins_hwm="" logins_rss="" logins_codes=""

if [ "$mode" = logins ]; then
  concurrent_logins=${BENCH_LOGINS:-40}
  # A fresh process, so its peak RSS (VmHWM) is the logins' alone.
  stop_api
  start_api
  log "$concurrent_logins concurrent logins x 5 rounds (PASSWORD_HASH_CONCURRENCY=${PASSWORD_HASH_CONCURRENCY:-cores})"
  login_body="{\"email\":\"$clerk_email\",\"password\":\"$password\"}"
  for _ in 1 2 3 4 5; do
    seq 1 "$concurrent_logins" | xargs -P "$concurrent_logins" -I{} \
      curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'content-type: application/json' \
      -d "$login_body" "$api_url/api/v1/auth/login"
  done >"$out/logins.txt"
  logins_codes=$(sort "$out/logins.txt" | uniq -c | awk '{ printf "%s x %s  ", $2, $1 }')
  logins_hwm=$(calc "$(awk '/^VmHWM:/ { print $2 }' "/proc/$api_pid/status") / 1024")
  logins_rss=$(calc "$(awk '/^VmRSS:/ { print $2 }' "/proc/$api_pid/status") / 1024")
  log "logins answered: $logins_codes; peak RSS $logins_hwm MB, RSS after $logins_rss MB"
  note_rss
fi

# cpu_watch FILE DELAY SECONDS: where the machine's CPU goes during a measured
# window (every process by command: postgres, inventory-api, load, pgbench,
# redis-server), in the background; `wait "$cpu_pid"` collects it. The window
# is kept half a second inside the run's at each end: a process that exits
# before the window closes is not counted.
cpu_watch() {
  "$load_bin" cpu-split --delay "$(calc "$2 + 0.5")" --duration "$(calc "$3 - 1")" >"$1" &
  cpu_pid=$!
}
# cpu_line FILE: the split as one line (command cores, ...)
cpu_line() { grep '^CPU' "$1" || echo "CPU split not measured"; }

# bare_movements N FILE IDS: the same movements (the products and warehouse
# listed in $out/IDS) through the bare stack: poem and a sqlx pool calling the
# same database function, none of the application (the load tool's
# `bare-movements`); sets bare_mps.
bare_movements() {
  local n=$1 file=$2 ids=$3 bare_pid bare_addr="" i
  log "the same through the bare stack (poem + sqlx, nothing of the application): c=$concurrency, ${move_duration} s"
  "$load_bin" bare-movements --database-url "$db_url" --actor "$actor" --pool 32 >"$out/$file-bare-server.txt" 2>&1 &
  bare_pid=$!
  for i in $(seq 1 100); do
    bare_addr=$(awk '/^LISTENING / { print $2 }' "$out/$file-bare-server.txt")
    [ -n "$bare_addr" ] && break
    kill -0 "$bare_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$bare_addr" ] || { cat "$out/$file-bare-server.txt" >&2; die "the bare movement server did not start (output above)"; }
  checkpoint
  cpu_watch "$out/cpu-$file-bare.txt" "$warmup" "$move_duration"
  "$load_bin" movements --url "http://$bare_addr" --token bare -c "$concurrency" --duration "$move_duration" \
    --warmup "$warmup" --ids "$out/$ids" --server-pids "$bare_pid" | tee "$out/$file-bare.txt"
  wait "$cpu_pid"
  kill -TERM "$bare_pid" 2>/dev/null || true
  wait "$bare_pid" 2>/dev/null || true
  bare_mps=$(value "$out/$file-bare.txt" movements_per_s)
}

# movement_pgbench N PGBENCH_ARGS...: bench/movement.sql through pgbench at
# c=$concurrency over the first N seeded products, as the API's clerk.
movement_pgbench() {
  local n=$1
  shift
  "$pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -n -M prepared -c "$concurrency" -j 2 \
    -f bench/movement.sql -D products="$n" -D warehouse="$warehouse" -D actor="$actor" "$@" "$db"
}

# compare_movements N FILE: movements over the first N seeded products through
# the API, then through the bare stack, then the same statement through
# pgbench, on the same database, in BENCH_MOVE_ROUNDS (3) rounds of
# BENCH_MOVE_SECONDS (10) seconds per side. This machine's speed drifts by a quarter
# within minutes (the disk's fsync, neighbours), so each round's three runs
# are taken back to back and compared with each other, and the figures are
# the medians over the rounds. Sets api_mps, bare_mps, pg_tps (medians),
# move_ratio and bare_ratio (medians of the rounds' ratios) and move_rounds_seen
# (each round's API/pgbench). The API stands still during the other two (its
# relay would otherwise compete for PostgreSQL while it publishes their
# events); it restarts afterwards and the relay catches up. Each run's CPU
# split is logged.
compare_movements() {
  local n=$1 file=$2 r f api bare pg
  local -a apis=() bares=() pgs=() ratios=() bare_ratios=()
  for r in $(seq 1 "$move_rounds"); do
    f=$file-r$r
    log "round $r of $move_rounds: movements through the API over $n product(s): c=$concurrency, ${move_duration} s"
    checkpoint
    cpu_watch "$out/cpu-$f-api.txt" "$warmup" "$move_duration"
    load movements "$out/$f.txt" "${clerk[@]}" -c "$concurrency" --duration "$move_duration" \
      --warmup "$warmup" --products "$n" --warehouse "$warehouse_code" --server-pids "$api_pid" \
      --save-ids "$out/$file-ids.json"
    wait "$cpu_pid"
    api=$(value "$out/$f.txt" movements_per_s)
    log "outbox events not yet relayed when the API run ended: $(unpublished)"
    note_rss
    stop_api
    bare_movements "$n" "$f" "$file-ids.json"
    bare=$bare_mps
    log "the same SQL through pgbench: c=$concurrency -j 2, ${move_duration} s (after ${warmup} s warm-up)"
    movement_pgbench "$n" -T "$warmup" >"$out/pgbench-warmup.txt" 2>&1 \
      || { cat "$out/pgbench-warmup.txt" >&2; die "pgbench failed (output above)"; }
    checkpoint
    cpu_watch "$out/cpu-$f-pgbench.txt" 0 "$move_duration"
    movement_pgbench "$n" -T "$move_duration" 2>&1 | sed '/^pgbench (/d' | tee "$out/pgbench-$f.txt"
    wait "$cpu_pid"
    pg=$(awk '/^tps = / { print $3; exit }' "$out/pgbench-$f.txt")
    [ -n "$pg" ] || die "pgbench printed no tps (output above)"
    pg=$(calc "$pg")
    apis+=("$api") bares+=("$bare") pgs+=("$pg")
    ratios+=("$(calc "$api / $pg")") bare_ratios+=("$(calc "$bare / $pg")")
    log "round $r over $n product(s): API $api, bare stack $bare, pgbench $pg;" \
      "API/pgbench ${ratios[-1]}, bare/pgbench ${bare_ratios[-1]}, API/bare $(calc "$api / $bare")"
    log "  server CPU per movement: API $(value "$out/$f.txt" server_us_per_movement) us," \
      "bare stack $(value "$out/$f-bare.txt" server_us_per_movement) us"
    log "  API run:     $(cpu_line "$out/cpu-$f-api.txt")"
    log "  bare run:    $(cpu_line "$out/cpu-$f-bare.txt")"
    log "  pgbench run: $(cpu_line "$out/cpu-$f-pgbench.txt")"
    start_api
    log "API restarted (pid $api_pid); waiting for its relay to publish the other runs' $(unpublished) outbox events"
    drain_outbox
  done
  api_mps=$(median "${apis[@]}") bare_mps=$(median "${bares[@]}") pg_tps=$(median "${pgs[@]}")
  move_ratio=$(median "${ratios[@]}") bare_ratio=$(median "${bare_ratios[@]}")
  move_rounds_seen=${ratios[*]}
  log "movements/s over $n product(s), medians of $move_rounds rounds: API $api_mps, bare stack $bare_mps," \
    "pgbench $pg_tps; API/pgbench $move_ratio (rounds: $move_rounds_seen), bare/pgbench $bare_ratio" \
    "(rounds: ${bare_ratios[*]})"
}

# paced_pgbench RATE FILE: the movement statement through pgbench at RATE
# transactions/s (c=$concurrency, over the movement products), for the warm-up
# and then $duration s, each transaction's latency taken from its scheduled
# start as the load tool takes it (pgbench's time + schedule lag). Sets
# pg_half_p50, pg_half_p99, pg_half_max (ms) over the measured seconds: what
# the database alone shows at that rate on this machine, against which the
# API's p99 at half of peak is read (a stall of the machine or its disk
# reaches both; session 25 saw pgbench alone at 37.75 ms p99 in one window).
paced_pgbench() {
  local rate=$1 file=$2 start
  rm -f "$out/$file".*
  movement_pgbench "$move_products" -R "$rate" -T "$((warmup + duration))" -l --log-prefix="$out/$file" \
    >"$out/$file.txt" 2>&1 || { cat "$out/$file.txt" >&2; die "pgbench failed (output above)"; }
  start=$(cat "$out/$file".[0-9]* | awk 'NR == 1 || $5 < m { m = $5 } END { print m }')
  read -r pg_half_p50 pg_half_p99 pg_half_max < <(cat "$out/$file".[0-9]* \
    | awk -v from="$((start + warmup))" '$5 >= from { print ($3 + $7) / 1000 }' | sort -n \
    | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - -"; exit }
             p50 = int(NR * 0.5); p99 = int(NR * 0.99); if (p50 < 1) p50 = 1; if (p99 < 1) p99 = 1
             printf "%.2f %.2f %.2f\n", v[p50], v[p99], v[NR] }')
}

if [ "$mode" = movements ]; then
  compare_movements 1 movements-hot
  hot_api=$api_mps hot_pg=$pg_tps hot_ratio=$move_ratio hot_bare=$bare_mps hot_bare_ratio=$bare_ratio
  hot_rounds=$move_rounds_seen
  compare_movements "$move_products" movements

  half=$(calc "$api_mps / 2")
  log "movements paced at half of the API's peak: $half/s"
  checkpoint
  load movements "$out/movements-half.txt" "${clerk[@]}" -c "$concurrency" --duration "$duration" \
    --warmup "$warmup" --products "$move_products" --warehouse "$warehouse_code" --rate "$half" \
    --server-pids "$api_pid"
  half_rate=$(value "$out/movements-half.txt" movements_per_s)
  half_p50=$(value "$out/movements-half.txt" latency_p50_ms)
  half_p99=$(value "$out/movements-half.txt" latency_p99_ms)
  half_service_p99=$(value "$out/movements-half.txt" service_p99_ms)
  drain_outbox
  log "the same SQL through pgbench alone at the same rate: $half/s, c=$concurrency, ${duration} s after ${warmup} s"
  checkpoint
  paced_pgbench "$half" pgbench-half
  log "  pgbench at $half/s: p50 $pg_half_p50 ms, p99 $pg_half_p99 ms, max $pg_half_max ms"

  log "reservations under contention: reserve + cancel on one product, c=$concurrency, ${duration} s"
  checkpoint
  load reservations "$out/reservations.txt" "${clerk[@]}" -c "$concurrency" --duration "$duration" \
    --warmup "$warmup" --warehouse "$warehouse_code" --server-pids "$api_pid"
  reservation_cycles=$(value "$out/reservations.txt" reservation_cycles_per_s)
  drain_outbox
fi

if [ "$mode" = lookup ]; then
  log "cached barcode lookup vs a bare poem endpoint: c=$concurrency, ${lookup_duration} s each"
  load lookup "$out/lookup.txt" "${clerk[@]}" -c "$concurrency" --duration "$lookup_duration" --warmup "$warmup" \
    --server-pids "$(server_pids)"
  lookup_api=$(value "$out/lookup.txt" api_rps)
  lookup_cpu_ratio=$(value "$out/lookup.txt" cpu_ratio)
  lookup_api_core=$(value "$out/lookup.txt" api_rps_per_server_core)
  lookup_bare_core=$(value "$out/lookup.txt" bare_rps_per_server_core)
  lookup_bare=$(value "$out/lookup.txt" bare_rps)
  lookup_ratio=$(value "$out/lookup.txt" ratio)
fi

if [ "$mode" = scanner ]; then
  log "scanner batches of 500 events: c=1 and c=4, ${scanner_duration} s each"
  load scan-batch "$out/scan-batch.txt" "${admin[@]}" --levels 1,4 --duration "$scanner_duration" \
    --warmup 2 --products "$move_products" --warehouse "$warehouse_code" --server-pids "$api_pid"
  if [ "$(value "$out/scan-batch.txt" skipped)" = "1.00" ]; then
    scanner_note="skipped: the scanner endpoints answer 404 in this build"
  else
    batch_c1=$(value "$out/scan-batch.txt" batch_c1_events_per_s)
    batch_c4=$(value "$out/scan-batch.txt" batch_c4_events_per_s)
    drain_outbox
    log "single scanner events: c=32, ${scanner_duration} s"
    load scan-single "$out/scan-single.txt" "${admin[@]}" -c 32 --duration "$scanner_duration" \
      --warmup 2 --products "$move_products" --warehouse "$warehouse_code" --server-pids "$api_pid"
    single_c32=$(value "$out/scan-single.txt" single_events_per_s)
    single_p99=$(value "$out/scan-single.txt" single_p99_ms)
    drain_outbox
    # 32 devices as scanners are used: each sends at most 10 scans/s (a
    # person scanning as fast as a trigger allows), paced, latency from the
    # scheduled send. The closed loop above (every device resending the moment
    # it is answered) measures saturation instead.
    log "single scanner events from 32 devices at $scan_rate events/s in all, ${scanner_duration} s"
    load scan-single "$out/scan-paced.txt" "${admin[@]}" -c 32 --rate "$scan_rate" --duration "$scanner_duration" \
      --warmup 2 --products "$move_products" --warehouse "$warehouse_code" --server-pids "$api_pid"
    paced_p99=$(value "$out/scan-paced.txt" single_p99_ms)
    paced_rate=$(value "$out/scan-paced.txt" single_events_per_s)
  fi
fi

if [ "$mode" = search-mix ]; then
  categories=$(sql "SELECT string_agg(id::text, ',') FROM categories WHERE name LIKE 'Seed category %'")
  prewarm_catalog
  log "product search mix at c=1 and c=8: $search_queries queries each over $search_products products"
  load search "$out/search.txt" "${clerk[@]}" --queries "$search_queries" --levels 1,8 \
    --products "$search_products" ${categories:+--categories "$categories"}
  search_c1_p99=$(value "$out/search.txt" search_c1_p99_ms)
  search_c8_p99=$(value "$out/search.txt" search_c8_p99_ms)
  search_c1_worst=$(value "$out/search.txt" search_c1_worst_shape_p99_ms)
  search_c8_worst=$(value "$out/search.txt" search_c8_worst_shape_p99_ms)
fi

if [ "$mode" = stocktake ]; then
  log "stocktakes of $stocktake_lines positions: open a count, scanner count batches of 500, complete"
  load stocktake "$out/stocktake.txt" "${admin[@]}" --lines "$stocktake_lines" --server-pids "$api_pid"
  # The load tool rounds a size up to whole products (4 positions each).
  while read -r n; do
    st_total=$(value "$out/stocktake.txt" "stocktake_${n}_total_ms")
    st_limit=$([ "$n" -le 5000 ] && echo 1000 || echo 10000)
    summary "a $n-line stocktake over positions < $((st_limit / 1000)) s (open, scanner batches, complete)" \
      "$st_total ms (open $(value "$out/stocktake.txt" "stocktake_${n}_open_ms"), lines $(value "$out/stocktake.txt" "stocktake_${n}_lines_ms"), complete $(value "$out/stocktake.txt" "stocktake_${n}_complete_ms") ms; API peak RSS $(value "$out/stocktake.txt" "stocktake_${n}_complete_rss_mb") MB)" \
      "$(verdict "$st_total < $st_limit")"
  done < <(awk '$1 == "RESULT" && $2 ~ /^stocktake_[0-9]+_total_ms$/ { split($2, k, "_"); print k[2] }' "$out/stocktake.txt")
fi

if [ "$mode" = import ]; then
  # shellcheck source=scripts/lib/bench_import.sh
  . scripts/lib/bench_import.sh
  bench_import
fi

if [ "$mode" = history ]; then
  # The filters: the product with the most history, one warehouse, a week in
  # the middle of the period, one reference.
  hot_product=$(sql "SELECT product_id FROM stock_transactions GROUP BY product_id ORDER BY count(*) DESC LIMIT 1")
  since=$(sql "SELECT to_char((min(created_at) + (max(created_at) - min(created_at)) / 2) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM stock_transactions")
  until=$(sql "SELECT to_char(('$since'::timestamptz + interval '7 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
  reference=$(sql "SELECT reference FROM stock_transactions WHERE reference LIKE 'PO-%' LIMIT 1")
  log "transaction list over $(sql "SELECT count(*) FROM stock_transactions") ledger rows"
  load history "$out/history.txt" "${clerk[@]}" \
    --filter "product=product_id=$hot_product" \
    --filter "warehouse=warehouse_id=$warehouse" \
    --filter "dates=since=$since&until=$until" \
    --filter "reference=reference=$reference" \
    --filter "none=" \
    --get "asof_product=200=/api/v1/products/$hot_product/stock?as_of={as_of}" \
    --get "asof_valuation=${BENCH_VALUATION_RUNS:-10}=/api/v1/stock/valuation?warehouse_id=$warehouse&as_of={as_of}"
  history_worst=$(awk '$1 == "RESULT" && $2 ~ /^history_.*_p99_ms$/ && $3 > m { m = $3 } END { print m }' "$out/history.txt")
  asof_product_p99=$(value "$out/history.txt" get_asof_product_p99_ms)
  asof_valuation_max=$(value "$out/history.txt" get_asof_valuation_max_ms)
  asof_products=$(sql "SELECT count(DISTINCT product_id) FROM stock_levels WHERE warehouse_id = '$warehouse'")
fi

if [ "$mode" = growth ]; then
  bench_growth
fi

note_rss
rss_mb=$(calc "$rss_kb / 1024")
stop_api

pg_version=$("$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAqX -c "SHOW server_version" | cut -d' ' -f1)
pg_setup=$(sql_admin "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'random_page_cost', 'huge_pages')")
line() { printf '  %-28s %s\n' "$1" "$2"; }
echo
echo "================ Inventory API benchmark ($mode) ================"
line "machine" "$(nproc) cores shared by the load generator, the API, PostgreSQL and Redis"
line "PostgreSQL" "$pg_version ($pg_setup), Redis $(redis-server --version | awk '{ print $3 }' | cut -d= -f2)"
line "data" "$seed_products products, $warehouses warehouses (database $db)"
if [ -n "$api_mps" ]; then
  line "movements/s, c=$concurrency" "API $api_mps  pgbench $pg_tps  ratio $move_ratio (target >= 0.80)"
  line "  medians of $move_rounds rounds" "ratios per round: $move_rounds_seen"
  line "  bare poem + sqlx" "$bare_mps/s  ratio to pgbench $bare_ratio (the stack's own ceiling here)"
  line "  over" "products SEED-00000001..$(printf 'SEED-%08d' "$move_products") in $warehouse_code, ${move_duration} s per side and round"
  line "movements/s, one hot product" "API $hot_api  pgbench $hot_pg  ratio $hot_ratio (target >= 0.80)"
  line "  medians of $move_rounds rounds" "ratios per round: $hot_rounds"
  line "  bare poem + sqlx" "$hot_bare/s  ratio to pgbench $hot_bare_ratio"
  line "at half peak ($half/s)" "p50 $half_p50 ms  p99 $half_p99 ms (target p99 < 10 ms; achieved $half_rate/s)"
  line "" "p99 of service time alone (from actual send): $half_service_p99 ms"
  line "  pgbench alone, same rate" "p50 $pg_half_p50 ms  p99 $pg_half_p99 ms  max $pg_half_max ms (the database's own share)"
  line "reservations, one product" "$reservation_cycles reserve+cancel cycles/s (two level changes each)"
fi
if [ -n "$lookup_api" ]; then
  line "cached lookup, c=$concurrency" "API $lookup_api req/s  bare poem $lookup_bare req/s  ratio $lookup_ratio (target >= 0.70)"
  line "  per core of server CPU" "API $lookup_api_core req/s  bare $lookup_bare_core req/s  ratio $lookup_cpu_ratio"
fi
if [ "$mode" = scanner ]; then
  if [ -n "$scanner_note" ]; then
    line "scanner" "$scanner_note"
  else
    line "scanner batches of 500" "c=1 $batch_c1 events/s  c=4 $batch_c4 events/s (target >= 20000)"
    line "scanner single events" "32 devices at $paced_rate events/s: p99 $paced_p99 ms (target p99 < 25 ms)"
    line "  saturated (closed loop)" "c=32 $single_c32 events/s, p99 $single_p99 ms"
  fi
fi
if [ -n "$search_c1_p99" ]; then
  line "search mix, c=1" "p99 $search_c1_p99 ms, slowest shape p99 $search_c1_worst ms (target p99 < 20 ms)"
  line "search mix, c=8" "p99 $search_c8_p99 ms, slowest shape p99 $search_c8_worst ms (target p99 < 20 ms)"
  line "" "over $search_products products; per shape in $out/search.txt"
fi
if [ -n "$history_worst" ]; then
  line "transaction list" "slowest filter/page p99 $history_worst ms (target p99 < 20 ms each)"
  line "as_of, one product" "p99 $asof_product_p99 ms (target < 20 ms)"
  line "valuation as_of, a warehouse" "slowest $asof_valuation_max ms over $asof_products products (target < 2000 ms)"
  line "" "per filter in $out/history.txt"
fi
if [ -n "$logins_hwm" ]; then
  line "logins, c=$concurrent_logins" "peak RSS $logins_hwm MB, after $logins_rss MB (target < 128 MB); answers: $logins_codes"
fi
line "API peak RSS (VmHWM)" "$rss_mb MB (target < 64 MB)"
line "API start-up" "$startup_ms ms median of 3 (${startups[*]}), launch to /health (target < 1000 ms)"
line "details" "$out/"
echo "=================================================================="

# The rows this mode adds to the summary table.
if [ -n "$api_mps" ]; then
  summary "movements/s >= 0.8 x pgbench, c=16 over $move_products products" \
    "medians of $move_rounds rounds: API $api_mps/s, pgbench $pg_tps tps: ratio $move_ratio (rounds $move_rounds_seen; bare poem + sqlx $bare_mps/s: $bare_ratio)" "$(verdict "$move_ratio >= 0.8")"
  summary "movements/s >= 0.8 x pgbench, c=16 on one hot product" \
    "medians of $move_rounds rounds: API $hot_api/s, pgbench $hot_pg tps: ratio $hot_ratio (rounds $hot_rounds; bare poem + sqlx $hot_bare/s: $hot_bare_ratio)" "$(verdict "$hot_ratio >= 0.8")"
  summary "movements p99 < 10 ms at half of peak" "p99 $half_p99 ms at $half_rate/s (p50 $half_p50 ms); pgbench alone at that rate p99 $pg_half_p99 ms (max $pg_half_max)" \
    "$(verdict "$half_p99 < 10")"
  summary "API RSS < 64 MB during the movement benchmark" "$rss_mb MB" "$(verdict "$rss_mb < 64")"
  summary "start-up with migrations applied < 1 s" "$startup_ms ms (median of 3)" "$(verdict "$startup_ms < 1000")"
fi
if [ -n "$lookup_api" ]; then
  summary "cached barcode lookup >= 0.7 x a bare poem endpoint" \
    "API $lookup_api req/s, bare $lookup_bare req/s: ratio $lookup_ratio" "$(verdict "$lookup_ratio >= 0.7")"
fi
if [ -n "$batch_c1" ]; then
  best_batch=$(calc "($batch_c1 > $batch_c4) ? $batch_c1 : $batch_c4")
  summary "scanner batches of 500 >= 20,000 events/s" "$best_batch events/s (c=1 $batch_c1, c=4 $batch_c4)" \
    "$(verdict "$best_batch >= 20000")"
  summary "single scans from 32 devices p99 < 25 ms" \
    "p99 $paced_p99 ms at $paced_rate events/s (saturated closed loop: $single_c32 events/s, p99 $single_p99 ms)" \
    "$(verdict "$paced_p99 < 25")"
elif [ -n "$scanner_note" ]; then
  summary "scanner batches of 500 >= 20,000 events/s" "$scanner_note" missed
fi
if [ -n "$search_c1_p99" ]; then
  summary "product search p99 < 20 ms over $search_products products, sequential" \
    "p99 $search_c1_p99 ms (slowest shape $search_c1_worst ms)" "$(verdict "$search_c1_p99 < 20")"
  summary "product search p99 < 20 ms over $search_products products, c=8" \
    "p99 $search_c8_p99 ms (slowest shape $search_c8_worst ms)" "$(verdict "$search_c8_p99 < 20")"
fi
if [ -n "$history_worst" ]; then
  summary "transaction list p99 < 20 ms per filter, first page and deep, $(sql "SELECT count(*) FROM stock_transactions") ledger rows" \
    "slowest of 10: p99 $history_worst ms" "$(verdict "$history_worst < 20")"
  summary "as_of for one product p99 < 20 ms through the API (its $(sql "SELECT count(*) FROM stock_transactions WHERE product_id = '$hot_product'") ledger rows)" \
    "p99 $asof_product_p99 ms" "$(verdict "$asof_product_p99 < 20")"
  summary "a warehouse's valuation as of an instant < 2 s through the API ($asof_products products)" \
    "slowest of ${BENCH_VALUATION_RUNS:-10}: $asof_valuation_max ms" "$(verdict "$asof_valuation_max < 2000")"
fi
if [ -n "$logins_hwm" ]; then
  summary "RSS < 128 MB with $concurrent_logins concurrent logins" "peak $logins_hwm MB" "$(verdict "$logins_hwm < 128")"
fi
