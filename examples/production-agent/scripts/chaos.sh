#!/usr/bin/env bash
# Faults: (a) a failing, slow tool behind its circuit breaker; (b) the audit database stopped under load.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/production-agent/scripts/chaos.sh [options]

(a) Breaker. Sets the `faulty` tool to fail every call after 200 ms (PUT /v1/admin/faults) and sends
    messages that call it, one at a time. Its breaker (failure_rate 50, window 20, min_calls 10,
    open_for 5s, half_open_calls 3) must open within its window; then calls are refused at once (the
    tool's outcome says so, and the request takes far less than the 200 ms fault); /health shows
    `breakers` degraded while /health/ready stays 200. Then the faults are cleared and messages keep
    coming, one every 100 ms: the breaker must close again (hardened_circuit_breaker_state{name="faulty"}
    back to 0) within open_for plus a small margin for the half-open probes. Prints how long it took.

(b) PostgreSQL outage. Starts a private PostgreSQL cluster (initdb in a temporary directory, trust
    authentication, a free port; the machine's own PostgreSQL is not touched), runs agent-server with
    DATABASE_URL pointing at it, sends load, stops the cluster (pg_ctl stop -m fast) for part of the run and
    starts it again, keeps sending throughout. Every request must be answered 200; events must spill to
    disk while the database is down; after SIGTERM (which flushes) the table must hold every event
    exactly once: per event type, the rows equal what the requests produced (UserMessage = messages
    answered 200, SessionStart = sessions opened, AuthenticationAttempt = API requests, and so on), no
    id twice, and `agent-server audit verify` passes against the database.

options:
  --margin S         seconds allowed beyond open_for for the breaker to close (default 1.0)
  --rate N           requests/s of part (b) (default 200)
  --duration S       seconds of load of part (b) (default 20); the database is down from 1/4 to 3/4 of it
  --sessions N       sessions of part (b) (default 5)
  --only a|b         run one part
  --quick            part (b) shorter (8 s at 100 requests/s) for CI; also EVIDENCE_QUICK=1
  --keep             keep the working directory
  -h, --help         this text

Honours CARGO_TARGET_DIR. Installs hey and the PostgreSQL client with apt-get when missing; part (b)
needs the PostgreSQL server programs (initdb, pg_ctl) and, as root, the `postgres` user.
EOF
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

margin=1.0
rate=200
duration=20
sessions=5
only=""
quick="${EVIDENCE_QUICK:-0}"

while (($# > 0)); do
    case "$1" in
        --margin) margin="${2:?--margin needs seconds}"; shift 2 ;;
        --rate) rate="${2:?--rate needs a number}"; shift 2 ;;
        --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
        --sessions) sessions="${2:?--sessions needs a number}"; shift 2 ;;
        --only) only="${2:?--only needs a or b}"; shift 2 ;;
        *) common_option "$1"; shift ;;
    esac
done
if [[ "$quick" == 1 ]]; then
    rate=100
    duration=8
fi

# The breaker of the `faulty` tool, as `tools/mod.rs` and config/development/hardened.toml declare it.
OPEN_FOR=5
WINDOW=20
FAULT_LATENCY_MS=200
BREAKER_SERIES='hardened_circuit_breaker_state{name="faulty"}'

need_commands hey curl python3
build_server normal
evidence_init

# One message that calls the faulty tool: sets FAULT_MS (the request's time), FAULT_OK (the tool's `ok`)
# and FAULT_OUTPUT (what it said). Plain curl and bash, so that the loop keeps pace with the breaker.
fault_message() {
    local response pattern='"ok":(true|false),"output":"([^"]*)"'
    response="$(curl -sS --max-time 10 -w '\n%{time_total}' -X POST -H "Authorization: Bearer $API_KEY" \
        -H 'Content-Type: application/json' -d '{"content": "inject a fault"}' \
        "$(url "$1" "/v1/sessions/$2/messages")")"
    FAULT_MS="$(tail -1 <<<"$response" | awk '{ printf "%.1f", $1 * 1000 }')"
    if [[ "$response" =~ $pattern ]]; then
        FAULT_OK="${BASH_REMATCH[1]}"
        FAULT_OUTPUT="${BASH_REMATCH[2]}"
    else
        FAULT_OK=false
        FAULT_OUTPUT="no tool ran: $(head -1 <<<"$response")"
    fi
}

# The status of one component in /health of server $1: `component_status NAME COMPONENT`.
component_status() {
    curl -s --max-time 5 "$(url "$1" /health)" | python3 -c '
import json, sys
print(json.load(sys.stdin).get("checks", {}).get(sys.argv[1], {}).get("status", "absent"))' "$2"
}

