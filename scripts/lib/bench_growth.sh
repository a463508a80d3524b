# shellcheck shell=bash
# shellcheck disable=SC2154 # out, load_bin, warehouse... come from scripts/bench.sh
# `scripts/bench.sh growth`: movements/s, search p99 and the transaction
# list's p99 at each size of BENCH_GROWTH_SIZES (10k, 100k, 1M products, each
# with ten ledger rows per product: 100k, 1M, 10M), one database per size
# (inventory_bench_growth_<n>, kept for the next run; the 1,000,000-product
# one is search-mix's inventory_bench_search, so it is seeded once). Writes
# target/bench-services/out/growth.tsv and bench/growth.svg, and adds one
# summary row per figure: the goal is flat, within 1.5x from the smallest size
# to the largest. Sourced by scripts/bench.sh, which provides prepare_database,
# add_ledger_rows, prewarm_catalog, bench_ids, start_api/stop_api, load, value, calc and summary.

growth_duration=${BENCH_GROWTH_DURATION:-10}
growth_queries=${BENCH_GROWTH_QUERIES:-1300}
# Per filter and page: with 100 a p99 is the second-slowest answer (one stall).
growth_listing_queries=${BENCH_GROWTH_LISTING_QUERIES:-1000}

# The p99 of the slowest listing measured in a history output file.
growth_listing_p99() {
  awk '$1 == "RESULT" && $2 ~ /^history_.*_p99_ms$/ && $3 > m { m = $3 } END { print m + 0 }' "$1"
}

growth_database() {
  if [ "$1" = "$search_products" ]; then echo inventory_bench_search; else echo "inventory_bench_growth_$1"; fi
}

bench_growth() {
  local tsv="$out/growth.tsv" n rows mps search listing hot first last metric col
  printf 'products\tledger_rows\tmovements_per_s\tsearch_p99_ms\tlisting_p99_ms\n' >"$tsv"
  for n in $growth_sizes; do
    rows=$((n * 10))
    prepare_database "$(growth_database "$n")" "$n" "$warehouses" 1
    add_ledger_rows "$rows"
    bench_ids
    stop_api
    start_api
    log "growth at $n products, $(sql "SELECT count(*) FROM stock_transactions") ledger rows"

    checkpoint
    load movements "$out/growth-$n-movements.txt" "${clerk[@]}" -c "$concurrency" \
      --duration "$growth_duration" --warmup "$warmup" --products "$move_products" \
      --warehouse "$warehouse_code" --server-pids "$api_pid"
    mps=$(value "$out/growth-$n-movements.txt" movements_per_s)
    drain_outbox

    prewarm_catalog
    load search "$out/growth-$n-search.txt" "${clerk[@]}" --queries "$growth_queries" --levels 1 \
      --products "$n"
    search=$(value "$out/growth-$n-search.txt" search_c1_p99_ms)

    # The product with the most history (history-seed.sql gives 100 products
    # a tenth of the rows) and one warehouse; first page and deep where the
    # chain is long enough.
    hot=$(sql "SELECT product_id FROM stock_transactions GROUP BY product_id ORDER BY count(*) DESC LIMIT 1")
    load history "$out/growth-$n-history.txt" "${clerk[@]}" --queries "$growth_listing_queries" \
      --filter "product=product_id=$hot" --filter "warehouse=warehouse_id=$warehouse"
    listing=$(growth_listing_p99 "$out/growth-$n-history.txt")

    printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$rows" "$mps" "$search" "$listing" >>"$tsv"
    log "growth at $n products: movements $mps/s, search p99 $search ms, listing p99 $listing ms"
  done

  echo
  echo "growth (one database per size; movements c=$concurrency over $move_products products, ${growth_duration} s;"
  echo "search mix c=1, $growth_queries queries; listing by product and by warehouse, p99 of the slowest page)"
  column -t -s $'\t' "$tsv" | sed 's/^/  /'
  "$load_bin" growth-chart --input "$tsv" --output bench/growth.svg

  first=$(sed -n 2p "$tsv")
  last=$(tail -1 "$tsv")
  [ "$first" != "$last" ] || return 0
  for metric in "movements/s:3:down" "search p99:4:up" "transaction list p99:5:up"; do
    col=$(echo "$metric" | cut -d: -f2)
    local a b factor
    a=$(echo "$first" | cut -f"$col")
    b=$(echo "$last" | cut -f"$col")
    # Slowdown from the smallest size to the largest: fewer movements/s or a higher p99.
    if [ "${metric##*:}" = down ]; then factor=$(calc "$a / $b"); else factor=$(calc "$b / $a"); fi
    summary "growth: ${metric%%:*} within 1.5x from $(echo "$first" | cut -f1) to $(echo "$last" | cut -f1) products" \
      "$a -> $b ($factor x)" "$(verdict "$factor <= 1.5")"
  done
}
