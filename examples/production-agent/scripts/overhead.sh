#!/usr/bin/env bash
# What hardened costs agent-server: the same load against the normal build and the build with every
# `#[hardened]` compiled out (`--cfg hardened_disabled`, which also skips the request layers and the
# explicit audit events), in one run.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/production-agent/scripts/overhead.sh [options]

Builds agent-server twice (release): normal, and with RUSTFLAGS="--cfg hardened_disabled" into
<target>/bare. Then, ROUNDS times, alternating normal and bare, each on a fresh server with the same
sessions and message mix as load.sh:

  (a) maximum throughput: hey unthrottled, CONCURRENCY workers, for DURATION; responses 200 per second;
  (b) latency at a fixed rate: RATE requests/s for DURATION; p50/p99, and the server's CPU (cores) at
      that rate, from /proc/<pid>/stat.

Takes the better of the rounds for each build (highest throughput, lowest p99, lowest CPU), to reduce the
noise of a small machine, and prints the server's CPU per request answered (microseconds) in each build
at the fixed rate, the CPU hardened adds per message (normal - bare), and, as information, the throughput
cost of hardened, (bare - normal) / bare, and the CPU cost at the fixed rate. Exits 1 when the CPU added
per message exceeds --max-added-us, or when a request failed.

hey runs on the same cores as the server: on a small machine the unthrottled throughput measures the
server and hey together, which dilutes the server's own cost; the CPU at a fixed rate measures the
server alone.

options:
  --max-added-us N   the server CPU hardened may add per message, in microseconds (default 35; 45 with
                     --quick, whose short runs are noisier)
  --rate N           requests/s of (b) (default 1000)
  --duration S       seconds of each measurement (default 20)
  --concurrency N    hey workers in total for (a) and (b) (default 50)
  --sessions N       sessions, one hey process each (default 10)
  --rounds N         measurements of each build, alternating (default 2)
  --llm-rate N       the model's rate limit for both builds (default 1000000; the normal build would
                     otherwise answer 429 above 5,000 model calls/s, which the bare build, without its
                     guards, never does)
  --env VAR=value    also set VAR for both builds (repeatable), such as
                     HARDENED_TELEMETRY__SAMPLE_RATIO=0.1 (the production configuration's sampling;
                     the development configuration samples every trace)
  --bin PATH         measure this agent-server as the normal build instead of building it
  --bare-bin PATH    the same for the bare build; given an earlier normal build instead, the run
                     compares two commits ("hardened adds" is then what the newer one adds)
  --quick            5 s measurements for CI; also EVIDENCE_QUICK=1
  --keep             keep the working directory
  -h, --help         this text

Honours CARGO_TARGET_DIR; AGENT_BARE_TARGET_DIR overrides where the bare build goes. Installs hey with
apt-get when missing.
EOF
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

max_added_us=""
rate=1000
duration=20
concurrency=50
sessions=10
rounds=2
normal_bin=""
bare_bin=""
llm_rate=1000000
quick="${EVIDENCE_QUICK:-0}"
extra_env=()

while (($# > 0)); do
    case "$1" in
        --max-added-us) max_added_us="${2:?--max-added-us needs microseconds}"; shift 2 ;;
        --rate) rate="${2:?--rate needs a number}"; shift 2 ;;
        --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
        --concurrency) concurrency="${2:?--concurrency needs a number}"; shift 2 ;;
        --sessions) sessions="${2:?--sessions needs a number}"; shift 2 ;;
        --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
        --llm-rate) llm_rate="${2:?--llm-rate needs a number}"; shift 2 ;;
        --env) extra_env+=("${2:?--env needs VAR=value}"); shift 2 ;;
        --bin) normal_bin="${2:?--bin needs a path}"; shift 2 ;;
        --bare-bin) bare_bin="${2:?--bare-bin needs a path}"; shift 2 ;;
        *) common_option "$1"; shift ;;
    esac
done
if [[ "$quick" == 1 ]]; then
    duration=5
fi
if [[ -z "$max_added_us" ]]; then
    max_added_us=35
    [[ "$quick" == 1 ]] && max_added_us=45
fi

need_commands hey curl python3
given_or_built_servers "$normal_bin" "$bare_bin"
evidence_init

declare -A best_rps=([normal]=0 [bare]=0) best_p99=([normal]=999999 [bare]=999999) best_p50=() best_cpu=() best_us=()
errors=0

