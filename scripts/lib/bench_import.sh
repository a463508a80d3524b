# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # pg_port, out, bin, api_env, api_pid... come from scripts/bench.sh
# `scripts/bench.sh import`: the product CSV at scale. Sourced by
# scripts/bench.sh, which has started PostgreSQL, Redis and the API (on this
# mode's database, inventory_bench_search: 1,000,000 seeded products, kept
# between runs) and defined start_api/stop_api, load, summary and verdict.
#
# Two phases, each on a freshly started API process, so the process's peak
# resident memory (VmHWM) is that phase's alone:
#   import  `load import` against a NEW, empty database (inventory_bench_import,
#           dropped and re-created every run: migrated, one admin, nothing
#           else). Empty so that every one of the BENCH_IMPORT_ROWS (100000)
#           rows really creates a product, as in the target, and the figure
#           does not depend on what an earlier run left behind. The tool posts
#           a copy with bad lines (per-line errors expected, nothing written),
#           a copy with an unknown category on its last line (found by the
#           database after every row is loaded), the file itself (timed), and
#           the same file again (every row unchanged).
#   export  `load export` against the 1,000,000 products of inventory_bench_search:
#           the whole catalog streamed, rows and bytes counted.

bench_import() {
  local import_db=inventory_bench_import
  local rows=${BENCH_IMPORT_ROWS:-100000}
  local import_url="postgres://postgres@127.0.0.1:$pg_port/$import_db"
  local main_url=$db_url

  "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAqX \
    -c "DROP DATABASE IF EXISTS \"$import_db\" WITH (FORCE)" >/dev/null
  create_database "$pg_port" "$import_db"
  DATABASE_URL="$import_url" "$bin" migrate >/dev/null
  printf '%s' "$password" | DATABASE_URL="$import_url" "$bin" create-user \
    --email "$admin_email" --role admin >/dev/null

  stop_api
  db_url=$import_url # start_api serves db_url
  start_api
  log "CSV import of $rows products into the empty database $import_db (API pid $api_pid, fresh)"
  load import "$out/import.txt" "${admin[@]}" --rows "$rows" --server-pids "$api_pid"
  local import_ms import_rss reimport_ms refused_ms
  import_ms=$(value "$out/import.txt" import_ms)
  import_rss=$(value "$out/import.txt" import_rss_mb)
  reimport_ms=$(value "$out/import.txt" reimport_ms)
  refused_ms=$(value "$out/import.txt" import_refused_db_ms)

  stop_api
  db_url=$main_url
  start_api
  local catalog
  catalog=$(sql "SELECT count(*) FROM products")
  log "CSV export of the $catalog products of $db (API pid $api_pid, fresh)"
  load export "$out/export.txt" "${admin[@]}" --expect-rows "$catalog" --server-pids "$api_pid"
  local export_rows export_ms export_rss export_mb
  export_rows=$(value "$out/export.txt" export_rows)
  export_rows=${export_rows%.*}
  export_ms=$(value "$out/export.txt" export_ms)
  export_rss=$(value "$out/export.txt" export_rss_mb)
  export_mb=$(calc "$(value "$out/export.txt" export_bytes) / 1000000")

  local import_s export_s
  import_s=$(calc "$import_ms / 1000")
  export_s=$(calc "$export_ms / 1000")
  log "import of $rows products: $import_s s, peak RSS $import_rss MB (re-import of the same file" \
    "$(calc "$reimport_ms / 1000") s; a file refused on its last line $(calc "$refused_ms / 1000") s)"
  log "export of $export_rows products: $export_mb MB in $export_s s, peak RSS $export_rss MB"
  summary "CSV import of 100,000 products < 20 s with per-line errors, RSS < 128 MB" \
    "$rows products in $import_s s, peak RSS $import_rss MB (bad lines and all-or-nothing checked)" \
    "$(verdict "$rows >= 100000 && $import_s < 20 && $import_rss < 128")"
  summary "CSV export of 1,000,000 products streamed, RSS < 64 MB" \
    "$export_rows rows ($export_mb MB) in $export_s s, peak RSS $export_rss MB" \
    "$(verdict "$export_rows >= 1000000 && $export_rss < 64")"
}
