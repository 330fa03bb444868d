"""The operator against an API server that restarts, on a control plane of its own.

Found by the fault soak: an operator that started while kube-apiserver was coming back up read
discovery before the server listed the CRDs' group again, and kopf, which re-reads discovery only
when a CRD changes, never watched EcrPullSecrets: live, and doing nothing, until restarted. The
window is a few milliseconds on an idle machine, so the scenario test below checks the path (an
operator that starts before the API server is back must serve once it is); the discovery checks
pin what the operator now waits for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from ecr_pull_secrets.handlers.startup import watched_kinds
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.discovery import Discovery
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.integration.conftest import ALLOW_ALL, CRDS, FAST

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, Kube]]:
    with ControlPlane(tmp_path_factory.mktemp("restartable")) as cp:
        kube = Kube(cp.kubeconfig, ensure_binaries() / "kubectl")
        kube.kubectl("apply", "--server-side", "-f", str(CRDS))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        yield cp, kube


def test_operator_started_while_the_apiserver_is_down_serves_once_it_is_back(
    restartable: tuple[ControlPlane, Kube], aws: AwsEmulator, tmp_path: Path
) -> None:
    control_plane, kube = restartable
    kube.create_namespace("comeback")
    kube.create_eps("comeback", "before", {"registries": [EAST]})
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(ALLOW_ALL))
    operator = OperatorProcess(
        tmp_path / "operator.log",
        {**aws.env(), "KUBECONFIG": str(control_plane.kubeconfig)},
        ["--policy", str(policy), *FAST],
    )
    control_plane.stop_apiserver()
    # start() returns once the operator is live; it keeps trying to reach the API server meanwhile.
    starting = threading.Thread(target=operator.start, name="operator-start")
    starting.start()
    try:
        wait_for(
            "the operator to wait for the API server",
            lambda: (
                operator.log_path.exists() and "waiting for the API server: unreachable" in operator.log()
            ),
            timeout=30,
        )
        control_plane.start_apiserver()
        starting.join()
        kube.wait_ready("comeback", "before", timeout=30)
        kube.create_eps("comeback", "after", {"registries": [EAST]})
        kube.wait_ready("comeback", "after", timeout=10)
    except BaseException:
        print(operator.log()[-6000:])
        raise
    finally:
        starting.join()
        operator.stop()


def test_discovery_names_the_kinds_the_api_server_does_not_list(
    kube: Kube, control_plane: ControlPlane
) -> None:
    discovery = Discovery(config.new_client_from_config(config_file=str(control_plane.kubeconfig)))
    assert discovery.unlisted(watched_kinds(peering=None, clusterwide=True)) == []
    assert discovery.unlisted(
        {
            ("ecr.pullsecrets.dev", "v1alpha1"): frozenset({"ecrpullsecrets", "widgets"}),
            ("example.invalid", "v1"): frozenset({"gadgets"}),
        }
    ) == ["widgets.ecr.pullsecrets.dev", "gadgets.example.invalid"]


def test_discovery_of_an_unreachable_api_server_is_a_kube_error() -> None:
    configuration = client.Configuration(host="https://127.0.0.1:1")
    configuration.retries = 0
    with pytest.raises(KubeError) as raised:
        Discovery(client.ApiClient(configuration)).unlisted(watched_kinds(peering="p", clusterwide=False))
    assert raised.value.status == 0
