#!/usr/bin/env bash
# Browser tests of the web console (/console/) in a real headless Chromium
# (Debian's `chromium`, driven by Playwright for Python from a venv under
# target/; Playwright never downloads a browser). scripts/test.sh runs this
# after `cargo test`, with DATABASE_URL/REDIS_URL pointing at its servers.
#
# Starts the API (debug build) on 127.0.0.1:${CONSOLE_TEST_PORT:-57550} over
# a fresh database, then runs tests/browser/test_console.py. Screenshots go
# to target/console-test/; CONSOLE_SCREENSHOTS=docs/console refreshes the
# committed ones shown in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

[ -n "${DATABASE_URL:-}" ] || die "DATABASE_URL is not set: run scripts/test.sh (it starts PostgreSQL and calls this)"
command -v chromium >/dev/null 2>&1 || ensure_packages chromium
python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_packages python3-venv

venv="$PWD/target/console-venv"
playwright_version=1.65.2
if ! "$venv/bin/python" -c "import playwright, sys; from importlib.metadata import version; sys.exit(version('playwright') != '$playwright_version')" 2>/dev/null; then
  log "installing Playwright $playwright_version into $venv (no browser download)"
  python3 -m venv "$venv"
  # Its dependencies pinned as the contract check's (the same Playwright).
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$venv/bin/pip" install -q -c scripts/contract/constraints.txt \
    "playwright==$playwright_version"
fi

cargo build -q --bin inventory-api

out="$PWD/target/console-test"
mkdir -p "$out"
port=${CONSOLE_TEST_PORT:-57550}
db="console_test_$$"
server_url="${DATABASE_URL%/*}"
psql_bin="$(pg_bindir)/psql"
"$psql_bin" "$DATABASE_URL" -qc "CREATE DATABASE \"$db\"" >/dev/null

admin_email=admin@console.test
admin_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  "$psql_bin" "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "console tests: API on 127.0.0.1:$port (log: $out/server.log)"
DATABASE_URL="$server_url/$db" \
  JWT_SECRET="console-test-secret-$(head -c 24 /dev/urandom | base64)" \
  BIND_ADDR="127.0.0.1:$port" LOG_FORMAT=json \
  BOOTSTRAP_ADMIN_EMAIL="$admin_email" BOOTSTRAP_ADMIN_PASSWORD="$admin_password" \
  target/debug/inventory-api serve >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  "$venv/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$out/server.log" >&2; die "the API did not start"; }
  sleep 0.2
done

CONSOLE_URL="http://127.0.0.1:$port" ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" \
  SCREENSHOTS="${CONSOLE_SCREENSHOTS:-$out}" \
  timeout 300 "$venv/bin/python" tests/browser/test_console.py
