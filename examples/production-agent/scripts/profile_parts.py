"""The tables of profile.sh: `perf script` stacks of the normal and the bare build, per message, by
thread and by part.

usage: profile_parts.py WORK_DIR MESSAGES FREQ TOP

WORK_DIR holds `normal.stacks` and `bare.stacks` (`perf script -F comm,ip,sym`), each build's
`.switches-before` / `.switches-after` (thread name and context switches, a line each) and
`.unprofiled-us` (its CPU per message in a window without perf, which the samples are scaled to).
"""

import collections
import sys

# Each sample goes to the part of its innermost frame that matches one of these (first match in this
# list, for a frame that would match two). Frames of the allocator, the kernel and libc match none, so
# they count in the part that called them.
PARTS = [
    ("spans: the log layer's fields", ["fmt_layer::Layer<", "telemetry::log_fields::"]),
    ("spans: trace ids", ["hardened::span_ids::", "hardened::telemetry::current_trace_ids"]),
    (
        "spans: registry, filters, dispatch",
        [
            "tracing_subscriber::",
            "tracing_core::",
            "tracing::span::",
            "sharded_slab::",
            "hardened::telemetry::filters::",
            "hardened_core::guards::span_site::",
            "opentelemetry::context::",
        ],
    ),
    ("audit: events queued", ["hardened_audit::pipeline::Auditor::emit"]),
    ("audit: sealed (canonical JSON, SHA-256)", ["hardened_audit::chain::", "sha2::"]),
    ("audit: written (JSONL file)", ["hardened_audit::jsonl::"]),
    (
        "audit: events built",
        [
            "hardened_audit::event::",
            "hardened_audit::call::",
            "hardened_audit::audited::",
            "hardened_audit::context::",
            "hardened_audit::derive_support::",
            "Audited>::audit_record",
        ],
    ),
    ("metrics and exemplars", ["prometheus::", "hardened_core::metrics", "exemplars::", "hardened::http::requests"]),
    ("guards", ["hardened_core::guards::", "hardened_core::rate_limit", "hardened_core::slots", "hardened_core::breaker"]),
    ("request layers", ["hardened::http::", "hardened::tower::"]),
    ("service", ["agent_server::"]),
    (
        "runtime, HTTP, sockets, kernel (the rest)",
        ["hyper::", "h2::", "httparse::", "mio::", "axum::", "tokio::runtime::", "tokio::net::", "tokio::io::"],
    ),
]
WRITER = "hardened-audit"
REST = "runtime, HTTP, sockets, kernel (the rest)"
WRITER_REST = "audit writer: waiting, waking, freeing"


def samples(path):
    """Yields (thread name, frames from innermost) for each sample of a `perf script` file."""
    comm, frames = None, []
    with open(path, errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            if not line[0].isspace():
                if comm is not None:
                    yield comm, frames
                comm, frames = line.split()[0], []
            else:
                fields = line.split(None, 1)
                frames.append(fields[1].strip() if len(fields) > 1 else fields[0])
    if comm is not None:
        yield comm, frames


def part_of(thread, frames):
    part = REST
    for frame in frames:
        matched = next((name for name, patterns in PARTS if any(pattern in frame for pattern in patterns)), None)
        if matched:
            part = matched
            break
    # The writer's own runtime, sleeps and frees are the writer's cost, which the bare build has none of.
    return WRITER_REST if thread == WRITER and part == REST else part


def profile(work_dir, flavour):
    threads, parts, leaves = collections.Counter(), collections.Counter(), collections.Counter()
    for thread, frames in samples(f"{work_dir}/{flavour}.stacks"):
        # Worker threads of tokio share a name; the writer has its own.
        threads[thread] += 1
        parts[part_of(thread, frames)] += 1
        if frames:
            leaves[frames[0]] += 1
    return threads, parts, leaves


def switches(work_dir, flavour):
    def read(suffix):
        counts = collections.Counter()
        with open(f"{work_dir}/{flavour}.switches-{suffix}") as lines:
            for line in lines:
                name, _, count = line.rpartition(" ")
                counts[name] += int(count or 0)
        return counts

    before, after = read("before"), read("after")
    return {name: after[name] - before.get(name, 0) for name in after}


def main():
    work_dir, messages, freq, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    builds = {flavour: profile(work_dir, flavour) for flavour in ("normal", "bare")}
    # µs of CPU a sample stands for, per message, scaled so that a build's samples add up to its CPU per
    # message without perf.
    scale = {}
    for flavour, (threads, _, _) in builds.items():
        with open(f"{work_dir}/{flavour}.unprofiled-us") as figure:
            unprofiled = float(figure.read())
        profiled = sum(threads.values()) * 1e6 / freq / messages
        scale[flavour] = unprofiled / profiled / freq / messages * 1e6 if profiled else 0.0
        print(f"  {flavour}: {profiled:.1f} µs a message while sampled, {unprofiled:.1f} without perf")
    print()

    def row(label, n, b):
        n, b = n * scale["normal"], b * scale["bare"]
        print(f"  {label:<46} {n:>9.2f} {b:>9.2f} {n - b:>9.2f}")

    normal, bare = builds["normal"], builds["bare"]
    print(f"  {'':<46} {'normal':>9} {'bare':>9} {'added':>9}")
    row("whole process", sum(normal[0].values()), sum(bare[0].values()))
    print("  by thread")
    for thread in sorted(set(normal[0]) | set(bare[0])):
        row(f"  {thread}", normal[0][thread], bare[0][thread])
    print("  by part")
    names = [name for name, _ in PARTS if name != REST] + [WRITER_REST, REST]
    for name in names:
        if normal[1][name] or bare[1][name]:
            row(f"  {name}", normal[1][name], bare[1][name])

    print("  context switches per message")
    normal_switches, bare_switches = switches(work_dir, "normal"), switches(work_dir, "bare")
    for thread in sorted(set(normal_switches) | set(bare_switches)):
        n, b = normal_switches.get(thread, 0) / messages, bare_switches.get(thread, 0) / messages
        print(f"    {thread:<44} {n:>9.3f} {b:>9.3f} {n - b:>9.3f}")

    if top > 0:
        print(f"\n  functions by their own samples added (µs per message; top {top})")
        names = set(normal[2]) | set(bare[2])
        added = {name: normal[2][name] * scale["normal"] - bare[2][name] * scale["bare"] for name in names}
        for name in sorted(added, key=added.get, reverse=True)[:top]:
            print(f"  {added[name]:>9.2f}  {name[:110]}")


if __name__ == "__main__":
    main()
