#!/usr/bin/env bash
# Checks scripts/dev.sh the way a newcomer meets it (what CI runs after the tests):
#
#   - missing tools are named, with one install command (as a non-root user);
#   - a taken port is named with the variable that moves it, before any build;
#   - started in the background, the banner appears only once /ready answers,
#     its login works, and SIGINT stops the API, PostgreSQL and Redis;
#   - run again without BOOTSTRAP_ADMIN_PASSWORD it prints the password that
#     still works (not a stale one), and SIGTERM stops everything too.
#
# Usage: scripts/check-dev.sh   Env: CHECK_DEV_PORT_BASE (57510: ports BASE..BASE+3)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

base=${CHECK_DEV_PORT_BASE:-57510}
api_port=$base pg_port=$((base + 1)) redis_port=$((base + 2)) busy_port=$((base + 3))
state="$PWD/target/check-dev"
work=$(mktemp -d "${TMPDIR:-/tmp}/check-dev.XXXXXX")
passed=0 failed=0 pids=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_postgres "$state/pg"
  stop_redis "$redis_port"
  rm -rf "$work"
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); printf '  ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf '  FAIL %s\n' "$*"; }
check() { # DESCRIPTION COMMAND...
  local desc=$1
  shift
  if "$@" >"$work/check.out" 2>&1; then pass "$desc"; else
    fail "$desc"
    sed 's/^/       /' "$work/check.out" | tail -20
  fi
}

# ---- missing prerequisites, as a user who cannot install ---------------------
# A PATH with the basic tools but no cc, curl or cargo; `id -u` answers 1000.
mkdir -p "$work/bin"
for tool in bash sed grep cat head tr od dirname basename printf sort; do
  ln -sf "$(command -v "$tool")" "$work/bin/$tool"
done
printf '#!/bin/sh\necho 1000\n' >"$work/bin/id"
chmod +x "$work/bin/id"
missing_out=$(env -i PATH="$work/bin" HOME="$HOME" DATABASE_URL=postgres://x@127.0.0.1/x REDIS_URL=redis://127.0.0.1:1 \
  bash -c '. scripts/lib/services.sh; check_prerequisites --services' 2>&1) && rc=0 || rc=$?
check "missing tools: exit 1" test "$rc" = 1
check "missing tools: names them" grep -q 'missing a C compiler (cc), curl, Rust' <<<"$missing_out"
check "missing tools: one install line" \
  grep -qF "install: sudo apt-get install -y build-essential curl && curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y" <<<"$missing_out"
printf '%s\n' "$missing_out" | sed 's/^/       /'

# ---- a taken port -------------------------------------------------------------
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$busy_port" &
pids+=($!)
for _ in $(seq 1 50); do port_in_use "$busy_port" && break; sleep 0.1; done
started=$SECONDS
rc=0
API_PORT=$busy_port PG_PORT=$pg_port REDIS_PORT=$redis_port DEV_STATE_DIR=$state \
  timeout 60 scripts/dev.sh >"$work/busy.out" 2>&1 || rc=$?
check "API port taken: dev.sh fails" test "$rc" = 1
check "API port taken: names the port and API_PORT" grep -q "port $busy_port (API_PORT) is already in use" "$work/busy.out"
check "API port taken: reported before building or starting anything" \
  bash -c "[ $((SECONDS - started)) -lt 10 ] && ! grep -qE 'building|starting PostgreSQL' '$work/busy.out'"
rc=0
API_PORT=$api_port PG_PORT=$busy_port REDIS_PORT=$redis_port DEV_STATE_DIR=$state-busy \
  timeout 60 scripts/dev.sh >"$work/busy.out" 2>&1 || rc=$?
check "PostgreSQL port taken: names PG_PORT" grep -q "port $busy_port (PG_PORT) is already in use" "$work/busy.out"
rm -rf "$state-busy"

# ---- background runs, stopped by SIGINT and by SIGTERM -----------------------
# start_dev LOG [VAR=VALUE...]: dev.sh in the background (so it starts with
# SIGINT ignored, as from any script); waits for its banner.
dev_pid=""
start_dev() {
  local out=$1
  shift
  env "$@" API_PORT="$api_port" PG_PORT="$pg_port" REDIS_PORT="$redis_port" DEV_STATE_DIR="$state" \
    scripts/dev.sh >"$out" 2>&1 &
  dev_pid=$!
  pids+=("$dev_pid")
  local deadline=$((SECONDS + 900))
  until grep -q "Inventory API is running" "$out"; do
    if ! kill -0 "$dev_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      tail -20 "$out"
      return 1
    fi
    sleep 0.2
  done
}

