# Helpers shared by the evidence scripts of production-agent: building agent-server, running servers on
# free ports in a temporary directory, driving load with hey, percentiles, process figures, private
# PostgreSQL clusters, bars and the final verdict. Sourced, never run.
#
# A script sets `set -euo pipefail`, sources this file, calls `evidence_init`, and ends with
# `evidence_verdict`, which exits 1 when a bar was missed. Everything started through these helpers (servers,
# hey processes, PostgreSQL clusters, databases) is recorded and stopped on exit, by its own PID.

# shellcheck shell=bash
# shellcheck disable=SC2034  # the globals set here (SERVER_*, STOP_*, LOAD_*, PG_*, DB_*) are read by the scripts

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXAMPLE_DIR="$(cd "$SCRIPTS_DIR/.." && pwd)"
WORKSPACE_DIR="$(cd "$EXAMPLE_DIR/../.." && pwd)"

# The API key every script uses: the development key, an admin.
API_KEY="${AGENT_API_KEY:-dev-key}"

# The messages of a conversation, each triggering a different tool of the scripted model (or none); load
# is spread over them, one session per hey process.
MESSAGE_MIX=(
    "what is 2 + 3 * 4?"
    "what time is it"
    "remember colour is blue"
    "recall colour"
    "hello there"
)

WORK_DIR=""
KEEP_WORK_DIR="${EVIDENCE_KEEP:-0}"

# The options every script takes, for the last arm of its own option loop: `--quick` (sets `quick`),
# `--keep` (sets KEEP_WORK_DIR), `-h`/`--help` (prints the script's `usage`); anything else is an error.
# shellcheck disable=SC2034 # `quick` is the calling script's.
common_option() {
    case "$1" in
        --quick) quick=1 ;;
        --keep) KEEP_WORK_DIR=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
}
FAILURES=()
OWNED_PIDS=()
PG_CLUSTERS=()
DATABASES=()
declare -A SERVER_PID=() SERVER_PORT=() SERVER_DIR=() SERVER_LOG=() SETUP_MESSAGES=()
LOAD_RESPONSES=0 LOAD_OK=0 LOAD_NON_OK=0 LOAD_MISSING=0 LOAD_ERRORS=0 LOAD_RPS=0
LOAD_P50=0 LOAD_P95=0 LOAD_P99=0 LOAD_MAX=0 LOAD_EXPECTED=0
HEY_OK=0 HEY_NON_OK=0 HEY_REFUSED=0 HEY_BROKEN=0 HEY_BROKEN_KINDS="" EVENTS_MISMATCHED=0
STOP_STATUS=0 STOP_SECONDS=0

log() {
    printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

die() {
    log "error: $*"
    exit 2
}

# Creates the working directory and installs the cleanup.
evidence_init() {
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/agent-evidence.XXXXXX")"
    trap evidence_cleanup EXIT
    trap 'exit 130' INT TERM
    log "working directory: $WORK_DIR"
}

# Stops what this script started, by PID: servers and hey processes, private PostgreSQL clusters, databases.
evidence_cleanup() {
    local status=$? pid dir name
    for pid in "${OWNED_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${OWNED_PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for dir in "${PG_CLUSTERS[@]}"; do
        if [[ -f "$dir/data/postmaster.pid" ]]; then
            as_postgres "$(pg_bin pg_ctl)" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        rm -rf "$dir"
    done
    for name in "${DATABASES[@]}"; do
        psql_main postgres -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [[ -n "$WORK_DIR" && -d "$WORK_DIR" ]]; then
        if [[ "$KEEP_WORK_DIR" == 1 || $status -ne 0 ]]; then
            log "kept $WORK_DIR (server logs, hey output, audit files)"
        else
            rm -rf "$WORK_DIR"
        fi
    fi
    return "$status"
}

# Records a failed bar; `evidence_verdict` exits 1 if any was recorded.
fail_bar() {
    FAILURES+=("$*")
    log "BAR MISSED: $*"
}

# `bar DESCRIPTION CONDITION...`: runs the condition (a command); a bar missed is recorded, not fatal.
bar() {
    local description="$1"
    shift
    if "$@"; then
        printf '  %-68s %s\n' "$description" "met"
    else
        printf '  %-68s %s\n' "$description" "MISSED"
        FAILURES+=("$description")
    fi
}

# Prints the outcome and exits 1 when a bar was missed.
evidence_verdict() {
    echo
    if ((${#FAILURES[@]} == 0)); then
        echo "every bar met"
        exit 0
    fi
    echo "bars missed:"
    printf '  - %s\n' "${FAILURES[@]}"
    exit 1
}

# Numeric comparisons of decimals: `lt A B`, `le A B`, `ge A B`.
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
eq() { [[ "$1" == "$2" ]]; }

# A table row: a label and a value.
row() {
    printf '  %-50s %s\n' "$1" "$2"
}

heading() {
    printf '\n%s\n' "$1"
}

# Installs the Debian packages that provide the commands named, when a command is missing.
need_commands() {
    local command package missing=()
    for command in "$@"; do
        if ! command -v "$command" >/dev/null 2>&1; then
            case "$command" in
                psql) package=postgresql-client ;;
                curl) package=curl ;;
                *) package="$command" ;;
            esac
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} > 0)); then
        log "installing ${missing[*]}"
        if [[ $(id -u) -ne 0 ]]; then
            die "missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) or run as root"
        fi
        apt-get install -y "${missing[@]}" >/dev/null 2>&1 || {
            apt-get update >/dev/null 2>&1
            apt-get install -y "${missing[@]}" >/dev/null
        }
    fi
}

