"""Exemplars end to end, for deploy/check.sh: slow calls of the `faulty` tool (PUT /v1/admin/faults adds
latency) in sampled traces, then a real Prometheus with exemplar storage must return, from
/api/v1/query_exemplars, an exemplar of the slow bucket whose trace id is one the server wrote into its
audit trail for those very requests. The OpenMetrics exposition itself is read by the Python client's
OpenMetrics parser (prometheus_client.openmetrics.parser), which rejects what the format does not allow.

usage: exemplars.py API_URL OPS_URL PROMETHEUS_URL KEY AUDIT_JSONL
"""

import json
import sys
import time
import urllib.parse
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

API, OPS, PROMETHEUS, KEY, AUDIT = (sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3].rstrip("/"),
                                    sys.argv[4], sys.argv[5])
LATENCY_MS = 300
ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def request(method, url, body=None):
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers),
                                timeout=30) as response:
        return response.status, response.read()


def faults(latency_ms):
    request("PUT", f"{API}/v1/admin/faults", {"failure_percent": 0, "latency_ms": latency_ms})


def audit_trace_ids():
    ids = set()
    with open(AUDIT, encoding="utf-8") as trail:
        for line in trail:
            trace_id = json.loads(line).get("trace_id")
            if trace_id:
                ids.add(trace_id)
    return ids


def openmetrics_exemplars():
    """Scrapes /metrics as Prometheus does and parses it strictly; the exemplars of the call durations."""
    with urllib.request.urlopen(urllib.request.Request(f"{OPS}/metrics", headers={"accept": ACCEPT}),
                                timeout=10) as response:
        content_type = response.headers["content-type"]
        text = response.read().decode()
    if not content_type.startswith("application/openmetrics-text; version=1.0.0"):
        sys.exit(f"/metrics answered {content_type!r} to an OpenMetrics scraper")
    families = list(text_string_to_metric_families(text))
    durations = [family for family in families if family.name == "hardened_call_duration_seconds"]
    if not durations or durations[0].type != "histogram":
        sys.exit("no hardened_call_duration_seconds histogram in the OpenMetrics exposition")
    return families, [sample for sample in durations[0].samples if sample.exemplar is not None]


before = audit_trace_ids()
status, text = request("POST", f"{API}/v1/sessions")
sid = json.loads(text)["id"]
faults(LATENCY_MS)
try:
    for _ in range(5):
        status, text = request("POST", f"{API}/v1/sessions/{sid}/messages", {"content": "trigger a fault"})
        if status != 200:
            sys.exit(f"a message to the faulty tool answered {status}: {text!r}")
finally:
    faults(0)
# The audit pipeline writes in batches: wait for the slow requests' records.
slow_traces = set()
deadline = time.monotonic() + 15
while not slow_traces and time.monotonic() < deadline:
    time.sleep(0.5)
    slow_traces = audit_trace_ids() - before
if not slow_traces:
    sys.exit(f"the audit trail {AUDIT} has no trace id for the slow requests")

families, exemplars = openmetrics_exemplars()
slow = [sample for sample in exemplars
        if sample.labels.get("function") == "faulty" and sample.exemplar.value >= LATENCY_MS / 1000]
if not slow:
    sys.exit(f"no exemplar of a slow `faulty` call in the OpenMetrics exposition: {exemplars}")
print(f"openmetrics: {len(families)} families parsed, {len(exemplars)} duration buckets with an exemplar")

# Prometheus scrapes every 2 s: wait for a scrape that has the slow calls' exemplars.
query = 'hardened_call_duration_seconds_bucket{function="faulty"}'
found = []
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    now = time.time()
    params = urllib.parse.urlencode({"query": query, "start": now - 300, "end": now + 60})
    with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query_exemplars?{params}", timeout=10) as response:
        answer = json.load(response)
    if answer.get("status") != "success":
        sys.exit(f"query_exemplars failed: {answer}")
    found = [(exemplar["labels"].get("trace_id"), float(exemplar["value"]))
             for series in answer["data"] for exemplar in series["exemplars"]]
    matching = [(trace, value) for trace, value in found if trace in slow_traces and value >= LATENCY_MS / 1000]
    if matching:
        trace, value = matching[0]
        print(f"query_exemplars: trace {trace} of a {value:.3f} s `faulty` call, written to the audit trail "
              f"by the server ({len(found)} exemplars in all)")
        break
    time.sleep(1)
else:
    sys.exit(f"no exemplar from Prometheus names a slow call's trace; found {found}, slow traces {sorted(slow_traces)}")
