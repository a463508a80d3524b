# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # pg_port, state_dir, out... come from scripts/bench.sh
# `scripts/bench.sh asof`: stock as of a past instant, read from a 10,000,000-row
# ledger. Sourced by scripts/bench.sh, which has set pg_port, state_dir, out,
# psql_bin, pgbench and the cleanup trap.
#
# Seeds its own database (inventory_bench_asof; kept for the next run) with
# bench/asof/seed.sql: BENCH_ASOF_PRODUCTS (100000) products in 2 warehouses,
# BENCH_ASOF_ROWS_PER_LEVEL (50) ledger rows per (product, warehouse) level.
# Then pgbench replays the SQL of the two history reads against it, at random
# instants of the past year, sequentially (one client), after a warm-up:
#   - bench/asof/product.sql: GET /products/{id}/stock?as_of= (one product),
#     BENCH_ASOF_QUERIES (2000) times;
#   - bench/asof/warehouse.sql: the first page of GET /stock/valuation?as_of=
#     &warehouse_id= (totals over the warehouse's 100,000 products + 50 lines),
#     BENCH_ASOF_WAREHOUSE_RUNS (10) times.
# It measures the database work, which is the whole cost of these reads (the
# API adds a JSON encoding of at most 500 lines). Prints p50/p99/max.
# Disk: the default 10,000,000 rows need about 6 GB free (table, indexes, WAL).

# Percentiles (ms) of the latencies (µs, 3rd column) in pgbench's -l logs: p50 p99 max n
asof_percentiles() {
  cat "$@" | awk '{ print $3 }' | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "n/a n/a n/a 0"; exit }
      i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99 + 0.999999); if (i99 > NR) i99 = NR
      printf "%.2f %.2f %.2f %d\n", v[i50] / 1000, v[i99] / 1000, v[NR] / 1000, NR
    }'
}

bench_asof() {
  local db=inventory_bench_asof
  local products=${BENCH_ASOF_PRODUCTS:-100000}
  local per_level=${BENCH_ASOF_ROWS_PER_LEVEL:-50}
  local queries=${BENCH_ASOF_QUERIES:-2000}
  local runs=${BENCH_ASOF_WAREHOUSE_RUNS:-10}
  local rows=$((products * 2 * per_level))
  mkdir -p "$out"
  start_postgres "$state_dir/pg" "$pg_port" "${pg_flags[@]}"
  started_pg=$PG_STARTED
  asof_sql() { "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -tAqX -v ON_ERROR_STOP=1 "$@"; }
  local admin=("$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAqX)
  local have
  have=$(asof_sql -c "SELECT count(*) FROM stock_transactions" 2>/dev/null || echo 0)
  if [ "$have" = "$rows" ]; then
    log "reusing database $db ($rows ledger rows)"
  else
    "${admin[@]}" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    "${admin[@]}" -c "CREATE DATABASE \"$db\"" >/dev/null
    log "applying migrations to $db"
    local f
    for f in migrations/*.up.sql; do asof_sql -f "$f" >/dev/null; done
    log "seeding $products products x 2 warehouses x $per_level rows = $rows ledger rows (minutes)"
    local started; started=$(now_ms)
    asof_sql -v products="$products" -v per_level="$per_level" -f bench/asof/seed.sql >/dev/null
    asof_sql -c "VACUUM ANALYZE" >/dev/null
    log "  seeded in $(( ($(now_ms) - started) / 1000 )) s"
  fi
  local size; size=$(asof_sql -c "SELECT pg_size_pretty(pg_total_relation_size('stock_transactions'))")
  local pgb=("$pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -n -c 1 -D products="$products")
  rm -f "$out"/asof_product.* "$out"/asof_warehouse.*
  log "warm-up"
  "${pgb[@]}" -f bench/asof/product.sql -t "$((queries / 4 + 1))" "$db" >/dev/null
  "${pgb[@]}" -f bench/asof/warehouse.sql -t 1 "$db" >/dev/null
  log "one product as of a random instant, $queries times"
  "${pgb[@]}" -f bench/asof/product.sql -t "$queries" -l --log-prefix="$out/asof_product" "$db" >/dev/null
  log "one warehouse's valuation (first page + totals) as of a random instant, $runs times"
  "${pgb[@]}" -f bench/asof/warehouse.sql -t "$runs" -l --log-prefix="$out/asof_warehouse" "$db" >/dev/null
  local p w
  read -r -a p <<<"$(asof_percentiles "$out"/asof_product.*)"
  read -r -a w <<<"$(asof_percentiles "$out"/asof_warehouse.*)"
  echo
  echo "as-of history reads over $rows ledger rows ($size with indexes), $products products per warehouse"
  printf '  %-46s p50 %8s ms  p99 %8s ms  max %8s ms  (n=%s; target p99 < 20 ms)\n' \
    "product stock as of (1 product, 2 levels)" "${p[0]}" "${p[1]}" "${p[2]}" "${p[3]}"
  printf '  %-46s p50 %8s ms  p99 %8s ms  max %8s ms  (n=%s; target < 2000 ms)\n' \
    "warehouse valuation as of (totals + page 1)" "${w[0]}" "${w[1]}" "${w[2]}" "${w[3]}"
  summary "as_of for one product p99 < 20 ms ($rows ledger rows)" "p99 ${p[1]} ms" "$(verdict "${p[1]} < 20")"
  summary "a warehouse's valuation as of an instant < 2 s ($products products)" "max ${w[2]} ms (p50 ${w[0]} ms)" \
    "$(verdict "${w[2]} < 2000")"
}
