# shellcheck shell=bash
# deploy.sh's options (dry_run, build, timeout, force) are set before sourcing.
# shellcheck disable=SC2154
# Production releases and rollback, for scripts/deploy.sh (sourced by it; uses
# its run, run_compose, compose, setting, wait_ready and confirm).
#
# A release is an immutable image tag, inventory-api:VERSION-COMMIT (or
# --tag TAG), built once and never overwritten. Releasing:
#   1. build the image unless that tag already exists;
#   2. start PostgreSQL and Redis, wait for PostgreSQL;
#   3. back up the database (the `backup` service, one dump) -- nothing
#      changes the schema without a fresh dump to return to;
#   4. run the migrations once, as a one-shot container (`inventory-api
#      migrate`), before any replica of the new version starts;
#   5. replace the API replicas one at a time: start one of the new version,
#      wait until Docker reports it healthy (its HEALTHCHECK is GET /ready),
#      then stop one old replica (SIGTERM: in-flight requests finish); with 3
#      replicas, 3 are serving throughout;
#   6. start or update everything else, wait for /ready through nginx, and
#      record the tag in .deploy/production/releases (the last line runs).
# When a new replica never becomes healthy, the replicas are rolled back to
# the running release the same way and the release fails.
#
# `deploy.sh rollback` rolls the replicas back to the previous recorded tag.
# It does not undo migrations: the previous release runs on the newer schema,
# which is why a migration must stay compatible with the release before it
# (README, "Releases"). A migration that drops or renames something, changes a
# column's type or makes it NOT NULL breaks that rule (or any migration marked
# `-- rollback-unsafe`): deploy.sh warns when releasing it, and rollback then
# refuses without --force and names the backup taken before migrating.

release_dir=${DEPLOY_STATE_DIR:-.deploy}/production
releases_file=$release_dir/releases
api_image=inventory-api

# The default tag: Cargo version and commit, from a clean checkout only (an
# image tag must name exactly one source).
default_release_tag() {
  if ! command -v git >/dev/null 2>&1 || ! git rev-parse --git-dir >/dev/null 2>&1; then
    die "not a git checkout: name the release with --tag TAG (e.g. 1.4.0)"
  fi
  [ -z "$(git status --porcelain --untracked-files=no)" ] \
    || die "the checkout has uncommitted changes: commit them (a release tag names one commit), or pass --tag"
  printf '%s-%s' "$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)" "$(git rev-parse --short=12 HEAD)"
}

check_release_tag() {
  [[ $1 =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid image tag '$1'"
  case $1 in
    latest | prod | production | dev | stable) die "tag '$1' would move from release to release; use a version or commit" ;;
  esac
}

current_release() { [ -s "$releases_file" ] && tail -n 1 "$releases_file"; }
previous_release() {
  [ -s "$releases_file" ] && [ "$(wc -l <"$releases_file")" -ge 2 ] && tail -n 2 "$releases_file" | head -n 1
}

# unsafe_new_migrations KNOWN: migrations that break the one-release rule, among
# those in this checkout that are not listed in the file KNOWN (the running
# release's migrations).
unsafe_new_migrations() {
  local known=$1 f name
  for f in migrations/*.up.sql; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .up.sql)
    grep -qxF "$name" "$known" && continue
    if grep -qiE -- '-- *rollback-unsafe|\bdrop +(table|column|type|schema|view)\b|\brename +(column|to)\b|\balter +column +[^ ]+ +(set +data +)?type\b|\bset +not +null\b|\balter +table +[^ ;]+ +drop\b' "$f"; then
      echo "$name"
    fi
  done
}

record_migrations() { # TAG
  local f
  for f in migrations/*.up.sql; do [ -e "$f" ] && basename "$f" .up.sql; done >"$release_dir/$1.migrations"
}

api_containers() { compose ps -q api; }
container_image() { docker inspect --format '{{.Config.Image}}' "$1"; }

# wait_healthy ID: Docker's health status of one replica (its HEALTHCHECK is GET /ready).
wait_healthy() {
  local id=$1 state deadline=$((SECONDS + timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    state=$(docker inspect --format '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null || echo gone/)
    case $state in
      running/healthy) return 0 ;;
      exited/* | dead/* | gone/* | */unhealthy)
        log "replica $id is $state"
        return 1
        ;;
    esac
    sleep 2
  done
  log "replica $id not healthy within ${timeout}s (last: $state)"
  return 1
}

retire() { # ID: SIGTERM, up to 35 s for in-flight requests (serve allows 30), then remove
  run docker stop -t 35 "$1" >/dev/null
  run docker rm "$1" >/dev/null
}

