#!/usr/bin/env bash
# Deploys the Inventory API stack with Docker Compose, or takes it down.
#
#   scripts/deploy.sh development|production [options]
#   scripts/deploy.sh rollback [--force] [--yes]
#
# development  docker-compose.yml: API, PostgreSQL, Redis, nginx on
#              http://localhost:8080, Prometheus, Grafana, exporters.
# production   docker-compose.yml + docker-compose.prod.yml: HTTPS, secrets from
#              secrets/*.txt, 3 API replicas, limits, daily backups. A release:
#              immutable image tag, backup, one-shot migrations, then the
#              replicas replaced one at a time (scripts/lib/release.sh).
# rollback     production replicas back to the previous release's tag.
#
# It checks the prerequisites (Compose, the Docker daemon; for production the
# secret files and the TLS certificate), validates the compose files
# (`config`), builds the API image, starts everything (`up -d`) and waits until
# GET /ready answers through nginx. See docs/deployment.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

usage() {
  cat <<'EOF'
Usage: scripts/deploy.sh development|production [options]
       scripts/deploy.sh rollback [--force] [--yes] [--timeout SECONDS]

production releases the current commit as inventory-api:VERSION-COMMIT: build
(unless that tag exists), back up the database, migrate once, then replace the
API replicas one at a time, each healthy before an old one stops. rollback
returns the replicas to the previous release (it refuses when a migration of
the current release is not backwards compatible, unless --force).

Options:
  --cleanup           stop and remove the stack's containers instead; for
                      development also its volumes (asks first, unless --yes)
  --yes               do not ask for confirmation
  --dry-run           check and validate, then print the commands that would
                      change anything instead of running them
  --no-build          do not build the API image (use the one already built)
  --timeout SECONDS   how long to wait for /ready (default 180)
  --init-secrets      production: create the missing secrets/*.txt with
                      random values (never overwrites an existing one)
  --self-signed-cert  production: create a self-signed certificate in
                      nginx/certs/ when there is none (CN from TLS_CERT_CN,
                      default localhost); for trials only
  --tag TAG           production: the release's image tag (default
                      VERSION-COMMIT of a clean checkout); never reused for
                      other code
  --force             rollback: even past a migration that is not backwards
                      compatible
  -h, --help          show this help

Environment: COMPOSE="docker-compose" picks the Compose command (default:
`docker compose` when the plugin is installed, else docker-compose).
Compose reads further settings (ports, BOOTSTRAP_ADMIN_EMAIL, ...) from the
environment and from .env; see docs/deployment.md.
EOF
}

bad_usage() {
  printf 'deploy.sh: %s\n\n' "$*" >&2
  usage >&2
  exit 2
}

env_name=""
cleanup=0
assume_yes=0
dry_run=0
build=1
timeout=180
init_secrets=0
self_signed=0
release_tag=""
force=0

while [ $# -gt 0 ]; do
  case $1 in
    development | production | rollback)
      [ -z "$env_name" ] || bad_usage "give one environment, not '$env_name' and '$1'"
      env_name=$1
      ;;
    --cleanup) cleanup=1 ;;
    --yes | -y) assume_yes=1 ;;
    --dry-run) dry_run=1 ;;
    --no-build) build=0 ;;
    --timeout)
      [ $# -ge 2 ] || bad_usage "--timeout needs a number of seconds"
      timeout=$2
      shift
      ;;
    --timeout=*) timeout=${1#--timeout=} ;;
    --init-secrets) init_secrets=1 ;;
    --tag)
      [ $# -ge 2 ] || bad_usage "--tag needs an image tag"
      release_tag=$2
      shift
      ;;
    --tag=*) release_tag=${1#--tag=} ;;
    --force) force=1 ;;
    --self-signed-cert) self_signed=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) bad_usage "unknown option: $1" ;;
    *) bad_usage "unknown environment: '$1' (development or production)" ;;
  esac
  shift
done

[ -n "$env_name" ] || bad_usage "which environment? development or production (or rollback)"
action=deploy
if [ "$env_name" = rollback ]; then
  action=rollback
  env_name=production
  if [ $((cleanup + init_secrets + self_signed)) -gt 0 ] || [ -n "$release_tag" ]; then
    bad_usage "rollback takes only --force, --yes, --dry-run and --timeout"
  fi
fi
if [ "$env_name" = development ] && [ -n "$release_tag" ]; then
  bad_usage "--tag is for production releases"
fi
[[ $timeout =~ ^[1-9][0-9]*$ ]] || bad_usage "--timeout must be a positive number of seconds, not '$timeout'"
if [ "$env_name" = development ] && [ $((init_secrets + self_signed)) -gt 0 ]; then
  bad_usage "--init-secrets and --self-signed-cert are for production only"
fi
if [ "$cleanup" = 1 ] && [ $((init_secrets + self_signed)) -gt 0 ]; then
  bad_usage "--cleanup cannot be combined with --init-secrets or --self-signed-cert"
fi

compose_files=(-f docker-compose.yml)
[ "$env_name" = production ] && compose_files+=(-f docker-compose.prod.yml)
# shellcheck source=scripts/lib/release.sh
. scripts/lib/release.sh

# Files that --init-secrets/--self-signed-cert would create (dry run): the
# checks count them as present.
planned=()

# Shows a command, then runs it; in a dry run only shows it.
run() {
  if [ "$dry_run" = 1 ]; then
    printf '[dry-run] %s\n' "$(quoted "$@")"
  else
    printf '+ %s\n' "$(quoted "$@")" >&2
    "$@"
  fi
}

quoted() {
  local out="" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then out+="$arg "; else out+="$(printf '%q' "$arg") "; fi
  done
  printf '%s' "${out% }"
}

compose() { "${compose_cmd[@]}" "${compose_files[@]}" "$@"; }
run_compose() { run "${compose_cmd[@]}" "${compose_files[@]}" "$@"; }

# The value Compose will use for NAME: the environment, else .env, else DEFAULT.
setting() {
  local name=$1 default=$2 line
  if [ -n "${!name:-}" ]; then
    printf '%s' "${!name}"
    return 0
  fi
  if [ -f .env ] && line=$(grep -E "^[[:space:]]*${name}=" .env | tail -n 1) && [ -n "${line#*=}" ]; then
    line=${line#*=}
    line=${line%\"}
    line=${line#\"}
    printf '%s' "$line"
    return 0
  fi
  printf '%s' "$default"
}

is_planned() {
  local f
  for f in "${planned[@]}"; do [ "$f" = "$1" ] && return 0; done
  return 1
}

find_compose() {
  if [ -n "${COMPOSE:-}" ]; then
    read -r -a compose_cmd <<<"$COMPOSE"
    command -v "${compose_cmd[0]}" >/dev/null 2>&1 || die "COMPOSE=$COMPOSE: ${compose_cmd[0]} not found"
  elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    compose_cmd=(docker-compose)
  else
    die "Docker Compose not found: install Docker with the compose plugin (docker compose) or docker-compose"
  fi
}

check_docker_daemon() {
  if [ "$dry_run" = 1 ]; then
    log "dry run: not checking that the Docker daemon is reachable"
    return 0
  fi
  command -v docker >/dev/null 2>&1 || die "docker not found: install Docker Engine"
  docker info >/dev/null 2>&1 \
    || die "the Docker daemon is not reachable (is it running, and may $(id -un) use it?)"
}

# ---- production prerequisites ---------------------------------------------

secret_names=(database_url jwt_secret bootstrap_admin_password postgres_password grafana_admin_password)

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

new_secret() {
  local file=secrets/$1.txt value=$2
  if [ -s "$file" ]; then
    log "keeping existing $file"
  elif [ "$dry_run" = 1 ]; then
    printf '[dry-run] create %s (generated, mode 0644)\n' "$file"
    planned+=("$file")
  else
    # Readable by the containers' non-root users (a secret file is bind-mounted
    # with the host's permissions); secrets/ itself is 0700.
    (umask 022 && printf '%s\n' "$value" >"$file")
    log "created $file"
  fi
}

init_secret_files() {
  if [ "$dry_run" = 1 ]; then
    [ -d secrets ] || printf '[dry-run] mkdir -m 0700 secrets\n'
  else
    mkdir -p secrets
    chmod 0700 secrets
  fi
  new_secret jwt_secret "$(random_hex 32)"
  new_secret postgres_password "$(random_hex 24)"
  new_secret bootstrap_admin_password "$(random_hex 12)"
  new_secret grafana_admin_password "$(random_hex 12)"
  # Hex passwords need no escaping inside the URL.
  local password="<postgres_password>"
  [ -s secrets/postgres_password.txt ] && password=$(cat secrets/postgres_password.txt)
  new_secret database_url "postgres://inventory:${password}@postgres:5432/inventory"
}

make_self_signed_cert() {
  local cn=${TLS_CERT_CN:-localhost}
  if [ -s nginx/certs/fullchain.pem ] && [ -s nginx/certs/privkey.pem ]; then
    log "keeping the existing certificate in nginx/certs/"
    return 0
  fi
  command -v openssl >/dev/null 2>&1 || die "openssl is needed for --self-signed-cert"
  local san="DNS:$cn"
  [ "$cn" = localhost ] || san+=",DNS:localhost"
  san+=",IP:127.0.0.1"
  run mkdir -p nginx/certs
  run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes -days 365 -subj "/CN=$cn" \
    -addext "subjectAltName=$san" \
    -keyout nginx/certs/privkey.pem -out nginx/certs/fullchain.pem
  if [ "$dry_run" = 1 ]; then
    planned+=(nginx/certs/fullchain.pem nginx/certs/privkey.pem)
  else
    chmod 0600 nginx/certs/privkey.pem
    log "created a self-signed certificate for $cn (browsers will warn; replace it for real use)"
  fi
}

# Decodes %XX escapes (a password inside a URL).
url_decode() {
  local s=${1//\\/\\\\}
  printf '%b' "${s//%/\\x}"
}

check_production_files() {
  local problems=() name file
  for name in "${secret_names[@]}"; do
    file=secrets/$name.txt
    is_planned "$file" && continue
    if [ ! -e "$file" ]; then
      problems+=("$file is missing")
    elif [ -z "$(tr -d '[:space:]' <"$file")" ]; then
      problems+=("$file is empty")
    elif [ ! -r "$file" ] || [ "$(( 8#$(stat -c '%a' "$file") & 4 ))" -eq 0 ]; then
      # Bind-mounted as is: the API (uid 10001), Grafana (472) and the
      # exporter (nobody) read these files as non-root users.
      problems+=("$file is not readable by the containers' users: chmod 0644 $file (and keep secrets/ itself at 0700)")
    fi
  done
  if [ -s secrets/jwt_secret.txt ]; then
    local jwt
    jwt=$(cat secrets/jwt_secret.txt)
    [ "${#jwt}" -ge 32 ] || problems+=("secrets/jwt_secret.txt must hold at least 32 bytes (try: openssl rand -hex 32)")
  fi
  # The API's URL must carry the password PostgreSQL was initialised with.
  if [ -s secrets/database_url.txt ] && [ -s secrets/postgres_password.txt ]; then
    local url password
    url=$(cat secrets/database_url.txt)
    password=$(cat secrets/postgres_password.txt)
    if [[ $url =~ ^postgres(ql)?://[^:@/]*:([^@/]*)@postgres[:/] ]]; then
      [ "$(url_decode "${BASH_REMATCH[2]}")" = "$password" ] \
        || problems+=("the password in secrets/database_url.txt differs from secrets/postgres_password.txt")
    elif [[ $url =~ @postgres[:/] ]]; then
      problems+=("secrets/database_url.txt has no password (postgres://inventory:PASSWORD@postgres:5432/inventory)")
    fi
  fi
  [ -n "$(setting BOOTSTRAP_ADMIN_EMAIL '')" ] \
    || problems+=("BOOTSTRAP_ADMIN_EMAIL is not set (environment or .env): the first admin's login")
  if [ -d secrets ] && [ "$(( 8#$(stat -c '%a' secrets) & 7 ))" -ne 0 ]; then
    log "warning: secrets/ is open to other users of this host; chmod 0700 secrets"
  fi

  if ! is_planned nginx/certs/fullchain.pem; then
    for file in nginx/certs/fullchain.pem nginx/certs/privkey.pem; do
      [ -s "$file" ] || problems+=("$file is missing (your certificate chain and key, or --self-signed-cert for a trial)")
    done
    if [ -s nginx/certs/fullchain.pem ] && command -v openssl >/dev/null 2>&1; then
      if ! openssl x509 -noout -in nginx/certs/fullchain.pem 2>/dev/null; then
        problems+=("nginx/certs/fullchain.pem is not a PEM certificate")
      elif ! openssl x509 -noout -checkend 0 -in nginx/certs/fullchain.pem >/dev/null 2>&1; then
        problems+=("the certificate in nginx/certs/fullchain.pem has expired")
      elif ! openssl x509 -noout -checkend 1209600 -in nginx/certs/fullchain.pem >/dev/null 2>&1; then
        log "warning: the certificate in nginx/certs/fullchain.pem expires within 14 days"
      fi
    fi
  fi

  if [ ${#problems[@]} -gt 0 ]; then
    printf 'error: production prerequisites are not met:\n' >&2
    printf '  - %s\n' "${problems[@]}" >&2
    printf 'Create missing secrets with --init-secrets; see docs/deployment.md.\n' >&2
    exit 1
  fi
}

# ---- actions --------------------------------------------------------------

confirm() {
  local question=$1 answer
  if [ "$assume_yes" = 1 ]; then return 0; fi
  if [ "$dry_run" = 1 ]; then
    printf '[dry-run] would ask: %s\n' "$question"
    return 0
  fi
  [ -t 0 ] || die "$question -- refusing without --yes (no terminal to ask on)"
  read -r -p "$question [y/N] " answer
  [[ $answer =~ ^[Yy]([Ee][Ss])?$ ]] || die "cancelled"
}

wait_ready() {
  local url=$1 insecure=()
  [[ $url == https://* ]] && insecure=(-k) # the certificate may be self-signed
  if [ "$dry_run" = 1 ]; then
    printf '[dry-run] wait up to %ss for %s to answer 200\n' "$timeout" "$url"
    return 0
  fi
  log "waiting up to ${timeout}s for $url"
  local deadline=$((SECONDS + timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -fsS "${insecure[@]}" -o /dev/null --max-time 5 "$url" 2>/dev/null; then
      return 0
    fi
    sleep 3
  done
  compose ps >&2 || true
  compose logs --tail=40 api nginx >&2 || true
  die "$url did not answer 200 within ${timeout}s (state and logs above)"
}

find_compose

if [ "$env_name" = production ]; then
  # docker-compose.prod.yml requires the API's tag: the new release's, else the running one's.
  if [ "$action" = deploy ] && [ "$cleanup" = 0 ]; then
    release_tag=${release_tag:-$(default_release_tag)}
    check_release_tag "$release_tag"
    export INVENTORY_API_TAG=$release_tag
  else
    INVENTORY_API_TAG=$(current_release || echo none)
    export INVENTORY_API_TAG
  fi
fi

if [ "$cleanup" = 1 ]; then
  check_docker_daemon
  if [ "$env_name" = development ]; then
    confirm "Stop the development stack and DELETE its volumes (database, Prometheus and Grafana data)?"
    run_compose down --volumes --remove-orphans
  else
    # Production data (database, backups, metrics) is never deleted from here.
    confirm "Stop and remove the PRODUCTION containers (volumes are kept)?"
    run_compose down --remove-orphans
  fi
  exit 0
fi

if [ "$env_name" = production ]; then
  [ "$init_secrets" = 1 ] && init_secret_files
  [ "$self_signed" = 1 ] && make_self_signed_cert
  check_production_files
  # docker-compose.yml publishes HTTP on ${NGINX_HTTP_PORT:-8080}; production
  # wants 80 unless the operator chose a port.
  if [ -z "$(setting NGINX_HTTP_PORT '')" ]; then export NGINX_HTTP_PORT=80; fi
fi
check_docker_daemon
if [ "$dry_run" = 0 ]; then
  command -v curl >/dev/null 2>&1 || die "curl is needed to wait for the API (apt-get install curl)"
fi

log "validating the compose configuration ($(quoted "${compose_cmd[@]}" "${compose_files[@]}") config)"
compose config -q

http_port=$(setting NGINX_HTTP_PORT 8080)
if [ "$env_name" = production ]; then
  https_port=$(setting NGINX_HTTPS_PORT 443)
  base_url="https://localhost$([ "$https_port" = 443 ] || printf ':%s' "$https_port")"
else
  base_url="http://localhost$([ "$http_port" = 80 ] || printf ':%s' "$http_port")"
fi
ready_url="${base_url/localhost/127.0.0.1}/ready"
if [ "$action" = rollback ]; then
  rollback_production "$ready_url"
  exit 0
elif [ "$env_name" = production ]; then
  release_production "$ready_url"
else
  [ "$build" = 1 ] && run_compose build api
  run_compose up -d --remove-orphans
  wait_ready "$ready_url"
fi

if [ "$env_name" = production ]; then
  login="$(setting BOOTSTRAP_ADMIN_EMAIL '(BOOTSTRAP_ADMIN_EMAIL)') / the password in secrets/bootstrap_admin_password.txt"
  grafana_login="admin / the password in secrets/grafana_admin_password.txt"
else
  login="$(setting BOOTSTRAP_ADMIN_EMAIL admin@example.com) / $(setting BOOTSTRAP_ADMIN_PASSWORD dev-only-admin-password)"
  grafana_login="admin / $(setting GRAFANA_ADMIN_PASSWORD admin)"
fi
cat <<MSG

  Inventory API ($env_name)$([ "$dry_run" = 1 ] && printf ' -- dry run, nothing was started')
    API:         $base_url/api/v1/
    Swagger UI:  $base_url/docs
    First admin: $login
    Grafana:     http://127.0.0.1:$(setting GRAFANA_PORT 3000)  ($grafana_login)
    Prometheus:  http://127.0.0.1:$(setting PROMETHEUS_PORT 9090)
  Prometheus and Grafana listen on this host's loopback only (ssh -L to reach
  them remotely); /metrics is not public (docs/deployment.md).
  Stop: scripts/deploy.sh $env_name --cleanup

MSG
