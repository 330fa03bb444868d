"""The chart's RBAC, rule by rule: cluster-wide, namespaced, and the optional parts. Why each rule
exists is in the chart README; tests/integration/test_rbac.py shows the operator needs no more."""

from __future__ import annotations

from typing import Any

from tests.chart.conftest import Render, find

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

EPS = "ecr.pullsecrets.dev"
NAMESPACED = {
    *((EPS, "ecrpullsecrets", v) for v in ("get", "list", "watch", "patch")),
    (EPS, "ecrpullsecrets/status", "patch"),
    *(("", "secrets", v) for v in ("get", "list", "watch", "create", "patch", "delete")),
    ("", "events", "create"),
    *(("", "serviceaccounts", v) for v in ("get", "list", "watch", "patch")),
}
TENANT = {("", "serviceaccounts/token", "create")}
CLUSTER_READ = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
}
CLUSTER_KIND = {
    *((EPS, "clusterecrpullsecrets", v) for v in ("get", "list", "watch", "patch")),
    (EPS, "clusterecrpullsecrets/status", "patch"),
}
PEERING = {("kopf.dev", "clusterkopfpeerings", v) for v in ("list", "watch", "patch")}
NAMESPACED_PEERING = {("kopf.dev", "kopfpeerings", v) for v in ("list", "watch", "patch")}


def operator_roles(docs: list[dict[str, Any]], kind: str = "ClusterRole") -> list[dict[str, Any]]:
    """The operator's own roles: not the tenant roles aggregated into admin/edit/view
    (tests/chart/test_isolation.py checks those)."""
    return [d for d in find(docs, kind) if not is_aggregated(d)]


def is_aggregated(role: dict[str, Any]) -> bool:
    return any(
        k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in role["metadata"].get("labels", {})
    )


def grants(role: dict[str, Any]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_cluster_wide_by_default(render: Render) -> None:
    docs = render("default-values.yaml")
    assert not find(docs, "Role")
    assert not find(docs, "RoleBinding")
    (role,) = operator_roles(docs)
    assert grants(role) == NAMESPACED | TENANT | CLUSTER_READ | CLUSTER_KIND
    (binding,) = find(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (service_account,) = find(docs, "ServiceAccount")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": service_account["metadata"]["name"],
            "namespace": service_account["metadata"]["namespace"],
        }
    ]


def test_no_wildcards_and_no_escalation_verbs(render: Render) -> None:
    for values in ("default-values.yaml", "namespaced-values.yaml", "ha-values.yaml"):
        for role in operator_roles(render(values)) + find(render(values), "Role"):
            for rule in role["rules"]:
                flat = rule["apiGroups"] + rule["resources"] + rule["verbs"]
                assert "*" not in flat, rule
                assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
                assert "resourceNames" not in rule


def test_namespaced_mode_grants_roles_in_listed_namespaces(render: Render) -> None:
    docs = render("namespaced-values.yaml")  # tenantIdentity off
    roles = {r["metadata"]["namespace"]: r for r in find(docs, "Role")}
    assert sorted(roles) == ["default", "team-a", "team-b"]
    assert grants(roles.pop("default")) == {("", "events", "create")}  # about cluster-scoped objects
    for role in roles.values():
        assert grants(role) == NAMESPACED
    bindings = find(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["default", "team-a", "team-b"]
    # Cluster-wide, only cluster-scoped kinds: no Secret, no ServiceAccount, no Event.
    (cluster_role,) = operator_roles(docs)
    assert grants(cluster_role) == CLUSTER_READ | CLUSTER_KIND
    (cluster_binding,) = find(docs, "ClusterRoleBinding")
    assert cluster_binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    (container,) = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    assert [a for a in container["args"] if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


def test_tenant_identity_off_drops_token_requests(render: Render) -> None:
    (role,) = operator_roles(render("default-values.yaml", sets=("tenantIdentity.enabled=false",)))
    assert grants(role) == NAMESPACED | CLUSTER_READ | CLUSTER_KIND


def test_ha_adds_peering(render: Render) -> None:
    (role,) = operator_roles(render("ha-values.yaml"))
    assert grants(role) == NAMESPACED | TENANT | CLUSTER_READ | CLUSTER_KIND | PEERING
    roles = {r["metadata"]["namespace"]: r for r in find(render("ha-namespaced-values.yaml"), "Role")}
    assert grants(roles["team-a"]) == NAMESPACED | TENANT | NAMESPACED_PEERING


def test_no_rbac_when_disabled(render: Render) -> None:
    docs = render("no-metrics-values.yaml")
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"):
        assert not find(docs, kind), kind
    deployment = find(docs, "Deployment")[0]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "ecr-pull-secrets"
