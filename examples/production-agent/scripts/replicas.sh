#!/usr/bin/env bash
# Three agent-server replicas auditing into one PostgreSQL table, each as its own stream: every event of
# every replica present, and every stream's hash chain verifies.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/production-agent/scripts/replicas.sh [options]

Creates a fresh database (agent_replicas_<time>_<random>) on the machine's PostgreSQL (PGHOST, PGPORT,
PGUSER; by default 127.0.0.1:5432, user postgres, trust authentication) and drops it on exit. Starts
three agent-servers on free ports with DATABASE_URL pointing at it, each with its own AGENT_INSTANCE
(replica-1, replica-2, replica-3), so that each writes its own stream; the table is created by whichever
writes first. Sends load spread over the three, stops them with SIGTERM, then checks:

  - every response was 200, and every replica exited 0;
  - per stream, the UserMessage rows equal the messages that replica answered 200;
  - per stream, the SessionStart rows equal the sessions opened on it, and every other event type as
    many rows as that replica's requests produced;
  - no id is stored twice, and `agent-server audit verify` passes (every stream's chain).

options:
  --rate N         requests/s over the three replicas (default 600)
  --duration S     seconds of load (default 20)
  --sessions N     sessions per replica (default 4)
  --quick          a short run for CI (5 s at 300 requests/s); also EVIDENCE_QUICK=1
  --keep           keep the working directory (and the database)
  -h, --help       this text

Honours CARGO_TARGET_DIR. Installs hey and the PostgreSQL client with apt-get when missing.
EOF
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rate=600
duration=20
sessions=4
quick="${EVIDENCE_QUICK:-0}"
keep_database=0

while (($# > 0)); do
    case "$1" in
        --rate) rate="${2:?--rate needs a number}"; shift 2 ;;
        --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
        --sessions) sessions="${2:?--sessions needs a number}"; shift 2 ;;
        --keep) KEEP_WORK_DIR=1; keep_database=1; shift ;;
        *) common_option "$1"; shift ;;
    esac
done
if [[ "$quick" == 1 ]]; then
    rate=300
    duration=5
fi

REPLICAS=(replica-1 replica-2 replica-3)

need_commands hey curl python3 psql
build_server normal
evidence_init
create_database agent_replicas
if [[ "$keep_database" == 1 ]]; then
    DATABASES=()
    log "keeping database $DB_NAME"
fi

all_pids=()
declare -A expected=()
for replica in "${REPLICAS[@]}"; do
    start_server "$replica" DATABASE_URL="$DB_URL" AGENT_INSTANCE="$replica"
done
for replica in "${REPLICAS[@]}"; do
    open_sessions "$replica" "$sessions"
    per_replica="$(awk -v r="$rate" -v n="${#REPLICAS[@]}" 'BEGIN { printf "%.3f", r / n }')"
    run_load "$replica" "$WORK_DIR/load-$replica" "$per_replica" "$duration" 15
    expected[$replica]="$LOAD_EXPECTED"
    all_pids+=("${LOAD_PIDS[@]}")
done
log "load: $rate requests/s over ${#REPLICAS[@]} replicas for $duration s"
LOAD_PIDS=("${all_pids[@]}")
wait_load

declare -A ok=() exit_status=()
total_errors=0
for replica in "${REPLICAS[@]}"; do
    eval "$(load_stats "$WORK_DIR/load-$replica" "$duration" "${expected[$replica]}")"
    ok[$replica]="$LOAD_OK"
    total_errors=$((total_errors + LOAD_ERRORS))
done
for replica in "${REPLICAS[@]}"; do
    stop_server "$replica"
    exit_status[$replica]="$STOP_STATUS"
done

streams="$(psql_at "$DB_URL" "SELECT count(DISTINCT stream) FROM audit_log")"
duplicates="$(psql_at "$DB_URL" "SELECT count(*) - count(DISTINCT id) FROM audit_log")"
verify_output="$(audit_verify DATABASE_URL="$DB_URL")" && verified=0 || verified=$?

heading "${#REPLICAS[@]} replicas, one audit table: $rate requests/s for $duration s"
printf '  %-12s %9s %13s %15s %15s %6s\n' "replica" "load sent" "answered 200" "UserMessage" "SessionStart" "exit"
declare -A answered=() user_messages=() session_starts=() mismatched=()
for replica in "${REPLICAS[@]}"; do
    # Each start of a replica writes its own stream, agent-server/<instance>/<run>.
    stream="agent-server/$replica/%"
    user_messages[$replica]="$(psql_at "$DB_URL" "SELECT count(*) FROM audit_log WHERE stream LIKE '$stream' AND event_type = 'UserMessage'")"
    session_starts[$replica]="$(psql_at "$DB_URL" "SELECT count(*) FROM audit_log WHERE stream LIKE '$stream' AND event_type = 'SessionStart'")"
    answered[$replica]=$((${ok[$replica]} + ${SETUP_MESSAGES[$replica]}))
    compare_events "$(expected_events "$WORK_DIR/load-$replica" "$sessions")" \
        "$(psql_at "$DB_URL" "SELECT event_type || ' ' || count(*) FROM audit_log WHERE stream LIKE '$stream' GROUP BY event_type")" \
        >"$WORK_DIR/events-$replica.txt"
    mismatched[$replica]="$EVENTS_MISMATCHED"
    printf '  %-12s %9s %13s %15s %15s %6s\n' "$replica" "${expected[$replica]}" "${answered[$replica]}" \
        "${user_messages[$replica]}" "${session_starts[$replica]}" "${exit_status[$replica]}"
done
echo
row "rows in audit_log" "$(psql_at "$DB_URL" "SELECT count(*) FROM audit_log")"
row "streams" "$streams"
row "ids stored twice" "$duplicates"
row "audit verify" "$(printf '%s' "$verify_output" | tail -1)"
echo
for replica in "${REPLICAS[@]}"; do
    bar "$replica: UserMessage rows = messages answered 200 (${answered[$replica]})" \
        eq "${user_messages[$replica]}" "${answered[$replica]}"
    bar "$replica: SessionStart rows = sessions opened ($sessions)" eq "${session_starts[$replica]}" "$sessions"
    bar "$replica: every event type's rows = what its requests produced" eq "${mismatched[$replica]}" 0
    bar "$replica exits 0 after SIGTERM" eq "${exit_status[$replica]}" 0
done
bar "every response 200 on every replica" eq "$total_errors" 0
bar "one stream per replica" eq "$streams" "${#REPLICAS[@]}"
bar "no id stored twice" eq "$duplicates" 0
bar "agent-server audit verify passes (every stream's chain)" eq "$verified" 0

evidence_verdict
