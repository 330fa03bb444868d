"""The chart installs into a real API server with Helm 4 and Helm 3, and uninstalls cleanly.

No pod runs here (no kubelet): an install is checked by the objects it creates, and the
operator that would run in the chart's pod runs as a subprocess where a test needs one.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness import helm
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.integration.conftest import StartOperator

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
CHART_NAME = "ecr-pull-secret-operator"


def gone(read: object, *args: str) -> bool:
    try:
        read(*args)  # type: ignore[operator]
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def new_release() -> str:
    return f"eps-{uuid.uuid4().hex[:6]}"


@pytest.fixture(params=[helm.HELM4.version, helm.HELM3.version], ids=["helm4", "helm3"])
def helm_binary(request: pytest.FixtureRequest) -> Path:
    return helm.ensure_helm(request.param)


def test_install_then_uninstall_leaves_nothing_stuck(
    kube: Kube,
    control_plane: ControlPlane,
    namespace: str,
    helm_binary: Path,
    start_operator: StartOperator,
) -> None:
    release = new_release()
    fullname = f"{release}-{CHART_NAME}"
    helm.install(helm_binary, control_plane.kubeconfig, release, namespace)

    rbac = client.RbacAuthorizationV1Api(kube.api)
    apps = client.AppsV1Api(kube.api)
    policy = client.PolicyV1Api(kube.api)
    deployment = apps.read_namespaced_deployment(fullname, namespace)
    assert deployment.spec.replicas == 1
    assert deployment.spec.template.spec.service_account_name == fullname
    kube.core.read_namespaced_service_account(fullname, namespace)
    kube.core.read_namespaced_config_map(f"{fullname}-policy", namespace)
    kube.core.read_namespaced_service(f"{fullname}-metrics", namespace)
    policy.read_namespaced_pod_disruption_budget(fullname, namespace)
    assert rbac.read_cluster_role(fullname).rules
    assert rbac.read_cluster_role_binding(fullname).subjects[0].name == fullname
    status = helm.helm(
        helm_binary, "status", release, "-n", namespace, "--kubeconfig", str(control_plane.kubeconfig)
    )
    assert "STATUS: deployed" in status

    # What the chart's pod would do, done by the operator process: make EcrPullSecrets Ready.
    operator = start_operator()
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    kube.create_eps(namespace, "patcher", {"registries": [EAST], "serviceAccounts": {"names": ["default"]}})
    kube.wait_ready(namespace, "app", timeout=15)
    kube.wait_ready(namespace, "patcher", timeout=15)
    assert kube.get_secret(namespace, "app") is not None
    assert not kube.get_eps(namespace, "app")["metadata"].get("finalizers")
    # A resource that patches ServiceAccounts carries the operator's cleanup finalizer: as
    # the README says, delete such resources before uninstalling, while the operator runs.
    assert kube.get_eps(namespace, "patcher")["metadata"]["finalizers"] == ["ecr.pullsecrets.dev/cleanup"]
    kube.delete_eps(namespace, "patcher")
    wait_for("the finalized resource to go", lambda: gone(kube.get_eps, namespace, "patcher"), timeout=15)

    operator.stop()  # the pod goes with the release
    helm.uninstall(helm_binary, control_plane.kubeconfig, release, namespace)
    wait_for("the ClusterRole to go", lambda: gone(rbac.read_cluster_role, fullname))
    assert gone(rbac.read_cluster_role_binding, fullname)
    assert gone(apps.read_namespaced_deployment, fullname, namespace)
    assert gone(kube.core.read_namespaced_service_account, fullname, namespace)
    # The CRD stays (Helm never deletes crds/), and so do the resources, free of finalizers:
    body = kube.get_eps(namespace, "app")
    assert not body["metadata"].get("finalizers")
    kube.delete_eps(namespace, "app")
    wait_for("the EcrPullSecret to go", lambda: gone(kube.get_eps, namespace, "app"), timeout=10)
    # The garbage collector notices a new CRD's kind within its 30 s discovery resync.
    wait_for("its Secret to be collected", lambda: kube.get_secret(namespace, "app") is None, timeout=60)


def test_namespaced_ha_install(kube: Kube, control_plane: ControlPlane, namespace: str) -> None:
    """Roles only in the served namespace; kopf's peering CRDs and a KopfPeering object (a hook)."""
    binary = helm.ensure_helm()
    release = new_release()
    fullname = f"{release}-{CHART_NAME}"
    helm.install(
        binary,
        control_plane.kubeconfig,
        release,
        namespace,
        set_values=[f"watchNamespaces[0]={namespace}", "ha.enabled=true"],
    )
    rbac = client.RbacAuthorizationV1Api(kube.api)
    role = rbac.read_namespaced_role(fullname, namespace)
    assert {r for rule in role.rules for r in rule.resources} >= {"secrets", "kopfpeerings"}
    assert gone(rbac.read_cluster_role, fullname)
    assert rbac.read_cluster_role(f"{fullname}-cluster").rules  # cluster-scoped kinds only
    peering = kube.custom.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", fullname)
    assert peering["kind"] == "KopfPeering"
    args = client.AppsV1Api(kube.api).read_namespaced_deployment(fullname, namespace).spec.template.spec
    assert f"--peering={fullname}" in args.containers[0].args
    assert client.AppsV1Api(kube.api).read_namespaced_deployment(fullname, namespace).spec.replicas == 2

    helm.uninstall(binary, control_plane.kubeconfig, release, namespace)
    extensions = client.ApiextensionsV1Api(kube.api)
    for crd in ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):
        wait_for(
            f"CRD {crd} to go", lambda crd=crd: gone(extensions.read_custom_resource_definition, crd), 30
        )
    assert gone(rbac.read_namespaced_role, fullname, namespace)


