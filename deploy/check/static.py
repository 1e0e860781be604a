"""Consistency checks across deploy/, for deploy/check.sh: what no single tool's schema can see.

usage: static.py REPOSITORY_ROOT RENDERED_BASE_YAML RENDERED_MONITORING_YAML
"""

import json
import pathlib
import re
import sys
import tomllib

import yaml

ROOT = pathlib.Path(sys.argv[1])
DEPLOY = ROOT / "deploy"
failures: list[str] = []


def expect(condition, message):
    if not condition:
        failures.append(message)


def seconds(duration):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


config_dir = ROOT / "examples/production-agent/config/production"
hardened = tomllib.loads((config_dir / "hardened.toml").read_text())
agent = tomllib.loads((config_dir / "agent.toml").read_text())
api_port = int(hardened["server"]["address"].rsplit(":", 1)[1])
ops_port = int(hardened["server"]["admin_address"].rsplit(":", 1)[1])
deadline = seconds(hardened["shutdown"]["deadline"])
pre_stop_delay = seconds(hardened["shutdown"]["pre_stop_delay"])
data_dir = "/var/lib/agent-server"
expect(agent["audit"]["path"].startswith(data_dir + "/"), f"the audit path {agent['audit']['path']} is outside {data_dir}")

# ------------------------------------------------- the PrometheusRule is alerts.yml and slo.yml
# The hand-written rules, then the objectives' generated ones; each file with its unit tests.
RULE_FILES = [("alerts.yml", ["alerts_test.yml"]), ("slo.yml", ["slo_page_test.yml", "slo_ticket_test.yml"])]
alerts = {"groups": [group for rules, _ in RULE_FILES
                     for group in yaml.safe_load((DEPLOY / "prometheus" / rules).read_text())["groups"]]}
rule = yaml.safe_load((DEPLOY / "k8s/monitoring/prometheusrule.yaml").read_text())
expect(rule["spec"]["groups"] == alerts["groups"],
       "prometheusrule.yaml does not hold the groups of alerts.yml and slo.yml")
expect(len({group["name"] for group in alerts["groups"]}) == len(alerts["groups"]),
       "alerts.yml and slo.yml repeat a group name")

# ---------------------------------------------------------------- every alert: tests and a playbook
runbook = (ROOT / "docs/runbook.md").read_text()
headings = {line.lstrip("#").strip() for line in runbook.splitlines() if line.startswith("#")}
for rules, tests_files in RULE_FILES:
    tests = [test for tests_file in tests_files
             for test in yaml.safe_load((DEPLOY / "prometheus" / tests_file).read_text())["tests"]]
    tests_file = " and ".join(tests_files)
    for rule_ in (rule_ for group in yaml.safe_load((DEPLOY / "prometheus" / rules).read_text())["groups"]
                  for rule_ in group["rules"]):
        if "alert" not in rule_:
            continue
        name = rule_["alert"]
        cases = [case for test in tests for case in test["alert_rule_test"] if case["alertname"] == name]
        expect(any(case["exp_alerts"] for case in cases), f"{tests_file} has no firing case for {name}")
        expect(any(not case["exp_alerts"] for case in cases), f"{tests_file} has no quiet case for {name}")
        expect(name in headings, f"docs/runbook.md has no heading {name}")
        expect(rule_["annotations"].get("runbook") == f"docs/runbook.md#{name.lower()}",
               f"{name}: the runbook annotation is not docs/runbook.md#{name.lower()}")

# ---------------------------------------------------------------- Kubernetes
documents = [doc for doc in yaml.safe_load_all(pathlib.Path(sys.argv[2]).read_text()) if doc]
by_kind = {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}
deployment = by_kind[("Deployment", "agent-server")]
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
grace = pod.get("terminationGracePeriodSeconds", 30)
pre_stop = 0.0
hook = container.get("lifecycle", {}).get("preStop", {})
if "sleep" in hook:
    pre_stop = float(hook["sleep"]["seconds"])
elif "exec" in hook:
    match = re.search(r"sleep\s+(\d+)", " ".join(hook["exec"]["command"]))
    pre_stop = float(match.group(1)) if match else 0.0
