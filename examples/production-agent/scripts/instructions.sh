#!/usr/bin/env bash
# Instructions per message of agent-server over HTTP, counted by callgrind: the normal build against the
# build with every `#[hardened]` compiled out, under the same load. A count of instructions moves by a
# fraction of a percent from run to run where the CPU time of one server at a fixed rate moves by a tenth
# (and, on a virtual machine, includes time the host took the core away): the measure to compare two
# commits by. It does not see what cold caches cost, which `overhead.sh` does.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/production-agent/scripts/instructions.sh [options]

Builds agent-server twice (release, as overhead.sh does: normal, and with RUSTFLAGS="--cfg hardened_disabled"
into <target>/bare). For each build, runs the server twice under valgrind's callgrind (every thread) with
the sessions and message mix of load.sh at RATE requests/s, SMALL then LARGE messages, and stops it
(SIGTERM, so that callgrind writes its counts). The difference of the two runs' totals divided by
LARGE - SMALL is what one message costs the whole process (the server's start, the sessions and the
shutdown cancel out). Prints both builds' instructions per message and the difference: what hardened adds.
Exits 1 when a request failed.

options:
  --small N          messages of the first run of each build (default 250)
  --large N          messages of the second run (default 1250)
  --rate N           requests/s (default 50: the server runs some 50 times slower under valgrind)
  --sessions N       sessions, one hey process each (default 10; SMALL and LARGE are multiples of it)
  --env VAR=value    also set VAR for both builds (repeatable), such as
                     HARDENED_TELEMETRY__SAMPLE_RATIO=0.1
  --bin PATH         count this agent-server as the normal build instead of building it (another
                     commit's, to compare two commits)
  --bare-bin PATH    the same for the bare build
  --quick            100 and 500 messages (the bare build's count moves by 15% at this size; the
                     default's counts agree within about 1% from run to run)
  --keep             keep the working directory (with the callgrind files, for callgrind_annotate)
  -h, --help         this text

Honours CARGO_TARGET_DIR; AGENT_BARE_TARGET_DIR overrides where the bare build goes. Needs valgrind and hey.
EOF
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

small=250
large=1250
rate=50
sessions=10
quick="${EVIDENCE_QUICK:-0}"
extra_env=()
normal_bin=""
bare_bin=""

while (($# > 0)); do
    case "$1" in
        --small) small="${2:?--small needs a number}"; shift 2 ;;
        --large) large="${2:?--large needs a number}"; shift 2 ;;
        --rate) rate="${2:?--rate needs a number}"; shift 2 ;;
        --sessions) sessions="${2:?--sessions needs a number}"; shift 2 ;;
        --env) extra_env+=("${2:?--env needs VAR=value}"); shift 2 ;;
        --bin) normal_bin="${2:?--bin needs a path}"; shift 2 ;;
        --bare-bin) bare_bin="${2:?--bare-bin needs a path}"; shift 2 ;;
        *) common_option "$1"; shift ;;
    esac
done
if [[ "$quick" == 1 ]]; then
    small=100
    large=500
fi
((large > small)) || die "--large must be more than --small"
((small % sessions == 0 && large % sessions == 0)) || die "--small and --large must be multiples of --sessions"

need_commands hey curl python3 valgrind
given_or_built_servers "$normal_bin" "$bare_bin"
evidence_init

errors=0

# `count NAME BIN MESSAGES`: runs BIN under callgrind for MESSAGES messages and sets COUNTED to the
# instructions of the whole process.
count() {
    local name="$1" bin="$2" messages="$3" wrapper out
    wrapper="$WORK_DIR/$name-under-callgrind"
    out="$WORK_DIR/$name.callgrind"
    printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s %s "$@"\n' "$out" "$bin" >"$wrapper"
    chmod +x "$wrapper"
    AGENT_READY_SECONDS=180 start_server "$name" --bin "$wrapper" \
        HARDENED_RATE__LLM__PER_SECOND=1000000 HARDENED_RATE__LLM__BURST=1000000 "${extra_env[@]}"
    open_sessions "$name" "$sessions"
    run_load "$name" "$WORK_DIR/$name-load" "$rate" "$(awk -v m="$messages" -v r="$rate" 'BEGIN { print m / r }')" "$sessions"
    wait_load
    eval "$(load_stats "$WORK_DIR/$name-load" 1 "$LOAD_EXPECTED")"
    ((LOAD_EXPECTED == messages)) || die "$name: hey was given $LOAD_EXPECTED messages, not $messages"
    errors=$((errors + LOAD_ERRORS))
    stop_server "$name"
    COUNTED="$(awk '/^(summary|totals):/ { print $2; exit }' "$out")"
    [[ -n "$COUNTED" ]] || die "$name: no totals in $out"
    log "$name: $messages messages, $COUNTED instructions"
}

declare -A per_message=()
for flavour in normal bare; do
    bin="$AGENT_BIN"
    [[ "$flavour" == bare ]] && bin="$BARE_BIN"
    count "$flavour-small" "$bin" "$small"
    small_total="$COUNTED"
    count "$flavour-large" "$bin" "$large"
    per_message[$flavour]="$(awk -v a="$small_total" -v b="$COUNTED" -v n="$((large - small))" \
        'BEGIN { printf "%.0f", (b - a) / n }')"
done

if ((${#extra_env[@]} > 0)); then
    log "both builds ran with ${extra_env[*]}"
fi
heading "instructions per message, whole process ($small and $large messages at $rate requests/s)"
row "normal" "${per_message[normal]}"
row "bare (--cfg hardened_disabled)" "${per_message[bare]}"
row "hardened adds" "$((per_message[normal] - per_message[bare]))"
echo
bar "no request failed" eq "$errors" 0

evidence_verdict
