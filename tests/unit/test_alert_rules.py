"""Issue 19 item 8: the alerts mean something. Every selector names carebridge's scrape jobs
(and the Temporal SDK's series its namespace and task queue, as configured), every series is
one the code exports, the PrometheusRule is the rule file, the ServiceMonitors scrape what
exists, and promtool's rule tests pass on fixture series (tests/fixtures/alerts)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_deploy import (
    BASE,
    DEPLOY,
    K8S,
    OBSERVABILITY,
    OVERLAYS,
    ROOT,
    Obj,
    alert_rules,
    build,
    find,
    load_docs,
    load_yaml,
    metric_names,
)

MONITORING = K8S / "monitoring"
CASES = ROOT / "tests" / "fixtures" / "alerts" / "cases.yaml"
CODE = ("workers", "activities", "ingest", "store")
JOB = ("job", "=~", "carebridge-.*")
# Series from exporters that are not carebridge's, by who exports them.
EXTERNAL = {
    "kube_pod_container_status_last_terminated_reason": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
}
# The Temporal SDK's series the alerts use; tests/integration/test_alert_series.py scrapes a
# real worker for each, with these labels.
SDK_SERIES = {
    "temporal_num_pollers",
    "temporal_workflow_task_schedule_to_start_latency_bucket",
    "temporal_workflow_task_execution_failed",
    "temporal_worker_task_slots_available",
}
SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def selectors(expr: str) -> list[tuple[str, set[tuple[str, str, str]]]]:
    """Each `series{matchers}` of an expression, with its matchers as (label, op, value)."""
    return [
        (name, {(m[0], m[1], m[2]) for m in MATCHER.findall(body)})
        for name, body in SELECTOR.findall(expr)
        if not name.startswith(("by", "without", "on", "ignoring"))
    ]


def series_of(name: str) -> str:
    return re.sub(r"_(bucket|sum|count|total)$", "", name)


def configured(key: str) -> set[str]:
    """A setting's value in the base ConfigMap and in the compose environment."""
    (config,) = find(build(BASE), "ConfigMap", "carebridge-config")
    example = (DEPLOY / "compose" / "carebridge.env.example").read_text()
    compose = dict(line.split("=", 1) for line in example.splitlines() if line[:1].isalpha())
    return {config["data"][key], compose[key]}


def test_the_selector_parser_sees_each_series_and_its_matchers() -> None:
    expr = 'max by (x) (a{job=~"carebridge-.*", b="c"}) and on (pod) d{e!="f"}'
    assert selectors(expr) == [
        ("a", {("job", "=~", "carebridge-.*"), ("b", "=", "c")}),
        ("d", {("e", "!=", "f")}),
    ]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_selector_names_carebridges_jobs_namespace_and_task_queue(rule: Obj) -> None:
    """A shared Prometheus mixed every application's temporal_* series into these alerts,
    and absent() never fired while any other worker polled anywhere."""
    found = selectors(str(rule["expr"]))
    assert {name for name, _ in found} == metric_names(str(rule["expr"])), "a bare series"
    (namespace,) = configured("CAREBRIDGE_TEMPORAL_NAMESPACE")
    (task_queue,) = configured("CAREBRIDGE_TASK_QUEUE")
    (k8s_namespace,) = {o["metadata"].get("namespace") for o in build(OVERLAYS / "production")} - {
        None
    }
    for name, matchers in found:
        if name in EXTERNAL:
            assert ("namespace", "=", k8s_namespace) in matchers, name
            continue
        assert JOB in matchers, name
        if name.startswith("temporal_"):
            assert ("namespace", "=", namespace) in matchers, name
            assert ("task_queue", "=", task_queue) in matchers, name


def exported_in_code() -> str:
    return "\n".join(path.read_text() for folder in CODE for path in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alerts_series_is_exported_by_carebridge_or_named_exporter(rule: Obj) -> None:
    code = exported_in_code()
    for name in metric_names(str(rule["expr"])):
        if name in EXTERNAL or name in SDK_SERIES:
            continue
        assert name.startswith("carebridge_"), name
        assert f'"{series_of(name)}"' in code, f"{rule['alert']}: nothing exports {name}"


def test_the_prometheus_rule_object_holds_the_rule_files_groups() -> None:
    (rule,) = load_docs(MONITORING / "prometheus-rule.yaml")
    assert rule["kind"] == "PrometheusRule"
    plain = load_yaml(OBSERVABILITY / "prometheus-alerts.yaml")["groups"]
    assert rule["spec"]["groups"] == plain, "regenerate: python deploy/observability/render_rule.py"


def test_service_monitors_scrape_the_services_ports_and_keep_the_sdks_namespace() -> None:
    services = find(build(BASE), "Service")
    monitors = find(build(MONITORING), "ServiceMonitor")
    assert {m["metadata"]["labels"]["app.kubernetes.io/component"] for m in monitors} == {
        "api",
        "listener",
        "worker",
    }
    for monitor in monitors:
        wanted = monitor["spec"]["selector"]["matchLabels"]
        chosen = [s for s in services if wanted.items() <= s["metadata"]["labels"].items()]
        ports = {p["name"] for s in chosen for p in s["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports, monitor["metadata"]["name"]
            names = {s["metadata"]["name"] for s in chosen}
            assert all(re.fullmatch(JOB[2], name) for name in names)  # the job label
        if wanted["app.kubernetes.io/component"] == "worker":
            assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus")
        pytest.skip(
            "promtool is not installed: apt-get install prometheus (Debian) to run the "
            "alert rule tests; CI installs it"
        )
    return found


def test_the_rule_file_passes_promtools_check() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(OBSERVABILITY / "prometheus-alerts.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_tests_pass_on_the_fixture_series(tmp_path: Path) -> None:
    rules = load_yaml(OBSERVABILITY / "prometheus-alerts.yaml")
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    cases = {"rule_files": ["rules.yaml"], **load_yaml(CASES)}
    tested = {t["alertname"] for case in cases["tests"] for t in case["alert_rule_test"]}
    assert len(tested) >= 8, tested
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases))
    result = subprocess.run(
        [promtool(), "test", "rules", "cases.yaml"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