expect(pre_stop + deadline < grace,
       f"terminationGracePeriodSeconds {grace} is not above preStop {pre_stop} s + the shutdown deadline {deadline} s")
ports = {port["name"]: port["containerPort"] for port in container["ports"]}
expect(ports.get("http") == api_port, f"container port http is not {api_port} ([server] address)")
expect(ports.get("ops") == ops_port, f"container port ops is not {ops_port} ([server] admin_address)")
for probe, path in [("startupProbe", "/health/startup"), ("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")]:
    get = container.get(probe, {}).get("httpGet", {})
    expect(get.get("path") == path and get.get("port") == "ops", f"{probe} is not {path} on the ops port")
readiness = container["readinessProbe"]
expect(readiness["periodSeconds"] * readiness.get("failureThreshold", 3) <= pre_stop_delay,
       "the readiness probe takes longer to fail than [shutdown] pre_stop_delay")
expect(container["livenessProbe"].get("timeoutSeconds", 1) > seconds(hardened["health"]["check_timeout"]),
       "the liveness probe's timeout is not above [health] check_timeout")
security = container["securityContext"]
expect(security.get("readOnlyRootFilesystem") is True, "the root filesystem is not read-only")
expect(security.get("allowPrivilegeEscalation") is False, "privilege escalation is allowed")
expect(security.get("capabilities", {}).get("drop") == ["ALL"], "capabilities are not all dropped")
expect(pod["securityContext"].get("runAsNonRoot") is True, "the pod may run as root")
expect(pod["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp is not RuntimeDefault")
volumes = {volume["name"]: volume for volume in pod["volumes"]}
mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
for path in (data_dir, "/tmp"):
    expect(path in mounts and "emptyDir" in volumes[mounts[path]], f"{path} is not an emptyDir")
expect("/etc/agent-server" in mounts and "configMap" in volumes[mounts["/etc/agent-server"]],
       "/etc/agent-server is not the ConfigMap")
env = {item["name"]: item for item in container["env"]}
expect(env.get("AGENT_CONFIG_DIR", {}).get("value") == "/etc/agent-server", "AGENT_CONFIG_DIR is not /etc/agent-server")
for name in ("AGENT_OPERATOR_KEY", "DATABASE_URL"):
    expect("secretKeyRef" in env.get(name, {}).get("valueFrom", {}), f"{name} does not come from the Secret")
expect("requests" in container["resources"] and "limits" in container["resources"], "requests or limits missing")
expect(pod.get("topologySpreadConstraints"), "no topology spread")
config_maps = [doc for doc in documents if doc["kind"] == "ConfigMap"]
expect(len(config_maps) == 1 and config_maps[0]["data"] == {
    "hardened.toml": (config_dir / "hardened.toml").read_text(), "agent.toml": (config_dir / "agent.toml").read_text()},
    "the ConfigMap does not hold config/production's files")
hpa = by_kind[("HorizontalPodAutoscaler", "agent-server")]
metric_types = {metric["type"] for metric in hpa["spec"]["metrics"]}
expect(metric_types == {"Resource", "Pods"}, "the HPA does not scale on CPU and a Pods metric")
adapter = yaml.safe_load((DEPLOY / "k8s/prometheus-adapter/values.yaml").read_text())
served = {rule_["name"]["as"] for rule_ in adapter["rules"]["custom"]}
for metric in hpa["spec"]["metrics"]:
    if metric["type"] == "Pods":
        expect(metric["pods"]["metric"]["name"] in served, f"no prometheus-adapter rule serves {metric['pods']['metric']['name']}")
expect(("PodDisruptionBudget", "agent-server") in by_kind, "no PodDisruptionBudget")
services = [doc for doc in documents if doc["kind"] == "Service"]
monitoring = [doc for doc in yaml.safe_load_all(pathlib.Path(sys.argv[3]).read_text()) if doc]
monitor = next(doc for doc in monitoring if doc["kind"] == "ServiceMonitor")
selected = [svc for svc in services
            if all(svc["metadata"].get("labels", {}).get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())]
expect(len(selected) == 1 and any(port["name"] == monitor["spec"]["endpoints"][0]["port"] for port in selected[0]["spec"]["ports"]),
       "the ServiceMonitor does not select exactly one Service with its port")
secrets = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all((DEPLOY / "k8s/secret.example.yaml").read_text()) if doc}
for name, item in env.items():
    ref = item.get("valueFrom", {}).get("secretKeyRef")
    if ref:
        expect(ref["key"] in secrets.get(ref["name"], {}).get("stringData", {}),
               f"{name} names a Secret key that secret.example.yaml does not have")

