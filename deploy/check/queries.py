"""Runs every PromQL expression of deploy/ against a live Prometheus that scrapes agent-server, for
deploy/check.sh. Fails (exit 1) when:

- an expression does not parse or evaluate (dashboards, alert and recording rules, the
  prometheus-adapter rule, Grafana variable queries);
- a dashboard panel's expression returns no series (a panel that would show nothing);
- an expression names a metric that the server does not export;
- a rule that Prometheus loaded from alerts.yml or slo.yml reports an evaluation error;
- the fault burst did not make HardenedCircuitBreakerOpen fire, or the breaker did not close again.

usage: queries.py PROMETHEUS_URL DEPLOY_DIR
"""

import json
import pathlib
import re
import sys
import urllib.parse
import urllib.request

import yaml

PROM, DEPLOY = sys.argv[1].rstrip("/"), pathlib.Path(sys.argv[2])
failures: list[str] = []
checked = 0


def api(path, **params):
    url = f"{PROM}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


def query(expr):
    return api("/api/v1/query", query=expr)


names = set(api("/api/v1/label/__name__/values")["data"])
# The hand-written rules and the objectives' generated ones.
RULE_FILES = ["alerts.yml", "slo.yml"]
groups = [(rules, group) for rules in RULE_FILES
          for group in yaml.safe_load((DEPLOY / "prometheus" / rules).read_text())["groups"]]
recorded = set()
for _, group in groups:
    recorded.update(rule["record"] for rule in group["rules"] if "record" in rule)

# The metrics of deploy/ all come from hardened's registry (hardened_*, process_*) or are recorded by
# alerts.yml and slo.yml (hardened:*).
METRIC = re.compile(r"(?<![\w:])(hardened_[a-zA-Z0-9_]+|process_[a-zA-Z0-9_]+|hardened:[a-zA-Z0-9_:]+)")


def metric_names(expr):
    """The metric names an expression selects, string literals left out."""
    return set(METRIC.findall(re.sub(r'"[^"]*"', '""', expr)))


def check_names(where, expr):
    for name in metric_names(expr):
        if name not in names and name not in recorded:
            failures.append(f"{where}: metric {name} is not exported by agent-server (nor recorded)")


# ---------------------------------------------------------------- dashboards
# The variables' values: `.*` for every query variable (their allValue), the datasource uid, and
# fixed intervals in place of Grafana's macros.
def substitute(expr):
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "10m")
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def label_values(definition):
    """`label_values(selector, label)` or `label_values(label)`: the values Grafana would offer."""
    match = re.fullmatch(r"label_values\((?:(.*),\s*)?(\w+)\)", definition.strip())
    if not match:
        return None
    selector, label = match.groups()
    params = {"match[]": [substitute(selector)]} if selector else {}
    return api(f"/api/v1/label/{label}/values", **params)


for path in sorted((DEPLOY / "grafana/dashboards").glob("*.json")):
    board = json.loads(path.read_text())
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] != "query":
            continue
        checked += 1
        definition = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        answer = label_values(definition)
        where = f"{path.name}: variable ${variable['name']} ({definition})"
        if answer is None:
            failures.append(f"{where}: not a label_values() query")
        elif answer.get("status") != "success" or not answer["data"]:
            failures.append(f"{where}: offers no value: {answer}")
        else:
            check_names(where, definition)
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            checked += 1
            expr = substitute(target["expr"])
            where = f"{path.name}: panel {panel['title']!r} ({target['refId']})"
            answer = query(expr)
            if answer.get("status") != "success":
                failures.append(f"{where}: {answer.get('error')}\n    {expr}")
            elif not answer["data"]["result"]:
                failures.append(f"{where}: no data\n    {expr}")
            check_names(where, target["expr"])

# ---------------------------------------------------------------- rules
for rules, group in groups:
    for rule in group["rules"]:
        checked += 1
        name = rule.get("alert") or rule.get("record")
        answer = query(rule["expr"])
        if answer.get("status") != "success":
            failures.append(f"{rules}: {name}: {answer.get('error')}")
        check_names(f"{rules}: {name}", rule["expr"])

rules = api("/api/v1/rules")["data"]["groups"]
loaded = 0
for group in rules:
    for rule in group["rules"]:
        loaded += 1
        if rule.get("health") != "ok":
            failures.append(f"Prometheus evaluates {rule['name']} with health {rule.get('health')}: {rule.get('lastError')}")
if loaded == 0:
    failures.append("Prometheus loaded no rule from alerts.yml and slo.yml")

# ---------------------------------------------------------------- prometheus-adapter
adapter = yaml.safe_load((DEPLOY / "k8s/prometheus-adapter/values.yaml").read_text())
for rule in adapter["rules"]["custom"]:
    checked += 1
    series = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["seriesQuery"].strip("'")).group(0)
    # On Kubernetes the adapter matches namespace and pod; here the one scraped target stands for a pod.
    expr = (rule["metricsQuery"].replace("<<.Series>>", series)
            .replace("<<.LabelMatchers>>", 'job="agent-server"').replace("<<.GroupBy>>", "instance"))
    answer = query(expr)
    if answer.get("status") != "success" or not answer["data"]["result"]:
        failures.append(f"prometheus-adapter rule {rule['name']['as']}: {answer}\n    {expr}")
    check_names("prometheus-adapter", expr)

# ---------------------------------------------------------------- end to end
# The fault burst of load.py opened the `faulty` breaker for 10 s: the alert on open breakers must have
# fired on the scraped state, and the breaker must have closed again.
for expr, meaning in [
    ('count_over_time(ALERTS{alertname="HardenedCircuitBreakerOpen",alertstate="firing",name="faulty"}[10m])',
     "HardenedCircuitBreakerOpen fired for the breaker faulty during the fault burst"),
    ('hardened_circuit_breaker_transitions_total{name="faulty",from="half_open",to="closed"} > 0',
     "the breaker faulty closed again after the burst"),
]:
    checked += 1
    answer = query(expr)
    if answer.get("status") != "success" or not answer["data"]["result"]:
        failures.append(f"expected: {meaning}\n    {expr}")

for failure in failures:
    print(f"FAIL {failure}")
print(f"queries: {checked} expressions and variables checked, {loaded} rules loaded, {len(failures)} failures")
sys.exit(1 if failures else 0)
