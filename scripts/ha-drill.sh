#!/usr/bin/env bash
# PostgreSQL failover drill: the API on a highly available PostgreSQL, with a
# primary killed by SIGKILL in the middle of steady writes.
#
# Starts, all on 127.0.0.1 and under target/ha-drill/ (nothing system-wide):
#   etcd        ONE member (a drill needs the DCS, not its quorum; production
#               runs 3 or 5 members on separate machines)      client :57000
#   Patroni     two PostgreSQL nodes, synchronous_mode: true,
#               primary_start_timeout: 0 (a crashed primary fails over to the
#               synchronous standby instead of restarting), pg_rewind
#                                  node1 pg :57010 REST :57011, node2 :57020/:57021
#   HAProxy     :57030 writes -> the leader (Patroni REST GET /primary)
#               :57031 reads  -> a replica (GET /replica), the leader when none
#               :57033 HTTP   -> the two API replicas (round robin)
#   the API     two replicas (target/debug/inventory-api) :57040 :57041,
#               DATABASE_URL = HAProxy's write port, DATABASE_READ_URL = its
#               read port; no Redis (optional, and not what is tested here)
# then scripts/lib/ha_drill.py drives movements with Idempotency-Keys at a
# steady rate, SIGKILLs the leader's postmaster, waits for the new leader,
# retries every unanswered request with its own key, waits for the old leader
# to rejoin as a replica, and checks on every node that each acknowledged
# movement is in the ledger exactly once and that level = sum(ledger).
# It prints the seconds without writes and status counts, and fails on any
# 500, lost or doubled movement, or mismatch.
#
# Usage: scripts/ha-drill.sh [--rate N] [--before S] [--after S]
#   --rate    movements per second offered (default 20)
#   --before  seconds of writes before the kill (default 8)
#   --after   seconds of writes after the first write the new leader takes (default 8)
# Env: HA_DRILL_PORT_BASE (57000; uses BASE..BASE+41), CARGO_PROFILE_DIR (debug).
# As root it installs etcd-server, patroni, haproxy and PostgreSQL with apt-get.
# Everything it started is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh
reserve_service_ports