# ---------------------------------------------------------------- the audit signing key
# The production configuration requires a key: every file of [audit] is in a read-only Secret volume that
# only the container's user (through the pod's fsGroup) can read, apart from the ConfigMap's mount (where
# no mount point can be made) and from the audit volume, and secret.example.yaml has a key for each.
audit = agent["audit"]
expect(audit.get("signing") == "required", "config/production/agent.toml: [audit] signing is not \"required\"")
key_files = [audit.get("signing_key_file", "")] + audit.get("public_key_files", [])
expect(key_files[0] and len(key_files) > 1, "[audit] names no signing_key_file or no public_key_files")
key_dir = str(pathlib.PurePosixPath(key_files[0]).parent)
mount_of = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
for file in key_files:
    path = pathlib.PurePosixPath(file)
    expect(str(path.parent) == key_dir, f"{file} is not in {key_dir}, beside signing_key_file")
    for outside in ("/etc/agent-server", data_dir):
        expect(not path.is_relative_to(outside), f"{file} is under {outside}")
mount = mount_of.get(key_dir, {})
source = volumes.get(mount.get("name"), {}).get("secret", {})
expect(source, f"{key_dir} is not a Secret volume of the pod")
expect(mount.get("readOnly") is True, f"{key_dir} is not mounted read-only")
mode = source.get("defaultMode", 0o644)
expect(mode & 0o337 == 0 and mode & 0o040 and pod["securityContext"].get("fsGroup") is not None,
       f"the Secret volume's defaultMode is {mode:o}, not 0440 with the pod's fsGroup (kubelet's files are root's: "
       "the container's user reads them through its group, and nobody else may)")
signing_secret = secrets.get(source.get("secretName"), {})
expect(not source or signing_secret.get("type") == "Opaque",
       f"secret.example.yaml has no Secret {source.get('secretName')}, which the pod mounts at {key_dir}")
for file in key_files:
    expect(pathlib.PurePosixPath(file).name in signing_secret.get("stringData", {}),
           f"secret.example.yaml's {source.get('secretName')} has no key {pathlib.PurePosixPath(file).name}")

# ---------------------------------------------------------------- compose
compose = yaml.safe_load((DEPLOY / "compose/docker-compose.yml").read_text())
services_ = compose["services"]
for name, service in services_.items():
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0]
        if source.startswith("."):
            expect((DEPLOY / "compose" / source).exists(), f"compose {name}: {source} does not exist")
    for dependency, condition in service.get("depends_on", {}).items():
        expect(condition["condition"] != "service_healthy" or "healthcheck" in services_[dependency],
               f"compose {name} waits for {dependency} to be healthy, which has no healthcheck")
# The key pair: a named volume, made once outside the stack (external), mounted read-only by agent-server
# where [audit] reads it, and written by the one-off audit-keygen service at signing_key_file.
mounts_ = {volume.split(":")[1]: volume.split(":") for volume in services_["agent-server"]["volumes"]}
key_mount = mounts_.get(key_dir, [])
expect(key_mount[2:] == ["ro"], f"compose agent-server does not mount {key_dir} read-only")
key_volume = compose.get("volumes", {}).get(key_mount[0] if key_mount else "", None) or {}
expect(key_volume.get("external") is True, f"compose: the volume at {key_dir} is not an external named volume")
keygen = services_.get("audit-keygen", {})
expect(keygen.get("command", [])[:2] == ["audit", "keygen"] and keygen["command"][-1] == key_files[0]
       and f"{key_mount[0] if key_mount else ''}:{key_dir}" in keygen.get("volumes", [])
       and keygen.get("profiles"), f"compose audit-keygen does not write {key_files[0]} into that volume, on demand only")
