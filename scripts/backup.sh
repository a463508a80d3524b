#!/usr/bin/env bash
# Backs up the Inventory API database: pg_dump in custom format (-Fc) to
# DIR/inventory-YYYYMMDDTHHMMSSZ.dump, written under a temporary name and
# renamed only once complete and readable by pg_restore. Prints the file's path.
#
#   DATABASE_URL=postgres://... scripts/backup.sh [--dir DIR] [--keep N] [--every SECONDS]
#
# The database is DATABASE_URL, else the contents of DATABASE_URL_FILE (as for
# the API). The password is handed to pg_dump through PGPASSWORD, never on its
# command line. pg_dump must be at least the server's major version.
#
#   --dir DIR        where dumps go (default: $BACKUP_DIR, else ./backups)
#   --keep N         after each dump, delete all but the N newest dumps in DIR
#   --every SECONDS  keep running: one dump now and one every SECONDS (the
#                    `backup` service of docker-compose.prod.yml); a failed dump
#                    is logged and retried at the next turn
#
# Restore with scripts/restore.sh.
set -euo pipefail
# shellcheck source=scripts/lib/services.sh
. "$(dirname "$0")/lib/services.sh"

usage() {
  # The comment block at the top of this file.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}
bad_usage() {
  printf 'backup.sh: %s\n\n' "$*" >&2
  usage >&2
  exit 2
}

dir=${BACKUP_DIR:-./backups}
keep=0
every=0
while [ $# -gt 0 ]; do
  case $1 in
    --dir)
      [ $# -ge 2 ] || bad_usage "--dir needs a directory"
      dir=$2
      shift
      ;;
    --keep)
      [ $# -ge 2 ] || bad_usage "--keep needs a number"
      keep=$2
      shift
      ;;
    --every)
      [ $# -ge 2 ] || bad_usage "--every needs a number of seconds"
      every=$2
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) bad_usage "unknown argument: $1" ;;
  esac
  shift
done
[[ $keep =~ ^[0-9]+$ ]] || bad_usage "--keep must be a whole number, not '$keep'"
[[ $every =~ ^[0-9]+$ ]] || bad_usage "--every must be a whole number of seconds, not '$every'"

database_url "back up"
url=$DB_URL

# One dump. Returns non-zero (leaving no partial file) when it fails.
backup_once() {
  mkdir -p "$dir" || return 1
  local stamp file
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  file="$dir/inventory-$stamp.dump"
  # Names sort by time; never overwrite (two runs within one second).
  while [ -e "$file" ]; do
    sleep 1
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    file="$dir/inventory-$stamp.dump"
  done
  log "dumping $url to $file"
  if ! pg_tool pg_dump --format=custom --dbname="$url" --file="$file.partial"; then
    rm -f -- "$file.partial"
    return 1
  fi
  # A dump pg_restore cannot read is no backup.
  if ! pg_tool pg_restore --list "$file.partial" >/dev/null; then
    rm -f -- "$file.partial"
    return 1
  fi
  mv -- "$file.partial" "$file" || return 1
  printf '%s\n' "$file"
  [ "$keep" -gt 0 ] || return 0
  local dumps=() i
  mapfile -t dumps < <(find "$dir" -maxdepth 1 -type f -name 'inventory-*.dump' | sort -r)
  for ((i = keep; i < ${#dumps[@]}; i++)); do
    log "removing old backup ${dumps[i]} (keeping the newest $keep)"
    rm -f -- "${dumps[i]}"
  done
}

if [ "$every" -eq 0 ]; then
  backup_once || die "backup failed"
  exit 0
fi

# Service mode. `sleep & wait` so that SIGTERM (docker stop) ends it at once.
trap 'log "stopping"; exit 0' TERM INT
log "backing up every ${every}s into $dir$([ "$keep" -gt 0 ] && printf ', keeping %s' "$keep")"
while :; do
  backup_once || log "backup FAILED; next attempt in ${every}s"
  sleep "$every" &
  wait $!
done
