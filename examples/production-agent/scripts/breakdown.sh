#!/usr/bin/env bash
# What one agent-server message costs and where it goes: runs the `message` benchmark of production-agent
# (the service in-process, the load.sh mix) and prints the breakdown table of docs/performance.md.
set -euo pipefail

usage() {
    cat <<'EOF_USAGE'
usage: examples/production-agent/scripts/breakdown.sh [options]

Runs `cargo bench -p production-agent --bench message` (bench profile): a profile of the messages of the
load.sh mix (the CPU they take, the spans, log lines, audit events and #[hardened] calls they make, what
they allocate), the CPU per message with the development configuration's telemetry and with the
production configuration's sampling and JSON logs, and the cost of each part (a span by subscriber, an
audit event built, queued, sealed, hashed and written, the request layers, a call's metrics). Then
prints one table: what a message makes, and what each part accounts for per message.

Machine-wide noise shows in every figure: run it on a quiet machine (the load average is printed).

options:
  --bare             also run the whole messages in a build with --cfg hardened_disabled (into
                     <target>/bare-bench; a second build of the workspace), and print what hardened adds
  --messages N       messages of the profile (default 20000)
  --table-only       print the table from the results of the last run (its criterion directory and
                     <target>/message-profile.json), without running anything
  --quick            shorter measurements of the parts (1 s warm-up, 3 s each) and a profile of 5000
                     messages; also EVIDENCE_QUICK=1
  --keep             keep the working directory
  -h, --help         this text

Honours CARGO_TARGET_DIR and CRITERION_HOME.
EOF_USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bare=0
messages=20000
table_only=0
quick="${EVIDENCE_QUICK:-0}"

while (($# > 0)); do
    case "$1" in
        --bare) bare=1; shift ;;
        --messages) messages="${2:?--messages needs a number}"; shift 2 ;;
        --table-only) table_only=1; shift ;;
        *) common_option "$1"; shift ;;
    esac
done
if [[ "$quick" == 1 && "$messages" == 20000 ]]; then
    messages=5000
fi

need_commands cargo python3
target="$(target_dir)"
criterion_dir="${CRITERION_HOME:-$target/criterion}"
profile="$target/message-profile.json"
bare_target="$target/bare-bench"
bare_profile="$target/message-profile-bare.json"

# `bench ARGS...`: the message benchmark, in the bench profile, with the profile written to $PROFILE_OUT.
bench() {
    (cd "$WORKSPACE_DIR" && MESSAGE_PROFILE="$PROFILE_OUT" MESSAGE_PROFILE_MESSAGES="$messages" \
        cargo bench -p production-agent --bench message -- "$@")
}

if [[ "$table_only" == 0 ]]; then
    log "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
    args=()
    if [[ "$quick" == 1 ]]; then
        args+=(--warm-up-time 1 --measurement-time 3)
    fi
    PROFILE_OUT="$profile" CRITERION_HOME="$criterion_dir" bench "${args[@]}"
    if [[ "$bare" == 1 ]]; then
        log "the whole messages in a build with --cfg hardened_disabled, into $bare_target"
        PROFILE_OUT="$bare_profile" CRITERION_HOME="$bare_target/criterion" CARGO_TARGET_DIR="$bare_target" \
            RUSTFLAGS="${RUSTFLAGS:-} --cfg hardened_disabled" bench 'message/'
    fi
    log "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
[[ -f "$profile" ]] || die "no profile at $profile: run without --table-only first"
if [[ "$bare" == 1 || -f "$bare_profile" && "$table_only" == 1 ]]; then
    bare_dir="$bare_target/criterion"
else
    bare_dir=""
fi

python3 - "$criterion_dir" "$profile" "$bare_dir" "$bare_profile" <<'EOF_TABLE'
import json
import os
import sys

criterion, profile_path, bare_dir, bare_profile_path = sys.argv[1:5]
recorded = json.load(open(profile_path))
profiles = {p["telemetry"]: p for p in recorded["profiles"]}
dev, prod = profiles["development"], profiles["production"]
allocated = recorded["allocations_per_unit"]


def calls(case):
    """Allocations per unit of a part, from the profile run."""
    return allocated[case]["calls"] if case in allocated else None


def ns(case, directory=criterion):
    """Criterion's median estimate of a case, in ns per iteration; None when it was not run."""
    path = os.path.join(directory, *case.split("/"), "new", "estimates.json")
    if not os.path.exists(path):
        return None
    return json.load(open(path))["median"]["point_estimate"]


def us(value):
    return "" if value is None else f"{value:.1f}"


def cost(value):
    return "" if value is None else (f"{value:.0f} ns" if value < 10_000 else f"{value / 1000:.1f} µs")


def diff(a, b):
    return None if a is None or b is None else a - b