agent_env = services_["agent-server"]["environment"]
for name in ("AGENT_CONFIG_DIR", "DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "AGENT_OPERATOR_KEY"):
    expect(name in agent_env, f"compose agent-server does not set {name}")
expect(agent_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317", "compose: OTLP does not go to jaeger:4317")
expect(services_["agent-server"]["stop_grace_period"] == f"{grace}s", "compose: stop_grace_period differs from the pod's grace period")
dockerfile = (DEPLOY / "docker/Dockerfile").read_text()
expect(re.search(rf"^EXPOSE {api_port} {ops_port}$", dockerfile, re.M), f"the Dockerfile does not EXPOSE {api_port} {ops_port}")
expect(re.search(r"^USER (?!0\b|root\b)", dockerfile, re.M), "the Dockerfile does not switch to a non-root user")
expect(re.search(rf"install -d -o agent -g agent -m 0700 {re.escape(key_dir)}$", dockerfile, re.M),
       f"the Dockerfile does not make {key_dir} 0700 for its user (the compose volume's first owner)")
prometheus = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
targets = [t for job in prometheus["scrape_configs"] if job["job_name"] == "agent-server" for c in job["static_configs"] for t in c["targets"]]
expect(targets == [f"agent-server:{ops_port}"], f"prometheus.yml does not scrape agent-server:{ops_port}")

# ---------------------------------------------------------------- Grafana
provisioned = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
expect(any(ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090" for ds in provisioned),
       "the provisioned datasource is not the compose Prometheus")
traces = [ds for ds in provisioned if ds["type"] in ("jaeger", "tempo")]
expect(any(ds["url"] == "http://jaeger:16686" for ds in traces), "no provisioned trace datasource for the compose Jaeger")
destinations = [destination for ds in provisioned if ds["type"] == "prometheus"
                for destination in ds.get("jsonData", {}).get("exemplarTraceIdDestinations", [])]
expect(any(d["name"] == "trace_id" and d["datasourceUid"] in {ds["uid"] for ds in traces} for d in destinations),
       "the Prometheus datasource does not link an exemplar's trace_id to the trace datasource")
expect("--enable-feature=exemplar-storage" in services_["prometheus"]["command"],
       "the compose Prometheus does not store exemplars")
provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/hardened.yml").read_text())["providers"][0]
grafana_mounts = dict(volume.split(":")[:2] for volume in services_["grafana"]["volumes"])
expect(grafana_mounts.get("../grafana/dashboards") == provider["options"]["path"],
       "compose does not mount the dashboards where the provider reads them")
uids = set()
for path in sorted((DEPLOY / "grafana/dashboards").glob("*.json")):
    board = json.loads(path.read_text())
    expect(board["uid"] not in uids, f"{path.name}: uid {board['uid']} repeated")
    uids.add(board["uid"])
    ids = [panel["id"] for panel in board["panels"]]
    expect(len(ids) == len(set(ids)), f"{path.name}: panel ids repeated")
    variables = {variable["name"] for variable in board["templating"]["list"]}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        expect(panel.get("description"), f"{path.name}: panel {panel['title']!r} has no description")
        expect(panel["targets"], f"{path.name}: panel {panel['title']!r} has no query")
        for target in panel["targets"]:
            expect(target.get("datasource", {}).get("uid") == "${datasource}",
                   f"{path.name}: panel {panel['title']!r} does not use the datasource variable")
            if "hardened_call_duration_seconds_bucket" in target["expr"]:
                expect(target.get("exemplar") is True,
                       f"{path.name}: latency panel {panel['title']!r} does not show exemplars")
            for used in re.findall(r"\$\{?(\w+)\}?", target["expr"]):
                expect(used.startswith("__") or used in variables,
                       f"{path.name}: panel {panel['title']!r} uses ${used}, which is not a variable")
        expect(panel["title"] in (ROOT / "docs/observability.md").read_text(),
               f"docs/observability.md does not describe the panel {panel['title']!r} of {path.name}")

for failure in failures:
    print(f"FAIL {failure}")
print(f"consistency: {len(failures)} failures")
sys.exit(1 if failures else 0)
