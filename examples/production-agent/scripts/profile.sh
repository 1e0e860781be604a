#!/usr/bin/env bash
# Where the CPU of a message goes on the machine itself: `perf` samples of the whole server (every
# thread, the kernel's work for it included) at a fixed rate, the normal build against the build with
# every `#[hardened]` compiled out, each sample put in the part of `hardened` (or of the service) it
# was taken in. Instructions (`instructions.sh`) compare commits; this says where the time goes, with
# what instructions do not show: the audit writer's thread, frees of memory allocated on another
# thread, wakeups, the kernel, and SHA-256 in the CPU's own instructions rather than valgrind's.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/production-agent/scripts/profile.sh [options]

Builds agent-server twice (release, as overhead.sh does: normal, and with RUSTFLAGS="--cfg hardened_disabled"
into <target>/bare). For each build: starts the server with the sessions and message mix of load.sh, sends
RATE requests/s, and while they run records DURATION seconds of the server with `perf record` (CPU clock,
FREQ samples a second, call stacks unwound with DWARF). Then prints, per message:

  - the CPU of each of the server's threads (the request threads, the audit writer), from the samples;
  - the CPU by part: each sample goes to the part of its innermost frame that belongs to one (the spans'
    log fields, ids and registry, building audit events, queueing them, sealing and writing them, the
    request layers, metrics, guards), or to the service, or to the rest (runtime, sockets, kernel);
  - the context switches of each thread (from /proc);
  - with --top N, the N functions whose own samples grew most from the bare build to the normal one.

The figures are per message sent in the recorded window (RATE x DURATION; hey holds the rate), scaled to
the CPU per message of a window of the same length just before it, without perf: on a virtual machine,
taking a sample costs the process far more than on bare metal, which would otherwise inflate every part
alike. overhead.sh stays the measure of the CPU added; this one says where it goes.

options:
  --rate N           requests/s (default 1000, as overhead.sh)
  --duration S       seconds recorded for each build (default 10)
  --freq N           samples a second (default 1999)
  --top N            functions to list by samples added (default 25; 0 for none)
  --env VAR=value    also set VAR for both builds (repeatable), such as
                     HARDENED_TELEMETRY__SAMPLE_RATIO=0.1
  --bin PATH         profile this agent-server as the normal build instead of building it
  --bare-bin PATH    the same for the bare build
  --keep             keep the working directory (perf.data of each build, for `perf report -i`)
  -h, --help         this text

Honours CARGO_TARGET_DIR; AGENT_BARE_TARGET_DIR overrides where the bare build goes. Needs perf (Debian's
linux-perf) and hey; perf must be allowed to record the server (root, or kernel.perf_event_paranoid <= 1).
EOF
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rate=1000
duration=10
freq=1999
top=25
extra_env=()
normal_bin=""
bare_bin=""

while (($# > 0)); do
    case "$1" in
        --rate) rate="${2:?--rate needs a number}"; shift 2 ;;
        --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
        --freq) freq="${2:?--freq needs a number}"; shift 2 ;;
        --top) top="${2:?--top needs a number}"; shift 2 ;;
        --env) extra_env+=("${2:?--env needs VAR=value}"); shift 2 ;;
        --bin) normal_bin="${2:?--bin needs a path}"; shift 2 ;;
        --bare-bin) bare_bin="${2:?--bare-bin needs a path}"; shift 2 ;;
        *) common_option "$1"; shift ;;
    esac
done

need_commands hey curl python3 perf
given_or_built_servers "$normal_bin" "$bare_bin"
evidence_init

# `thread_switches PID`: each thread's name and context switches (voluntary + involuntary), a line each.
thread_switches() {
    local task
    for task in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(cat "$task/comm")" \
            "$(awk '/ctxt_switches/ { sum += $2 } END { print sum }' "$task/status")"
    done
}

errors=0
for flavour in normal bare; do
    bin="$AGENT_BIN"
    [[ "$flavour" == bare ]] && bin="$BARE_BIN"
    start_server "$flavour" --bin "$bin" \
        HARDENED_RATE__LLM__PER_SECOND=1000000 HARDENED_RATE__LLM__BURST=1000000 "${extra_env[@]}"
    pid="${SERVER_PID[$flavour]}"
    open_sessions "$flavour" 10
    run_load "$flavour" "$WORK_DIR/$flavour-warmup" "$rate" 2 50
    wait_load
    # One load for two windows of DURATION, a second apart and a second from each end: one without perf,
    # whose CPU per message the samples are scaled to (sampling slows the process), then the recorded one.
    run_load "$flavour" "$WORK_DIR/$flavour-load" "$rate" "$((2 * duration + 3))" 50
    sleep 1
    ticks_before="$(cpu_ticks "$pid")"
    sleep "$duration"
    ticks_after="$(cpu_ticks "$pid")"
    us_per_message "$ticks_before" "$ticks_after" "$((rate * duration))" >"$WORK_DIR/$flavour.unprofiled-us"
    sleep 1
    thread_switches "$pid" >"$WORK_DIR/$flavour.switches-before"
    perf record -q -F "$freq" --call-graph dwarf,16384 -p "$pid" -o "$WORK_DIR/$flavour.perf.data" -- sleep "$duration" \
        2>"$WORK_DIR/$flavour.perf.log" || die "perf record failed: $(tail -3 "$WORK_DIR/$flavour.perf.log")"
    thread_switches "$pid" >"$WORK_DIR/$flavour.switches-after"
    wait_load
    eval "$(load_stats "$WORK_DIR/$flavour-load" "$((2 * duration + 3))" "$LOAD_EXPECTED")"
    errors=$((errors + LOAD_ERRORS))
    stop_server "$flavour"
    log "$flavour: recorded $duration s at $rate requests/s"
    perf script -i "$WORK_DIR/$flavour.perf.data" -F comm,ip,sym 2>/dev/null >"$WORK_DIR/$flavour.stacks"
done

if ((${#extra_env[@]} > 0)); then
    log "both builds ran with ${extra_env[*]}"
fi
heading "where a message's CPU goes ($rate requests/s, $duration s recorded, $freq samples/s; µs per message)"
python3 "$(dirname "${BASH_SOURCE[0]}")/profile_parts.py" "$WORK_DIR" "$((rate * duration))" "$freq" "$top"
echo
bar "no request failed" eq "$errors" 0

evidence_verdict