if ((${#extra_env[@]} > 0)); then
    log "both builds run with ${extra_env[*]}"
fi
heading "runs (throughput: unthrottled, $concurrency workers, $duration s; latency: $rate requests/s, $duration s)"
printf '  %-8s %-6s %12s %10s %10s %12s %9s\n' "round" "build" "throughput" "p50 ms" "p99 ms" "CPU cores" "errors"
for ((round = 1; round <= rounds; round++)); do
    for flavour in normal bare; do
        name="$flavour-$round"
        bin="$AGENT_BIN"
        [[ "$flavour" == bare ]] && bin="$BARE_BIN"
        start_server "$name" --bin "$bin" HARDENED_RATE__LLM__PER_SECOND="$llm_rate" HARDENED_RATE__LLM__BURST="$llm_rate" \
            "${extra_env[@]}"
        pid="${SERVER_PID[$name]}"
        open_sessions "$name" "$sessions"
        run_load "$name" "$WORK_DIR/$name-warmup" "$rate" 2 "$concurrency"
        wait_load

        run_load "$name" "$WORK_DIR/$name-max" 0 "$duration" "$concurrency"
        wait_load
        eval "$(load_stats "$WORK_DIR/$name-max" "$duration")"
        throughput="$LOAD_RPS"
        run_errors="$LOAD_NON_OK"

        ticks_before="$(cpu_ticks "$pid")"
        started="$(now)"
        run_load "$name" "$WORK_DIR/$name-rate" "$rate" "$duration" "$concurrency"
        wait_load
        elapsed="$(elapsed_since "$started")"
        ticks_after="$(cpu_ticks "$pid")"
        eval "$(load_stats "$WORK_DIR/$name-rate" "$elapsed" "$LOAD_EXPECTED")"
        cpu="$(cores "$ticks_before" "$ticks_after" "$elapsed")"
        # The server's CPU per request answered, in microseconds: what hardened adds to each request,
        # whatever else the machine runs.
        us_per_request="$(us_per_message "$ticks_before" "$ticks_after" "$LOAD_OK")"
        run_errors=$((run_errors + LOAD_ERRORS))
        errors=$((errors + run_errors))
        stop_server "$name"

        printf '  %-8s %-6s %12s %10s %10s %12s %9s\n' "$round" "$flavour" "$throughput" "$LOAD_P50" "$LOAD_P99" "$cpu" "$run_errors"
        if ((throughput > best_rps[$flavour])); then
            best_rps[$flavour]="$throughput"
        fi
        if lt "$LOAD_P99" "${best_p99[$flavour]}"; then
            best_p99[$flavour]="$LOAD_P99"
            best_p50[$flavour]="$LOAD_P50"
        fi
        if [[ -z "${best_cpu[$flavour]:-}" ]] || lt "$cpu" "${best_cpu[$flavour]}"; then
            best_cpu[$flavour]="$cpu"
        fi
        if [[ -z "${best_us[$flavour]:-}" ]] || lt "$us_per_request" "${best_us[$flavour]}"; then
            best_us[$flavour]="$us_per_request"
        fi
    done
done

cost="$(awk -v n="${best_rps[normal]}" -v b="${best_rps[bare]}" 'BEGIN { printf "%.1f", (b - n) / b * 100 }')"
ratio="$(awk -v n="${best_rps[normal]}" -v b="${best_rps[bare]}" 'BEGIN { printf "%.3f", n / b }')"
cpu_cost="$(awk -v n="${best_cpu[normal]}" -v b="${best_cpu[bare]}" 'BEGIN { if (b > 0) printf "%.0f", (n - b) / b * 100; else print "n/a" }')"

heading "hardened's cost (better of $rounds rounds each)"
printf '  %-40s %12s %12s\n' "" "normal" "bare"
printf '  %-40s %12s %12s\n' "max throughput (responses/s)" "${best_rps[normal]}" "${best_rps[bare]}"
printf '  %-40s %12s %12s\n' "p50 at $rate requests/s (ms)" "${best_p50[normal]}" "${best_p50[bare]}"
printf '  %-40s %12s %12s\n' "p99 at $rate requests/s (ms)" "${best_p99[normal]}" "${best_p99[bare]}"
printf '  %-40s %12s %12s\n' "server CPU at $rate requests/s (cores)" "${best_cpu[normal]}" "${best_cpu[bare]}"
printf '  %-40s %12s %12s\n' "server CPU per request (us)" "${best_us[normal]}" "${best_us[bare]}"
echo
row "throughput normal / bare" "$ratio"
row "throughput cost of hardened" "$cost %"
row "server CPU cost at $rate requests/s" "$cpu_cost %"
added_us="$(awk -v n="${best_us[normal]}" -v b="${best_us[bare]}" 'BEGIN { printf "%.1f", n - b }')"
row "server CPU hardened adds per request" "$added_us us"
echo
bar "server CPU hardened adds per message at most $max_added_us us" le "$added_us" "$max_added_us"
bar "no request failed" eq "$errors" 0

evidence_verdict
