#!/usr/bin/env bash
# The database's cost of a schema change, before it is a migration: pgbench
# on the one-statement movement (bench/movement.sql), alternating between two
# copies of the same seeded database, one of them with VARIANT applied.
#
#   scripts/bench-variant.sh VARIANT.sql [CYCLES] [SECONDS]
#
# Both copies are made from `inventory_head`, the database
# scripts/bench-baseline.sh seeds and keeps in the bench's cluster
# (target/bench-services/pg): run that once first. VARIANT is any SQL (a
# migration's up.sql, a DROP TRIGGER...). Each cycle runs each copy for
# SECONDS (12) after a 3-s warm-up and a CHECKPOINT, c=16 over 1,000
# products, the order alternating; it prints each cycle's tps and the ratio
# variant / as-is, then the median of the CYCLES (6) ratios.
#
# BENCH_CPU_ONLY=1 runs pgbench's sessions with synchronous_commit off: the
# figure is then the CPU a change saves, without the disk's flush times
# (which moved paired runs by +-15 % on session 32's machine). Nothing
# asserts; the exit status is non-zero only when the set-up fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh
# shellcheck source=scripts/lib/bench_tools.sh
. scripts/lib/bench_tools.sh

[ $# -ge 1 ] || die "usage: scripts/bench-variant.sh VARIANT.sql [CYCLES] [SECONDS]"
variant=$(realpath "$1")
[ -r "$variant" ] || die "cannot read $1"
cycles=${2:-6}
seconds=${3:-12}
pg_port=${BENCH_PG_PORT:-55436}
state_dir="$PWD/target/bench-services"
pgoptions=""
[ "${BENCH_CPU_ONLY:-0}" = 1 ] && pgoptions="-c synchronous_commit=off"

bench_prerequisites
pg_flags=()
while IFS= read -r setting; do pg_flags+=(-c "$setting"); done < <(production_pg_settings)
start_postgres "$state_dir/pg" "$pg_port" "${pg_flags[@]}"
started_pg=$PG_STARTED
cleanup() { if [ "$started_pg" = 1 ]; then stop_postgres "$state_dir/pg"; fi; }
trap cleanup EXIT

sql() { "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$1" -tAqX -v ON_ERROR_STOP=1 "${@:2}"; }
sql postgres -c "SELECT 1 FROM pg_database WHERE datname = 'inventory_head'" | grep -q 1 \
  || die "no inventory_head database in $state_dir/pg: run scripts/bench-baseline.sh once first"

log "copying inventory_head twice; applying $1 to the second copy"
for db in variant_as_is variant_changed; do
  sql postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db TEMPLATE inventory_head" >/dev/null
done
sql variant_changed -f "$variant" >/dev/null
for db in variant_as_is variant_changed; do sql "$db" -c "VACUUM ANALYZE"; done
warehouse=$(sql variant_as_is -c "SELECT id FROM warehouses WHERE code = 'SEED-01'")
actor=$(sql variant_as_is -c "SELECT id FROM users WHERE lower(email) = 'bench-clerk@bench.invalid'")

# tps DB: one measured pgbench run on DB.
tps() {
  local args=(-h 127.0.0.1 -p "$pg_port" -U postgres -n -M prepared -c 16 -j 2 -f bench/movement.sql
    -D products=1000 -D warehouse="$warehouse" -D actor="$actor" "$1")
  PGOPTIONS=$pgoptions "$pgbench" "${args[@]}" -T 3 >/dev/null 2>&1 || die "pgbench failed on $1"
  sql "$1" -c CHECKPOINT
  PGOPTIONS=$pgoptions "$pgbench" "${args[@]}" -T "$seconds" 2>&1 | awk '/^tps = / { printf "%.1f", $3 }'
}

ratios=()
median_decimals=3
for c in $(seq 1 "$cycles"); do
  log "cycle $c of $cycles"
  if [ $((c % 2)) = 1 ]; then a=$(tps variant_as_is); b=$(tps variant_changed)
  else b=$(tps variant_changed); a=$(tps variant_as_is); fi
  ratios+=("$(awk "BEGIN { printf \"%.3f\", $b / $a }")")
  printf 'cycle %s: as is %s tps, with the variant %s tps, ratio %s\n' "$c" "$a" "$b" "${ratios[-1]}"
done
echo "variant / as is, median of $cycles cycles: $(median "${ratios[@]}")"