# The directory cargo builds into (CARGO_TARGET_DIR, relative to the workspace, else `target`).
target_dir() {
    local dir="${CARGO_TARGET_DIR:-target}"
    [[ "$dir" == /* ]] || dir="$WORKSPACE_DIR/$dir"
    printf '%s\n' "$dir"
}

# Builds agent-server in release mode and sets AGENT_BIN. With `bare`, builds it with
# `--cfg hardened_disabled` into `<target>/bare` (AGENT_BARE_TARGET_DIR overrides) and sets BARE_BIN.
build_server() {
    local flavour="${1:-normal}" dir
    need_commands cargo
    if [[ "$flavour" == bare ]]; then
        dir="${AGENT_BARE_TARGET_DIR:-$(target_dir)/bare}"
        log "building agent-server with --cfg hardened_disabled into $dir (release)"
        (cd "$WORKSPACE_DIR" && CARGO_TARGET_DIR="$dir" RUSTFLAGS="${RUSTFLAGS:-} --cfg hardened_disabled" \
            cargo build --release --quiet -p production-agent) || die "the bare build failed"
        BARE_BIN="$dir/release/agent-server"
    else
        dir="$(target_dir)"
        log "building agent-server into $dir (release)"
        (cd "$WORKSPACE_DIR" && cargo build --release --quiet -p production-agent) || die "the build failed"
        AGENT_BIN="$dir/release/agent-server"
    fi
}

# `given_or_built_servers NORMAL BARE`: sets AGENT_BIN to NORMAL and BARE_BIN to BARE, building each that
# is empty (`build_server`): for the scripts whose `--bin` and `--bare-bin` take other commits' binaries.
given_or_built_servers() {
    if [[ -n "$1" ]]; then
        AGENT_BIN="$1"
    else
        build_server normal
    fi
    if [[ -n "$2" ]]; then
        BARE_BIN="$2"
    else
        build_server bare
    fi
}

# A TCP port nothing listens on now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# `start_server NAME [--bin PATH] [VAR=value...]`: runs agent-server in `$WORK_DIR/NAME` (its audit file is
# `$WORK_DIR/NAME/data/audit/audit.jsonl`) on a free port, with the variables given, and waits until it is
# ready. Sets SERVER_PID[NAME], SERVER_PORT[NAME], SERVER_DIR[NAME], SERVER_LOG[NAME].
start_server() {
    local name="$1" bin="${AGENT_BIN:?build_server first}" port dir
    shift
    if [[ "${1:-}" == --bin ]]; then
        bin="$2"
        shift 2
    fi
    port="$(free_port)"
    dir="$WORK_DIR/$name"
    mkdir -p "$dir"
    (
        cd "$dir" || exit 2
        # Only what the caller passes reaches the server: an audit database or a collector of the calling
        # environment would change what is measured.
        exec env -u DATABASE_URL -u OTEL_EXPORTER_OTLP_ENDPOINT \
            HARDENED_SERVER__ADDRESS="127.0.0.1:$port" HARDENED_TELEMETRY__LOG_FORMAT=json "$@" \
            "$bin" serve >"$dir/server.log" 2>&1
    ) &
    SERVER_PID[$name]=$!
    OWNED_PIDS+=("$!")
    SERVER_PORT[$name]="$port"
    SERVER_DIR[$name]="$dir"
    SERVER_LOG[$name]="$dir/server.log"
    wait_ready "$name"
    log "$name: pid ${SERVER_PID[$name]}, port $port"
}

# Waits up to 30 s (AGENT_READY_SECONDS) for `/health/ready` of server NAME to answer 200.
wait_ready() {
    local name="$1" wait_seconds="${AGENT_READY_SECONDS:-30}" deadline
    deadline=$((SECONDS + wait_seconds))
    while ((SECONDS < deadline)); do
        if ! kill -0 "${SERVER_PID[$name]}" 2>/dev/null; then
            tail -20 "${SERVER_LOG[$name]}" >&2
            die "$name exited during startup"
        fi
        if [[ "$(http_status GET "$name" /health/ready)" == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    tail -20 "${SERVER_LOG[$name]}" >&2
    die "$name was not ready within $wait_seconds s"
}

# `stop_server NAME [SIGNAL]`: signals the server (TERM by default), waits for it, and sets STOP_STATUS
# (its exit status) and STOP_SECONDS (from the signal to its exit).
stop_server() {
    local name="$1" signal="${2:-TERM}" pid started
    pid="${SERVER_PID[$name]}"
    started="$(now)"
    kill -"$signal" "$pid"
    STOP_STATUS=0
    wait "$pid" || STOP_STATUS=$?
    STOP_SECONDS="$(elapsed_since "$started")"
}

# Seconds since the epoch, with decimals.
now() {
    date +%s.%N
}

# Seconds from $1 (a `now`) to now, to the millisecond.
elapsed_since() {
    awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.3f", end - start }'
}

# `url NAME PATH`: the URL of PATH on server NAME.
url() {
    printf 'http://127.0.0.1:%s%s\n' "${SERVER_PORT[$1]}" "$2"
}

# `http_status METHOD NAME PATH [BODY]`: the status of one request (000 when none came back).
http_status() {
    local method="$1" name="$2" path="$3" body="${4:-}"
    local args=(-s -o /dev/null -w '%{http_code}' -X "$method" -H "Authorization: Bearer $API_KEY" --max-time 10)
    if [[ -n "$body" ]]; then
        args+=(-H 'Content-Type: application/json' -d "$body")
    fi
    curl "${args[@]}" "$(url "$name" "$path")" || true
}

# `api METHOD NAME PATH [BODY]`: the body of one API request; fails on a status other than 2xx.
api() {
    local method="$1" name="$2" path="$3" body="${4:-}"
    local args=(-sS --fail-with-body -X "$method" -H "Authorization: Bearer $API_KEY" --max-time 10)
    if [[ -n "$body" ]]; then
        args+=(-H 'Content-Type: application/json' -d "$body")
    fi
    curl "${args[@]}" "$(url "$name" "$path")"
}

# `json_field FIELD`: one top-level field of the JSON on standard input.
json_field() {
    python3 -c 'import json, sys; value = json.load(sys.stdin)[sys.argv[1]]; print(value if isinstance(value, str) else json.dumps(value))' "$1"
}

# `message_body TEXT`: the JSON body of a message.
message_body() {
    python3 -c 'import json, sys; print(json.dumps({"content": sys.argv[1]}))' "$1"
}

# `open_sessions NAME COUNT`: opens COUNT sessions on server NAME, each remembering one value (so that
# `recall` finds it: one message per session, counted in SETUP_MESSAGES[NAME]), and sets SESSIONS to
# their ids.
open_sessions() {
    local name="$1" count="$2" id
    SESSIONS=()
    for _ in $(seq "$count"); do
        id="$(api POST "$name" /v1/sessions | json_field id)"
        api POST "$name" "/v1/sessions/$id/messages" "$(message_body "remember colour is blue")" >/dev/null
        SESSIONS+=("$id")
        SETUP_MESSAGES[$name]=$((${SETUP_MESSAGES[$name]:-0} + 1))
    done
}

# A metric's value from `/metrics` of server NAME: `metric NAME 'series{labels}'` (0 when absent).
metric() {
    # awk reads to the end: leaving at the first match would close the pipe under curl, which then fails
    # (exit 23, a write error) and, with pipefail, takes the script with it when the page is long.
    curl -s --max-time 5 "$(url "$1" /metrics)" | awk -v series="$2" '
        !found && index($0, series) == 1 && substr($0, length(series) + 1, 1) == " " { print $2; found = 1 }
        END { if (!found) print 0 }'
}

# `cpu_ticks PID`: user + system CPU time of a process, in clock ticks.
cpu_ticks() {
    # Fields after the command name, which is in parentheses and may hold spaces: utime and stime are
    # fields 14 and 15 of the line, 12 and 13 after the `)`.
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# `cores TICKS_BEFORE TICKS_AFTER SECONDS`: the CPU used over a span, in cores.
cores() {
    awk -v before="$1" -v after="$2" -v seconds="$3" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (after - before) / hz / seconds }'
}

# `us_per_message TICKS_BEFORE TICKS_AFTER MESSAGES`: the CPU used over a span per message, in microseconds
# (0 when no message was answered).
us_per_message() {
    awk -v before="$1" -v after="$2" -v messages="$3" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (messages > 0) printf "%.1f", (after - before) / hz / messages * 1e6; else print 0 }'
}

# `peak_rss_mib PID`: the peak resident memory of a process (VmHWM), in MiB.
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# `rss_mib PID`: the resident memory of a process now (VmRSS), in MiB.
rss_mib() {
    awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# `run_load NAME OUT RATE SECONDS CONCURRENCY [csv|summary]`: message load on server NAME over the
# sessions in SESSIONS, one hey process per session, each sending one message of MESSAGE_MIX (session i
# sends message i mod 5). RATE is the total in requests/s (0: unthrottled, for SECONDS); CONCURRENCY
# the total of hey workers. A throttled run sends exactly RATE x SECONDS requests (`-n`), so that requests
# that got no response at all (absent from hey's CSV) can be counted. Output goes to OUT/hey-<i>.{csv,txt}.
# `csv` (the default) writes one line per response (latency, status); `summary` writes hey's summary,
# with its error distribution.
run_load() {
    local name="$1" out="$2" rate="$3" seconds="$4" concurrency="$5" format="${6:-csv}"
    local sessions=${#SESSIONS[@]} i per_process workers qps requests args pids=() extension=csv
    ((sessions > 0)) || die "run_load needs SESSIONS"
    mkdir -p "$out"
    workers=$(((concurrency + sessions - 1) / sessions))
    ((workers >= 1)) || workers=1
    [[ "$format" == summary ]] && extension=txt
    LOAD_EXPECTED=0
    for ((i = 0; i < sessions; i++)); do
        args=(-c "$workers" -m POST -T application/json -H "Authorization: Bearer $API_KEY" -t 20)
        args+=(-d "$(message_body "${MESSAGE_MIX[$((i % ${#MESSAGE_MIX[@]}))]}")")
        if [[ "$rate" == 0 ]]; then
            args+=(-z "${seconds}s")
        else
            per_process="$(awk -v r="$rate" -v s="$sessions" 'BEGIN { printf "%.6f", r / s }')"
            qps="$(awk -v r="$per_process" -v w="$workers" 'BEGIN { printf "%.4f", r / w }')"
            requests="$(awk -v r="$per_process" -v s="$seconds" -v w="$workers" \
                'BEGIN { n = int(r * s / w + 0.5); if (n < 1) n = 1; print n * w }')"
            LOAD_EXPECTED=$((LOAD_EXPECTED + requests))
            args+=(-q "$qps" -n "$requests")
        fi
        [[ "$format" == csv ]] && args+=(-o csv)
        hey "${args[@]}" "$(url "$name" "/v1/sessions/${SESSIONS[$i]}/messages")" \
            >"$out/hey-$i.$extension" 2>"$out/hey-$i.err" &
        pids+=("$!")
        OWNED_PIDS+=("$!")
    done
    LOAD_PIDS=("${pids[@]}")
}

# Waits for the hey processes of the last `run_load`.
wait_load() {
    local pid
    for pid in "${LOAD_PIDS[@]}"; do
        wait "$pid" || log "a hey process exited with status $?"
    done
}

# `load_stats OUT SECONDS [EXPECTED]`: figures of hey's CSV files in OUT, as shell assignments to eval:
# LOAD_RESPONSES, LOAD_OK (200s), LOAD_NON_OK, LOAD_MISSING (EXPECTED minus responses: requests that got
# no response), LOAD_ERRORS (the last two together), LOAD_RPS (200s per second: per hey process, from its
# first request to its last response, summed; at least SECONDS / 2 each), and
# LOAD_P50/P95/P99/MAX in ms (of every response; nearest rank).
load_stats() {
    python3 - "$@" <<'EOF'
import glob, math, os, sys

out, seconds = sys.argv[1], float(sys.argv[2])
expected = int(sys.argv[3]) if len(sys.argv) > 3 else 0
latencies, ok, other, rate = [], 0, 0, 0.0
for path in sorted(glob.glob(os.path.join(out, "hey-*.csv"))):
    first, last, count = None, None, 0
    with open(path) as lines:
        for line in lines:
            fields = line.strip().split(",")
            if len(fields) < 8 or not fields[0][:1].isdigit():
                continue
            latency, offset = float(fields[0]), float(fields[7])
            latencies.append(latency * 1000)
            first = offset if first is None else min(first, offset)
            last = offset + latency if last is None else max(last, offset + latency)
            if fields[6] == "200":
                ok += 1
                count += 1
            else:
                other += 1
    # This process's 200s per second, from its first request to its last response: hey's own start-up
    # is not counted against the server.
    if count and last > first:
        rate += count / max(last - first, seconds * 0.5)
latencies.sort()

def rank(p):
    if not latencies:
        return 0.0
    return latencies[max(0, math.ceil(p / 100 * len(latencies)) - 1)]

missing = max(0, expected - len(latencies)) if expected else 0
print(f"LOAD_RESPONSES={len(latencies)}")
print(f"LOAD_OK={ok}")
print(f"LOAD_NON_OK={other}")
print(f"LOAD_MISSING={missing}")
print(f"LOAD_ERRORS={other + missing}")
print(f"LOAD_RPS={rate:.0f}")
for p in (50, 95, 99):
    print(f"LOAD_P{p}={rank(p):.1f}")
print(f"LOAD_MAX={latencies[-1] if latencies else 0:.1f}")
EOF
}

# `hey_outcomes OUT`: figures of hey's summaries (`run_load ... summary`) in OUT, as shell assignments:
# HEY_OK (200s), HEY_NON_OK, HEY_REFUSED (connection refused), HEY_BROKEN (resets, EOFs, other transport
# errors), and HEY_BROKEN_KINDS (the distinct messages of those, `;`-separated).
hey_outcomes() {
    python3 - "$1" <<'EOF'
import glob, os, re, shlex, sys

ok = non_ok = refused = broken = 0
kinds = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "hey-*.txt"))):
    section = None
    for line in open(path):
        if line.startswith("Status code distribution"):
            section = "status"
            continue
        if line.startswith("Error distribution"):
            section = "error"
            continue
        match = re.match(r"\s*\[(\d+)\]\s+(.*)", line)
        if not match:
            continue
        count, rest = int(match.group(1)), match.group(2).strip()
        if section == "status":
            number = int(rest.split()[0])
            if count == 200:
                ok += number
            else:
                non_ok += number
        elif section == "error":
            if "connection refused" in rest:
                refused += count
            else:
                broken += count
                kind = re.sub(r'^Post "[^"]*": ', "", rest)
                kinds[kind] = kinds.get(kind, 0) + count
print(f"HEY_OK={ok}")
print(f"HEY_NON_OK={non_ok}")
print(f"HEY_REFUSED={refused}")
print(f"HEY_BROKEN={broken}")
print("HEY_BROKEN_KINDS=" + shlex.quote("; ".join(f"{n} x {k}" for k, n in kinds.items())))
EOF
}

# `count_events FILE TYPE`: the records of event type TYPE in a JSONL audit file and its rotated files.
count_events() {
    python3 - "$1" "$2" <<'EOF'
import glob, json, re, sys

count = 0
files = [sys.argv[1]] + [p for p in glob.glob(sys.argv[1] + ".*") if re.search(r"\.\d+$", p)]
for path in files:
    with open(path) as lines:
        for line in lines:
            try:
                if json.loads(line).get("event_type") == sys.argv[2]:
                    count += 1
            except ValueError:
                pass
print(count)
EOF
}

# `audit_verify [VAR=value...]`: `agent-server audit verify` with the variables given (AGENT_AUDIT_PATH or
# DATABASE_URL); prints its output and returns its status.
audit_verify() {
    env -u DATABASE_URL "$@" "${AGENT_BIN:?}" audit verify 2>&1
}

# ---- PostgreSQL ----

# `pg_bin PROGRAM`: a PostgreSQL server program (initdb, pg_ctl) of the newest version installed.
pg_bin() {
    local found
    found="$(printf '%s\n' /usr/lib/postgresql/*/bin/"$1" | sort -V | tail -1)"
    if [[ -x "$found" ]]; then
        printf '%s\n' "$found"
    else
        command -v "$1" || die "no PostgreSQL server program $1; install postgresql"
    fi
}

# Runs a command as the `postgres` user when root (PostgreSQL refuses to run as root), else as is.
as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# `pg_private_start`: a private PostgreSQL cluster (trust authentication) on a free port, in a directory
# of its own. Sets PG_DIR, PG_PORT and PG_URL.
pg_private_start() {
    need_commands psql
    PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/agent-evidence-pg.XXXXXX")"
    PG_CLUSTERS+=("$PG_DIR")
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$PG_DIR"
    fi
    PG_PORT="$(free_port)"
    as_postgres "$(pg_bin initdb)" -D "$PG_DIR/data" -U postgres --auth=trust --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    pg_private_ctl start
    PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    log "private PostgreSQL on port $PG_PORT ($PG_DIR)"
}

# `pg_private_ctl start|stop`: starts or stops (fast) the private cluster, waiting for it.
pg_private_ctl() {
    case "$1" in
        start)
            as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
                -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null
            ;;
        stop) as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR/data" -m fast -w stop >/dev/null ;;
        *) die "pg_private_ctl: $1" ;;
    esac
}

