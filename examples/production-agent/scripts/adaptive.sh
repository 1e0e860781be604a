#!/usr/bin/env bash
# The adaptive concurrency limit of the `faulty` tool moving with the latency the fault injection gives it.
set -euo pipefail

usage() {
    cat <<'EOF_USAGE'
usage: examples/production-agent/scripts/adaptive.sh [options]

Runs agent-server with the `faulty` tool's concurrency limit (`[concurrency.faulty]`, gradient, from 4 to
200) and keeps --concurrency messages calling the tool in flight, while the fault injection
(PUT /v1/admin/faults) gives the tool a latency of 20 ms, then 200 ms, then 20 ms again, a third of the
run each. Every 250 ms it reads hardened_concurrency_limit, hardened_concurrency_rtt_seconds and
hardened_concurrency_in_flight of `faulty` from /metrics into limit.csv, and draws them with matplotlib
into docs/images/adaptive-limit.png (installed with pip when missing).

Bars: the limit falls while the latency is 200 ms (its lowest in the middle third is under its highest
in the first third) and rises again once it is back to 20 ms (its highest in the last third is over its
lowest in the middle third); it stays within 4 and 200 throughout.

options:
  --duration S       seconds of load, a third per latency (default 30)
  --concurrency N    messages in flight, one session each (default 40)
  --plot PATH        where to draw the plot (default docs/images/adaptive-limit.png)
  --quick            15 s of load
  --keep             keep the working directory
  -h, --help         this text

Honours CARGO_TARGET_DIR. Installs hey with apt-get when missing.
EOF_USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=30
concurrency=40
plot="$WORKSPACE_DIR/docs/images/adaptive-limit.png"
quick=0
while (($# > 0)); do
    case "$1" in
        --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
        --concurrency) concurrency="${2:?--concurrency needs a number}"; shift 2 ;;
        --plot) plot="${2:?--plot needs a path}"; shift 2 ;;
        *) common_option "$1"; shift ;;
    esac
done
[[ "$quick" == 1 ]] && duration=15

need_commands hey curl python3
build_server normal
evidence_init

start_server adaptive \
    HARDENED_CONCURRENCY__FAULTY__LIMIT=gradient HARDENED_CONCURRENCY__FAULTY__MIN=4 \
    HARDENED_CONCURRENCY__FAULTY__MAX=200 HARDENED_CONCURRENCY__FAULTY__WAIT=10s \
    HARDENED_CONCURRENCY__MESSAGES__LIMIT=1000 HARDENED_BULKHEAD__MESSAGES_PER_KEY__MAX=1000
set_latency() {
    api PUT adaptive /v1/admin/faults "{\"failure_percent\": 0, \"latency_ms\": $1}" >/dev/null
    log "the faulty tool now takes $1 ms"
}
set_latency 20
open_sessions adaptive "$concurrency"
MESSAGE_MIX=("inject a fault")
third=$((duration / 3))
csv="$WORK_DIR/limit.csv"
echo "seconds,latency_ms,limit,rtt_seconds,in_flight" >"$csv"

run_load adaptive "$WORK_DIR/load" 0 "$duration" "$concurrency" summary
started="$(now)"
latency=20
while true; do
    elapsed="$(elapsed_since "$started")"
    lt "$elapsed" "$duration" || break
    if [[ "$latency" == 20 ]] && ge "$elapsed" "$third" && lt "$elapsed" "$((2 * third))"; then
        latency=200
        set_latency 200
    elif [[ "$latency" == 200 ]] && ge "$elapsed" "$((2 * third))"; then
        latency=20
        set_latency 20
    fi
    metrics="$(curl -s --max-time 2 "$(url adaptive /metrics)")"
    read -r limit rtt in_flight < <(awk '
        /^hardened_concurrency_limit\{name="faulty"\} / { limit = $2 }
        /^hardened_concurrency_rtt_seconds\{name="faulty"\} / { rtt = $2 }
        /^hardened_concurrency_in_flight\{name="faulty"\} / { in_flight = $2 }
        END { print limit + 0, rtt + 0, in_flight + 0 }' <<<"$metrics")
    echo "$elapsed,$latency,$limit,$rtt,$in_flight" >>"$csv"
    sleep 0.25
done
wait_load
stop_server adaptive

python3 -c 'import matplotlib' 2>/dev/null || {
    log "installing matplotlib"
    python3 -m pip install --quiet --break-system-packages matplotlib >/dev/null 2>&1 ||
        python3 -m pip install --quiet matplotlib >/dev/null
}
mkdir -p "$(dirname "$plot")"
read -r first_max middle_min last_max lowest highest < <(python3 - "$csv" "$plot" "$third" <<'PLOT'
import csv, sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

rows = [{key: float(value) for key, value in row.items()} for row in csv.DictReader(open(sys.argv[1]))]
third = float(sys.argv[3])
seconds = [row["seconds"] for row in rows]
limits = [row["limit"] for row in rows]
figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 5.5))
top.plot(seconds, limits, label="limit (hardened_concurrency_limit)", color="tab:blue")
top.plot(seconds, [row["in_flight"] for row in rows], label="in flight", color="tab:green", alpha=0.6)
top.set_ylabel("calls")
top.legend(loc="upper right")
top.set_title("The gradient limit of the faulty tool, under 40 messages in flight")
bottom.plot(seconds, [row["rtt_seconds"] * 1000 for row in rows], label="observed round trip", color="tab:red")
bottom.step(seconds, [row["latency_ms"] for row in rows], where="post", label="injected latency", color="gray", linestyle="--")
bottom.set_ylabel("ms")
bottom.set_xlabel("seconds")
bottom.legend(loc="upper right")
figure.tight_layout()
figure.savefig(sys.argv[2], dpi=100)

def part(low, high):
    return [row["limit"] for row in rows if low <= row["seconds"] < high and row["limit"] > 0] or [0]

print(max(part(0, third)), min(part(third, 2 * third)), max(part(2 * third, 1e9)), min(limits), max(limits))
PLOT
)
log "plot: $plot; samples: $csv"

heading "the faulty tool's gradient limit, latency 20 ms, 200 ms, 20 ms"
row "highest limit, first third (20 ms)" "$first_max"
row "lowest limit, middle third (200 ms)" "$middle_min"
row "highest limit, last third (20 ms again)" "$last_max"
bar "the limit falls while the latency is 200 ms" lt "$middle_min" "$first_max"
bar "the limit rises again once the latency is back to 20 ms" lt "$middle_min" "$last_max"
bar "the limit stays within min 4 and max 200" eval "ge $lowest 4 && le $highest 200"
evidence_verdict
