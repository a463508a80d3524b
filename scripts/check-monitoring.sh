#!/usr/bin/env bash
# Validates the monitoring configuration under monitoring/:
#   - promtool check config / check rules / test rules for Prometheus
#   - Grafana dashboards: valid JSON, every panel target has a PromQL expr that
#     parses (checked with promtool), datasource uid `prometheus`, and only the
#     service's own metrics (exporter metrics pg_*/redis_*/nginx_* are allowed
#     in dependencies.json only).
#
# Usage: scripts/check-monitoring.sh        (from any directory)
# Env:   PROMTOOL=/path/to/promtool          use a specific promtool
#        APT_WAIT_SECONDS=300                how long to wait for a busy apt/dpkg lock
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROM_DIR=monitoring/prometheus
DASH_DIR=monitoring/grafana/dashboards
APT_WAIT_SECONDS="${APT_WAIT_SECONDS:-300}"

log() { printf '==> %s\n' "$*"; }
die() {
  printf 'check-monitoring: ERROR: %s\n' "$*" >&2
  exit 1
}

# Runs apt-get with the given arguments, retrying while another apt/dpkg
# process holds the lock (e.g. an install started in the background).
# Returns apt-get's status for any other failure.
apt_get_retry() {
  local deadline=$((SECONDS + APT_WAIT_SECONDS)) out status
  out="$(mktemp)"
  while :; do
    status=0
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=30 "$@" 2>&1 | tee "$out" || status=$?
    if [ "$status" -eq 0 ]; then
      rm -f "$out"
      return 0
    fi
    if grep -qiE 'could not get lock|unable to acquire|is another process using it' "$out" \
      && [ "$SECONDS" -lt "$deadline" ]; then
      log "apt/dpkg is busy (another install running); retrying in 10s"
      sleep 10
      # The other process may have installed what we are after.
      if command -v promtool >/dev/null 2>&1; then
        rm -f "$out"
        return 0
      fi
      continue
    fi
    rm -f "$out"
    return "$status"
  done
}

find_promtool() {
  if [ -n "${PROMTOOL:-}" ]; then
    [ -x "$PROMTOOL" ] || die "PROMTOOL=$PROMTOOL is not an executable"
    return 0
  fi
  if command -v promtool >/dev/null 2>&1; then
    PROMTOOL="$(command -v promtool)"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "promtool not found. Install the Debian/Ubuntu package 'prometheus' (sudo apt-get install prometheus), which ships /usr/bin/promtool, or put promtool from a Prometheus release on PATH / set PROMTOOL=/path/to/promtool."
  fi
  log "promtool not found; installing the Debian package 'prometheus'"
  # Try without refreshing the package lists first; update them only if needed.
  if ! command -v promtool >/dev/null 2>&1 \
    && ! apt_get_retry install -y --no-install-recommends prometheus; then
    if ! command -v promtool >/dev/null 2>&1; then
      apt_get_retry update || die "apt-get update failed"
      command -v promtool >/dev/null 2>&1 \
        || apt_get_retry install -y --no-install-recommends prometheus \
        || die "apt-get install prometheus failed"
    fi
  fi
  command -v promtool >/dev/null 2>&1 || die "package 'prometheus' installed but promtool is still not on PATH"
  PROMTOOL="$(command -v promtool)"
}

find_promtool
command -v python3 >/dev/null 2>&1 || die "python3 is required to validate the Grafana dashboards"
log "using $("$PROMTOOL" --version 2>&1 | head -n 1) ($PROMTOOL)"

log "promtool check config $PROM_DIR/prometheus.yml"
"$PROMTOOL" check config "$PROM_DIR/prometheus.yml"

log "promtool check rules $PROM_DIR/alerts.yml"
"$PROMTOOL" check rules "$PROM_DIR/alerts.yml"

log "promtool test rules $PROM_DIR/alerts_test.yml"
"$PROMTOOL" test rules "$PROM_DIR/alerts_test.yml"

TMP_DIR="$(mktemp -d)"
trap 'rm -rf "$TMP_DIR"' EXIT

