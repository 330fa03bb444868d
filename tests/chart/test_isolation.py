"""The chart's tenant-isolation parts: the admission policy on references, the EcrPullSecret rights
aggregated into admin/edit/view (ClusterEcrPullSecrets in none), the listen address and the optional
NetworkPolicy. tests/integration/test_admission_policy.py shows the policy and roles at work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import Render, find, only
from tests.chart.test_rbac_rules import EPS, grants, is_aggregated
from tests.harness import helm

AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def test_admission_policy_on_by_default(render: Render) -> None:
    docs = render("default-values.yaml")
    policy = only(docs, "ValidatingAdmissionPolicy")
    binding = only(docs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"], "every namespace"
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    # EcrPullSecrets only: not their status subresource (the operator's writes), not ClusterEcrPullSecrets.
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": [EPS],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["ecrpullsecrets"],
        }
    ]
    checks = " ".join(v["expression"] for v in spec["validations"])
    for check in (
        "resource('serviceaccounts').namespace",
        "check('impersonate')",
        "subresource('token')",
        "resource('secrets')",
        "check('get')",
        "check('update')",
    ):
        assert check in checks, check
    for validation in spec["validations"]:
        assert validation["reason"] == "Forbidden"
        assert validation["message"].startswith("spec.")
        assert "variables.user" in validation["messageExpression"]


def test_admission_policy_off_by_value_and_dry_run_actions(render: Render) -> None:
    off = render("default-values.yaml", sets=("admissionPolicy.enabled=false",))
    assert not find(off, "ValidatingAdmissionPolicy")
    assert not find(off, "ValidatingAdmissionPolicyBinding")
    assert not find(render("no-metrics-values.yaml"), "ValidatingAdmissionPolicy")
    trial = render("default-values.yaml", sets=("admissionPolicy.validationActions={Warn,Audit}",))
    assert only(trial, "ValidatingAdmissionPolicyBinding")["spec"]["validationActions"] == ["Warn", "Audit"]


def test_deploy_admission_is_the_charts_policy(helm4: Path) -> None:
    shipped = [d for d in yaml.safe_load_all((helm.ADMISSION / "admission-policy.yaml").read_text()) if d]
    rendered = [
        d
        for d in yaml.safe_load_all(helm.template(helm4, namespace=helm.MANIFESTS_NAMESPACE))
        if d and d["kind"].startswith("ValidatingAdmissionPolicy")
    ]
    assert [d["kind"] for d in shipped] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    for doc in rendered:
        for label in ("helm.sh/chart", "app.kubernetes.io/managed-by"):
            del doc["metadata"]["labels"][label]
    assert shipped == rendered


def test_tenant_roles_aggregate_into_admin_edit_view(render: Render) -> None:
    aggregated = [r for r in find(render("default-values.yaml"), "ClusterRole") if is_aggregated(r)]
    roles = {r["metadata"]["name"].rsplit("-", 1)[1]: r for r in aggregated}
    assert sorted(roles) == ["edit", "view"]

    def aggregated_to(role: dict[str, object]) -> set[str]:
        labels: dict[str, str] = role["metadata"]["labels"]  # type: ignore[index]
        return {
            k.removeprefix(AGGREGATE) for k, v in labels.items() if k.startswith(AGGREGATE) and v == "true"
        }

    assert aggregated_to(roles["view"]) == {"admin", "edit", "view"}
    assert aggregated_to(roles["edit"]) == {"admin", "edit"}
    assert grants(roles["view"]) == {(EPS, "ecrpullsecrets", v) for v in ("get", "list", "watch")}
    assert grants(roles["edit"]) == {
        (EPS, "ecrpullsecrets", v) for v in ("create", "update", "patch", "delete", "deletecollection")
    }
    for role in roles.values():
        assert not any("clusterecrpullsecrets" in resource for _, resource, _ in grants(role)), (
            "ClusterEcrPullSecrets are cluster-admin only"
        )
        assert all(resource == "ecrpullsecrets" for _, resource, _ in grants(role)), "no status writes"


@pytest.mark.parametrize("sets", [("rbac.aggregateToDefaultRoles=false",), ("rbac.create=false",)])
def test_tenant_roles_off_by_value(render: Render, sets: tuple[str, ...]) -> None:
    docs = render("default-values.yaml", sets=(*sets, "serviceAccount.name=x"))
    assert not [r for r in find(docs, "ClusterRole") if is_aggregated(r)]


def test_listen_address(render: Render) -> None:
    def args(*sets: str) -> list[str]:
        (container,) = only(render("default-values.yaml", sets=sets), "Deployment")["spec"]["template"][
            "spec"
        ]["containers"]
        return list(container["args"])

    default = args()
    assert "--metrics-address=0.0.0.0" in default
    assert "--liveness=http://0.0.0.0:8080/healthz" in default
    ipv6 = args("listenAddress=::")
    assert "--metrics-address=::" in ipv6
    assert "--liveness=http://[::]:8080/healthz" in ipv6
    assert not any(a.startswith("--metrics-address") for a in args("metrics.enabled=false"))


def test_network_policy(render: Render) -> None:
    assert not find(render("default-values.yaml"), "NetworkPolicy"), "off by default"
    docs = render("networkpolicy-values.yaml")
    policy = only(docs, "NetworkPolicy")["spec"]
    deployment = only(docs, "Deployment")
    assert policy["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = policy["ingress"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert sorted(p["port"] for p in rule["ports"]) == sorted(p["containerPort"] for p in container["ports"])
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert policy["egress"][0]["ports"] == [{"port": 443, "protocol": "TCP"}]

    # No peers: nothing may connect; no egress rules: egress is not restricted.
    closed = only(render("default-values.yaml", sets=("networkPolicy.enabled=true",)), "NetworkPolicy")[
        "spec"
    ]
    assert closed["ingress"] == []
    assert closed["policyTypes"] == ["Ingress"]
    assert "egress" not in closed


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (("listenAddress=localhost",), "listenAddress"),
        (("admissionPolicy.validationActions={Deny,Warn}",), "validationActions"),
        (("admissionPolicy.validationActions={Block}",), "validationActions"),
        (("networkPolicy.ingressFrom[0].namespace=x",), "ingressFrom"),
    ],
)
def test_values_schema_rejects(helm4: Path, sets: tuple[str, ...], complaint: str) -> None:
    args = ["template", "x", str(helm.CHART)] + [a for s in sets for a in ("--set", s)]
    output = helm.helm(helm4, *args, check=False)
    assert "Error" in output, output
    assert complaint in output, output
