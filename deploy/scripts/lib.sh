# shellcheck shell=bash
# Shared by deploy.sh, rollback.sh and scale.sh: option defaults, and `run`, which prints a command
# (--dry-run) or runs it.

NAMESPACE="${AGENT_NAMESPACE:-agent-server}"
CONTEXT="${KUBE_CONTEXT:-}"
DRY_RUN=false

# kubectl with the chosen context and namespace.
kube() {
    local args=()
    if [[ -n "$CONTEXT" ]]; then
        args+=(--context "$CONTEXT")
    fi
    args+=(--namespace "$NAMESPACE")
    run kubectl "${args[@]}" "$@"
}

# Prints the command, quoted so it can be pasted; runs it unless --dry-run.
run() {
    if $DRY_RUN; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        printf '+' >&2
        printf ' %q' "$@" >&2
        printf '\n' >&2
        "$@"
    fi
}

die() {
    echo "error: $*" >&2
    exit 2
}
