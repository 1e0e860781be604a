"""A short, bounded load on a local agent-server, for deploy/check.sh: conversations that call every
tool but `fetch` (which would leave the machine), unauthorised and unknown requests, the probes, and a
fault burst that opens the `faulty` breaker and lets it close again.

usage: load.py API_URL OPS_URL KEY
"""

import json
import sys
import time
import urllib.error
import urllib.request

API, OPS, KEY = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3]
statuses: dict[int, int] = {}


def request(method, url, body=None, key=KEY):
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    statuses[status] = statuses.get(status, 0) + 1
    return status, text


def session():
    status, text = request("POST", f"{API}/v1/sessions")
    if status != 201:
        sys.exit(f"POST /v1/sessions answered {status}: {text!r}")
    return json.loads(text)["id"]


def say(sid, content, pause=0.06):
    # Paced below [rate.llm] (50 model calls a second, a turn makes two): the limiter refuses only
    # bursts, and the fault burst below reaches the `faulty` tool.
    answer = request("POST", f"{API}/v1/sessions/{sid}/messages", {"content": content})
    time.sleep(pause)
    return answer


def faults(percent):
    status, text = request("PUT", f"{API}/v1/admin/faults", {"failure_percent": percent, "latency_ms": 0})
    if status != 200:
        sys.exit(f"PUT /v1/admin/faults answered {status}: {text!r}")


def probes():
    for path in ("/health/live", "/health/ready", "/health/startup", "/health"):
        urllib.request.urlopen(f"{OPS}{path}", timeout=5).read()


started = time.monotonic()
probes()
# Conversations: calculator, clock, memory (set and get), plain text.
for i in range(40):
    sid = session()
    say(sid, f"what is {i} + 3 * 4?")
    say(sid, "what time is it?")
    say(sid, f"remember colour{i} is blue")
    say(sid, f"recall colour{i}")
    say(sid, "hello there")
    request("GET", f"{API}/v1/sessions/{sid}")
    if i % 10 == 0:
        probes()
# Refusals: no key, a wrong key, an unknown session, an empty message. Eight failed authentications,
# under the ten per address and minute after which the server answers every request of the address 429.
for _ in range(4):
    request("POST", f"{API}/v1/sessions", key=None)
    request("POST", f"{API}/v1/sessions", key="not-a-key")
    request("GET", f"{API}/v1/sessions/00000000-0000-0000-0000-000000000000")
sid = session()
say(sid, "")
# A burst faster than the model's rate limit: some answers are 429.
for _ in range(70):
    say(sid, "what is 1 + 1?", pause=0)
time.sleep(2.5)
# The fault burst: every call of `faulty` fails until its breaker opens (half of at least 10 calls).
faults(100)
for _ in range(30):
    say(sid, "trigger a fault")
probes()
# Healthy again: after open_for the breaker lets probes through, they succeed, and it closes.
faults(0)
time.sleep(11)
for _ in range(10):
    say(sid, "trigger a fault")
    time.sleep(0.2)
probes()
print(f"load: {sum(statuses.values())} requests in {time.monotonic() - started:.1f} s, by status {dict(sorted(statuses.items()))}")