def count(value):
    return f"{value:.2f}".rstrip("0").rstrip(".")


print("\n## What one message makes (profile of %d messages of the load.sh mix)\n" % dev["messages"])
print("| | development telemetry | production telemetry |")
print("| --- | ---: | ---: |")
rows = [
    ("CPU per message, whole process (criterion `message/*`, µs)", us((ns("message/development") or 0) / 1000), us((ns("message/production") or 0) / 1000)),
    ("CPU per message in the profile run, whole process (µs)", us(dev["cpu_us"]), us(prod["cpu_us"])),
    ("of which on the request's thread (µs)", us(dev["request_thread_cpu_us"]), us(prod["request_thread_cpu_us"])),
    ("of which on other threads: the audit writer (µs)", us(dev["cpu_us"] - dev["request_thread_cpu_us"]), us(prod["cpu_us"] - prod["request_thread_cpu_us"])),
    ("spans created", count(dev["spans_total"]), count(prod["spans_total"])),
    ("spans entered", count(dev["spans_entered"]), count(prod["spans_entered"])),
    ("log lines", count(dev["log_lines"]), count(prod["log_lines"])),
    ("`#[hardened]` calls", count(dev["calls_total"]), count(prod["calls_total"])),
    ("audit events", count(dev["audit_events_total"]), count(prod["audit_events_total"])),
    ("allocations (bytes)", f'{dev["allocations"]:.0f} ({dev["allocated_bytes"]:.0f})', f'{prod["allocations"]:.0f} ({prod["allocated_bytes"]:.0f})'),
    ("of which on the request's thread", f'{dev["request_thread_allocations"]:.0f} ({dev["request_thread_allocated_bytes"]:.0f})', f'{prod["request_thread_allocations"]:.0f} ({prod["request_thread_allocated_bytes"]:.0f})'),
]
for row in rows:
    print("| %s | %s | %s |" % row)
print()
print("spans by name (development):", ", ".join(f"{name} {count(n)}" for name, n in dev["spans"].items()))
print("audit events by type:", ", ".join(f"{name} {count(n)}" for name, n in dev["audit_events"].items()))
print("`#[hardened]` calls by function:", ", ".join(f"{name} {count(n)}" for name, n in dev["calls"].items()))

if bare_dir:
    bare_profiles = {p["telemetry"]: p for p in json.load(open(bare_profile_path))["profiles"]}
    print("\n## What hardened adds (the same benchmark built with --cfg hardened_disabled)\n")
    print("| | development telemetry | production telemetry |")
    print("| --- | ---: | ---: |")
    normal = [ns("message/development"), ns("message/production")]
    bare = [ns("message/development", bare_dir), ns("message/production", bare_dir)]
    print("| CPU per message, normal build (µs) | %s | %s |" % tuple(us(v / 1000) for v in normal))
    print("| CPU per message, `hardened_disabled` build (µs) | %s | %s |" % tuple(us(v / 1000) for v in bare))
    print("| added by hardened (µs) | %s | %s |" % tuple(us((n - b) / 1000) for n, b in zip(normal, bare)))
    print("| allocations, normal / `hardened_disabled` | %.0f / %.0f | %.0f / %.0f |" % (
        dev["allocations"], bare_profiles["development"]["allocations"],
        prod["allocations"], bare_profiles["production"]["allocations"]))