part_a() {
    local session calls=0 opened_at="" refused_max=0 refusals=0 cleared_at closed_at="" state health ready
    start_server breaker
    session="$(api POST breaker /v1/sessions | json_field id)"
    api PUT breaker /v1/admin/faults "{\"failure_percent\": 100, \"latency_ms\": $FAULT_LATENCY_MS}" >/dev/null

    # Failing calls until the first refusal.
    while ((calls < 2 * WINDOW)); do
        fault_message breaker "$session"
        if [[ "$FAULT_OUTPUT" == refused:* ]]; then
            opened_at="$(now)"
            break
        fi
        calls=$((calls + 1))
    done
    state="$(metric breaker "$BREAKER_SERIES")"
    log "breaker refused after $calls failing calls: $FAULT_OUTPUT"

    # Refusals are fast.
    refused_max="$FAULT_MS"
    refusals=1
    for _ in $(seq 9); do
        fault_message breaker "$session"
        if [[ "$FAULT_OUTPUT" == refused:* ]]; then
            refusals=$((refusals + 1))
        fi
        if lt "$refused_max" "$FAULT_MS"; then
            refused_max="$FAULT_MS"
        fi
    done
    sleep 1.1 # /health caches its checks for up to 1 s
    health="$(component_status breaker breakers)"
    ready="$(http_status GET breaker /health/ready)"

    # Faults cleared: messages every 100 ms until the breaker closes.
    api PUT breaker /v1/admin/faults '{"failure_percent": 0, "latency_ms": 0}' >/dev/null
    cleared_at="$(now)"
    local deadline=$((SECONDS + OPEN_FOR + 15)) probes=0
    while ((SECONDS < deadline)); do
        fault_message breaker "$session"
        if [[ "$FAULT_OK" == true ]]; then
            probes=$((probes + 1))
        fi
        if [[ "$(metric breaker "$BREAKER_SERIES")" == 0 ]]; then
            closed_at="$(now)"
            break
        fi
        sleep 0.1
    done
    local open_seconds="" since_cleared="" cleared_after=""
    if [[ -n "$opened_at" ]]; then
        cleared_after="$(awk -v a="$opened_at" -v b="$cleared_at" 'BEGIN { printf "%.2f", b - a }')"
    fi
    if [[ -n "$closed_at" && -n "$opened_at" ]]; then
        open_seconds="$(awk -v a="$opened_at" -v b="$closed_at" 'BEGIN { printf "%.2f", b - a }')"
        since_cleared="$(awk -v a="$cleared_at" -v b="$closed_at" 'BEGIN { printf "%.2f", b - a }')"
    fi
    local health_after
    sleep 1.1
    health_after="$(component_status breaker breakers)"
    stop_server breaker

    heading "(a) the faulty tool's breaker (100% failures, $FAULT_LATENCY_MS ms each)"
    row "failing calls before the first refusal" "$calls (window $WINDOW, min_calls 10)"
    row "breaker state once refusing (1 = open)" "$state"
    row "refused calls / slowest refused request (ms)" "$refusals of 10 / $refused_max"
    row "/health component breakers while open" "$health"
    row "/health/ready while open" "$ready"
    row "faults cleared, after the first refusal (s)" "$cleared_after"
    row "successful calls until closed" "$probes"
    row "first refusal to closed (s)" "${open_seconds:-never closed}"
    row "faults cleared to closed (s)" "${since_cleared:-never closed}"
    row "/health component breakers after closing" "$health_after"
    echo
    bar "the breaker opens within its window ($WINDOW calls)" test -n "$opened_at" -a "$calls" -le "$WINDOW"
    bar "the breaker's state is 1 (open) once it refuses" eq "$state" 1
    bar "every call while open is refused" eq "$refusals" 10
    bar "a refused request takes under 50 ms (fault: $FAULT_LATENCY_MS ms)" lt "$refused_max" 50
    bar "/health shows breakers degraded while open" eq "$health" degraded
    bar "/health/ready stays 200 while open" eq "$ready" 200
    bar "the breaker closes within open_for + $margin s (${OPEN_FOR} s)" \
        le "${open_seconds:-999}" "$(awk -v a="$OPEN_FOR" -v b="$margin" 'BEGIN { print a + b }')"
    bar "/health shows breakers healthy once closed" eq "$health_after" healthy
}

