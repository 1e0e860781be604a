#!/usr/bin/env bash
# Instructions per call of `#[hardened]`, with and without its resilience guards, next to a bare call and to
# the same observability and guards wired by hand, counted by valgrind's callgrind: deterministic where
# wall-clock timings on a shared machine are not.
#
# Each case of runtime/benches/overhead.rs runs twice under callgrind, with SMALL and LARGE iterations;
# only the function that loops over the calls is collected, after a warm-up, and the difference of the two
# totals divided by LARGE - SMALL is the cost of one call, with every one-off cost cancelled out.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/callgrind-overhead.sh [options]

Counts instructions per call with callgrind for bare, #[hardened] and hand-wired functions (sync and
async) with no subscriber and with a subscriber that filters the span out, prints the overhead over the
bare call and the ratio to the hand-wired version, and exits 1 when a target is missed, listing which:

  #[hardened(fields(n))], overhead over bare:               <= 150 per sync call, <= 200 per async call
  hand-wired overhead / #[hardened] overhead:                >= 3
  #[hardened(fields(n), breaker, rate, bulkhead)] (guards),
  overhead over bare on the allowed path:                    <= 250 per sync call, <= 300 per async call

  exemplars on, over exemplars off, for a call whose span is enabled
  and not sampled (the runtime's ids-only span layer):          <= 10 per call, with and without guards

The guarded function is compared with the same guards wired by hand (failsafe breaker, governor rate
limiter, tokio semaphore, on top of the hand-wired tracing and prometheus). Every call of every case must
succeed (for the guards: be admitted); a case where one did not fails the run.

Also measured, for information: plain #[tracing::instrument]; #[hardened] taken apart (span = false:
the metrics alone, metrics = false: the span alone) with no subscriber; #[hardened] against
#[tracing::instrument] under a subscriber that records spans; and the exemplars' cost under the exporting
span layer (the SDK's tracer, whose random ids move its counts by a few dozen from run to run).

options:
  --small N          iterations of the first run (default 10000)
  --large N          iterations of the second run (default 110000)
  --keep DIR         keep the callgrind output files in DIR
  --annotate CASE    profile one case (e.g. sync/no_subscriber/hardened_guards) with callgrind_annotate,
                     by function and by source line, and exit; CASE is
                     {sync,async}/{no_subscriber,span_disabled,noop_layer,recording,
                     {otel,ids}_unsampled[_exemplars]}/{bare,hardened,
                     instrument,hand_wired,hardened_metrics_only,hardened_span_only,hardened_guards,
                     hand_wired_guards}
  -h, --help         this text

Honours CARGO_TARGET_DIR. Needs valgrind (apt-get install -y valgrind).
EOF
}

small=10000
large=110000
keep=""
annotate=""
lines=40

while (($# > 0)); do
    case "$1" in
        --small) small="${2:?--small needs a number}"; shift 2 ;;
        --large) large="${2:?--large needs a number}"; shift 2 ;;
        --keep) keep="${2:?--keep needs a directory}"; shift 2 ;;
        --annotate) annotate="${2:?--annotate needs a case}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

for number in "$small" "$large"; do
    if ! [[ "$number" =~ ^[1-9][0-9]*$ ]]; then
        echo "iterations must be positive integers, got '$number'" >&2
        exit 2
    fi
done
if ((large <= small)); then
    echo "--large ($large) must be greater than --small ($small)" >&2
    exit 2
fi

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind is not installed: install it (apt-get install -y valgrind) and run again" >&2
    exit 3
fi
if [[ -n "$annotate" ]] && ! command -v callgrind_annotate >/dev/null 2>&1; then
    echo "callgrind_annotate is not installed (it comes with valgrind)" >&2
    exit 3
fi

cd "$(dirname "$0")/.."

# The benchmark binary, built in the bench profile (optimised, with debug info for annotation).
build_args=(bench -p hardened --bench overhead --features telemetry --no-run --message-format=json-render-diagnostics)
echo "building the overhead benchmark..." >&2
artifacts="$(cargo "${build_args[@]}")"
binary="$(printf '%s\n' "$artifacts" |
    grep '"reason":"compiler-artifact"' |
    grep '"kind":\["bench"\]' |
    grep '"name":"overhead"' |
    grep -o '"executable":"[^"]*"' |
    tail -n 1 |
    cut -d '"' -f 4 || true)"
if [[ -z "$binary" || ! -x "$binary" ]]; then
    echo "could not find the overhead benchmark binary (build it with: cargo ${build_args[*]})" >&2
    exit 3
fi

if [[ -n "$keep" ]]; then
    mkdir -p "$keep"
    out="$keep"
else
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi

