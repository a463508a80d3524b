#!/usr/bin/env bash
# Runs `cargo deny check` (advisories, licences, duplicate versions, sources;
# rules in deny.toml) without network access to GitHub.
#
# The advisory database is the RustSec snapshot in ADVISORY_DB (default: the
# shared checkout's ../shared/advisory-db). cargo-deny reads its database as a
# git checkout under deny.toml's db-path, so the snapshot is committed once
# into target/advisory-dbs/ (dated as the snapshot, so staleness is honest).
# Installs cargo-deny when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

ensure_rust
if ! command -v cargo-deny >/dev/null 2>&1; then
  log "installing cargo-deny (a few minutes, once)"
  cargo install --locked cargo-deny --version 0.20.2
fi

snapshot=${ADVISORY_DB:-}
if [ -z "$snapshot" ]; then
  for candidate in ../shared/advisory-db /work/wt/shared/advisory-db; do
    if [ -d "$candidate/crates" ]; then snapshot=$candidate; break; fi
  done
fi
if [ -z "$snapshot" ] || [ ! -d "$snapshot/crates" ]; then
  die "no RustSec advisory database snapshot: set ADVISORY_DB to a copy of github.com/rustsec/advisory-db"
fi

# The directory name cargo-deny derives from the default advisory-db URL.
db_dir="$PWD/target/advisory-dbs/advisory-db-3157b0e258782691"
stamp=$(cat "$snapshot/SNAPSHOT" 2>/dev/null || echo "$snapshot")
if [ ! -d "$db_dir/.git" ] || [ "$(cat "$db_dir/.snapshot-source" 2>/dev/null)" != "$stamp" ]; then
  log "preparing the advisory database from $snapshot"
  rm -rf "$db_dir"
  mkdir -p "$db_dir"
  cp -r "$snapshot"/. "$db_dir"/
  # The snapshot's date (YYYY-MM-DD in SNAPSHOT), else the newest file's.
  when=$(grep -o '[0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}' "$db_dir/SNAPSHOT" 2>/dev/null | head -1 || true)
  when=${when:-$(date -u +%F)}
  (
    cd "$db_dir"
    git init -q
    git add -A
    GIT_AUTHOR_DATE="${when}T00:00:00Z" GIT_COMMITTER_DATE="${when}T00:00:00Z" \
      git -c user.name=snapshot -c user.email=snapshot@invalid commit -qm "advisory-db snapshot"
  )
  printf '%s' "$stamp" >"$db_dir/.snapshot-source"
fi

# --offline keeps cargo-deny from fetching the advisory database over git;
# it also keeps `cargo metadata` from downloading crates, and metadata needs
# every crate of every platform (wasm, Windows), which a build on this host
# never downloads. Fetch them first, from the registry.
log "cargo fetch (the crates of every platform, for cargo metadata)"
cargo fetch --locked
cargo deny --offline check "$@"