log "validating Grafana dashboards in $DASH_DIR"
shopt -s nullglob
dashboards=("$DASH_DIR"/*.json)
shopt -u nullglob
[ "${#dashboards[@]}" -gt 0 ] || die "no dashboards found in $DASH_DIR"

python3 - "$TMP_DIR/dashboard-exprs.yml" "${dashboards[@]}" <<'PY'
import json
import os
import re
import sys

out_rules, files = sys.argv[1], sys.argv[2:]

SERVICE_METRICS = {
    "up",
    "http_server_requests_total",
    "http_server_request_duration_seconds_bucket",
    "http_server_request_duration_seconds_sum",
    "http_server_request_duration_seconds_count",
    "http_server_active_requests",
    "inventory_stock_movements_total",
    "inventory_stock_units_moved_total",
    "inventory_scan_events_total",
    "inventory_idempotent_replays_total",
    "inventory_count_sessions_completed_total",
    "inventory_logins_total",
    "inventory_cache_requests_total",
    "inventory_outbox_backlog",
    "inventory_outbox_published_total",
    "inventory_outbox_publish_failures_total",
    "inventory_webhook_deliveries_total",
    "inventory_webhook_queue_depth",
    "inventory_webhook_oldest_pending_seconds",
    "inventory_db_pool_size",
    "inventory_db_pool_idle",
    "inventory_db_pool_max",
    "inventory_db_up",
    "inventory_redis_up",
    "inventory_build_info",
    "inventory_products",
    "inventory_warehouses",
    "inventory_low_stock_products",
    "inventory_stock_value",
}
EXPORTER_PREFIX = re.compile(r"^(pg|redis|nginx)_")
EXPORTER_DASHBOARD = "dependencies.json"
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan", "atan2"}


def metric_names(expr):
    """Best-effort list of metric names referenced by a PromQL expression."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    s = re.sub(r"\{[^}]*\}", "", s)                         # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)                        # range selectors
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w:.$])([A-Za-z_:][\w:]*)", s):
        if s[m.end():].lstrip().startswith("("):
            continue                                        # function / aggregation
        if m.group(1).lower() in KEYWORDS:
            continue
        names.add(m.group(1))
    return names


def to_promql(expr):
    """Replace Grafana variables so promtool can parse the expression."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    expr = expr.replace("$__range", "1h")
    return re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", expr)


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


errors = []
rules = []
uids = {}
for path in files:
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        errors.append(f"{path}: invalid JSON: {e}")
        continue
    uid = dash.get("uid")
    if not uid:
        errors.append(f"{path}: dashboard has no uid")
    elif uid in uids:
        errors.append(f"{path}: uid {uid!r} also used by {uids[uid]}")
    else:
        uids[uid] = path
    if not dash.get("title"):
        errors.append(f"{path}: dashboard has no title")
    for var in dash.get("templating", {}).get("list", []):
        ds = var.get("datasource")
        if var.get("type") == "query" and isinstance(ds, dict) and ds.get("uid") != "prometheus":
            errors.append(f"{path}: variable {var.get('name')!r} uses datasource uid {ds.get('uid')!r}")
    n_targets = 0
    for panel in walk(dash.get("panels", [])):
        if panel.get("type") == "row":
            continue
        title = panel.get("title", "<untitled>")
        where = f"{path}: panel {panel.get('id')} {title!r}"
        ds = panel.get("datasource")
        if not isinstance(ds, dict) or ds.get("uid") != "prometheus":
            errors.append(f"{where}: datasource must be {{uid: prometheus}}, got {ds!r}")
        targets = panel.get("targets") or []
        if not targets:
            errors.append(f"{where}: panel has no targets")
        for t in targets:
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                errors.append(f"{where}: target {t.get('refId')!r} has no expr")
                continue
            tds = t.get("datasource")
            if isinstance(tds, dict) and tds.get("uid") != "prometheus":
                errors.append(f"{where}: target {t.get('refId')!r} datasource uid {tds.get('uid')!r}")
            for metric in sorted(metric_names(expr)):
                if metric in SERVICE_METRICS:
                    continue
                if name == EXPORTER_DASHBOARD and EXPORTER_PREFIX.match(metric):
                    continue
                errors.append(f"{where}: metric {metric!r} is not allowed in {name}")
            n_targets += 1
            rules.append({
                "record": f"dashboard_check:{len(rules)}",
                "expr": to_promql(expr),
                "labels": {"dashboard": name, "panel": str(title), "ref": str(t.get("refId"))},
            })
    print(f"  {path}: {n_targets} targets")

# JSON is valid YAML; promtool parses every expression for us.
with open(out_rules, "w", encoding="utf-8") as f:
    json.dump({"groups": [{"name": "dashboard-exprs", "rules": rules}]}, f, indent=1)

if errors:
    for e in errors:
        print(f"  ERROR {e}", file=sys.stderr)
    sys.exit(1)
PY

log "checking dashboard PromQL expressions with promtool"
"$PROMTOOL" check rules "$TMP_DIR/dashboard-exprs.yml" || die "a dashboard expression does not parse"

log "monitoring configuration OK"
