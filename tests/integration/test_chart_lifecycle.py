"""The chart's CRDs over a release's life, on a real API server, with Helm 4 and Helm 3: install the
previous chart version, upgrade to this one, and the CRD change it brings is served; uninstall
(crds.keep) leaves the CRDs, every EcrPullSecret and its Secret; installing the release again
adopts the kept CRDs.

Each run has a control plane of its own: the version N chart serves a CRD without a field, which
must not reach the CRDs the rest of the session shares (and under server-side apply a field
another manager owns would stay, hiding what Helm did).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness import helm
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.integration.conftest import ALLOW_ALL, FAST

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
CRD = "ecrpullsecrets.ecr.pullsecrets.dev"
CRD_FILE = "ecr.pullsecrets.dev_ecrpullsecrets.yaml"
# The field version N does not have: an optional one whose validation rules sit inside it.
NEW_FIELD = "renewBefore"
NAMESPACE = "chart-lifecycle"
RELEASE = "eps"


def previous_chart(workdir: Path) -> Path:
    """The chart as version N: this chart with an older version and an EcrPullSecret CRD without
    spec.renewBefore, made the way `make chart-sync` makes the real templates."""
    chart = workdir / "previous" / helm.CHART.name
    shutil.copytree(helm.CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    (chart / "Chart.yaml").write_text(yaml.safe_dump({**meta, "version": "0.0.1"}, sort_keys=False))
    crd = yaml.safe_load((helm.DEPLOY_CRDS / CRD_FILE).read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec["properties"][NEW_FIELD]
    assert NEW_FIELD not in yaml.safe_dump(spec).replace(f"spec.{NEW_FIELD}", ""), "a rule names it"
    template = helm.crd_template(CRD_FILE, yaml.safe_dump(crd, sort_keys=False))
    (chart / "templates" / "crds" / CRD_FILE).write_text(template)
    return chart


def eps(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ecr.pullsecrets.dev/v1alpha1",
        "kind": "EcrPullSecret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"registries": [EAST], **spec},
    }


def create_strict(kube: Kube, body: dict[str, Any], *, dry_run: bool) -> subprocess.CompletedProcess[str]:
    """kubectl create with the API server's strict field validation: an unknown field is an error."""
    args = ["create", "--validate=strict", "-o", "json", "-f", "-"]
    return kube.kubectl(
        *args, *(["--dry-run=server"] if dry_run else []), stdin=yaml.safe_dump(body), check=False
    )


def crd(kube: Kube, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(kube.kubectl("get", "crd", name, "-o", "json").stdout)
    return body


def exists(read: Any, *args: str) -> bool:
    try:
        read(*args)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ControlPlane, Kube]]:
    with ControlPlane(tmp_path / "controlplane") as plane:
        kube = Kube(plane.kubeconfig, ensure_binaries() / "kubectl")
        kube.create_namespace(NAMESPACE)
        yield plane, kube


@pytest.fixture(params=[helm.HELM4.version, helm.HELM3.version], ids=["helm4", "helm3"])
def helm_binary(request: pytest.FixtureRequest) -> Path:
    return helm.ensure_helm(request.param)