# roll_api TAG: replaces the API replicas with TAG's, one at a time. Fails (and
# leaves the healthy replicas running) when a new replica does not get healthy.
roll_api() {
  local tag=$1 want id fresh before old=() new=0
  want=$(setting API_REPLICAS 3)
  if [ "$dry_run" = 1 ]; then
    printf '[dry-run] replace the %s api replicas with %s:%s one at a time, each healthy before an old one stops\n' "$want" "$api_image" "$tag"
    return 0
  fi
  export INVENTORY_API_TAG=$tag
  for id in $(api_containers); do
    if [ "$(container_image "$id")" = "$api_image:$tag" ]; then new=$((new + 1)); else old+=("$id"); fi
  done
  while [ "$new" -lt "$want" ]; do
    before=$(api_containers)
    run_compose up -d --no-deps --no-recreate --scale "api=$((${#old[@]} + new + 1))" api
    fresh=""
    for id in $(api_containers); do grep -qxF "$id" <<<"$before" || fresh=$id; done
    [ -n "$fresh" ] || { log "no new api replica appeared"; return 1; }
    if ! wait_healthy "$fresh"; then
      compose logs --tail=40 api >&2 || true
      retire "$fresh"
      return 1
    fi
    new=$((new + 1))
    if [ ${#old[@]} -gt 0 ]; then
      retire "${old[0]}"
      old=("${old[@]:1}")
    fi
  done
  for id in "${old[@]}"; do retire "$id"; done
}

# Runs the one-shot backup and prints the dump's path (the `backup` service).
backup_now() {
  local out
  out=$(run_compose run --rm --no-deps backup --dir /backups --keep "$(setting BACKUP_KEEP 7)") || return 1
  printf '%s\n' "$out" | tail -n 1
}

wait_postgres() {
  [ "$dry_run" = 1 ] && return 0
  local deadline=$((SECONDS + timeout))
  until compose exec -T postgres pg_isready -q -h 127.0.0.1 -U inventory -d inventory; do
    [ "$SECONDS" -lt "$deadline" ] || die "PostgreSQL did not accept connections within ${timeout}s"
    sleep 2
  done
}

release_production() { # URL of /ready through nginx
  local ready_url=$1 tag current unsafe backup svc others=()
  tag=${release_tag:-$(default_release_tag)}
  check_release_tag "$tag"
  current=$(current_release || true)
  run mkdir -p "$release_dir"
  export INVENTORY_API_TAG=$tag
  log "release $api_image:$tag (running: ${current:-none})"

  if docker image inspect "$api_image:$tag" >/dev/null 2>&1; then
    log "$api_image:$tag exists: not rebuilt (release tags are immutable)"
  elif [ "$build" = 1 ]; then
    run_compose build --pull api
  else
    die "$api_image:$tag does not exist and --no-build was given"
  fi

  # Only a running release can be broken by new migrations.
  unsafe=""
  if [ -n "$current" ] && [ -f "$release_dir/$current.migrations" ]; then
    unsafe=$(unsafe_new_migrations "$release_dir/$current.migrations")
  fi
  if [ -n "$unsafe" ]; then
    log "warning: these migrations are not backwards compatible with the running release, so a rollback after this release is unsafe (it would need the backup taken now):"
    printf '    %s\n' "$unsafe" >&2
  fi

  run_compose up -d --no-deps postgres redis
  wait_postgres
  log "backing up the database before migrating"
  backup=$(backup_now) || die "the backup failed: nothing was migrated or replaced"
  log "backup: $backup"
  log "applying migrations (one-shot, before any new replica starts)"
  run_compose run --rm --no-deps api migrate \
    || die "migrations failed; the running release is untouched (backup: $backup)"

  if ! roll_api "$tag"; then
    if [ -n "$current" ] && [ "$current" != "$tag" ]; then
      log "release $tag did not become ready: rolling the replicas back to $current"
      roll_api "$current" || die "rolling back to $current failed too: see 'docker ps' and the logs"
      die "release $tag failed; $current is serving again. Its migrations stay applied (backup before them: $backup)"
    fi
    die "release $tag did not become ready (backup before its migrations: $backup)"
  fi

  for svc in $(compose config --services); do
    [ "$svc" = api ] || others+=("$svc")
  done
  run_compose up -d --no-deps --remove-orphans "${others[@]}"
  wait_ready "$ready_url"

  if [ "$dry_run" = 0 ]; then
    record_migrations "$tag"
    printf '%s\n' "$unsafe" | sed '/^$/d' >"$release_dir/$tag.unsafe"
    printf '%s\n' "$backup" >"$release_dir/$tag.backup"
    [ "$tag" = "$current" ] || printf '%s\n' "$tag" >>"$releases_file"
  fi
  log "released $api_image:$tag (rollback: scripts/deploy.sh rollback)"
}

rollback_production() { # URL of /ready through nginx
  local ready_url=$1 current previous added
  current=$(current_release) || die "no release recorded in $releases_file: nothing to roll back"
  previous=$(previous_release) || die "$current is the only release recorded in $releases_file: nothing to roll back to"
  log "rollback: $api_image:$current -> $api_image:$previous"
  if [ -s "$release_dir/$current.unsafe" ]; then
    printf 'warning: release %s applied migrations that %s cannot run on:\n' "$current" "$previous" >&2
    sed 's/^/    /' "$release_dir/$current.unsafe" >&2
    printf 'The safe way back is the dump taken before they ran: %s\n(scripts/restore.sh; see docs/deployment.md).\n' \
      "$(cat "$release_dir/$current.backup" 2>/dev/null || echo 'see the backups volume')" >&2
    [ "$force" = 1 ] || die "rollback refused (unsafe migrations); --force rolls the replicas back anyway"
  elif [ -f "$release_dir/$current.migrations" ] && [ -f "$release_dir/$previous.migrations" ]; then
    added=$(grep -vxFf "$release_dir/$previous.migrations" "$release_dir/$current.migrations" || true)
    if [ -n "$added" ]; then
      log "migrations of $current stay applied ($(tr '\n' ' ' <<<"$added")); $previous runs on them (one-release compatibility rule)"
    fi
  fi
  docker image inspect "$api_image:$previous" >/dev/null 2>&1 || [ "$dry_run" = 1 ] \
    || die "$api_image:$previous is no longer on this host: rebuild it from its commit with deploy.sh production --tag $previous"
  confirm "Roll production back from $current to $previous?"
  export INVENTORY_API_TAG=$previous
  roll_api "$previous" || die "rollback to $previous failed: a replica did not become healthy"
  wait_ready "$ready_url"
  # The rolled-back release leaves the history: the next rollback goes further back.
  [ "$dry_run" = 1 ] || sed -i '$d' "$releases_file"
  log "rolled back to $api_image:$previous"
}