print("\n## Where the time goes, per message\n")
print("Each part's cost per unit is criterion's median; per message, it is multiplied by the units a message")
print("makes (the profile above). The parts overlap nothing but allocation, which runs through all of them.\n")
total = {"development": ns("message/development"), "production": ns("message/production")}
print("| part | per unit, development | units per message | µs per message, development | µs per message, production | allocations per message, development |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
parts = {"development": 0.0, "production": 0.0, "allocations": 0.0}


def row(name, unit_dev, units_dev, unit_prod=None, units_prod=None, add=True, allocations=None):
    unit_prod = unit_dev if unit_prod is None else unit_prod
    units_prod = units_dev if units_prod is None else units_prod
    dev_us = None if unit_dev is None else unit_dev * units_dev / 1000
    prod_us = None if unit_prod is None else unit_prod * units_prod / 1000
    per_message = None if allocations is None else allocations * units_dev
    if add:
        parts["development"] += dev_us or 0
        parts["production"] += prod_us or 0
        parts["allocations"] += per_message or 0
    shown = "" if per_message is None else f"{max(per_message, 0.0):.0f}"
    print(f"| {name} | {cost(unit_dev)} | {count(units_dev)} | {us(dev_us)} | {us(prod_us)} | {shown} |")


request_spans = dev["spans"].get("http.server.request", 0)
child_dev = dev["spans_total"] - request_spans
child_prod = prod["spans_total"] - prod["spans"].get("http.server.request", 0)
row("spans inside the request (created, entered, exited, closed)", ns("span/development"), child_dev,
    ns("span/production"), child_prod, allocations=calls("span/development"))
row("&nbsp;&nbsp;of which the registry", ns("span/registry"), child_dev, add=False, allocations=calls("span/registry"))
row("&nbsp;&nbsp;of which the trace filter", diff(ns("span/filter"), ns("span/registry")), child_dev, add=False,
    allocations=diff(calls("span/filter"), calls("span/registry")))
row("&nbsp;&nbsp;of which the trace-id layer", diff(ns("span/trace_ids"), ns("span/filter")), child_dev, add=False,
    allocations=diff(calls("span/trace_ids"), calls("span/filter")))
row("&nbsp;&nbsp;of which the log layer's span fields", diff(ns("span/log_readable"), ns("span/filter")), child_dev,
    diff(ns("span/log_json"), ns("span/filter")), child_prod, add=False,
    allocations=diff(calls("span/log_readable"), calls("span/filter")))
row("request layers, the request's root span included", diff(ns("http/layers"), ns("http/bare")), 1,
    allocations=diff(calls("http/layers"), calls("http/bare")))
built = [ns("audit_event/build_plain"), ns("audit_event/build_derived")]
built = None if None in built else sum(built) / 2
built_allocations = [calls("audit_event/build_plain"), calls("audit_event/build_derived")]
built_allocations = None if None in built_allocations else sum(built_allocations) / 2
events_dev, events_prod = dev["audit_events_total"], prod["audit_events_total"]
row("audit events built (request thread; mean of plain and derived)", built, events_dev, None, events_prod,
    allocations=built_allocations)
row("audit events queued (`emit`)", ns("audit_event/emit"), events_dev, None, events_prod)
row("audit events sealed: canonical JSON, SHA-256, line (writer)", ns("audit_event/seal"), events_dev, None, events_prod,
    allocations=calls("audit_event/seal"))
row("&nbsp;&nbsp;of which SHA-256", ns("audit_event/sha256"), events_dev, None, events_prod, add=False)
row("audit events written to the JSONL file (writer)", ns("audit_event/write"), events_dev, None, events_prod,
    allocations=calls("audit_event/write"))
row("metrics of the `#[hardened]` calls", ns("metrics/call"), dev["calls_total"], None, prod["calls_total"],
    allocations=calls("metrics/call"))
model_calls = dev["calls"].get("call_model", 0)
row("guards of the model calls (token budget, breaker, rate, concurrency, timeout, retry)",
    diff(ns("guards/model_call"), ns("guards/bare")), model_calls)
print("| sum of the parts | | | %s | %s | %.0f |" % (us(parts["development"]), us(parts["production"]), parts["allocations"]))
whole = {k: None if total[k] is None else total[k] / 1000 for k in ("development", "production")}
if bare_dir:
    bare_us = {k: ns("message/" + k, bare_dir) for k in ("development", "production")}
    bare_us = {k: None if v is None else v / 1000 for k, v in bare_us.items()}
    bare_allocations = bare_profiles["development"]["allocations"]
    print("| the service itself: the `hardened_disabled` build's message | | | %s | %s | %.0f |" % (
        us(bare_us["development"]), us(bare_us["production"]), bare_allocations))
    remainder = {k: None if whole[k] is None or bare_us[k] is None else whole[k] - bare_us[k] - parts[k] for k in whole}
    print("| hardened's work that no part isolates (scopes, futures, exemplars, the writer's loop, frees, caches) | | | %s | %s | %.0f |" % (
        us(remainder["development"]), us(remainder["production"]), dev["allocations"] - bare_allocations - parts["allocations"]))
else:
    rest = {k: None if whole[k] is None else whole[k] - parts[k] for k in whole}
    print("| the rest: the service itself, and hardened's work that no part isolates | | | %s | %s | %.0f |" % (
        us(rest["development"]), us(rest["production"]), dev["allocations"] - parts["allocations"]))
print("| CPU per message, whole process (`message/*`) | | | %s | %s | %.0f |" % (
    us(whole["development"]), us(whole["production"]), dev["allocations"]))
writer = dev["cpu_us"] - dev["request_thread_cpu_us"]
sealed_written = sum(v or 0 for v in (ns("audit_event/seal"), ns("audit_event/write"))) * dev["audit_events_total"] / 1000
print()
print(f"The audit writer's thread: {writer:.1f} µs per message in the profile run, of which sealing and writing")
print(f"account for {sealed_written:.1f} µs; the rest is its loop (gathering batches, waking), freeing the events")
print("made on the request's thread, the metrics of each record, and a signed checkpoint every 1,000 events.")
EOF_TABLE