# Runs one case under callgrind, collecting `measured_loop` only; prints the instructions collected.
collect() {
    local case_id="$1" iterations="$2" file
    file="$out/callgrind.$(printf '%s' "$case_id" | tr '/' '.').$iterations.out"
    valgrind --tool=callgrind --callgrind-out-file="$file" \
        --collect-atstart=no --toggle-collect='*measured_loop*' \
        "${@:3}" "$binary" --instructions "$case_id" "$iterations" \
        >"$file.log" 2>&1 || {
        echo "callgrind failed on $case_id; its output:" >&2
        cat "$file.log" >&2
        return 1
    }
    # Every call must have succeeded: a refusal by a guard would measure the wrong path.
    if ! grep -qE "^$case_id: ([0-9]+) of \1 calls ok$" "$file.log"; then
        echo "not every call of $case_id succeeded; its output:" >&2
        cat "$file.log" >&2
        return 1
    fi
    awk '$1 == "totals:" { print $2; found = 1 } END { exit !found }' "$file"
}

if [[ -n "$annotate" ]]; then
    collect "$annotate" "$large" --dump-instr=yes >/dev/null
    file="$out/callgrind.$(printf '%s' "$annotate" | tr '/' '.').$large.out"
    # The paths callgrind_annotate prints, shortened: std's from `library/`, crates' from their name.
    # shellcheck disable=SC2016 # awk code, not shell
    shorten='function shorten(path) {
        sub(/^.*\/library\//, "", path); sub(/^.*\/index\.crates\.io-[^\/]*\//, "", path); return path
    }'
    # `N file:function [binary]` lines of callgrind_annotate, as instructions per call.
    per_call_table() {
        awk -v calls="$large" "$shorten"'
            /^-+$/ { next }
            /Auto-annotated source:/ { exit }
            /file:function/ { started = 1; next }
            started && /^ *[0-9,]+ / {
                count = $1; gsub(/,/, "", count)
                where = $0; sub(/^ *[0-9,]+ +(\( *[0-9.]+%\) +)?/, "", where); sub(/ \[[^]]*\]$/, "", where)
                if (count / calls >= 0.5) printf "%8.1f  %s\n", count / calls, shorten(where)
            }'
    }
    echo "== $annotate: instructions per call ($large calls), exclusive, by source file and function"
    echo "   (code inlined into a function is listed under the file it comes from)"
    callgrind_annotate --inclusive=no --auto=no --show-percs=no --threshold=100 "$file" | per_call_table
    echo "== inclusive, by function"
    callgrind_annotate --inclusive=yes --auto=no --show-percs=no --threshold=100 "$file" | per_call_table
    echo "== by source line (the $lines costliest lines; std's inlined lines are in the tables above only,"
    echo "   its sources being absent)"
    callgrind_annotate --inclusive=no --auto=yes --show-percs=no --threshold=100 --context=0 "$file" |
        awk -v calls="$large" "$shorten"'
            /^-- Auto-annotated source: / { source = $4; next }
            /^-- line [0-9]+ -/ { line = $3; next }
            /^ *[0-9,]+ +(=>|<counts)/ || /events annotated/ { next }
            /^ *[0-9,]+ / && source != "" && line != "" {
                count = $1; gsub(/,/, "", count)
                text = $0; sub(/^ *[0-9,]+ +/, "", text); gsub(/^ +| +$/, "", text)
                printf "%8.1f  %s:%d  %s\n", count / calls, shorten(source), line, substr(text, 1, 90)
                line++
            }' |
        sort -rn | awk -v lines="$lines" 'NR <= lines'
    exit 0
fi

# Instructions per call of one case, as a decimal; optionally with other iteration counts than the
# defaults (the subscriber setups that make OpenTelemetry spans cost some 5,000 to 10,000 per call).
declare -A per_call
measure() {
    local case_id="$1" small="${2:-$small}" large="${3:-$large}" first second
    first="$(collect "$case_id" "$small")"
    second="$(collect "$case_id" "$large")"
    per_call["$case_id"]="$(awk -v a="$first" -v b="$second" -v n="$small" -v m="$large" \
        'BEGIN { printf "%.1f", (b - a) / (m - n) }')"
}

gated_setups=(no_subscriber span_disabled)
unsampled_setups=(ids_unsampled ids_unsampled_exemplars otel_unsampled otel_unsampled_exemplars)
unsampled_small=2000
unsampled_large=12000
gated_functions=(bare hardened instrument hand_wired hardened_guards hand_wired_guards)
modes=(sync async)

echo "valgrind: $(valgrind --version); binary: $binary" >&2
echo "iterations: $small and $large; instructions per call = difference of totals / $((large - small))" >&2
for mode in "${modes[@]}"; do
    for setup in "${gated_setups[@]}"; do
        for function in "${gated_functions[@]}"; do
            echo "  $mode/$setup/$function" >&2
            measure "$mode/$setup/$function"
        done
    done
    for function in hardened_metrics_only hardened_span_only; do
        echo "  $mode/no_subscriber/$function" >&2
        measure "$mode/no_subscriber/$function"
    done
    for function in bare instrument hardened; do
        echo "  $mode/recording/$function" >&2
        measure "$mode/recording/$function"
    done
    for setup in "${unsampled_setups[@]}"; do
        for function in hardened hardened_guards; do
            echo "  $mode/$setup/$function" >&2
            measure "$mode/$setup/$function" "$unsampled_small" "$unsampled_large"
        done
    done
