"""The chart shipped as the anchors ship theirs: `make chart-package`'s archive pushed with `helm
push` to an OCI registry (the CNCF distribution registry, plain HTTP on loopback) and installed
from oci:// on the real API server, with Helm 4 and Helm 3; its `helm test` Pod is admitted
under the restricted Pod Security Standard. No pod runs here (no kubelet): the install is checked
by the objects it creates.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness import helm
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.process import ManagedProcess

CHART_NAME = "ecr-pull-secret-operator"
READY_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http://127.0.0.1 only
        return bool(response.status == 200)
    return False


@pytest.fixture(scope="module")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The distribution registry (Debian's docker-registry) on a loopback port: host:port."""
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed (make registry-tools)")
    workdir = tmp_path_factory.mktemp("oci-registry")
    for attempt in range(3):
        port = _free_port()
        config = workdir / "config.yml"
        config.write_text(
            json.dumps(
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}},
                    "http": {"addr": f"127.0.0.1:{port}", "relativeurls": True},
                    "health": {"storagedriver": {"enabled": False}},
                }
            )
        )
        registry = ManagedProcess(
            "docker-registry", ["docker-registry", "serve", str(config)], workdir / "log"
        )
        registry.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while registry.running and not _answers(f"http://127.0.0.1:{port}/v2/"):
            if time.monotonic() > deadline:
                raise registry.error(f"/v2/ not answering after {READY_TIMEOUT:.0f}s")
            time.sleep(0.1)
        if registry.running:
            break
        registry.stop()  # most likely the port was taken meanwhile
        assert attempt < 2, (workdir / "log").read_text()[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        registry.stop()


@pytest.fixture(params=[helm.HELM4.version, helm.HELM3.version], ids=["helm4", "helm3"])
def helm_binary(request: pytest.FixtureRequest) -> Path:
    return helm.ensure_helm(request.param)


def gone(read: object, *args: str) -> bool:
    try:
        read(*args)  # type: ignore[operator]
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_push_to_oci_and_install_from_it(
    kube: Kube,
    control_plane: ControlPlane,
    namespace: str,
    *,
    oci_registry: str,
    helm_binary: Path,
    tmp_path: Path,
) -> None:
    version = str(yaml.safe_load((helm.CHART / "Chart.yaml").read_text())["version"])
    archive = helm.package(helm_binary, tmp_path / "dist")
    assert archive.name == f"{CHART_NAME}-{version}.tgz"
    repository = f"oci://{oci_registry}/charts-{helm_binary.parent.name.replace('.', '-')}"
    pushed = helm.helm(helm_binary, "push", str(archive), repository, "--plain-http", check=False)
    assert "Digest: sha256:" in pushed, pushed
    reference = f"{repository}/{CHART_NAME}"
    shown = yaml.safe_load(
        helm.helm(helm_binary, "show", "chart", reference, "--version", version, "--plain-http")
    )
    assert (shown["name"], shown["version"]) == (CHART_NAME, version)

    release = f"oci-{uuid.uuid4().hex[:6]}"
    fullname = f"{release}-{CHART_NAME}"
    on_cluster = ["--namespace", namespace, "--kubeconfig", str(control_plane.kubeconfig)]
    # --take-ownership: the session's CRDs exist already (kubectl-applied, or kept by a release).
    helm.helm(
        helm_binary, "install", release, reference, "--version", version, "--plain-http", "--take-ownership",
        *on_cluster,
    )  # fmt: skip
    status = helm.helm(helm_binary, "status", release, *on_cluster)
    assert "STATUS: deployed" in status
    apps = client.AppsV1Api(kube.api)
    deployment = apps.read_namespaced_deployment(fullname, namespace)
    assert deployment.metadata.labels["helm.sh/chart"] == f"{CHART_NAME}-{version}"
    assert deployment.spec.template.spec.service_account_name == fullname
    kube.core.read_namespaced_service(f"{fullname}-metrics", namespace)
    crd = client.ApiextensionsV1Api(kube.api).read_custom_resource_definition(
        "ecrpullsecrets.ecr.pullsecrets.dev"
    )
    assert crd.metadata.annotations["meta.helm.sh/release-name"] == release  # the release's now

    # Its `helm test` Pod, from the same archive, is admitted in a namespace enforcing restricted.
    kube.label_namespace(namespace, {"pod-security.kubernetes.io/enforce": "restricted"})
    test_pod = helm.helm(
        helm_binary, "template", release, reference, "--version", version, "--plain-http",
        "--namespace", namespace, "--show-only", "templates/tests/test-operator-live.yaml",
    )  # fmt: skip
    admitted = kube.kubectl("create", "--dry-run=server", "-f", "-", stdin=test_pod, check=False)
    assert admitted.returncode == 0, admitted.stderr
    assert "created (server dry run)" in admitted.stdout

    out = helm.helm(helm_binary, "uninstall", release, *on_cluster)
    assert "kept due to the resource policy" in out, out
    wait_for("the Deployment to go", lambda: gone(apps.read_namespaced_deployment, fullname, namespace))
    assert gone(client.RbacAuthorizationV1Api(kube.api).read_cluster_role, fullname)
    assert not gone(client.ApiextensionsV1Api(kube.api).read_custom_resource_definition, crd.metadata.name)
