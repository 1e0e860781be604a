#!/usr/bin/env bash
# Every evidence script of production-agent in turn, short (--quick) by default: for CI.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/production-agent/scripts/all.sh [--full] [--keep-going] [--max-added-us N]

Builds agent-server once (release, normal and --cfg hardened_disabled), then runs load.sh,
overhead.sh, shutdown-under-load.sh, chaos.sh and replicas.sh in turn with --quick (short durations),
prints each one's outcome and time, and exits 1 when any failed.

options:
  --full          the scripts' full durations instead of --quick
  --keep-going    run every script even after one failed (the default stops at the first failure)
  --max-added-us N  passed to overhead.sh: the server CPU hardened may add per message, in µs (default 35, 45 quick)
  -h, --help      this text

Needs what the scripts need: hey (installed with apt-get when missing), the PostgreSQL client and server
programs, and the machine's PostgreSQL on 127.0.0.1:5432 (trust authentication) for replicas.sh.
Honours CARGO_TARGET_DIR.
EOF
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode=(--quick)
keep_going=0
max_added_us=()
while (($# > 0)); do
    case "$1" in
        --full) mode=(); shift ;;
        --keep-going) keep_going=1; shift ;;
        --max-added-us) max_added_us=(--max-added-us "${2:?--max-added-us needs microseconds}"); shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

started=$SECONDS
build_server normal
build_server bare
log "builds ready in $((SECONDS - started)) s"

declare -A outcome=() took=()
scripts=(load.sh overhead.sh shutdown-under-load.sh chaos.sh replicas.sh)
failed=0
for script in "${scripts[@]}"; do
    log "running $script"
    begun=$SECONDS
    options=("${mode[@]}")
    [[ "$script" == overhead.sh ]] && options+=("${max_added_us[@]}")
    if "$SCRIPTS_DIR/$script" "${options[@]}"; then
        outcome[$script]=passed
    else
        outcome[$script]="FAILED ($?)"
        failed=1
    fi
    took[$script]=$((SECONDS - begun))
    if ((failed)) && ((!keep_going)); then
        break
    fi
done

heading "evidence scripts (${mode[*]:-full})"
for script in "${scripts[@]}"; do
    printf '  %-28s %-12s %s\n' "$script" "${outcome[$script]:-not run}" "${took[$script]:+${took[$script]} s}"
done
row "total, builds included" "$((SECONDS - started)) s"
exit "$failed"
