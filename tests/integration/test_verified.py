"""The Verified condition: the real operator asks the harness registry (the CNCF registry behind
an ECR-like auth front, see tests/harness/registry.py) whether its own Secret pulls, and says why
not; a failed verification never touches the Secret or Ready."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from tests.harness import dockerconfig
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.harness.registry import Registry
from tests.integration.conftest import REGISTRY_HOST as EAST
from tests.integration.conftest import StartOperator

APP, DENIED = "team/app", "team/denied"
INTERVAL = 2  # seconds between verifications, compressed from the default hour


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> Registry:
    registry.push_image(APP, "v1")
    registry.push_image(DENIED, "v1")
    return registry


def verifying(start_operator: StartOperator, registry: Registry) -> OperatorProcess:
    """The operator reaching the registry through an endpoint override and the harness CA."""
    return start_operator(
        args=[
            "--verify",
            "--registry-endpoint",
            f"{EAST}={registry.endpoint}",
            "--registry-ca-bundle",
            str(registry.ca_file),
            "--verify-interval",
            f"{INTERVAL}s",
        ]
    )


def wait_verified(kube: Kube, namespace: str, status: str, reason: str) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        condition = kube.condition(namespace, "app", "Verified")
        return condition if (condition.get("status"), condition.get("reason")) == (status, reason) else None

    return wait_for(f"Verified={status} ({reason})", seen, timeout=20)


def warnings(kube: Kube, namespace: str, reason: str) -> list[str]:
    return [
        e.get("message", "")
        for e in kube.events(namespace)
        if e["type"] == "Warning" and e["reason"] == reason and e["involvedObject"]["name"] == "app"
    ]


def untouched(kube: Kube, namespace: str, secret: Mapping[str, Any], ready: Mapping[str, Any]) -> None:
    now = kube.get_secret(namespace, "app-ecr")
    assert now is not None
    assert now["data"] == secret["data"]
    assert now["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]
    assert kube.condition(namespace, "app") == ready


def doctor_image(
    control_plane: ControlPlane, aws: AwsEmulator, registry: Registry, namespace: str, image: str
) -> tuple[int, list[str]]:
    """`doctor --image` as a process, reaching the registry as the operator does; (exit code, lines)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECR_PULL_SECRETS_"))}
    env = (
        clean
        | aws.env()
        | {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "KUBECONFIG": str(control_plane.kubeconfig),
            "ECR_PULL_SECRETS_REGISTRY_ENDPOINT": f"{EAST}={registry.endpoint}",
            "ECR_PULL_SECRETS_REGISTRY_CA_BUNDLE": str(registry.ca_file),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "ecr_pull_secrets", "doctor", "--image", f"{EAST}/{image}", "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout.splitlines()


def metric(operator: OperatorProcess, result: str) -> float:
    line = f'ecr_pull_secrets_verify_requests_total{{result="{result}"}} '
    found = [float(x.split()[-1]) for x in operator.metrics().splitlines() if x.startswith(line)]
    return found[0] if found else 0.0


def test_a_good_image_is_verified(
    kube: Kube, namespace: str, start_operator: StartOperator, pushed: Registry
) -> None:
    operator = verifying(start_operator, pushed)
    kube.create_eps(
        namespace, "app", {"registries": [EAST], "secretName": "app-ecr", "verify": {"images": [f"{APP}:v1"]}}
    )
    verified = wait_verified(kube, namespace, "True", "Verified")
    assert verified["message"] == f"{EAST} accepts the Secret's token; 1 image manifest(s) answer: {APP}:v1"
    assert kube.condition(namespace, "app")["status"] == "True"
    asked = [(r.method, r.path, r.status) for r in pushed.requests()]
    assert ("GET", "/v2/", 200) in asked
    assert ("HEAD", f"/v2/{APP}/manifests/v1", 200) in asked
    wait_for("the OK requests counted", lambda: metric(operator, "OK") >= 2, timeout=10)


def test_forbidden_then_unauthorized_leave_the_secret_and_ready_alone(
    kube: Kube, namespace: str, aws: AwsEmulator, start_operator: StartOperator, pushed: Registry
) -> None:
    operator = verifying(start_operator, pushed)
    kube.create_eps(
        namespace,
        "app",
        {"registries": [EAST], "secretName": "app-ecr", "verify": {"images": [f"{DENIED}:v1"]}},
    )
    wait_verified(kube, namespace, "True", "Verified")
    secret = kube.get_secret(namespace, "app-ecr")
    assert secret is not None
    [password] = dockerconfig.passwords(secret)
    token = aws.registry_token(password)
    assert token is not None
    ready = kube.condition(namespace, "app")
    calls = aws.calls()

    aws.deny_pull(DENIED, principal=token.principal)
    forbidden = wait_verified(kube, namespace, "False", "Forbidden")
    assert forbidden["message"].startswith(f"{EAST}/{DENIED}:v1: 403, pull denied; allow {token.principal} ")
    assert f"arn:aws:ecr:us-east-1:123456789012:repository/{DENIED}" in forbidden["message"]
    assert "ecr:BatchGetImage" in forbidden["message"]
    assert wait_for("a Forbidden Warning", lambda: warnings(kube, namespace, "Forbidden"))
    untouched(kube, namespace, secret, ready)

    aws.revoke_token(password)
    unauthorized = wait_verified(kube, namespace, "False", "Unauthorized")
    assert unauthorized["message"].startswith(f"{EAST} (GET /v2/) refused the Secret's token (401)")
    assert wait_for("an Unauthorized Warning", lambda: warnings(kube, namespace, "Unauthorized"))
    untouched(kube, namespace, secret, ready)
    assert aws.calls() == calls, "verification made AWS calls"
    assert metric(operator, "Forbidden") >= 1
    assert metric(operator, "Unauthorized") >= 1
    assert password not in operator.log()


def test_doctor_image_walks_the_pull_path(
    *,
    kube: Kube,
    namespace: str,
    aws: AwsEmulator,
    control_plane: ControlPlane,
    start_operator: StartOperator,
    pushed: Registry,
) -> None:
    # No resource yet: the registry is asked with the user's own identity.
    code, lines = doctor_image(control_plane, aws, pushed, namespace, f"{APP}:v1")
    assert code == 1
    assert (
        f"✗ no EcrPullSecret or ClusterEcrPullSecret writes a Secret for {EAST} in namespace {namespace}"
        in lines
    )
    assert "✓ token made by arn:aws:sts::123456789012:user/moto (your AWS identity)" in lines
    assert f"✓ manifest {EAST}/{APP}:v1 answers" in lines

    verifying(start_operator, pushed)
    kube.create_eps(namespace, "app", {"registries": [EAST], "secretName": "app-ecr"})
    wait_verified(kube, namespace, "True", "Verified")
    code, lines = doctor_image(control_plane, aws, pushed, namespace, f"{APP}:v1")
    assert code == 1
    assert f"✗ ServiceAccount {namespace}/default does not list app-ecr in imagePullSecrets" in lines
    assert any("fix: set spec.serviceAccounts" in line for line in lines)

    kube.patch_eps(namespace, "app", {"spec": {"serviceAccounts": {"names": ["default"]}}})
    wait_for(
        "the default ServiceAccount patched",
        lambda: (
            {"name": "app-ecr"} in (kube.service_account(namespace, "default").get("imagePullSecrets") or [])
        ),
        timeout=20,
    )
    code, lines = doctor_image(control_plane, aws, pushed, namespace, f"{APP}:v1")
    assert code == 0, lines
    assert [line[0] for line in lines[:-1]] == ["✓"] * (len(lines) - 1)
    assert f"✓ {EAST} in namespace {namespace} is covered by EcrPullSecret app (Secret app-ecr)" in lines

    secret = kube.get_secret(namespace, "app-ecr")
    assert secret is not None
    [password] = dockerconfig.passwords(secret)
    token = aws.registry_token(password)
    assert token is not None
    aws.deny_pull(DENIED, principal=token.principal)
    code, lines = doctor_image(control_plane, aws, pushed, namespace, f"{DENIED}:v1")
    assert code == 1
    assert f"✗ {EAST}/{DENIED}:v1: 403, pull denied [Forbidden]" in lines
    assert (
        f"  fix: allow {token.principal} ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on "
        f"arn:aws:ecr:us-east-1:123456789012:repository/{DENIED}"
    ) in [line.split(" (`")[0] for line in lines]

    code, lines = doctor_image(control_plane, aws, pushed, namespace, f"{APP}:v9")
    assert code == 1
    assert f"✗ {EAST}/{APP}:v9: no such manifest (404) [NotFound]" in lines

    aws.revoke_token(password)
    code, lines = doctor_image(control_plane, aws, pushed, namespace, f"{APP}:v1")
    assert code == 1
    assert any(line.startswith(f"✗ {EAST} (GET /v2/) refused the Secret's token (401)") for line in lines)
    assert any("fix: the token is unknown to ECR or was revoked" in line for line in lines)
    assert password not in "\n".join(lines)
