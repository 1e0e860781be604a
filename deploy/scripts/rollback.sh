#!/usr/bin/env bash
# Rolls agent-server back to its previous revision (or a given one) and waits for the rollout.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: deploy/scripts/rollback.sh [options]

Rolls the Deployment agent-server back to the revision before the current one, or to --revision, and
waits until every replica is ready. `--history` lists the revisions instead.

options:
  --revision N        the revision to go back to (default: the previous one)
  --history           list the revisions and exit
  --namespace NAME    the namespace (default: agent-server, or $AGENT_NAMESPACE)
  --context NAME      the kubeconfig context (default: the current one, or $KUBE_CONTEXT)
  --timeout DURATION  how long to wait for the rollout (default: 5m)
  --dry-run           print the commands instead of running them
  -h, --help          this text
USAGE
}

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

revision=""
history=false
timeout="5m"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --revision) revision="${2:?--revision needs a value}"; shift 2 ;;
        --history) history=true; shift ;;
        --namespace) NAMESPACE="${2:?--namespace needs a value}"; shift 2 ;;
        --context) CONTEXT="${2:?--context needs a value}"; shift 2 ;;
        --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
        --dry-run) DRY_RUN=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ -z "$revision" || "$revision" =~ ^[0-9]+$ ]] || die "--revision takes a number: $revision"

if $history; then
    kube rollout history deployment/agent-server
    exit 0
fi

undo=(rollout undo deployment/agent-server)
if [[ -n "$revision" ]]; then
    undo+=(--to-revision "$revision")
fi
kube "${undo[@]}"
kube rollout status deployment/agent-server --timeout "$timeout"
kube get deployment agent-server --output wide