part_b() {
    local dir spill_files=0 spill_logs ready_down quarter outage_start outage_end
    pg_private_start
    start_server outage DATABASE_URL="$PG_URL" AGENT_INSTANCE=outage
    dir="${SERVER_DIR[outage]}"
    open_sessions outage "$sessions"

    quarter="$(awk -v d="$duration" 'BEGIN { printf "%.1f", d / 4 }')"
    log "load: $rate requests/s for $duration s; PostgreSQL down from $quarter s to $(awk -v d="$duration" 'BEGIN { print d * 3 / 4 }') s"
    run_load outage "$WORK_DIR/outage" "$rate" "$duration" 20
    sleep "$quarter"
    pg_private_ctl stop
    outage_start="$(now)"
    log "PostgreSQL stopped"
    sleep "$quarter"
    spill_files="$(find "$dir/data/audit" -path '*spill*' -type f -size +0 ! -name .lock | wc -l)"
    ready_down="$(http_status GET outage /health/ready)"
    sleep "$quarter"
    pg_private_ctl start
    outage_end="$(now)"
    log "PostgreSQL started again"
    wait_load
    eval "$(load_stats "$WORK_DIR/outage" "$duration" "$LOAD_EXPECTED")"

    # Let the writer replay what it spilled, then stop the server, which flushes.
    local backlog_deadline=$((SECONDS + 60))
    while ((SECONDS < backlog_deadline)); do
        if [[ "$(http_status GET outage /health/ready)" == 200 ]] &&
            [[ "$(find "$dir/data/audit" -path '*spill*' -type f -size +0 ! -name .lock | wc -l)" == 0 ]]; then
            break
        fi
        sleep 0.5
    done
    stop_server outage
    spill_logs="$(grep -ci 'spill' "${SERVER_LOG[outage]}" || true)"
    local leftover
    leftover="$(find "$dir/data/audit" -path '*spill*' -type f -size +0 ! -name .lock | wc -l)"

    local setup="${SETUP_MESSAGES[outage]}" counts user_messages duplicates
    counts="$(psql_at "$PG_URL" "SELECT event_type || ' ' || count(*) FROM audit_log GROUP BY event_type ORDER BY 1")"
    user_messages="$(psql_at "$PG_URL" "SELECT count(*) FROM audit_log WHERE event_type = 'UserMessage'")"
    duplicates="$(psql_at "$PG_URL" "SELECT count(*) - count(DISTINCT id) FROM audit_log")"
    local verify_output verified
    verify_output="$(audit_verify DATABASE_URL="$PG_URL")" && verified=0 || verified=$?

    heading "(b) PostgreSQL stopped for $(awk -v a="$outage_start" -v b="$outage_end" 'BEGIN { printf "%.1f", b - a }') s of a $duration s run at $rate requests/s"
    row "requests sent" "$LOAD_EXPECTED"
    row "responses 200 / not 200 / none" "$LOAD_OK / $LOAD_NON_OK / $LOAD_MISSING"
    row "latency p50 / p99 / max (ms)" "$LOAD_P50 / $LOAD_P99 / $LOAD_MAX"
    row "/health/ready while the database was down" "$ready_down"
    row "non-empty spill files while the database was down" "$spill_files"
    row "server log lines about spilling" "$spill_logs"
    row "spill files left after the shutdown" "$leftover"
    row "exit status after SIGTERM / seconds" "$STOP_STATUS / $STOP_SECONDS"
    row "UserMessage rows / messages answered 200" "$user_messages / $((LOAD_OK + setup))"
    row "ids stored twice" "$duplicates"
    row "audit verify" "$(printf '%s' "$verify_output" | tail -1)"
    heading "rows by event type"
    compare_events "$(expected_events "$WORK_DIR/outage" "$sessions")" "$counts"
    echo
    bar "every request answered 200 while the database was down" eq "$LOAD_ERRORS" 0
    bar "events spilled to disk while the database was down" test "$spill_files" -gt 0
    bar "no spill file left after the shutdown" eq "$leftover" 0
    bar "the server exits 0 after SIGTERM" eq "$STOP_STATUS" 0
    bar "UserMessage rows = messages answered 200" eq "$user_messages" "$((LOAD_OK + setup))"
    bar "every event type: rows = what the requests produced" eq "$EVENTS_MISMATCHED" 0
    bar "no id stored twice" eq "$duplicates" 0
    bar "agent-server audit verify passes against PostgreSQL" eq "$verified" 0
}

if [[ -z "$only" || "$only" == a ]]; then
    part_a
fi
if [[ -z "$only" || "$only" == b ]]; then
    part_b
fi

evidence_verdict