done

# Formatting and checks, in awk for the decimals.
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "inf"; else printf "%.1f", a / b }'; }
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

missed=()
# Records a missed target and says so at once.
miss() {
    missed+=("$1")
    echo "MISSED: $1"
}
# Checks that `function` costs at most `limit` instructions over bare in `mode/setup`.
check_over() {
    local mode="$1" setup="$2" function="$3" limit="$4" label="$5" over
    over="$(minus "${per_call[$mode/$setup/$function]}" "${per_call[$mode/$setup/bare]}")"
    if above "$over" "$limit"; then
        miss "$mode/$setup: $label costs $over instructions over bare, target <= $limit ($(minus "$over" "$limit") over)"
    fi
}

echo
printf '%-42s %12s %12s %14s\n' "case" "instr/call" "over bare" "hand-wired /"
printf '%-42s %12s %12s %14s\n' "" "" "" "hardened"
for mode in "${modes[@]}"; do
    limit=150
    guards_limit=250
    if [[ "$mode" == async ]]; then
        limit=200
        guards_limit=300
    fi
    for setup in "${gated_setups[@]}"; do
        bare="${per_call[$mode/$setup/bare]}"
        # Overhead of the hand-wired version over that of #[hardened], without and with the guards.
        declare -A times=()
        for pair in hardened:hand_wired hardened_guards:hand_wired_guards; do
            ours="${pair%%:*}"
            theirs="${pair#*:}"
            times[$ours]="$(ratio "$(minus "${per_call[$mode/$setup/$theirs]}" "$bare")" \
                "$(minus "${per_call[$mode/$setup/$ours]}" "$bare")")"
        done
        for function in "${gated_functions[@]}"; do
            value="${per_call[$mode/$setup/$function]}"
            over=""
            [[ "$function" != bare ]] && over="$(minus "$value" "$bare")"
            column=""
            [[ -n "${times[$function]:-}" ]] && column="${times[$function]}x"
            printf '%-42s %12s %12s %14s\n' "$mode/$setup/$function" "$value" "$over" "$column"
        done
        check_over "$mode" "$setup" hardened "$limit" "#[hardened]"
        if [[ "${times[hardened]}" != inf ]] && above 3 "${times[hardened]}"; then
            miss "$mode/$setup: hand-wired overhead is ${times[hardened]}x #[hardened]'s, target >= 3x"
        fi
        check_over "$mode" "$setup" hardened_guards "$guards_limit" "#[hardened] with breaker, rate and bulkhead"
        unset times
    done
    bare="${per_call[$mode/no_subscriber/bare]}"
    for function in hardened_metrics_only hardened_span_only; do
        value="${per_call[$mode/no_subscriber/$function]}"
        printf '%-42s %12s %12s %14s\n' "$mode/no_subscriber/$function" "$value" "$(minus "$value" "$bare")" ""
    done
    bare="${per_call[$mode/recording/bare]}"
    instrument="${per_call[$mode/recording/instrument]}"
    for function in bare instrument hardened; do
        value="${per_call[$mode/recording/$function]}"
        over=""
        [[ "$function" != bare ]] && over="$(minus "$value" "$bare")"
        printf '%-42s %12s %12s %14s\n' "$mode/recording/$function" "$value" "$over" ""
    done
    echo "  $mode/recording: #[hardened] costs $(minus "${per_call[$mode/recording/hardened]}" "$instrument") instructions more than #[tracing::instrument] (information only)"
    for spans in ids otel; do
        for function in hardened hardened_guards; do
            off="${per_call[$mode/${spans}_unsampled/$function]}"
            on="${per_call[$mode/${spans}_unsampled_exemplars/$function]}"
            printf '%-42s %12s %12s %14s\n' "$mode/${spans}_unsampled/$function" "$off" "" ""
            printf '%-42s %12s %12s %14s\n' "$mode/${spans}_unsampled_exemplars/$function" "$on" "" ""
            echo "  $mode/${spans}_unsampled/$function: exemplars on cost $(minus "$on" "$off") instructions over off"
            if [[ "$spans" == ids ]] && above "$(minus "$on" "$off")" 10; then
                miss "$mode/ids_unsampled/$function: exemplars on cost $(minus "$on" "$off") instructions over off for an unsampled span, target <= 10"
            fi
        done
    done
done

echo
if ((${#missed[@]} > 0)); then
    echo "${#missed[@]} target(s) missed:"
    printf '  %s\n' "${missed[@]}"
    exit 1
fi
echo "all targets met: #[hardened] <= 150 (sync) / 200 (async) instructions over bare and >= 3x cheaper than"
echo "hand-wired; with breaker, rate and bulkhead <= 250 (sync) / 300 (async) over bare; exemplars on <= 10"
echo "over off for an unsampled span"
