# shellcheck shell=bash
# Shared by dev.sh and test.sh: find or install PostgreSQL and Redis, and run
# private instances of them under a state directory on their own ports, so a
# system PostgreSQL/Redis is never touched. Source it; it defines functions only.

# Set by start_postgres/start_redis for their callers: 1 when that call started
# the server (so the caller stops it), 0 when one was already running.
# shellcheck disable=SC2034
PG_STARTED=0 REDIS_STARTED=0

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs Debian packages when we may (root + apt-get); otherwise says what to install.
ensure_packages() {
  local missing=("$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} (apt-get)"
    # Another apt process (unattended upgrades) may hold the lock for a while.
    local i
    for i in $(seq 1 60); do
      if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        return 0
      fi
      if [ "$i" -eq 1 ]; then apt-get update -q >/dev/null 2>&1 || true; fi
      sleep 5
    done
    die "apt-get could not install ${missing[*]}"
  fi
  die "please install ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]}), or set DATABASE_URL and REDIS_URL to running servers"
}

# Prints the directory holding initdb/pg_ctl, which is often not on PATH.
pg_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  fi
  # Newest major version first.
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r | while read -r b; do
    [ -x "$b/initdb" ] && { echo "$b"; break; }
  done)
  if [ -n "$d" ]; then echo "$d"; return 0; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

ensure_postgres_installed() {
  if ! pg_bindir >/dev/null; then
    ensure_packages postgresql postgresql-contrib
  fi
  pg_bindir >/dev/null || die "PostgreSQL server binaries (initdb, pg_ctl) not found after install"
}

ensure_redis_installed() {
  command -v redis-server >/dev/null 2>&1 || ensure_packages redis-server
}

# initdb and pg_ctl refuse to run as root: run them as the postgres user then.
as_pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# start_postgres DIR PORT [extra server options...]
# Starts (or reuses) a private cluster. Sets PG_STARTED=1 when this call started it.
start_postgres() {
  local dir=$1 port=$2; shift 2
  local bindir; bindir=$(pg_bindir)
  # shellcheck disable=SC2034
  PG_STARTED=0
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
    # The postgres user must reach the directory; a repo under /root may not allow it.
    if ! runuser -u postgres -- test -w "$dir"; then
      die "$dir is not reachable by the postgres user; move the checkout (e.g. under /work or /srv) or set DATABASE_URL"
    fi
  fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    log "initialising a private PostgreSQL cluster in $dir"
    as_pg_owner "$bindir/initdb" -D "$dir" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null \
      || as_pg_owner "$bindir/initdb" -D "$dir" -A trust -U postgres -E UTF8 >/dev/null
  fi
  if as_pg_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    log "PostgreSQL already running on port $port"
  else
    log "starting PostgreSQL on 127.0.0.1:$port"
    as_pg_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 $*" >/dev/null \
      || { tail -20 "$dir/server.log" >&2; die "PostgreSQL did not start (log above)"; }
    # shellcheck disable=SC2034
    PG_STARTED=1
  fi
}

# Production's PostgreSQL settings (deploy/postgres/postgresql.conf), one
# name=value per line, comments and blank lines left out: what the bench server
# starts with and what check-deploy/check-kubernetes compare the compose file
# and the Cluster against.
production_pg_settings() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' \
    "$(dirname "${BASH_SOURCE[0]}")/../../deploy/postgres/postgresql.conf"
}

stop_postgres() {
  local dir=$1
  local bindir; bindir=$(pg_bindir) || return 0
  as_pg_owner "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
}

# start_redis DIR PORT. Sets REDIS_STARTED=1 when this call started it.
start_redis() {
  local dir=$1 port=$2
  REDIS_STARTED=0
  mkdir -p "$dir"
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
    log "Redis already running on port $port"
    return 0
  fi
  log "starting Redis on 127.0.0.1:$port"
  # Nothing in Redis needs to survive a restart: no RDB, no AOF.
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
  local i
  for i in $(seq 1 50); do
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
      # shellcheck disable=SC2034
      REDIS_STARTED=1
      return 0
    fi
    sleep 0.1
  done
  die "Redis did not start (see $dir/redis.log)"
}

