"""The chart lints and renders with Helm 4 and 3, and renders objects Kubernetes 1.34-1.37 accept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv

from tests.chart.conftest import CI_VALUES, Render, find, only
from tests.harness import helm

KUBE_VERSIONS = ("1.34", "1.35", "1.36", "1.37")
# Custom resources of other projects: no schema in kubernetes-validate, so they are not validated
# here (their shape is checked by the assertions below; the kopf peering kinds by a real install).
CRD_BACKED = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("kopf.dev/v1", "ClusterKopfPeering"),
    ("kopf.dev/v1", "KopfPeering"),
}
VALUES_IDS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]


@pytest.mark.parametrize("values", CI_VALUES, ids=VALUES_IDS)
def test_lint_strict(any_helm: Path, values: Path) -> None:
    helm.helm(any_helm, "lint", "--strict", str(helm.CHART), "--values", str(values))


@pytest.mark.parametrize("values", CI_VALUES, ids=VALUES_IDS)
def test_helm3_renders_what_helm4_renders(values: Path) -> None:
    helm3, helm4 = (helm.ensure_helm(v) for v in (helm.HELM3.version, helm.HELM4.version))
    assert helm.template(helm3, values_files=[values]) == helm.template(helm4, values_files=[values])


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", CI_VALUES, ids=VALUES_IDS)
def test_objects_validate_against_kubernetes_schemas(render: Render, values: Path, kube_version: str) -> None:
    """Strict (unknown fields are errors) against the OpenAPI schemas of that Kubernetes version;
    the chart's CRDs among them. CRD-backed kinds (ServiceMonitor, PrometheusRule, kopf peerings)
    are skipped: kubernetes-validate has no schema for them."""
    docs = render(values, kube_version=f"{kube_version}.0")
    skipped, errors = set(), []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kv.SchemaNotFoundError:
            skipped.add((doc["apiVersion"], doc["kind"]))
        except kv.ValidationError as error:
            where = "/".join(str(p) for p in error.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} at {where}: {error.message}")
    assert not errors, "\n".join(errors)
    assert skipped <= CRD_BACKED, f"no schema for {skipped - CRD_BACKED}"


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (("unknownKey=1",), "additional properties"),
        (("settings.minRenewalInterval=soon",), "minRenewalInterval"),
        (("settings.logFormat=xml",), "logFormat"),
        (("settings.workers=0",), "workers"),
        (("watchNamespaces[0]=Team_A",), "watchNamespaces"),
        (("serviceAccount.irsaRoleArn=my-role",), "irsaRoleArn"),
        (("ha.replicas=1",), "replicas"),
        (("metrics.port=70000",), "port"),
        (("policy.operatorIdentity.namespaces=team-a",), "namespaces"),
        (("policy.assumeRoles[0].namespaces[0]=a",), "roleArns"),
        (("image.digest=latest",), "digest"),
        (("serviceAccount.create=false",), "serviceAccount.name is required"),
    ],
)
def test_values_schema_rejects(helm4: Path, sets: tuple[str, ...], complaint: str) -> None:
    args = ["template", "x", str(helm.CHART)] + [a for s in sets for a in ("--set", s)]
    output = helm.helm(helm4, *args, check=False)
    assert "Error" in output, output
    assert complaint in output, output


VALUES = yaml.safe_load((helm.CHART / "values.yaml").read_text())
SCHEMA = json.loads((helm.CHART / "values.schema.json").read_text())


def _leaves(values: Any, schema: dict[str, Any] | None, path: str = "") -> dict[str, dict[str, Any] | None]:
    """Value paths down to the schema's own leaves (free-form maps such as resources are one leaf),
    each with its schema node, or None where the schema does not know the path."""
    if schema is None or not (isinstance(values, dict) and values and "properties" in schema):
        return {path: schema}
    found: dict[str, dict[str, Any] | None] = {}
    for key, value in values.items():
        found |= _leaves(value, schema["properties"].get(key), f"{path}.{key}".strip("."))
    return found


def test_schema_covers_every_value_and_rejects_unknown_keys() -> None:
    missing = [leaf for leaf, node in _leaves(VALUES, SCHEMA).items() if node is None]
    assert not missing, f"values without a schema: {missing}"

    def open_objects(node: dict[str, Any], path: str) -> list[str]:
        if node.get("type") != "object" or "properties" not in node:
            return []
        found = [] if node.get("additionalProperties") is False else [path or "(root)"]
        return found + [
            p for k, v in node["properties"].items() for p in open_objects(v, f"{path}.{k}".strip("."))
        ]

    assert not open_objects(SCHEMA, ""), "objects accepting unknown keys"


def test_readme_documents_every_value() -> None:
    readme = (helm.CHART / "README.md").read_text().split("\n## Values\n", 1)[1]
    rows = {line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `")}
    leaves = set(_leaves(VALUES, SCHEMA))
    undocumented = sorted(leaves - rows)
    assert not undocumented, f"values missing from the README table: {undocumented}"
    unknown = sorted(rows - leaves)
    assert not unknown, f"README rows for values that do not exist: {unknown}"


@pytest.mark.parametrize("values", CI_VALUES, ids=VALUES_IDS)
def test_pod_meets_the_restricted_pod_security_standard(render: Render, values: Path) -> None:
    pod = only(render(values), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in pod
    assert "hostPID" not in pod
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert isinstance(security["runAsUser"], int)
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(
        set(v) - {"name"} <= {"configMap", "emptyDir", "projected", "secret"} for v in volumes.values()
    )
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


@pytest.mark.parametrize("values", CI_VALUES, ids=VALUES_IDS)
def test_probes_use_kopfs_liveness_endpoint(render: Render, values: Path) -> None:
    (container,) = only(render(values), "Deployment")["spec"]["template"]["spec"]["containers"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "health")
    assert f"--liveness=http://0.0.0.0:{port}/healthz" in container["args"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_default_install(render: Render) -> None:
    docs = render("default-values.yaml")
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ecr-pull-secret-operator:0.1.0"
    assert not any(a.startswith(("--namespace", "--peering")) for a in container["args"])
    assert only(docs, "ServiceAccount")["metadata"].get("annotations") is None
    assert only(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    crds = [d["metadata"]["name"] for d in find(docs, "CustomResourceDefinition")]
    assert not [c for c in crds if c.endswith(".kopf.dev")], "peering CRDs without HA"
    policy = yaml.safe_load(only(docs, "ConfigMap")["data"]["policy.yaml"])
    assert policy == {"operatorIdentity": {"namespaces": []}, "assumeRoles": []}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/ecr-pull-secrets"]["readOnly"] is True
    assert "--policy=/etc/ecr-pull-secrets/policy.yaml" in container["args"]


def test_irsa_annotation_and_image_digest(render: Render) -> None:
    docs = render("irsa-values.yaml")
    annotations = only(docs, "ServiceAccount")["metadata"]["annotations"]
    assert (
        annotations["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/ecr-pull-secret-operator"
    )
    assert annotations["eks.amazonaws.com/sts-regional-endpoints"] == "true"
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"].endswith("@sha256:" + "0" * 64)
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"]
    assert pod["affinity"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    assert env["ECR_PULL_SECRETS_WORKERS"] == "8"


def test_ha_runs_replicas_with_kopf_peering(render: Render) -> None:
    docs = render("ha-values.yaml")
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    assert "--peering=ecr-pull-secrets" in pod["containers"][0]["args"]
    assert "--peering-lifetime=60" in pod["containers"][0]["args"]
    pod_id = next(e for e in pod["containers"][0]["env"] if e["name"] == "POD_ID")
    assert pod_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert pod["priorityClassName"] == "system-cluster-critical"
    peering = only(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "ecr-pull-secrets"
    assert "post-install" in peering["metadata"]["annotations"]["helm.sh/hook"]


def test_peering_kinds_are_the_ones_kopf_looks_for(render: Render) -> None:
    from kopf._cogs.structs import references  # noqa: PLC0415 - kopf's private names, here only

    crds = {
        d["spec"]["names"]["plural"]: d for d in find(render("ha-values.yaml"), "CustomResourceDefinition")
    }
    for selector, scope in (
        (references.CLUSTER_PEERINGS_K, "Cluster"),
        (references.NAMESPACED_PEERINGS_K, "Namespaced"),
    ):
        crd = crds[selector.any_name]
        assert (crd["spec"]["group"], crd["spec"]["versions"][0]["name"]) == (
            selector.group,
            selector.version,
        )
        assert crd["spec"]["scope"] == scope
    namespaced = render("ha-namespaced-values.yaml")
    assert [(p["metadata"]["namespace"]) for p in find(namespaced, "KopfPeering")] == ["team-a"]
    assert not find(namespaced, "ClusterKopfPeering")


def test_metrics_service_monitor_and_rule(render: Render) -> None:
    docs = render("metrics-servicemonitor-values.yaml")
    (container,) = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--metrics-port=9100" in container["args"]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    service = only(docs, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]
    monitor = only(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # The resource's namespace stays `namespace`: the shipped alerts group by it.
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    groups = only(docs, "PrometheusRule")["spec"]["groups"]
    shipped = yaml.safe_load(
        (helm.ROOT / "deploy" / "prometheus" / "ecr-pull-secrets.rules.yaml").read_text()
    )
    assert groups[:-1] == shipped["spec"]["groups"], "the chart ships deploy/prometheus/'s rules as they are"
    rules = groups[-1]["rules"]
    assert [r["alert"] for r in rules] == ["EcrPullSecretOperatorDown", "EcrPullSecretOperatorRestarting"]
    assert f'job="{service["metadata"]["name"]}"' in rules[0]["expr"]
    off = render("no-metrics-values.yaml")
    assert not find(off, "Service")
    assert not find(off, "ServiceMonitor")
    assert not find(off, "PodDisruptionBudget")
    (container,) = only(off, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--metrics-port=0" in container["args"]  # the operator serves metrics unless told not to


def test_notes_show_an_example_and_the_iam_policy(helm4: Path) -> None:
    out = helm.helm(helm4, "install", "x", str(helm.CHART), "--dry-run=client", "--namespace", "ops")
    notes = out.split("NOTES:", 1)[1]
    assert "kind: EcrPullSecret" in notes
    assert "ecr:GetAuthorizationToken" in notes
    assert "create-pod-identity-association" in notes
    assert "NO namespace may use" in notes or "allows NO namespace" in notes
    irsa = helm.helm(
        helm4,
        "install",
        "x",
        str(helm.CHART),
        "--dry-run=client",
        "--values",
        str(helm.CHART / "ci" / "irsa-values.yaml"),
    )
    assert "runs as\n   arn:aws:iam::123456789012:role/ecr-pull-secret-operator" in irsa
