#!/usr/bin/env bash
# Load on one agent-server: real conversations (several sessions, messages that call the calculator, the
# clock and the memory, and plain ones) at a fixed rate, then the highest rate whose p99 stays under the
# bar, stepping the rate up.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/production-agent/scripts/load.sh [options]

Starts one agent-server (release build, embedded development configuration, JSONL audit in a temporary
directory), opens sessions, and sends messages with hey: one hey process per session, each repeating one
message of the mix (arithmetic, the time, remember, recall, a plain message), so that one session's lock
is not the bottleneck.

1. RATE requests/s for DURATION: every response must be 200 and the p99 latency under the bar. Prints
   p50/p95/p99/max, the server's CPU (from /proc/<pid>/stat, in cores), the whole machine's CPU (hey runs
   on the same cores), and the server's peak resident memory (VmHWM).
2. Steps the rate up from STEP_START by STEP_SIZE, STEP_DURATION each, and reports the highest rate
   whose step had no error, a p99 under the bar and an achieved rate within 5% of its target.

Exits 1 when a bar of part 1 is missed (part 2 is reported, not judged).

options:
  --rate N             requests/s of part 1 (default 1000)
  --duration S         seconds of part 1 (default 30)
  --sessions N         sessions, one hey process each (default 10)
  --concurrency N      hey workers in total (default 50; the steps use at least rate/20)
  --p99-bar MS         the p99 bar, in ms (default 50)
  --step-start N       first rate of part 2 (default 1000)
  --step-size N        rate increment of part 2 (default 1000)
  --step-duration S    seconds per step (default 10)
  --max-rate N         last rate tried (default 20000)
  --no-search          skip part 2
  --llm-rate N         the model's rate limit during the run (default 1000000); the development
                       configuration's 5,000 calls/s, two per tool message, would answer 429 from
                       about 2,700 messages/s and hide the server's own limit
  --quick              short durations for CI (5 s, steps of 3 s up to 3000/s); also EVIDENCE_QUICK=1
  --keep               keep the working directory (logs, hey output, audit file)
  -h, --help           this text

Honours CARGO_TARGET_DIR. Installs hey with apt-get when missing.
EOF
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rate=1000
duration=30
sessions=10
concurrency=50
p99_bar=50
step_start=1000
step_size=1000
step_duration=10
max_rate=20000
search=1
llm_rate=1000000
quick="${EVIDENCE_QUICK:-0}"

while (($# > 0)); do
    case "$1" in
        --rate) rate="${2:?--rate needs a number}"; shift 2 ;;
        --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
        --sessions) sessions="${2:?--sessions needs a number}"; shift 2 ;;
        --concurrency) concurrency="${2:?--concurrency needs a number}"; shift 2 ;;
        --p99-bar) p99_bar="${2:?--p99-bar needs ms}"; shift 2 ;;
        --step-start) step_start="${2:?--step-start needs a number}"; shift 2 ;;
        --step-size) step_size="${2:?--step-size needs a number}"; shift 2 ;;
        --step-duration) step_duration="${2:?--step-duration needs seconds}"; shift 2 ;;
        --max-rate) max_rate="${2:?--max-rate needs a number}"; shift 2 ;;
        --no-search) search=0; shift ;;
        --llm-rate) llm_rate="${2:?--llm-rate needs a number}"; shift 2 ;;
        *) common_option "$1"; shift ;;
    esac
done
if [[ "$quick" == 1 ]]; then
    duration=5
    step_duration=3
    max_rate=3000
fi

need_commands hey curl python3
build_server normal
evidence_init

start_server load HARDENED_RATE__LLM__PER_SECOND="$llm_rate" HARDENED_RATE__LLM__BURST="$llm_rate"
pid="${SERVER_PID[load]}"
open_sessions load "$sessions"

log "warming up: 2 s at $rate requests/s"
run_load load "$WORK_DIR/warmup" "$rate" 2 "$concurrency"
wait_load

log "part 1: $rate requests/s for $duration s over $sessions sessions"
ticks_before="$(cpu_ticks "$pid")"
machine_before="$(machine_ticks)"
started="$(now)"
run_load load "$WORK_DIR/run" "$rate" "$duration" "$concurrency"
wait_load
elapsed="$(elapsed_since "$started")"
ticks_after="$(cpu_ticks "$pid")"
machine_after="$(machine_ticks)"
eval "$(load_stats "$WORK_DIR/run" "$elapsed" "$LOAD_EXPECTED")"
server_cores="$(cores "$ticks_before" "$ticks_after" "$elapsed")"
all_cores="$(machine_cores "$machine_before" "$machine_after" "$elapsed")"
memory="$(peak_rss_mib "$pid")"

heading "agent-server at $rate requests/s for $duration s ($sessions sessions, $concurrency hey workers, $(nproc) cores)"
row "requests sent" "$LOAD_EXPECTED"
row "responses 200" "$LOAD_OK"
row "responses not 200" "$LOAD_NON_OK"
row "requests without a response" "$LOAD_MISSING"
row "achieved rate (200s per second)" "$LOAD_RPS"
row "latency p50 / p95 / p99 / max (ms)" "$LOAD_P50 / $LOAD_P95 / $LOAD_P99 / $LOAD_MAX"
row "server CPU (cores)" "$server_cores"
row "machine CPU, hey included (cores)" "$all_cores of $(nproc)"
row "server peak memory, VmHWM (MiB)" "$memory"
echo
bar "zero errors at $rate requests/s (all 200)" eq "$LOAD_ERRORS" 0
bar "p99 under $p99_bar ms at $rate requests/s (p99 $LOAD_P99 ms)" lt "$LOAD_P99" "$p99_bar"

if [[ "$search" == 1 ]]; then
    log "part 2: stepping the rate up from $step_start by $step_size, $step_duration s each"
    best=0
    heading "highest rate with p99 under $p99_bar ms ($step_duration s per step)"
    printf '  %8s %9s %8s %8s %8s %7s %10s\n' "target" "achieved" "p50 ms" "p99 ms" "max ms" "errors" "CPU cores"
    for ((step = step_start; step <= max_rate; step += step_size)); do
        workers=$((step / 20 > concurrency ? step / 20 : concurrency))
        ticks_before="$(cpu_ticks "$pid")"
        started="$(now)"
        run_load load "$WORK_DIR/step-$step" "$step" "$step_duration" "$workers"
        wait_load
        elapsed="$(elapsed_since "$started")"
        ticks_after="$(cpu_ticks "$pid")"
        eval "$(load_stats "$WORK_DIR/step-$step" "$elapsed" "$LOAD_EXPECTED")"
        printf '  %8s %9s %8s %8s %8s %7s %10s\n' "$step" "$LOAD_RPS" "$LOAD_P50" "$LOAD_P99" "$LOAD_MAX" "$LOAD_ERRORS" \
            "$(cores "$ticks_before" "$ticks_after" "$elapsed")"
        if ((LOAD_ERRORS > 0)) || ! lt "$LOAD_P99" "$p99_bar" || ! ge "$LOAD_RPS" "$(awk -v s="$step" 'BEGIN { print s * 0.95 }')"; then
            break
        fi
        best="$step"
    done
    echo
    row "highest rate meeting the bar (requests/s)" "$best"
    row "server peak memory after the steps (MiB)" "$(peak_rss_mib "$pid")"
fi

stop_server load
heading "shutdown"
row "exit status after SIGTERM" "$STOP_STATUS"
bar "the server exits 0 after SIGTERM" eq "$STOP_STATUS" 0

evidence_verdict
