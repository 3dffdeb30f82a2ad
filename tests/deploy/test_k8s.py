"""deploy/k8s renders, validates, passes checkov and holds what an operator is promised."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ["dev", "prod"]
KUBERNETES_VERSION = "1.33.0"
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
SHIPPED_POLICIES = sorted(
    path for path in (ROOT / "policies").glob("*.rego") if not path.name.endswith("_test.rego")
)


@dataclass
class Rendered:
    path: Path
    docs: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        (doc,) = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        return doc


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A missing tool fails the test: CI must run every check (scripts/ops-tools installs them).
    path = shutil.which(name)
    assert path, f"{name} is not on PATH: run scripts/ops-tools, add ~/.cache/veil/bin to PATH"
    return subprocess.run([path, *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    folder = tmp_path_factory.mktemp("k8s")
    renders = {}
    for overlay in OVERLAYS:
        built = tool(
            "kustomize",
            "build",
            "--load-restrictor",
            "LoadRestrictionsNone",
            f"deploy/k8s/overlays/{overlay}",
        )
        assert built.returncode == 0, built.stderr
        path = folder / f"{overlay}.yaml"
        path.write_text(built.stdout)
        renders[overlay] = Rendered(path, [doc for doc in yaml.safe_load_all(built.stdout) if doc])
    return renders


@pytest.fixture(scope="module")
def checkov_reports(renders: dict[str, Rendered]) -> list[dict[str, Any]]:
    """One checkov run over both renders and the Dockerfile: it takes seconds to start."""
    files = [str(renders[overlay].path) for overlay in OVERLAYS] + [str(ROOT / "Dockerfile")]
    args = [arg for path in files for arg in ("-f", path)]
    ran = tool(
        "checkov",
        *args,
        "--framework",
        "kubernetes",
        "dockerfile",
        "--output",
        "json",
        "--skip-download",
    )
    assert ran.stdout, ran.stderr
    report = json.loads(ran.stdout)
    return report if isinstance(report, list) else [report]


def pod_specs(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc["metadata"]["name"], doc["spec"]["template"]["spec"])
        for doc in rendered.docs
        if doc["kind"] in WORKLOADS
    ]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("initContainers", []) + spec["containers"]


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renders_every_piece(renders: dict[str, Rendered], overlay: str) -> None:
    kinds = {doc["kind"] for doc in renders[overlay].docs}
    assert {
        "Namespace",
        "ServiceAccount",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "Job",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
    } <= kinds
    renders[overlay].one("PrometheusRule", "veil")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_validates_against_the_kubernetes_schemas(
    renders: dict[str, Rendered], overlay: str
) -> None:
    rendered = renders[overlay]
    ran = tool("kubernetes-validate", "-k", KUBERNETES_VERSION, "--strict", str(rendered.path))
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    # kubernetes-validate has no schema for the monitoring.coreos.com kinds and only warns
    # about them; every built-in kind must be reported as passed.
    built_in = [doc for doc in rendered.docs if doc["apiVersion"] != "monitoring.coreos.com/v1"]
    assert output.count(" passed for resource ") == len(built_in), output
    warnings = [line for line in output.splitlines() if line.startswith("WARN")]
    assert all("api version monitoring.coreos.com/v1" in line for line in warnings), warnings


def test_checkov_finds_nothing(checkov_reports: list[dict[str, Any]]) -> None:
    assert {report["check_type"] for report in checkov_reports} == {"kubernetes", "dockerfile"}
    for report in checkov_reports:
        failed = [
            (check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]
        ]
        assert failed == [], f"{report['check_type']}: {failed}"


def test_every_checkov_skip_gives_a_reason(checkov_reports: list[dict[str, Any]]) -> None:
    for report in checkov_reports:
        for check in report["results"]["skipped_checks"]:
            assert check["check_result"].get("suppress_comment", "").strip(), check["check_id"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_restricted_and_bounded(
    renders: dict[str, Rendered], overlay: str
) -> None:
    for name, spec in pod_specs(renders[overlay]):
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["serviceAccountName"] not in ("", "default"), name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert all(isinstance(pod[key], int) for key in ("runAsUser", "runAsGroup", "fsGroup"))
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][bound].keys(), where
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert isinstance(context["runAsUser"], int), where
            assert isinstance(context["runAsGroup"], int), where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_long_running_containers_are_probed(renders: dict[str, Rendered], overlay: str) -> None:
    for doc in renders[overlay].docs:
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in containers(doc["spec"]["template"]["spec"]):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{doc['metadata']['name']}/{container['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_serves_behind_its_opa_sidecar(renders: dict[str, Rendered], overlay: str) -> None:
    spec = renders[overlay].one("Deployment", "veil-gateway")["spec"]["template"]["spec"]
    (opa,) = spec["initContainers"]
    assert opa["name"] == "opa"
    assert opa["restartPolicy"] == "Always"
    assert opa["image"].startswith("openpolicyagent/opa:1.")
    assert "--addr=127.0.0.1:8181" in opa["args"]
    assert "--diagnostic-addr=0.0.0.0:8282" in opa["args"]
    assert opa["livenessProbe"]["httpGet"]["path"] == "/health"
    assert opa["readinessProbe"]["httpGet"]["path"] == "/health?bundle=true"
    mounts = {mount["mountPath"]: mount["name"] for mount in opa["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    loaded = {volumes[name]["configMap"]["name"].rsplit("-", 1)[0] for name in mounts.values()}
    assert loaded == {"veil-policies", "veil-operator-policies"}
    assert set(mounts) <= set(opa["args"])

    (gateway,) = spec["containers"]
    # The base's bare name would be pulled from Docker Hub's veil/ namespace, not ours.
    assert not gateway["image"].startswith("veil/")
    assert gateway["command"] + gateway["args"] == [
        "veil",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    variables = env(gateway)
    assert variables["VEIL_HOME"] == "/var/lib/veil"
    assert variables["VEIL_POLICY_ENGINE"] == "opa"
    assert variables["VEIL_OPA_URL"] == "http://127.0.0.1:8181"
    database = variables["VEIL_DATABASE_URL"]["secretKeyRef"]
    assert database["name"].startswith("veil-database") and database["key"] == "url"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["startupProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_state_comes_from_the_shared_volume_and_the_key_secret(
    renders: dict[str, Rendered], overlay: str
) -> None:
    spec = renders[overlay].one("Deployment", "veil-gateway")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in spec["containers"][0]["volumeMounts"]}

    home = volumes[mounts["/var/lib/veil"]["name"]]
    assert home["persistentVolumeClaim"]["claimName"] == "veil-data"
    for key in ("master.key", "ledger-signing.key"):
        mount = mounts[f"/var/lib/veil/keys/{key}"]
        assert mount["subPath"] == key and mount["readOnly"] is True
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == "veil-keys" and secret["defaultMode"] == 0o400
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]

    claim = renders[overlay].one("PersistentVolumeClaim", "veil-data")
    shared = "ReadWriteOnce" if overlay == "dev" else "ReadWriteMany"
    assert claim["spec"]["accessModes"] == [shared]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_job_runs_veil_migrate(renders: dict[str, Rendered], overlay: str) -> None:
    spec = renders[overlay].one("Job", "veil-migrate")["spec"]["template"]["spec"]
    (migrate,) = spec["containers"]
    assert migrate["command"] + migrate["args"] == ["veil", "migrate"]
    assert env(migrate)["VEIL_DATABASE_URL"]["secretKeyRef"]["key"] == "url"
    assert spec["restartPolicy"] in ("Never", "OnFailure")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_the_restricted_profile(
    renders: dict[str, Rendered], overlay: str
) -> None:
    namespace = renders[overlay].one("Namespace", "veil")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in renders[overlay].docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "veil", doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_is_denied_by_default(renders: dict[str, Rendered], overlay: str) -> None:
    denials = [
        policy
        for policy in renders[overlay].of_kind("NetworkPolicy")
        if policy["spec"]["podSelector"] == {}
        and set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not policy["spec"].get("ingress")
        and not policy["spec"].get("egress")
    ]
    assert len(denials) == 1


def test_postgres_admits_only_the_gateway_and_the_migration(
    renders: dict[str, Rendered],
) -> None:
    policies = [
        policy
        for policy in renders["dev"].of_kind("NetworkPolicy")
        if policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
        == "database"
    ]
    assert policies
    for policy in policies:
        for rule in policy["spec"]["ingress"]:
            assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]
            peers = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
            assert all(set(peer) == {"app.kubernetes.io/component"} for peer in peers)
            components = {peer["app.kubernetes.io/component"] for peer in peers}
            assert components == {"gateway", "migration"}


def test_postgres_runs_in_dev_only(renders: dict[str, Rendered]) -> None:
    (postgres,) = renders["dev"].of_kind("StatefulSet")
    (container,) = postgres["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("postgres:15.")
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert postgres["spec"]["volumeClaimTemplates"]
    assert renders["dev"].one("Service", "veil-postgres")["spec"]["clusterIP"] == "None"
    assert renders["prod"].of_kind("StatefulSet") == []
    assert not any(doc["kind"] == "Secret" for doc in renders["prod"].docs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_scales_on_its_own_cpu(renders: dict[str, Rendered], overlay: str) -> None:
    (hpa,) = renders[overlay].of_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "veil-gateway",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "ContainerResource"
    assert metric["containerResource"]["container"] == "gateway"
    assert metric["containerResource"]["name"] == "cpu"
    assert "replicas" not in renders[overlay].one("Deployment", "veil-gateway")["spec"]
    (budget,) = renders[overlay].of_kind("PodDisruptionBudget")
    gateway = renders[overlay].one("Deployment", "veil-gateway")
    assert budget["spec"]["selector"] == gateway["spec"]["selector"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_and_monitor_use_the_http_port(renders: dict[str, Rendered], overlay: str) -> None:
    (port,) = renders[overlay].one("Service", "veil-gateway")["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 80, "http")
    spec = renders[overlay].one("Deployment", "veil-gateway")["spec"]["template"]["spec"]
    assert spec["containers"][0]["ports"] == [{"name": "http", "containerPort": 8000}]
    (endpoint,) = renders[overlay].one("ServiceMonitor", "veil-gateway")["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    # /metrics takes the metrics token: the monitor sends the Secret the gateway reads.
    sent = endpoint["authorization"]
    assert sent["type"] == "Bearer"
    env = {item["name"]: item for item in spec["containers"][0]["env"]}
    read = env["VEIL_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert (read["name"], read["key"]) == (sent["credentials"]["name"], sent["credentials"]["key"])
    # deploy/monitoring's rules and dashboards select job="veil".
    assert {"action": "replace", "targetLabel": "job", "replacement": "veil"} in endpoint[
        "relabelings"
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_policy_configmap_is_the_shipped_policies(
    renders: dict[str, Rendered], overlay: str
) -> None:
    (configmap,) = [
        doc
        for doc in renders[overlay].of_kind("ConfigMap")
        if doc["metadata"]["name"].startswith("veil-policies-")
    ]
    assert configmap["data"] == {path.name: path.read_text() for path in SHIPPED_POLICIES}