def _peers(kube: Kube, peering: str) -> dict[str, int]:
    """Live replicas in the chart's ClusterKopfPeering: kopf identity -> priority."""
    body = kube.custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
    return {identity: int(peer["priority"]) for identity, peer in (body.get("status") or {}).items()}


def _standing_by(replica: OperatorProcess) -> bool:
    """Whether this replica's peering gate stands by (its latest word on it)."""
    words = ("Standing by:", "Working: no live")
    said = [line for line in replica.log().splitlines() if line.startswith(words)]
    return bool(said) and "Standing by:" in said[-1]


def _handled(replica: OperatorProcess, namespace: str, name: str) -> bool:
    """Whether this replica wrote the resource's Secret (the reconciler logs each write)."""
    return f"EcrPullSecret {namespace}/{name}: Secret {name} holds tokens" in replica.log()


LIFETIME = 15


def test_ha_one_active_replica_and_failover(
    kube: Kube, control_plane: ControlPlane, namespace: str, start_operator: StartOperator
) -> None:
    """Three replicas with the chart's peering object: only the highest priority works; a
    graceful stop hands over at once (the leaver withdraws from the peering object), a crash
    once the peering lifetime (--peering-lifetime 15: 15 s; kopf's default is 60 s) has passed
    without a keep-alive."""
    release = new_release()
    peering = f"{release}-{CHART_NAME}"
    binary = helm.ensure_helm()
    helm.install(binary, control_plane.kubeconfig, release, namespace, set_values=["ha.enabled=true"])
    try:
        replicas = {
            f"{peering}-{i}": start_operator(
                namespaces=(),
                env={"POD_ID": f"{peering}-{i}"},
                args=["--peering", peering, "--peering-lifetime", str(LIFETIME)],
            )
            for i in range(3)
        }
        peers = wait_for("three replicas in the peering object", lambda: len(_peers(kube, peering)) == 3)
        assert peers
        status = kube.custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)[
            "status"
        ]
        assert {int(peer["lifetime"]) for peer in status.values()} == {LIFETIME}
        ranked = [
            replicas[identity] for identity, _ in sorted(_peers(kube, peering).items(), key=lambda p: -p[1])
        ]
        active, second, third = ranked
        # A replica pauses once it has seen a higher peer in the object, which can lag its listing.
        wait_for(
            "the two lower replicas to stand by",
            lambda: [_standing_by(r) for r in ranked] == [False, True, True],
            timeout=30,
        )

        kube.create_eps(namespace, "app", {"registries": [EAST]})
        kube.wait_ready(namespace, "app", timeout=10)
        time.sleep(1)  # a standby that worked too would have logged by now
        assert [_handled(r, namespace, "app") for r in ranked] == [True, False, False]

        active.stop()  # SIGTERM, as in a rolling update
        began = time.monotonic()
        kube.create_eps(namespace, "after-stop", {"registries": [EAST]})
        kube.wait_ready(namespace, "after-stop", timeout=20)
        handover = time.monotonic() - began
        assert [_handled(r, namespace, "after-stop") for r in (second, third)] == [True, False]

        second.kill()  # SIGKILL, as when its node dies: its entry stays until its lifetime ends
        began = time.monotonic()
        kube.create_eps(namespace, "after-crash", {"registries": [EAST]})
        kube.wait_ready(namespace, "after-crash", timeout=60)
        failover = time.monotonic() - began
        assert _handled(third, namespace, "after-crash")
        print(f"HA: graceful handover {handover:.1f}s, failover after SIGKILL {failover:.1f}s")
        assert handover < 10, handover
        assert failover < LIFETIME + 10, failover
    finally:
        helm.uninstall(binary, control_plane.kubeconfig, release, namespace)


def test_notes_example_is_admitted(kube: Kube, control_plane: ControlPlane, namespace: str) -> None:
    out = helm.helm(
        helm.ensure_helm(),
        "install",
        "x",
        str(helm.CHART),
        "--dry-run=client",
        "--set",
        f"watchNamespaces[0]={namespace}",
    )
    match = re.search(r"<<'YAML'\n(.*?)\n\s*YAML\n", out.split("NOTES:", 1)[1], re.DOTALL)
    assert match is not None, out
    example = yaml.safe_load(textwrap.dedent(match.group(1)))
    assert example["metadata"]["namespace"] == namespace
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(example))
    assert "created (server dry run)" in result.stdout


@pytest.fixture
def plain_manifests(kube: Kube) -> Iterator[Path]:
    """deploy/manifests applied for real, except the CRDs (deleting those would take every
    EcrPullSecret of the session with them): the kube fixture installed the same ones."""
    yield helm.MANIFESTS
    for name in ("operator.yaml", "namespace.yaml"):
        kube.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", str(helm.MANIFESTS / name))


def test_plain_manifests_apply(kube: Kube, plain_manifests: Path) -> None:
    kubectl = str(ensure_binaries() / "kubectl")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(plain_manifests)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    rest = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
    dry = kube.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(crds)
    )
    assert "serverside-applied (server dry run)" in dry.stdout
    applied = kube.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(rest))
    assert applied.stdout.count("serverside-applied") == len(rest)
    assert "PodSecurity" not in applied.stderr, applied.stderr
    labels = kube.core.read_namespace(helm.MANIFESTS_NAMESPACE).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"

    # The pod the Deployment would make, through Pod Security admission (enforce: restricted).
    (deployment,) = [d for d in rest if d["kind"] == "Deployment"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pod-security-probe", "namespace": helm.MANIFESTS_NAMESPACE},
        "spec": deployment["spec"]["template"]["spec"],
    }
    admitted = kube.kubectl("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(pod), check=False)
    assert admitted.returncode == 0, admitted.stderr
    assert "created (server dry run)" in admitted.stdout
