"""Real parts for integration tests: kube-apiserver + etcd + controller-manager, the AWS
emulator, and the operator as a subprocess. Each test gets its own namespace and an operator
watching only that namespace, so tests cannot see each other's resources."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.aws_emulator import AwsEmulator
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube
from tests.harness.operator_process import OperatorProcess
from tests.harness.registry import Registry, missing_tools

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "crds"

# Time-compressed settings: the operator is the production binary with its floors lowered.
# Verification is off unless a test turns it on (`args=["--verify", ...]`): the ECR hosts most
# tests name are not reachable from here, and their Events would be about that.
FAST = ["--min-renewal-interval", "1s", "--backoff-base", "1s", "--backoff-cap", "4s", "--no-verify"]
# Most tests are about other things than the namespace policy: let everything through.
ALLOW_ALL = {
    "operatorIdentity": {"namespaces": ["*"]},
    "assumeRoles": [{"namespaces": ["*"], "roleArns": ["arn:aws:iam::*:role/*"]}],
}

# The ECR host the harness registry answers for.
REGISTRY_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

StartOperator = Callable[..., OperatorProcess]


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


@pytest.fixture(scope="session")
def registry(aws_session: AwsEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real registry answering as ECR for REGISTRY_HOST (see tests/harness/registry.py)."""
    assert not missing_tools(), f"install the Debian packages {missing_tools()} (make registry-tools)"
    with Registry(tmp_path_factory.mktemp("registry"), aws_session, hosts=[REGISTRY_HOST]) as started:
        yield started


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
def start_operator(
    control_plane: ControlPlane,
    aws: AwsEmulator,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[StartOperator]:
    """Starts operators for this test (stopped at teardown; their logs shown if the test failed).

    Keywords: `policy` (a policy document, default ALLOW_ALL), `namespaces` (watched globs,
    default the test's namespace), `env` (overrides, e.g. for IRSA), `aws_keys` (static keys
    in the environment, default True), `args` (extra flags).
    """
    started: list[OperatorProcess] = []

    def start(
        *,
        policy: Mapping[str, Any] = ALLOW_ALL,
        namespaces: Sequence[str] = (namespace,),
        env: Mapping[str, str] | None = None,
        aws_keys: bool = True,
        args: Sequence[str] = (),
    ) -> OperatorProcess:
        index = len(started)
        policy_file = tmp_path / f"policy-{index}.yaml"
        policy_file.write_text(yaml.safe_dump(dict(policy)))
        environment = {**aws.env(static_credentials=aws_keys), "KUBECONFIG": str(control_plane.kubeconfig)}
        watch = [flag for ns in namespaces for flag in ("--namespace", ns)]
        process = OperatorProcess(
            tmp_path / f"operator-{index}.log",
            {**environment, **(env or {})},
            [*watch, "--policy", str(policy_file), *FAST, *args],
        )
        started.append(process)
        return process.start()

    yield start
    stop_all(started, request)


def stop_all(started: Sequence[OperatorProcess], request: pytest.FixtureRequest) -> None:
    """Stops the operators a test started; prints the end of their logs if the test failed."""
    for process in started:
        process.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for process in started:
            print(f"--- {process.log_path.name} (last 6000 chars) ---\n{process.log()[-6000:]}")


@pytest.fixture
def operator(start_operator: StartOperator) -> OperatorProcess:
    return start_operator()
