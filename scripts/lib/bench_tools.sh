# shellcheck shell=bash
# What every benchmark script needs besides the services (sourced after
# scripts/lib/services.sh by scripts/bench.sh and scripts/bench-baseline.sh).

# bench_prerequisites: installs (or names) what the benchmarks run, and sets
# pgbench and psql_bin to the server's own client programs.
bench_prerequisites() {
  ensure_rust
  ensure_postgres_installed
  ensure_redis_installed
  command -v curl >/dev/null 2>&1 || ensure_packages curl
  pgbench="$(pg_bindir)/pgbench"
  [ -x "$pgbench" ] || pgbench=$(command -v pgbench) || die "pgbench not found (Debian: it comes with postgresql-NN)"
  # shellcheck disable=SC2034 # read by the scripts that source this file
  psql_bin="$(pg_bindir)/psql"
}

# build_load_tool: builds benches/load.rs and sets load_bin to its binary. The
# binary is run directly from then on, so an edit under src/ during a run
# cannot trigger a rebuild between (or during) measurements.
build_load_tool() {
  load_bin=$(cargo bench --bench load --no-run --quiet --message-format=json \
    | sed -n 's/.*"kind":\["bench"\].*"executable":"\([^"]*\)".*/\1/p' | tail -1)
  [ -x "${load_bin:-/nonexistent}" ] || die "could not build the load tool (cargo bench --bench load --no-run)"
}

# median V...: the middle value (the mean of the two middle ones for an even
# count), with median_decimals (2) decimals.
median() {
  printf '%s\n' "$@" | sort -g | awk -v fmt="%.${median_decimals:-2}f" '{ v[NR] = $1 }
    END { printf fmt, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
