#!/usr/bin/env bash
# Restores an Inventory API backup (a pg_dump -Fc file from scripts/backup.sh)
# into DATABASE_URL, replacing what is there:
#
#   DATABASE_URL=postgres://... scripts/restore.sh --yes FILE
#
# pg_restore --clean --if-exists drops each object of the dump before
# recreating it, all in one transaction: on any error nothing changes. Objects
# that are not in the dump (say, from a newer migration) are left alone, so to
# go back to an older schema restore into a freshly created, empty database.
# Stop the API first (docker-compose stop api) so that nothing writes meanwhile
# and its open connections do not hold locks the restore needs.
#
# The database is DATABASE_URL, else the contents of DATABASE_URL_FILE. Owners
# and grants are not restored (--no-owner --no-acl): the objects belong to the
# user of DATABASE_URL, which is what the API connects as. Without --yes it
# only says what it would do and exits non-zero.
set -euo pipefail
# shellcheck source=scripts/lib/services.sh
. "$(dirname "$0")/lib/services.sh"

usage() {
  # The comment block at the top of this file.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}
bad_usage() {
  printf 'restore.sh: %s\n\n' "$*" >&2
  usage >&2
  exit 2
}

assume_yes=0
file=""
while [ $# -gt 0 ]; do
  case $1 in
    --yes | -y) assume_yes=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) bad_usage "unknown option: $1" ;;
    *)
      [ -z "$file" ] || bad_usage "one backup file only"
      file=$1
      ;;
  esac
  shift
done
[ -n "$file" ] || bad_usage "which backup file?"
if [ ! -f "$file" ] || [ ! -r "$file" ]; then die "cannot read $file"; fi

database_url "restore into"
url=$DB_URL

pg_tool pg_restore --list "$file" >/dev/null || die "$file is not a pg_dump custom-format archive"

if [ "$assume_yes" != 1 ]; then
  printf 'restore.sh: this would REPLACE the data in %s with %s.\n' "$url" "$file" >&2
  printf 'Stop the API first, then run again with --yes.\n' >&2
  exit 1
fi

log "restoring $file into $url"
pg_tool pg_restore --clean --if-exists --no-owner --no-acl --single-transaction \
  --dbname="$url" "$file"
log "restore complete; start the API again (it applies any newer migrations)"
