"""Real parts for integration tests: kube-apiserver + etcd + controller-manager, the AWS
emulator, and the operator as a subprocess. Each test gets its own namespace and an operator
watching only that namespace, so tests cannot see each other's resources."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.aws_emulator import AwsEmulator
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube
from tests.harness.operator_process import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "crds"

# Time-compressed settings: the operator is the production binary with its floors lowered.
FAST = ["--min-renewal-interval", "1s", "--backoff-base", "1s", "--backoff-cap", "4s"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with ControlPlane(tmp_path_factory.mktemp("controlplane"), audit_log=True) as cp:
        yield cp


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    kube = Kube(control_plane.kubeconfig, ensure_binaries() / "kubectl")
    kube.kubectl("apply", "--server-side", "-f", str(CRDS))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    return kube


@pytest.fixture(scope="session")
def aws_session() -> Iterator[AwsEmulator]:
    with AwsEmulator() as emulator:
        yield emulator


@pytest.fixture
def aws(aws_session: AwsEmulator) -> Iterator[AwsEmulator]:
    aws_session.reset_calls()
    yield aws_session
    aws_session.clear_faults()
    aws_session.token_lifetime = 12 * 3600.0


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(name)
    yield name
    kube.delete_namespace(name)


@pytest.fixture
def operator(
    control_plane: ControlPlane,
    aws: AwsEmulator,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorProcess]:
    env = {**aws.env(), "KUBECONFIG": str(control_plane.kubeconfig)}
    process = OperatorProcess(tmp_path / "operator.log", env, ["--namespace", namespace, *FAST])
    process.start()
    yield process
    process.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(f"--- operator log (last 6000 chars) ---\n{process.log()[-6000:]}")