# `psql_at URL SQL`: one value (or rows, `|`-separated) of a query.
psql_at() {
    psql "$1" -v ON_ERROR_STOP=1 -Atqc "$2"
}

# `psql_main DATABASE ARGS...`: psql on the machine's PostgreSQL (PGHOST, PGPORT, PGUSER; by default
# 127.0.0.1:5432, user postgres).
psql_main() {
    local database="$1"
    shift
    psql -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" -d "$database" -v ON_ERROR_STOP=1 -Atq "$@"
}

# `create_database PREFIX`: a fresh database on the machine's PostgreSQL, dropped on exit. Sets DB_NAME
# and DB_URL.
create_database() {
    need_commands psql
    DB_NAME="${1}_$(date +%s)_$RANDOM"
    psql_main postgres -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null || die "cannot create database $DB_NAME"
    DATABASES+=("$DB_NAME")
    DB_URL="postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/$DB_NAME"
    log "database $DB_NAME"
}

# `machine_ticks`: busy and total CPU ticks of the whole machine, from /proc/stat (`busy total`).
machine_ticks() {
    awk '/^cpu / { total = 0; for (i = 2; i <= NF; i++) total += $i; print total - $5 - $6, total; exit }' /proc/stat
}

# `machine_cores BEFORE AFTER SECONDS`: the cores the whole machine used over a span, from two
# `machine_ticks` (each a quoted "busy total").
machine_cores() {
    local busy_before busy_after
    read -r busy_before _ <<<"$1"
    read -r busy_after _ <<<"$2"
    cores "$busy_before" "$busy_after" "$3"
}