login_with_banner() { # LOG: the banner's email and password log in
  local line email password
  line=$(grep -m1 'Login:' "$1")
  email=$(awk '{print $2}' <<<"$line")
  password=$(awk '{print $4}' <<<"$line")
  [ -n "$password" ] || return 1
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    --data-binary "{\"email\":\"$email\",\"password\":\"$password\"}" "http://127.0.0.1:$api_port/api/v1/auth/login"
}

stops_everything() { # SIGNAL EXPECTED-EXIT
  local rc=0
  kill -"$1" "$dev_pid"
  timeout 60 tail --pid="$dev_pid" -f /dev/null || { echo "dev.sh still running 60 s after SIG$1"; return 1; }
  wait "$dev_pid" || rc=$?
  [ "$rc" = "$2" ] || { echo "exit $rc, expected $2"; return 1; }
  for port in "$api_port" "$pg_port" "$redis_port"; do
    if port_in_use "$port"; then echo "port $port still open"; return 1; fi
  done
}

# The binary itself: "listening" only once the socket is bound.
second_api_on_same_port() {
  local rc=0
  env DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/inventory" JWT_SECRET_FILE="$state/jwt_secret" \
    BIND_ADDR="127.0.0.1:$api_port" LOG_FORMAT=json timeout 60 ./target/debug/inventory-api serve >"$work/second.out" 2>&1 || rc=$?
  cat "$work/second.out"
  [ "$rc" = 1 ] && grep -q "cannot listen on 127.0.0.1:$api_port" "$work/second.out" && ! grep -q '"listening' "$work/second.out"
}

rm -rf "$state"
if start_dev "$work/run1.out" BOOTSTRAP_ADMIN_PASSWORD=check-dev-password-1; then
  pass "background run: banner printed"
  check "the banner comes after /ready answered (it says so, and /ready is 200)" \
    bash -c "grep -q 'ready: http://127.0.0.1:$api_port/ready answered 200' '$work/run1.out' && curl -fs -o /dev/null http://127.0.0.1:$api_port/ready"
  check "the API logged 'listening' before the banner" \
    bash -c "grep -n 'listening' '$work/run1.out' | head -1 | cut -d: -f1 | { read -r l; [ \"\$l\" -lt \"\$(grep -n 'Inventory API is running' '$work/run1.out' | cut -d: -f1)\" ]; }"
  check "the banner's login works" login_with_banner "$work/run1.out"
  check "the banner says where the password is kept" grep -q "kept in $state/admin_password" "$work/run1.out"
  check "a second API on the same port exits with 'cannot listen on', never logging 'listening'" second_api_on_same_port
  check "SIGINT to a background dev.sh stops the API, PostgreSQL and Redis (exit 130)" stops_everything INT 130
else
  fail "background run: no banner (log above)"
fi

if start_dev "$work/run2.out"; then
  check "second run without BOOTSTRAP_ADMIN_PASSWORD prints the password that works" \
    bash -c "grep -q 'Login: .*check-dev-password-1' '$work/run2.out'"
  check "... and it logs in" login_with_banner "$work/run2.out"
  check "SIGTERM stops everything too (exit 143)" stops_everything TERM 143
else
  fail "second run: no banner (log above)"
fi

# Ctrl-C on a terminal: dev.sh in the foreground of a pseudo-terminal gets a
# real ^C (SIGINT to the whole foreground process group).
ctrl_c_in_a_terminal() {
  API_PORT=$api_port PG_PORT=$pg_port REDIS_PORT=$redis_port DEV_STATE_DIR=$state python3 - <<'PY'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv("scripts/dev.sh", ["scripts/dev.sh"])
out, deadline = b"", time.time() + 900
def read(until):
    global out
    while until not in out and time.time() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return False
    return until in out
if not read(b"Inventory API is running"):
    print(out.decode(errors="replace")[-2000:]); sys.exit(1)
os.write(fd, b"\x03")
end = time.time() + 60
while time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if select.select([fd], [], [], 0.2)[0]:
        try:
            out += os.read(fd, 65536)
        except OSError:
            pass
else:
    print("dev.sh still running 60 s after ^C"); sys.exit(1)
code = os.waitstatus_to_exitcode(status)
print(out.decode(errors="replace")[-600:])
sys.exit(0 if code in (130, -2) else 1)
PY
  local port
  for port in "$api_port" "$pg_port" "$redis_port"; do
    if port_in_use "$port"; then echo "port $port still open"; return 1; fi
  done
}
check "Ctrl-C in a terminal stops the API, PostgreSQL and Redis" ctrl_c_in_a_terminal

printf '\ncheck-dev: %s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
