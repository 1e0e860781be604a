#!/usr/bin/env bash
# Deploys agent-server to Kubernetes from deploy/k8s (or deploy/k8s/monitoring), with an image tag,
# and waits for the rollout.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: deploy/scripts/deploy.sh --image IMAGE:TAG [options]

Applies the kustomization of deploy/k8s with the given image and waits until every replica of the new
version is ready. The Secrets `agent-server` and `agent-server-audit-signing` must exist
(deploy/k8s/secret.example.yaml).

options:
  --image IMAGE:TAG   the image to run, such as ghcr.io/hardened-rs/agent-server:0.1.0 (required)
  --monitoring        apply deploy/k8s/monitoring: the base plus a ServiceMonitor and a PrometheusRule
                      (needs the Prometheus Operator's CRDs)
  --namespace NAME    the namespace (default: agent-server, or $AGENT_NAMESPACE)
  --context NAME      the kubeconfig context (default: the current one, or $KUBE_CONTEXT)
  --timeout DURATION  how long to wait for the rollout (default: 5m)
  --dry-run           print the commands instead of running them
  -h, --help          this text
USAGE
}

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
k8s="$(cd "$(dirname "${BASH_SOURCE[0]}")/../k8s" && pwd)"

image=""
base="$k8s"
timeout="5m"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --image) image="${2:?--image needs a value}"; shift 2 ;;
        --monitoring) base="$k8s/monitoring"; shift ;;
        --namespace) NAMESPACE="${2:?--namespace needs a value}"; shift 2 ;;
        --context) CONTEXT="${2:?--context needs a value}"; shift 2 ;;
        --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
        --dry-run) DRY_RUN=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ -n "$image" ]] || { usage >&2; die "--image is required"; }
[[ "$image" == *:* || "$image" == *@* ]] || die "--image needs a tag or a digest: $image"

# An overlay of the chosen base that sets the image and the namespace, in a temporary directory.
overlay="$(mktemp -d)"
trap 'rm -rf "$overlay"' EXIT
name="${image%[:@]*}"
if [[ "$image" == *@* ]]; then
    pin="  digest: \"${image#*@}\""
else
    pin="  newTag: \"${image##*:}\""
fi
cat >"$overlay/kustomization.yaml" <<KUSTOMIZATION
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $NAMESPACE
resources:
  - $(realpath --relative-to "$overlay" "$base")
images:
- name: ghcr.io/hardened-rs/agent-server
  newName: $name
$pin
KUSTOMIZATION

if $DRY_RUN; then
    echo "# $overlay/kustomization.yaml:"
    sed 's/^/#   /' "$overlay/kustomization.yaml"
fi
# Both Secrets the pods read: without the signing key a pod never starts ([audit] signing = "required").
kube get secret agent-server agent-server-audit-signing --output name
kube apply --kustomize "$overlay"
if ! kube rollout status deployment/agent-server --timeout "$timeout"; then
    echo "the rollout did not finish within $timeout; to go back: deploy/scripts/rollback.sh" >&2
    exit 1
fi
kube get deployment agent-server --output wide