drill_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --rate | --before | --after)
      [ $# -ge 2 ] || die "$1 needs a value"
      drill_args+=("$1" "$2")
      shift 2
      ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

base=${HA_DRILL_PORT_BASE:-57000}
etcd_port=$base
etcd_peer=$((base + 1))
pg1=$((base + 10)) rest1=$((base + 11))
pg2=$((base + 20)) rest2=$((base + 21))
ha_write=$((base + 30)) ha_read=$((base + 31)) ha_stats=$((base + 32)) ha_api=$((base + 33))
api1=$((base + 40)) api2=$((base + 41))
dir="$PWD/target/ha-drill"
binary="$PWD/target/${CARGO_PROFILE_DIR:-debug}/inventory-api"

pids=()
cleanup() {
  local rc=$? pid
  log "cleaning up"
  # In reverse order of start: the API replicas, HAProxy, Patroni (which stops
  # its PostgreSQL), etcd last, each given 15 s before SIGKILL.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  # A postmaster whose Patroni died first would linger: stop it by its data dir.
  local bindir; bindir=$(pg_bindir 2>/dev/null) || true
  for n in node1 node2; do
    if [ -n "$bindir" ] && [ -f "$dir/$n/data/postmaster.pid" ]; then
      as_pg_owner "$bindir/pg_ctl" -D "$dir/$n/data" -m immediate stop >/dev/null 2>&1 || true
    fi
  done
  if [ "$rc" -ne 0 ]; then
    log "drill failed; logs kept in $dir/*.log (last lines below)"
    for f in "$dir"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
  fi
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in the background, logging to $dir/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$dir/$name.log" 2>&1 &
  pids+=("$!")
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for i in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "timed out after ${secs}s waiting for $what"
}
http_ok() { curl -fsS -o /dev/null --max-time 1 "$1"; }

# ---- tools -------------------------------------------------------------------
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v patroni >/dev/null 2>&1 || missing+=(patroni)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v curl >/dev/null 2>&1 || missing+=(curl)
ensure_packages "${missing[@]}"
ensure_postgres_installed
# Debian's python3 (which has psycopg2, a Patroni dependency), not a python3
# earlier on PATH.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$py" -c 'import psycopg2' 2>/dev/null || ensure_packages python3-psycopg2
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
# PostgreSQL (and so Patroni, which runs it) refuses to run as root.
run_as_pg=()
[ "$(id -u)" -eq 0 ] && run_as_pg=(runuser -u postgres --)
if [ "${CARGO_PROFILE_DIR:-debug}" = debug ]; then
  ensure_rust
  log "cargo build --bin inventory-api (nothing to do when the tests just built it)"
  cargo build --quiet --bin inventory-api
fi
[ -x "$binary" ] || die "$binary not found"
log "$(patroni --version), etcd $(etcd --version | sed -n 's/^etcd Version: //p'), $("$HAPROXY" -v | head -n 1 | cut -d' ' -f1-3), PostgreSQL $("$(pg_bindir)/postgres" --version | awk '{print $3}')"

# ---- etcd --------------------------------------------------------------------
for port in "$etcd_port" "$pg1" "$pg2" "$rest1" "$rest2" "$ha_write" "$ha_api" "$api1" "$api2"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use (set HA_DRILL_PORT_BASE)"; fi
done
rm -rf "$dir"
mkdir -p "$dir/node1" "$dir/node2"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres:postgres "$dir/node1" "$dir/node2"
  runuser -u postgres -- test -w "$dir/node1" \
    || die "$dir is not reachable by the postgres user; move the checkout (e.g. under /work or /srv)"
fi
log "etcd: one member on 127.0.0.1:$etcd_port (a drill; production runs 3 or 5)"
start etcd etcd --name drill --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "drill=http://127.0.0.1:$etcd_peer" --initial-cluster-state new
wait_for "etcd" 20 http_ok "http://127.0.0.1:$etcd_port/health"

# ---- Patroni -----------------------------------------------------------------
# patroni_config NAME PG_PORT REST_PORT
patroni_config() {
  local name=$1 pg=$2 rest=$3
  cat <<EOF
scope: inventory-drill
namespace: /inventory-drill/
name: $name
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$rest
  connect_address: 127.0.0.1:$rest
etcd3:
  hosts: 127.0.0.1:$etcd_port
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    # A crashed primary hands over to the synchronous standby at once instead
    # of spending up to 300 s on crash recovery while holding the leader key.
    primary_start_timeout: 0
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_log_hints: "on"
        hot_standby_feedback: "on"
        max_connections: 200
        wal_keep_size: 256MB
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication replicator 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$pg
  connect_address: 127.0.0.1:$pg
  data_dir: $dir/$name/data
  bin_dir: $(pg_bindir)
  pgpass: $dir/$name/pgpass
  authentication:
    superuser: {username: postgres, password: drill}
    replication: {username: replicator, password: drill}
    rewind: {username: postgres, password: drill}
  parameters:
    unix_socket_directories: $dir/$name
tags:
  nofailover: false
  noloadbalance: false
EOF
}
patroni_config node1 "$pg1" "$rest1" >"$dir/node1/patroni.yml"
patroni_config node2 "$pg2" "$rest2" >"$dir/node2/patroni.yml"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"/node*/patroni.yml
log "Patroni node1 (PostgreSQL :$pg1, REST :$rest1) bootstraps the cluster"
start patroni-node1 "${run_as_pg[@]}" patroni "$dir/node1/patroni.yml"
wait_for "node1 to lead" 60 http_ok "http://127.0.0.1:$rest1/primary"
log "Patroni node2 (PostgreSQL :$pg2, REST :$rest2) joins as a synchronous standby"
start patroni-node2 "${run_as_pg[@]}" patroni "$dir/node2/patroni.yml"
wait_for "node2 to replicate" 90 http_ok "http://127.0.0.1:$rest2/replica"
wait_for "node2 to be the synchronous standby" 90 http_ok "http://127.0.0.1:$rest2/sync"

# ---- HAProxy -----------------------------------------------------------------
cat >"$dir/haproxy.cfg" <<EOF
global
    maxconn 1000
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 1s
    # Patroni's REST API is the health check: a node is in a backend only while
    # it holds that role. shutdown-sessions cuts the API's open connections to a
    # node the moment it leaves, so the pool sees the failover at once.
    default-server inter 500ms fastinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions
listen pg_write
    bind 127.0.0.1:$ha_write
    option httpchk GET /primary
    http-check expect status 200
    server node1 127.0.0.1:$pg1 check port $rest1
    server node2 127.0.0.1:$pg2 check port $rest2
frontend pg_read
    bind 127.0.0.1:$ha_read
    # A streaming replica when one is healthy, otherwise whichever node runs.
    use_backend pg_replicas if { nbsrv(pg_replicas) gt 0 }
    default_backend pg_any
backend pg_replicas
    option httpchk GET /replica
    http-check expect status 200
    server node1 127.0.0.1:$pg1 check port $rest1
    server node2 127.0.0.1:$pg2 check port $rest2
backend pg_any
    option httpchk GET /read-only
    http-check expect status 200
    server node1 127.0.0.1:$pg1 check port $rest1
    server node2 127.0.0.1:$pg2 check port $rest2
listen api
    mode http
    bind 127.0.0.1:$ha_api
    balance roundrobin
    timeout client 30s
    timeout server 30s
    # Liveness, not /ready: during the failover the replicas must answer for
    # themselves (503 problem+json) rather than be hidden behind HAProxy's 503.
    option httpchk GET /health
    server api1 127.0.0.1:$api1 check inter 1s
    server api2 127.0.0.1:$api2 check inter 1s
listen stats
    mode http
    bind 127.0.0.1:$ha_stats
    stats enable
    stats uri /
EOF
"$HAPROXY" -c -q -f "$dir/haproxy.cfg" || die "haproxy.cfg is invalid"
log "HAProxy: writes :$ha_write, reads :$ha_read, API :$ha_api, stats http://127.0.0.1:$ha_stats/"
start haproxy "$HAPROXY" -db -f "$dir/haproxy.cfg"
pg_up() { "$(pg_bindir)/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -tAc 'select 1' | grep -q 1; }
wait_for "HAProxy to route writes" 20 pg_up "$ha_write"
wait_for "HAProxy to route reads" 20 pg_up "$ha_read"

# ---- the API -----------------------------------------------------------------
admin_password="drill-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
jwt_secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
for n in 1 2; do
  port=$api1
  [ "$n" = 2 ] && port=$api2
  log "API replica $n on 127.0.0.1:$port"
  start "api$n" env -i PATH="$PATH" \
    DATABASE_URL="postgres://postgres:drill@127.0.0.1:$ha_write/postgres" \
    DATABASE_READ_URL="postgres://postgres:drill@127.0.0.1:$ha_read/postgres" \
    DATABASE_MAX_CONNECTIONS=10 JWT_SECRET="$jwt_secret" BIND_ADDR="127.0.0.1:$port" LOG_FORMAT=json \
    BOOTSTRAP_ADMIN_EMAIL=drill@example.com BOOTSTRAP_ADMIN_PASSWORD="$admin_password" \
    "$binary" serve
  # The first replica applies the migrations; the second then finds them applied.
  wait_for "API replica $n" 60 http_ok "http://127.0.0.1:$port/ready"
done
wait_for "HAProxy to route to the API" 20 http_ok "http://127.0.0.1:$ha_api/ready"

# ---- the drill ---------------------------------------------------------------
DRILL_ADMIN_PASSWORD=$admin_password "$py" scripts/lib/ha_drill.py \
  --api "http://127.0.0.1:$ha_api" \
  --ready "http://127.0.0.1:$api1/ready" --ready "http://127.0.0.1:$api2/ready" \
  --node "node1,$pg1,$rest1,$dir/node1/data" --node "node2,$pg2,$rest2,$dir/node2/data" \
  --admin drill@example.com "${drill_args[@]}"
