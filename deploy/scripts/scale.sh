#!/usr/bin/env bash
# Changes how many replicas of agent-server run: the bounds of its HorizontalPodAutoscaler, or a fixed
# count for a Deployment without one.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: deploy/scripts/scale.sh (--min N [--max M] | --max M | --replicas N) [options]

With the HorizontalPodAutoscaler of deploy/k8s/hpa.yaml in place, set its bounds with --min and --max:
the autoscaler picks the count between them. --replicas N sets the Deployment's count directly, for a
cluster without the autoscaler (with it, the autoscaler overrides the count at its next sync).

options:
  --min N             the autoscaler's minReplicas
  --max M             the autoscaler's maxReplicas
  --replicas N        the Deployment's replicas
  --namespace NAME    the namespace (default: agent-server, or $AGENT_NAMESPACE)
  --context NAME      the kubeconfig context (default: the current one, or $KUBE_CONTEXT)
  --dry-run           print the commands instead of running them
  -h, --help          this text
USAGE
}

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

min=""
max=""
replicas=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --min) min="${2:?--min needs a value}"; shift 2 ;;
        --max) max="${2:?--max needs a value}"; shift 2 ;;
        --replicas) replicas="${2:?--replicas needs a value}"; shift 2 ;;
        --namespace) NAMESPACE="${2:?--namespace needs a value}"; shift 2 ;;
        --context) CONTEXT="${2:?--context needs a value}"; shift 2 ;;
        --dry-run) DRY_RUN=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
for value in "$min" "$max" "$replicas"; do
    [[ -z "$value" || "$value" =~ ^[0-9]+$ ]] || die "replica counts are whole numbers: $value"
done
if [[ -n "$replicas" ]]; then
    [[ -z "$min$max" ]] || die "--replicas does not go with --min or --max"
    kube scale deployment/agent-server --replicas "$replicas"
    kube rollout status deployment/agent-server --timeout 5m
    exit 0
fi
[[ -n "$min$max" ]] || { usage >&2; die "say --min, --max or --replicas"; }
if [[ -n "$min" && -n "$max" ]] && ((min > max)); then
    die "--min ($min) is above --max ($max)"
fi
# A PodDisruptionBudget of maxUnavailable 1 needs two replicas for a node drain to leave one serving.
if [[ -n "$min" ]] && ((min < 2)); then
    echo "warning: with fewer than 2 replicas a node drain leaves no replica serving" >&2
fi

spec=()
[[ -n "$min" ]] && spec+=("\"minReplicas\":$min")
[[ -n "$max" ]] && spec+=("\"maxReplicas\":$max")
patch="{\"spec\":{$(IFS=,; echo "${spec[*]}")}}"
kube patch horizontalpodautoscaler/agent-server --type merge --patch "$patch"
kube get horizontalpodautoscaler/agent-server
