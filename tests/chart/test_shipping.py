"""What ships beside the operator: the `helm test` Pod and the Grafana dashboard ConfigMap; and
`make chart-package`'s archive (pushed and installed from oci:// in
tests/integration/test_chart_oci.py)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from tests.chart.conftest import Render, find, only
from tests.harness import helm

DASHBOARD = helm.CHART / "dashboards" / "ecr-pull-secrets.json"
TEST_POD = "ecr-pull-secret-operator-test-live"


def test_helm_test_pod_fetches_metrics_through_the_service(render: Render) -> None:
    docs = render()
    pod = only(find(docs, "Pod", TEST_POD), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "hook-succeeded" in pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    (container,) = pod["spec"]["containers"]
    service = only(docs, "Service")
    port = service["spec"]["ports"][0]["port"]
    url = f"http://{service['metadata']['name']}.ecr-pull-secret-operator.svc:{port}/metrics"
    assert container["command"][:2] == ["python3", "-c"]
    assert container["command"][-1] == url
    assert (
        container["image"] == only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_helm_test_pod_follows_its_value_and_the_metrics_service(render: Render) -> None:
    assert not find(render(sets=("helmTest.enabled=false",)), "Pod")
    assert not find(render(sets=("metrics.enabled=false",)), "Pod")  # no Service to ask
    url = only(render(sets=("metrics.port=9100",)), "Pod")["spec"]["containers"][0]["command"][-1]
    assert url.endswith(":9100/metrics")


def test_plain_manifests_have_no_helm_test_pod() -> None:
    assert "helm.sh/hook: test" not in (helm.MANIFESTS / "operator.yaml").read_text()


def test_grafana_dashboard_configmap(render: Render) -> None:
    assert not find(render(), "ConfigMap", "ecr-pull-secret-operator-dashboard"), "off by default"
    docs = render(sets=("grafanaDashboard.enabled=true",))
    (config_map,) = find(docs, "ConfigMap", "ecr-pull-secret-operator-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "ecr-pull-secret-operator"
    assert "annotations" not in config_map["metadata"]
    (name,) = config_map["data"]
    assert name == "ecr-pull-secrets.json"
    if DASHBOARD.exists():  # the dashboard file ships in the chart: its text, and valid JSON
        assert config_map["data"][name] == DASHBOARD.read_text().rstrip("\n")
        dashboard = json.loads(config_map["data"][name])
        assert dashboard["panels"]


def test_grafana_dashboard_labels_annotations_namespace(render: Render) -> None:
    docs = render(
        sets=(
            "grafanaDashboard.enabled=true",
            "grafanaDashboard.namespace=monitoring",
            "grafanaDashboard.labels.grafana_dashboard=null",
            "grafanaDashboard.labels.dashboards=ecr",
            "grafanaDashboard.annotations.grafana_folder=ECR",
            "commonLabels.team=platform",
        )
    )
    (config_map,) = find(docs, "ConfigMap", "ecr-pull-secret-operator-dashboard")
    meta = config_map["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["dashboards"] == "ecr"
    assert "grafana_dashboard" not in meta["labels"]
    assert meta["labels"]["team"] == "platform"
    assert meta["annotations"] == {"grafana_folder": "ECR"}


def test_chart_package_holds_templates_dashboard_and_crds(helm4: Path, tmp_path: Path) -> None:
    archive = helm.package(helm4, tmp_path)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    prefix = "ecr-pull-secret-operator/"
    assert f"{prefix}values.schema.json" in names
    assert f"{prefix}templates/tests/test-operator-live.yaml" in names
    assert {f"{prefix}templates/crds/{p.name}" for p in helm.CRD_TEMPLATES.glob("*.yaml")} <= names
    if DASHBOARD.exists():
        assert f"{prefix}dashboards/{DASHBOARD.name}" in names