# `expected_events OUT SESSIONS`: the audit events that the load in OUT (hey's CSV files or summaries, session i sending
# MESSAGE_MIX[i mod 5]) and the opening of SESSIONS sessions (each with one `remember` message) produce,
# one `TYPE COUNT` line per event type. A message answered 200 is one UserMessage, one AgentResponse per
# model call (two when a tool runs, one for a plain message) and, when a tool runs, an AuthorizationCheck,
# a ToolExecution and a ToolResult; every API request is one AuthenticationAttempt; a session opened is a
# SessionStart.
expected_events() {
    python3 - "$1" "$2" "${#MESSAGE_MIX[@]}" <<'PY'
import collections, glob, os, re, sys

out, sessions, kinds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
counts = collections.Counter()

def answered(tool, n):
    counts["UserMessage"] += n
    counts["AgentResponse"] += n * (2 if tool else 1)
    if tool:
        for event in ("AuthorizationCheck", "ToolExecution", "ToolResult"):
            counts[event] += n

counts["SessionStart"] += sessions
counts["AuthenticationAttempt"] += 2 * sessions
answered(True, sessions)
for path in glob.glob(os.path.join(out, "hey-*.csv")) + glob.glob(os.path.join(out, "hey-*.txt")):
    index = int(re.search(r"hey-(\d+)\.(csv|txt)$", path).group(1))
    ok = other = 0
    with open(path) as lines:
        if path.endswith(".csv"):
            for line in lines:
                fields = line.strip().split(",")
                if len(fields) >= 7 and fields[0][:1].isdigit():
                    if fields[6] == "200":
                        ok += 1
                    else:
                        other += 1
        else:
            # hey's summary: `[status]  N responses` lines.
            for line in lines:
                match = re.match(r"\s*\[(\d+)\]\s+(\d+) responses", line)
                if match:
                    if match.group(1) == "200":
                        ok += int(match.group(2))
                    else:
                        other += int(match.group(2))
    counts["AuthenticationAttempt"] += ok + other
    # The last message of the mix is the plain one: no tool.
    answered(index % kinds != kinds - 1, ok)
for event, count in sorted(counts.items()):
    print(event, count)
PY
}

