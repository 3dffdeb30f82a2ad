"""The monitoring files: alert rules and their promtool tests, Prometheus config, Grafana."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "veil-rules.yml"
RULE_TESTS = MONITORING / "veil-rules.test.yml"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
PROMETHEUS_RULE = ROOT / "deploy" / "k8s" / "base" / "prometheusrule.yaml"
GRAFANA = MONITORING / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "veil.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

# What GET /metrics exposes, histograms by their base name.
METRICS = frozenset(
    {
        "veil_http_requests_total",
        "veil_http_request_duration_seconds",
        "veil_stage_duration_seconds",
        "veil_policy_decisions_total",
        "veil_policy_engine_up",
        "veil_refusals_total",
        "veil_refusal_spikes_total",
        "veil_queries_total",
        "veil_rows_scanned_total",
        "veil_suppressed_rows_total",
        "veil_jobs_total",
        "veil_enclave_worker_restarts_total",
        "veil_ledger_entries",
        "veil_ledger_checkpoint_age_seconds",
        "veil_ledger_verification_ok",
        "veil_ledger_verification_timestamp_seconds",
        "veil_revenue_charged_minor_total",
        "veil_asset_storage_free_bytes",
        "veil_asset_storage_capacity_bytes",
    }
)
METRIC_NAME = re.compile(r"veil_[a-z_]+")
RECORDED_NAME = re.compile(r"veil:[a-z0-9_]+:[a-z0-9_]+")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard_panels() -> list[dict]:
    return [
        panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"
    ]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]
    exprs += [variable["query"]["query"] for variable in dashboard["templating"]["list"]]
    return exprs


def metric_names(expr: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in METRIC_NAME.findall(expr)}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    # A missing promtool must fail CI, never skip: scripts/ops-tools installs it.
    assert binary, "promtool is not on PATH; run scripts/ops-tools"
    return subprocess.run(
        [binary, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", str(RULES)),
        ("test", "rules", str(RULE_TESTS)),
        # Syntax only: the token file it reads is the one a local `veil demo` writes.
        ("check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)),
    ],
    ids=["check-rules", "test-rules", "check-config"],
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_local_prometheus_sends_the_demo_home_metrics_token() -> None:
    (scrape,) = load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
    token_file = (PROMETHEUS_CONFIG.parent / scrape["authorization"]["credentials_file"]).resolve()
    assert token_file == (ROOT / ".veil" / "keys" / "metrics.token").resolve()


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = load_yaml(RULE_TESTS)["tests"]
    cases = [case for group in tests for case in group.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    names = {alert["alert"] for alert in alerts()}
    assert names - firing == set()
    assert names - quiet == set()


def test_prometheus_rule_carries_the_same_groups() -> None:
    resource = load_yaml(PROMETHEUS_RULE)
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["name"] == "veil"
    assert resource["metadata"]["namespace"] == "veil"
    assert resource["metadata"]["labels"] == {
        "app.kubernetes.io/name": "veil",
        "app.kubernetes.io/part-of": "veil",
        "prometheus": "veil",
    }
    assert resource["spec"]["groups"] == load_yaml(RULES)["groups"]


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_alert_is_actionable(alert: dict) -> None:
    assert alert["labels"]["severity"] in {"page", "ticket"}
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert annotations["runbook_url"] == f"docs/runbook.md#{alert['alert'].lower()}"


def test_alert_names_are_unique() -> None:
    names = [alert["alert"] for alert in alerts()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_only_exposed_metrics_are_used(source: str) -> None:
    exprs = [rule["expr"] for rule in rules()] if source == "rules" else dashboard_exprs()
    used = set().union(*(metric_names(expr) for expr in exprs))
    assert used, "no veil_ metric found: the name pattern is wrong"
    assert used - METRICS == set()


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_recorded_series_used_are_recorded(source: str) -> None:
    exprs = [rule["expr"] for rule in rules()] if source == "rules" else dashboard_exprs()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = set().union(*(set(RECORDED_NAME.findall(expr)) for expr in exprs))
    assert used - recorded == set()


def test_dashboard_queries_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "veil"
    assert dashboard["title"] == "Veil"
    assert dashboard["schemaVersion"] >= 39
    panels = dashboard_panels()
    assert panels
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == DATASOURCE, variable["name"]


def test_grafana_provisioning() -> None:
    (datasource,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "$PROMETHEUS_URL"
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "veil.yml")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "$VEIL_GRAFANA_DASHBOARDS"
    # Grafana before 11.3 refuses to provision a dashboard titled like its folder.
    assert provider["folder"] != json.loads(DASHBOARD.read_text())["title"]


def test_local_prometheus_scrapes_the_gateway_and_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["rule_files"] == [RULES.name]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "veil"
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "5s"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:8000"]}]
