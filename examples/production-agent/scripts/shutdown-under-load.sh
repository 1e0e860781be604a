#!/usr/bin/env bash
# SIGTERM in the middle of a load run: every request accepted before the listener closed completes, no
# connection is reset, the process exits 0 within its deadline, and the audit trail holds exactly one
# `UserMessage` per message answered 200 and verifies.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/production-agent/scripts/shutdown-under-load.sh [options]

Starts one agent-server (JSONL audit in a temporary directory) with a pre-stop delay, sends messages over
several sessions with hey at RATE requests/s for DURATION, and sends SIGTERM SIGNAL_AT seconds in. Checks:

  - right after the signal, /health/ready answers 503 and responses carry `Connection: close`;
  - hey's only errors are "connection refused" (requests started after the listener closed): a reset,
    an end of file or any other transport error fails, and so does any status other than 200;
  - every request hey sent is accounted for (200 or refused);
  - the process exits 0, within the shutdown deadline;
  - the audit file holds exactly one `UserMessage` record per message answered 200 (the load's and the
    one each session was opened with), every other event type as many records as those requests
    produce, and `agent-server audit verify` passes on it.

options:
  --rate N           requests/s (default 300)
  --duration S       seconds of load (default 10)
  --signal-at S      seconds into the load when SIGTERM is sent (default 5)
  --pre-stop D       HARDENED_SHUTDOWN__PRE_STOP_DELAY (default 2s)
  --deadline D       HARDENED_SHUTDOWN__DEADLINE (default 15s, as in the development configuration)
  --sessions N       sessions, one hey process each (default 10)
  --concurrency N    hey workers in total (default 30)
  --quick            a shorter run for CI (8 s, SIGTERM at 3 s); also EVIDENCE_QUICK=1
  --keep             keep the working directory
  -h, --help         this text

Honours CARGO_TARGET_DIR. Installs hey with apt-get when missing.
EOF
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rate=300
duration=10
signal_at=5
pre_stop=2s
deadline=15s
sessions=10
concurrency=30
quick="${EVIDENCE_QUICK:-0}"

while (($# > 0)); do
    case "$1" in
        --rate) rate="${2:?--rate needs a number}"; shift 2 ;;
        --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
        --signal-at) signal_at="${2:?--signal-at needs seconds}"; shift 2 ;;
        --pre-stop) pre_stop="${2:?--pre-stop needs a duration}"; shift 2 ;;
        --deadline) deadline="${2:?--deadline needs a duration}"; shift 2 ;;
        --sessions) sessions="${2:?--sessions needs a number}"; shift 2 ;;
        --concurrency) concurrency="${2:?--concurrency needs a number}"; shift 2 ;;
        *) common_option "$1"; shift ;;
    esac
done
if [[ "$quick" == 1 ]]; then
    duration=8
    signal_at=3
fi
deadline_seconds="$(python3 -c 'import re, sys; v, u = re.fullmatch(r"([\d.]+)(ms|s|m)?", sys.argv[1]).groups(); print(float(v) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[u])' "$deadline")"

need_commands hey curl python3
build_server normal
evidence_init

start_server agent HARDENED_SHUTDOWN__PRE_STOP_DELAY="$pre_stop" HARDENED_SHUTDOWN__DEADLINE="$deadline"
pid="${SERVER_PID[agent]}"
audit_file="${SERVER_DIR[agent]}/data/audit/audit.jsonl"
open_sessions agent "$sessions"

log "load: $rate requests/s for $duration s; SIGTERM at $signal_at s (pre-stop delay $pre_stop)"
run_load agent "$WORK_DIR/load" "$rate" "$duration" "$concurrency" summary
sleep "$signal_at"
kill -TERM "$pid"
signalled="$(now)"
sleep 0.2
ready_status="$(http_status GET agent /health/ready)"
closing_header="$(curl -s -o /dev/null -D - --max-time 5 "$(url agent /health/live)" | tr -d '\r' |
    awk -F': *' 'tolower($1) == "connection" { print tolower($2) }')"
STOP_STATUS=0
wait "$pid" || STOP_STATUS=$?
exit_seconds="$(elapsed_since "$signalled")"
wait_load
eval "$(hey_outcomes "$WORK_DIR/load")"
accounted=$((HEY_OK + HEY_NON_OK + HEY_REFUSED + HEY_BROKEN))
setup="${SETUP_MESSAGES[agent]}"
records="$(count_events "$audit_file" UserMessage)"
verify_output="$(audit_verify AGENT_AUDIT_PATH="$audit_file")" && verified=0 || verified=$?
unclean="$(grep -c 'did not finish cleanly' "${SERVER_LOG[agent]}" || true)"

heading "SIGTERM under load: $rate requests/s, signal at $signal_at s, pre-stop $pre_stop, deadline $deadline"
row "/health/ready 0.2 s after the signal" "$ready_status"
row "Connection header 0.2 s after the signal" "${closing_header:-none}"
row "requests sent" "$LOAD_EXPECTED"
row "responses 200" "$HEY_OK"
row "responses not 200" "$HEY_NON_OK"
row "connection refused (after the listener closed)" "$HEY_REFUSED"
row "resets, EOFs and other transport errors" "$HEY_BROKEN${HEY_BROKEN_KINDS:+ ($HEY_BROKEN_KINDS)}"
row "exit status" "$STOP_STATUS"
row "signal to exit (s)" "$exit_seconds"
row "UserMessage records in the audit file" "$records"
row "messages answered 200 (load + session setup)" "$((HEY_OK + setup))"
row "audit verify" "$(printf '%s' "$verify_output" | tail -1)"
heading "audit records by event type"
compare_events "$(expected_events "$WORK_DIR/load" "$sessions")" "$(jsonl_event_counts "$audit_file")"
echo
bar "/health/ready answers 503 once the signal is received" eq "$ready_status" 503
bar "responses carry Connection: close during the pre-stop delay" eq "$closing_header" close
bar "no reset, EOF or other transport error" eq "$HEY_BROKEN" 0
bar "every response is 200" eq "$HEY_NON_OK" 0
bar "every request is accounted for (200 or refused)" eq "$accounted" "$LOAD_EXPECTED"
bar "the process exits 0" eq "$STOP_STATUS" 0
bar "the process exits within the deadline ($deadline)" lt "$exit_seconds" "$deadline_seconds"
bar "the shutdown reports itself clean" eq "$unclean" 0
bar "one UserMessage record per message answered 200" eq "$records" "$((HEY_OK + setup))"
bar "every event type: records = what the answered requests produced" eq "$EVENTS_MISMATCHED" 0
bar "agent-server audit verify passes" eq "$verified" 0

evidence_verdict