def test_upgrade_serves_the_new_crd_field_and_uninstall_keeps_everything(
    cluster: tuple[ControlPlane, Kube], aws: AwsEmulator, helm_binary: Path, tmp_path: Path
) -> None:
    plane, kube = cluster
    on_cluster = ["--namespace", NAMESPACE, "--kubeconfig", str(plane.kubeconfig)]

    # Version N: the CRDs come with the release (no kubectl apply beforehand), without the field.
    helm.helm(helm_binary, "install", RELEASE, str(previous_chart(tmp_path)), *on_cluster)
    served = crd(kube, CRD)
    assert served["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert served["metadata"]["labels"]["helm.sh/chart"] == "ecr-pull-secret-operator-0.0.1"
    kube.kubectl("wait", "--for=condition=Established", "--timeout=30s", f"crd/{CRD}")
    refused = create_strict(kube, eps("probe", renewBefore="4h"), dry_run=True)
    assert refused.returncode != 0
    assert f'unknown field "spec.{NEW_FIELD}"' in refused.stderr, refused.stderr

    # The operator (the chart's pod, which nothing runs here) makes a resource Ready.
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(ALLOW_ALL))
    operator = OperatorProcess(
        tmp_path / "operator.log",
        {**aws.env(), "KUBECONFIG": str(plane.kubeconfig)},
        ["--namespace", NAMESPACE, "--policy", str(policy), *FAST],
    ).start()
    try:
        kube.create_eps(NAMESPACE, "before", {"registries": [EAST]})
        kube.wait_ready(NAMESPACE, "before", timeout=20)

        # Version N+1, this chart: `helm upgrade` applies the changed CRD.
        helm.helm(helm_binary, "upgrade", RELEASE, str(helm.CHART), *on_cluster)
        served = crd(kube, CRD)
        assert served["metadata"]["labels"]["helm.sh/chart"] == f"ecr-pull-secret-operator-{helm_version()}"
        schema = served["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        assert NEW_FIELD in schema["properties"]
        # The API server serves the new schema once its CRD handler has taken the update.
        wait_for(
            f"spec.{NEW_FIELD} to be served",
            lambda: create_strict(kube, eps("probe", renewBefore="4h"), dry_run=True).returncode == 0,
        )
        created = create_strict(kube, eps("after", renewBefore="4h"), dry_run=False)
        assert created.returncode == 0, created.stderr
        assert kube.get_eps(NAMESPACE, "after")["spec"][NEW_FIELD] == "4h"  # stored, not pruned
        kube.wait_ready(NAMESPACE, "after", timeout=20)
        kube.wait_ready(NAMESPACE, "before", timeout=5)
    finally:
        operator.stop()  # the pod goes with the release

    # Uninstall: the release's objects go, the CRDs (resource policy keep) and everything in them stay.
    out = helm.helm(helm_binary, "uninstall", RELEASE, *on_cluster)
    assert "kept due to the resource policy" in out, out
    rbac = client.RbacAuthorizationV1Api(kube.api)
    fullname = f"{RELEASE}-ecr-pull-secret-operator"
    wait_for("the ClusterRole to go", lambda: not exists(rbac.read_cluster_role, fullname))
    assert not exists(client.AppsV1Api(kube.api).read_namespaced_deployment, fullname, NAMESPACE)
    for name in (CRD, "clusterecrpullsecrets.ecr.pullsecrets.dev"):
        assert "deletionTimestamp" not in crd(kube, name)["metadata"]
    for name in ("before", "after"):
        body = kube.get_eps(NAMESPACE, name)
        assert body["metadata"].get("deletionTimestamp") is None
        secret = kube.get_secret(NAMESPACE, name)
        assert secret is not None
        assert secret["type"] == "kubernetes.io/dockerconfigjson"
        assert secret["metadata"].get("deletionTimestamp") is None
        # Its owner is alive, so the garbage collector has nothing to collect.
        owners = [o["uid"] for o in secret["metadata"]["ownerReferences"]]
        assert body["metadata"]["uid"] in owners
    assert kube.get_eps(NAMESPACE, "after")["spec"][NEW_FIELD] == "4h"

    # The same release installed again adopts the kept CRDs (Helm's ownership annotations name it).
    helm.helm(helm_binary, "install", RELEASE, str(helm.CHART), *on_cluster)
    assert "STATUS: deployed" in helm.helm(helm_binary, "status", RELEASE, *on_cluster)
    assert kube.get_eps(NAMESPACE, "before")["metadata"].get("deletionTimestamp") is None


def helm_version() -> str:
    return str(yaml.safe_load((helm.CHART / "Chart.yaml").read_text())["version"])