# `compare_events EXPECTED ACTUAL`: prints expected and actual counts per event type (each a `TYPE COUNT`
# list) side by side, and sets EVENTS_MISMATCHED to the number of types that differ.
compare_events() {
    local report
    report="$(python3 - "$1" "$2" <<'PY'
import sys

def parse(text):
    pairs = (line.split() for line in text.splitlines() if line.strip())
    return {event: int(count) for event, count in pairs}

expected, actual = parse(sys.argv[1]), parse(sys.argv[2])
mismatched = 0
print(f"  {'event type':<24} {'expected':>10} {'stored':>10}")
for event in sorted(set(expected) | set(actual)):
    e, a = expected.get(event, 0), actual.get(event, 0)
    mark = "" if e == a else "  <- differs"
    mismatched += e != a
    print(f"  {event:<24} {e:>10} {a:>10}{mark}")
print(f"mismatched={mismatched}")
PY
)"
    grep -v '^mismatched=' <<<"$report"
    EVENTS_MISMATCHED="$(sed -n 's/^mismatched=//p' <<<"$report")"
}

# `jsonl_event_counts FILE`: `TYPE COUNT` lines of a JSONL audit file and its rotated files (FILE.1, ...).
jsonl_event_counts() {
    python3 - "$1" <<'PY'
import collections, glob, json, re, sys

counts = collections.Counter()
files = [sys.argv[1]] + [p for p in glob.glob(sys.argv[1] + ".*") if re.search(r"\.\d+$", p)]
for path in files:
    with open(path) as lines:
        for line in lines:
            try:
                counts[json.loads(line)["event_type"]] += 1
            except (ValueError, KeyError):
                pass
for event, count in sorted(counts.items()):
    print(event, count)
PY
}