stop_redis() {
  local port=$1
  redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

# create_database URL-without-db NAME: creates NAME if missing.
create_database() {
  local port=$1 name=$2
  local bindir; bindir=$(pg_bindir)
  if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE \"$name\"" >/dev/null
  fi
}

ensure_rust() {
  command -v cargo >/dev/null 2>&1 \
    || die "cargo not found: install Rust from https://rustup.rs (stable, 1.94 or newer)"
}

# port_in_use PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# check_port PORT VARIABLE: dies, naming the variable that moves it, when PORT is taken.
check_port() {
  local port=$1 var=$2 who=""
  port_in_use "$port" || return 0
  command -v ss >/dev/null 2>&1 && who=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(("[^"]*"' | head -n 1 | cut -d'"' -f2)
  die "port $port ($var) is already in use${who:+ by $who}; pick another: $var=<free port> $0"
}

# check_prerequisites [--services]: everything the scripts need, checked up
# front so a missing tool fails here, with the one command that installs all
# of it, and not in the middle of a build. --services adds the PostgreSQL and
# Redis servers (not needed with DATABASE_URL/REDIS_URL). As root with apt-get
# the missing Debian packages are installed instead.
check_prerequisites() {
  local want_services=0 missing=() lacking=()
  [ "${1:-}" = --services ] && want_services=1
  # rustc links through cc, and crates with C code (ring) compile with it.
  if ! command -v cc >/dev/null 2>&1; then missing+=(build-essential); lacking+=("a C compiler (cc)"); fi
  if ! command -v curl >/dev/null 2>&1; then missing+=(curl); lacking+=(curl); fi
  if [ "$want_services" = 1 ] && [ -z "${DATABASE_URL:-}" ] && ! pg_bindir >/dev/null; then
    missing+=(postgresql postgresql-contrib); lacking+=("the PostgreSQL server")
  fi
  if [ "$want_services" = 1 ] && [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
    missing+=(redis-server); lacking+=("the Redis server")
  fi
  if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    ensure_packages "${missing[@]}"
    missing=() lacking=()
  fi
  local rustup="curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"
  if ! command -v cargo >/dev/null 2>&1; then lacking+=("Rust (cargo, stable 1.94+)"); fi
  [ ${#lacking[@]} -eq 0 ] && return 0
  local list
  list=$(printf ', %s' "${lacking[@]}")
  printf 'error: missing %s\n' "${list:2}" >&2
  if [ ${#missing[@]} -gt 0 ]; then
    printf '  install: sudo apt-get install -y %s' "${missing[*]}" >&2
    command -v cargo >/dev/null 2>&1 && printf '\n' >&2 || printf ' && %s\n' "$rustup" >&2
  else
    printf '  install: %s\n' "$rustup" >&2
  fi
  [ "$want_services" = 0 ] || [ -n "${DATABASE_URL:-}${REDIS_URL:-}" ] \
    || printf '  (or set DATABASE_URL and REDIS_URL to servers you already run)\n' >&2
  exit 1
}

# database_url PURPOSE: sets DB_URL from DATABASE_URL, else from the file named
# by DATABASE_URL_FILE, and moves the password out of the URL (where `ps` would
# show it) into PGPASSWORD.
DB_URL=""
database_url() {
  local purpose=$1 pw
  if [ -n "${DATABASE_URL:-}" ]; then
    DB_URL=$DATABASE_URL
  elif [ -n "${DATABASE_URL_FILE:-}" ]; then
    [ -r "$DATABASE_URL_FILE" ] || die "cannot read DATABASE_URL_FILE=$DATABASE_URL_FILE"
    DB_URL=$(cat "$DATABASE_URL_FILE")
  else
    die "set DATABASE_URL (or DATABASE_URL_FILE) to the database to $purpose"
  fi
  [[ $DB_URL =~ ^postgres(ql)?:// ]] || die "DATABASE_URL must be a postgres:// URL"
  if [[ $DB_URL =~ ^(postgres(ql)?://)([^:@/]*):([^@/]*)@(.*)$ ]]; then
    pw=${BASH_REMATCH[4]//\\/\\\\}
    PGPASSWORD=$(printf '%b' "${pw//%/\\x}")
    export PGPASSWORD
    DB_URL="${BASH_REMATCH[1]}${BASH_REMATCH[3]}@${BASH_REMATCH[5]}"
  fi
}

# pg_tool TOOL ARGS...: a PostgreSQL client tool, from PATH or the server's bin dir.
pg_tool() {
  local tool=$1
  shift
  if command -v "$tool" >/dev/null 2>&1; then
    "$tool" "$@"
  else
    local bindir
    bindir=$(pg_bindir) || die "$tool not found: install the PostgreSQL client (apt-get install postgresql-client)"
    "$bindir/$tool" "$@"
  fi
}

# PgBouncer, for transaction pooling. sqlx names its prepared statements
# (sqlx_s_1, ...), and a transaction pooler hands server connections from one
# client to the next: without PgBouncer tracking those statements
# (max_prepared_statements, 1.21+) a client finds another's statement or misses
# its own ("prepared statement sqlx_s_1 already exists" / "does not exist").
# Debian 12 ships 1.18, so when the installed PgBouncer is older, Debian's own
# source of 1.24.1 (the package of Debian 13, trixie) is built once into a
# cache directory and reused.
PGBOUNCER_VERSION=1.24.1
PGBOUNCER_SOURCE=http://deb.debian.org/debian/pool/main/p/pgbouncer/pgbouncer_${PGBOUNCER_VERSION}.orig.tar.gz
PGBOUNCER_SOURCE_SHA256=da72a3aba13072876d055a3e58dd4aba4a5de4ed6148e73033185245598fd3e0
# The PgBouncer start_pgbouncer runs; set by ensure_pgbouncer.
PGBOUNCER_BIN=""

# pgbouncer_version BINARY: prints its version (1.18.0), nothing when it is not there.
pgbouncer_version() {
  # Empty, never a failure, when $1 is missing (scripts run with set -e and
  # pipefail, and a fresh machine has no pgbouncer at all).
  local out
  out=$("$1" --version 2>/dev/null) || true
  printf '%s\n' "$out" | sed -n 's/^PgBouncer \([0-9.]*\).*/\1/p' | head -n 1
}

# version_at_least VERSION MINIMUM
version_at_least() {
  [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]
}

# pgbouncer_supports_prepared_statements BINARY: true when that PgBouncer is
# 1.21+, i.e. tracks protocol-level prepared statements in transaction pooling
# (max_prepared_statements).
pgbouncer_supports_prepared_statements() {
  version_at_least "$(pgbouncer_version "$1")" 1.21
}

# ensure_pgbouncer TOOLS_DIR: sets PGBOUNCER_BIN to a PgBouncer 1.21+: the one
# on PATH when recent enough; else Debian's package when apt offers 1.21+ (as
# root); else TOOLS_DIR/pgbouncer-1.24.1/bin/pgbouncer, built on first use.
ensure_pgbouncer() {
  local tools=$1 candidate
  if pgbouncer_supports_prepared_statements pgbouncer; then
    PGBOUNCER_BIN=$(command -v pgbouncer)
    return 0
  fi
  PGBOUNCER_BIN=$tools/pgbouncer-$PGBOUNCER_VERSION/bin/pgbouncer
  [ "$(pgbouncer_version "$PGBOUNCER_BIN")" = "$PGBOUNCER_VERSION" ] && return 0
  if ! command -v pgbouncer >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-cache >/dev/null 2>&1; then
    candidate=$(apt-cache policy pgbouncer 2>/dev/null | sed -n 's/^ *Candidate: \([0-9.]*\).*/\1/p')
    if version_at_least "$candidate" 1.21; then
      ensure_packages pgbouncer
      PGBOUNCER_BIN=$(command -v pgbouncer)
      return 0
    fi
  fi
  build_pgbouncer "$tools"
}

# build_pgbouncer TOOLS_DIR: downloads Debian's source of PgBouncer
# $PGBOUNCER_VERSION, checks its SHA-256, builds it and installs the binary as
# TOOLS_DIR/pgbouncer-VERSION/bin/pgbouncer (about a minute on 2 cores).
build_pgbouncer() {
  local tools=$1 prefix work log installed need=() started=$SECONDS
  prefix=$tools/pgbouncer-$PGBOUNCER_VERSION
  log="$tools/pgbouncer-$PGBOUNCER_VERSION-build.log"
  installed=$(pgbouncer_version pgbouncer)
  log "transaction pooling needs PgBouncer 1.21+ (installed: ${installed:-none}); building $PGBOUNCER_VERSION from Debian's source into $prefix (once)"
  command -v cc >/dev/null 2>&1 || need+=(build-essential)
  command -v make >/dev/null 2>&1 || need+=(make)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  if command -v pkg-config >/dev/null 2>&1; then
    pkg-config --exists libevent || need+=(libevent-dev)
    pkg-config --exists openssl || need+=(libssl-dev)
  else
    need+=(pkg-config libevent-dev libssl-dev)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      ensure_packages "${need[@]}"
    else
      die "building PgBouncer $PGBOUNCER_VERSION needs ${need[*]}: sudo apt-get install -y ${need[*]}; or put a PgBouncer 1.21+ on PATH; or skip the PgBouncer tests with TEST_PGBOUNCER=0"
    fi
  fi
  mkdir -p "$tools"
  work=$(mktemp -d "$tools/.pgbouncer-build.XXXXXX")
  log "downloading $PGBOUNCER_SOURCE"
  if ! curl -fsSL --retry 3 -o "$work/source.tar.gz" "$PGBOUNCER_SOURCE"; then
    rm -rf "$work"
    die "could not download $PGBOUNCER_SOURCE"
  fi
  if ! printf '%s  %s\n' "$PGBOUNCER_SOURCE_SHA256" "$work/source.tar.gz" | sha256sum -c --status; then
    rm -rf "$work"
    die "$PGBOUNCER_SOURCE does not have the expected SHA-256 $PGBOUNCER_SOURCE_SHA256; refusing to build it"
  fi
  log "SHA-256 verified; configuring and compiling (log: $log)"
  # c-ares, PAM and systemd are not needed on loopback with trust auth;
  # libevent resolves names instead of c-ares.
  if ! (tar -xzf "$work/source.tar.gz" -C "$work" \
      && cd "$work/pgbouncer-$PGBOUNCER_VERSION" \
      && ./configure --prefix="$prefix" --without-cares --without-pam --without-systemd \
      && make -j"$(nproc)") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -rf "$work"
    die "PgBouncer $PGBOUNCER_VERSION did not build (log above, whole log in $log)"
  fi
  # Installed in one move, so an interrupted build never leaves a half binary behind.
  mkdir -p "$work/install/bin" "$work/install/share"
  cp "$work/pgbouncer-$PGBOUNCER_VERSION/pgbouncer" "$work/install/bin/"
  cp "$work/pgbouncer-$PGBOUNCER_VERSION/COPYRIGHT" "$work/install/share/"
  chmod -R a+rX "$work/install"
  rm -rf "$prefix"
  mv "$work/install" "$prefix"
  rm -rf "$work"
  log "PgBouncer $(pgbouncer_version "$prefix/bin/pgbouncer") built in $((SECONDS - started)) s: $prefix/bin/pgbouncer"
}

# start_pgbouncer DIR PORT PG_PORT [SERVER_USER]: PgBouncer (PGBOUNCER_BIN, see
# ensure_pgbouncer) on 127.0.0.1:PORT in transaction pooling in front of the
# PostgreSQL on PG_PORT, every database, trust auth (loopback only). With
# SERVER_USER, every server connection logs in as that role whatever the
# client's user (so the role's settings, e.g. its timeouts, apply). Tunable:
# PGBOUNCER_POOL_SIZE (server connections per database, default 20),
# PGBOUNCER_MAX_PREPARED_STATEMENTS (default 200; 0 turns the tracking off,
# which breaks sqlx) and PGBOUNCER_SERVER_IDLE_TIMEOUT (seconds, default 600).
start_pgbouncer() {
  local dir=$1 port=$2 pg_port=$3 server_user=${4:-}
  [ -n "$PGBOUNCER_BIN" ] || die "start_pgbouncer: call ensure_pgbouncer first"
  mkdir -p "$dir"
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pg_port${server_user:+ user=$server_user}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
; sqlx's named prepared statements, tracked per server connection (1.21+).
max_prepared_statements = ${PGBOUNCER_MAX_PREPARED_STATEMENTS:-200}
max_client_conn = 1000
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
; A client waiting longer than this for a server connection gets an error
; instead of hanging (the default is 120 s).
query_wait_timeout = 10
; Idle server connections close after this many seconds (PgBouncer's default
; is 600). The test suite sets 1: DROP DATABASE waits up to 5 s for the test
; database's sessions to end and then fails, and PgBouncer would hold them.
server_idle_timeout = ${PGBOUNCER_SERVER_IDLE_TIMEOUT:-600}
; sqlx sends extra_float_digits at start-up, and the API its session limits
; (statement/lock/idle timeouts) as "options": PgBouncer cannot keep those on
; shared server connections and refuses the client unless told to ignore them.
; Behind PgBouncer the limits belong on the database role (ALTER ROLE ... SET),
; see docs/deployment.md.
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
  printf '"postgres" ""\n' >"$dir/userlist.txt"
  [ -n "$server_user" ] && printf '"%s" ""\n' "$server_user" >>"$dir/userlist.txt"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$dir"; fi
  rm -f "$dir/pgbouncer.pid"
  log "starting PgBouncer $(pgbouncer_version "$PGBOUNCER_BIN") (transaction pooling, max_prepared_statements=${PGBOUNCER_MAX_PREPARED_STATEMENTS:-200}, ${PGBOUNCER_POOL_SIZE:-20} server connections per database) on 127.0.0.1:$port"
  # PgBouncer refuses to run as root.
  as_pg_owner "$PGBOUNCER_BIN" -d "$dir/pgbouncer.ini" || die "PgBouncer did not start (see $dir/pgbouncer.log)"
  local i
  for i in $(seq 1 50); do
    port_in_use "$port" && return 0
    sleep 0.1
  done
  die "PgBouncer does not listen on $port (see $dir/pgbouncer.log)"
}

stop_pgbouncer() {
  local dir=$1 pid
  pid=$(cat "$dir/pgbouncer.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# Our private servers listen on fixed ports in 55000-58999, inside Linux's
# ephemeral range (32768-60999): a busy machine can hand one of them to an
# outgoing connection just before a server binds it ("could not create listen
# socket"; seen in the failover drill). When we may (root, writable /proc),
# reserve that range so the kernel never picks it for outgoing connections.
# Best effort: without it, everything still works on a quiet machine.
reserve_service_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports current
  [ "$(id -u)" -eq 0 ] && [ -w "$f" ] || return 0
  current=$(cat "$f" 2>/dev/null || true)
  case ",$current," in *",55000-58999,"*) return 0 ;; esac
  echo "${current:+$current,}55000-58999" >"$f" 2>/dev/null || true
}
