"""The chart's RBAC is enough, and not more than the operator uses: the real operator runs with a
token of the chart's ServiceAccount through create → Ready → renew → rename → delete, and the
API server's audit log shows no request of it denied by authorization.

The audit policy (tests/harness/audit.py) logs Secrets, ServiceAccounts (with token requests),
Events and every custom resource; requests for other built-in kinds (Namespaces, CRDs) are not
logged, so for those the operator's log is checked for kopf's permission warnings instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.harness import helm
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.integration.conftest import StartOperator

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
TENANT_ROLE = "arn:aws:iam::333333333333:role/tenant"
PERMISSION_WARNINGS = ("Not enough permissions", "Forbidden", "forbidden", " 403")

Grant = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


@dataclass(frozen=True)
class Identity:
    user: str
    kubeconfig: Path
    grants: frozenset[Grant]
    fullname: str


def _tenant_role(doc: dict[str, object]) -> bool:
    """The chart's roles for tenants (aggregated into admin/edit/view) are not the operator's."""
    labels: dict[str, str] = doc["metadata"].get("labels") or {}  # type: ignore[attr-defined]
    return any(key.startswith("rbac.authorization.k8s.io/aggregate-to-") for key in labels)


def _grants(docs: list[dict[str, object]]) -> frozenset[Grant]:
    return frozenset(
        (group, resource, verb)
        for doc in docs
        if doc["kind"] in ("ClusterRole", "Role") and not _tenant_role(doc)
        for rule in doc["rules"]  # type: ignore[attr-defined]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    )


@pytest.fixture
def workload_namespace(kube: Kube) -> Iterator[str]:
    name = f"rbac-workload-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(name)
    yield name
    kube.delete_namespace(name)


@pytest.fixture
def install_chart(control_plane: ControlPlane, kube: Kube, namespace: str) -> Iterator[object]:
    """Installs the chart (its RBAC is what matters: no pod runs here) and returns the identity of
    its ServiceAccount: a TokenRequest token in a kubeconfig of its own."""
    binary = helm.ensure_helm()
    releases: list[str] = []

    def install(*set_values: str) -> Identity:
        release = f"rbac-{uuid.uuid4().hex[:6]}"
        rendered = helm.template(binary, release=release, namespace=namespace, set_values=set_values)
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        helm.install(binary, control_plane.kubeconfig, release, namespace, set_values=set_values)
        releases.append(release)
        fullname = f"{release}-ecr-pull-secret-operator"
        token = kube.core.create_namespaced_service_account_token(
            fullname, namespace, {"spec": {"expirationSeconds": 3600}}
        ).status.token
        return Identity(
            user=f"system:serviceaccount:{namespace}:{fullname}",
            kubeconfig=control_plane.kubeconfig_for_token(token, name=release),
            grants=_grants(docs),
            fullname=fullname,
        )

    yield install
    for release in releases:
        helm.uninstall(binary, control_plane.kubeconfig, release, namespace)


def audited(control_plane: ControlPlane, user: str) -> tuple[list[str], set[Grant]]:
    """(denied requests, grants used successfully) of `user` so far."""
    denied, used = [], set()
    for event in control_plane.audit_events():
        if event.user != user:
            continue
        resource = f"{event.resource}/{event.subresource}" if event.subresource else event.resource
        decision = (event.raw.get("annotations") or {}).get("authorization.k8s.io/decision")
        if decision == "forbid":
            denied.append(
                f"{event.verb} {event.group}/{resource} {event.namespace}/{event.name}: {event.code}"
            )
        elif event.code < 400:
            used.add((event.group, resource, event.verb))
    return denied, used


def assert_no_permission_warnings(operator: OperatorProcess) -> None:
    log = operator.log()
    found = [line for line in log.splitlines() if any(w in line for w in PERMISSION_WARNINGS)]
    assert not found, "\n".join(found[:10])


def run_scenario(kube: Kube, namespace: str) -> None:
    """Everything the operator does: issue, ServiceAccount patching (with its finalizer), tenant
    identity, keys from a Secret, renew, rename (deletes the old Secret), fan-out of a
    ClusterEcrPullSecret, and deletes (finalizers removed)."""
    kube.create_eps(namespace, "app", {"registries": [EAST], "serviceAccounts": {"names": ["default"]}})
    kube.wait_ready(namespace, "app", timeout=15)
    wait_for(
        "the pull Secret on the default ServiceAccount",
        lambda: {"name": "app"} in (kube.service_account(namespace, "default").get("imagePullSecrets") or []),
        15,
    )

    annotations = {"eks.amazonaws.com/role-arn": TENANT_ROLE}
    kube.core.create_namespaced_service_account(
        namespace, {"metadata": {"name": "puller", "annotations": annotations}}
    )
    kube.create_eps(
        namespace, "tenant", {"registries": [EAST], "auth": {"serviceAccountRef": {"name": "puller"}}}
    )
    kube.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "keys"},
            "stringData": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE0000001", "AWS_SECRET_ACCESS_KEY": "x"},
        },
    )
    kube.create_eps(namespace, "static", {"registries": [EAST], "auth": {"secretRef": {"name": "keys"}}})
    kube.wait_ready(namespace, "tenant", timeout=15)
    kube.wait_ready(namespace, "static", timeout=15)

    kube.patch_eps(
        namespace, "app", {"metadata": {"annotations": {"ecr.pullsecrets.dev/force-refresh": "1"}}}
    )
    wait_for(
        "the forced renewal", lambda: kube.get_eps(namespace, "app")["status"].get("forceRefresh") == "1", 15
    )

    kube.patch_eps(namespace, "app", {"spec": {"secretName": "app-renamed"}})
    wait_for("the new Secret", lambda: kube.get_secret(namespace, "app-renamed"), 15)
    wait_for("the old Secret to go", lambda: kube.get_secret(namespace, "app") is None, 15)

    fleet = f"{namespace}-fleet"
    kube.create_ceps(
        fleet, {"registries": [EAST], "secretName": "fleet", "namespaces": {"include": [namespace]}}
    )
    try:
        wait_for("the fanned-out Secret", lambda: kube.get_secret(namespace, "fleet"), 15)
        wait_for("its status", lambda: kube.get_ceps(fleet).get("status", {}).get("readyNamespaces") == 1, 15)
    finally:
        kube.delete_ceps(fleet)
    wait_for("the ClusterEcrPullSecret to go", lambda: not kube.ceps_exists(fleet), 15)

    kube.delete_eps(namespace, "app")  # the operator removes its finalizer (and its SA entry)
    wait_for("the EcrPullSecret to go", lambda: not kube.eps_exists(namespace, "app"), 15)


# What the scenario must have used: each of these grants is needed, not just allowed.
EXERCISED = {
    ("ecr.pullsecrets.dev", "ecrpullsecrets", "list"),
    ("ecr.pullsecrets.dev", "ecrpullsecrets", "watch"),
    ("ecr.pullsecrets.dev", "ecrpullsecrets", "patch"),
    ("ecr.pullsecrets.dev", "ecrpullsecrets/status", "patch"),
    ("ecr.pullsecrets.dev", "clusterecrpullsecrets", "list"),
    ("ecr.pullsecrets.dev", "clusterecrpullsecrets", "watch"),
    ("ecr.pullsecrets.dev", "clusterecrpullsecrets/status", "patch"),
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
    ("", "secrets", "get"),
    ("", "secrets", "create"),
    ("", "secrets", "patch"),
    ("", "secrets", "delete"),
    ("", "events", "create"),
    ("", "serviceaccounts", "list"),
    ("", "serviceaccounts", "watch"),
    ("", "serviceaccounts", "get"),
    ("", "serviceaccounts", "patch"),
    ("", "serviceaccounts/token", "create"),
}


def test_cluster_wide_rbac_is_sufficient(
    kube: Kube,
    *,
    control_plane: ControlPlane,
    install_chart: object,
    workload_namespace: str,
    start_operator: StartOperator,
) -> None:
    identity: Identity = install_chart()  # type: ignore[operator]
    operator = start_operator(namespaces=(), env={"KUBECONFIG": str(identity.kubeconfig)})

    run_scenario(kube, workload_namespace)

    denied, used = audited(control_plane, identity.user)
    assert not denied, "requests denied by RBAC:\n" + "\n".join(denied)
    assert used >= EXERCISED, f"not exercised: {EXERCISED - used}"
    assert used <= identity.grants, f"used without a grant?! {used - identity.grants}"
    assert_no_permission_warnings(operator)
    unused = sorted(identity.grants - used)
    print(f"granted but not exercised here (see the chart README for why they exist): {unused}")


def test_namespaced_rbac_confines_the_operator(
    kube: Kube,
    *,
    control_plane: ControlPlane,
    install_chart: object,
    namespace: str,
    workload_namespace: str,
    start_operator: StartOperator,
) -> None:
    identity: Identity = install_chart(f"watchNamespaces[0]={workload_namespace}")  # type: ignore[operator]
    operator = start_operator(namespaces=(workload_namespace,), env={"KUBECONFIG": str(identity.kubeconfig)})

    run_scenario(kube, workload_namespace)

    denied, used = audited(control_plane, identity.user)
    assert not denied, "requests denied by RBAC:\n" + "\n".join(denied)
    assert used >= EXERCISED
    assert_no_permission_warnings(operator)

    # With the operator's own credentials: Secrets (and ServiceAccounts) outside the served
    # namespace are out of reach, for reading one by name as for listing them.
    kube.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "elsewhere"}, "stringData": {"k": "v"}}
    )
    api = config.new_client_from_config(config_file=str(identity.kubeconfig))  # type: ignore[no-untyped-call]
    core = client.CoreV1Api(api)
    forbidden = {
        "read a Secret in another namespace": lambda: core.read_namespaced_secret("elsewhere", namespace),
        "list Secrets in another namespace": lambda: core.list_namespaced_secret(namespace),
        "list Secrets cluster-wide": core.list_secret_for_all_namespaces,
        "patch a ServiceAccount in another namespace": lambda: core.patch_namespaced_service_account(
            "default", namespace, {"metadata": {"labels": {"x": "y"}}}
        ),
    }
    for what, call in forbidden.items():
        with pytest.raises(ApiException) as denied_call:
            call()
        assert denied_call.value.status == 403, what
    assert core.read_namespaced_secret("keys", workload_namespace).metadata.name == "keys"
    denied, _ = audited(control_plane, identity.user)
    assert len(denied) == len(forbidden), denied


def test_ha_peering_rbac_is_sufficient(
    kube: Kube,
    *,
    control_plane: ControlPlane,
    install_chart: object,
    workload_namespace: str,
    start_operator: StartOperator,
) -> None:
    identity: Identity = install_chart("ha.enabled=true")  # type: ignore[operator]
    peering = kube.custom.get_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", identity.fullname
    )
    assert peering["kind"] == "ClusterKopfPeering"
    operator = start_operator(
        namespaces=(), env={"KUBECONFIG": str(identity.kubeconfig)}, args=["--peering", identity.fullname]
    )
    kube.create_eps(workload_namespace, "app", {"registries": [EAST]})
    kube.wait_ready(workload_namespace, "app", timeout=15)

    def keepalive() -> dict[str, object] | None:
        body = kube.custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", identity.fullname
        )
        status: dict[str, object] | None = body.get("status")
        return status

    wait_for("the operator's keep-alive in the peering object", keepalive, timeout=15)
    denied, used = audited(control_plane, identity.user)
    assert not denied, "requests denied by RBAC:\n" + "\n".join(denied)
    assert {("kopf.dev", "clusterkopfpeerings", v) for v in ("list", "watch", "patch")} <= used
    assert_no_permission_warnings(operator)
