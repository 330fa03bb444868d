"""`ecr-pull-secrets doctor`, run as a real process with a kubeconfig and AWS credentials, against
the real apiserver (SubjectAccessReview, CRDs) and the AWS emulator."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from kubernetes import client

from ecr_pull_secrets.kube.permissions import OPERATOR_PERMISSIONS, rbac_rules
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
EAST_OTHER_ACCOUNT = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
WEST = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
IDENTITY = "arn:aws:sts::123456789012:user/moto"
ROLE = "arn:aws:iam::111111111111:role/ecr-pull"


def doctor(control_plane: ControlPlane, aws: AwsEmulator, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ecr_pull_secrets doctor ARGS` with the test cluster's kubeconfig and the emulator."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "KUBECONFIG"}
    clean |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    return subprocess.run(
        [sys.executable, "-m", "ecr_pull_secrets", "doctor", *args],
        env=clean | aws.env() | {"KUBECONFIG": str(control_plane.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verdicts(output: str) -> list[tuple[str, str]]:
    """(✓ ✗ or -, the rest) of every check line; fix lines and the summary are left out."""
    return [(line[0], line[2:]) for line in output.splitlines() if line[:1] in {"✓", "✗", "-"}]


@pytest.fixture
def operator_account(kube: Kube, namespace: str) -> Iterator[Any]:
    """Makes a ServiceAccount `operator` in the test's namespace with the given ClusterRole rules."""
    rbac = client.RbacAuthorizationV1Api(kube.api)
    made: list[str] = []

    def grant(rules: Sequence[dict[str, Any]]) -> str:
        kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": "operator"}})
        name = f"doctor-{namespace}"
        rbac.create_cluster_role({"metadata": {"name": name}, "rules": list(rules)})
        made.append(name)
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
            }
        )
        return f"{namespace}/operator"

    yield grant
    for name in made:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


@pytest.mark.usefixtures("operator")  # so that the resource is Ready
def test_all_checks_pass(
    control_plane: ControlPlane, kube: Kube, aws: AwsEmulator, namespace: str, operator_account: Any
) -> None:
    account = operator_account(rbac_rules())
    kube.create_eps(namespace, "app", {"registries": [EAST, EAST_OTHER_ACCOUNT, WEST]})
    kube.wait_ready(namespace, "app")
    aws.reset_calls()

    result = doctor(control_plane, aws, "-n", namespace, "app", "--operator-service-account", account)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    checks = verdicts(result.stdout)
    assert {mark for mark, _ in checks} == {"✓"}, result.stdout
    said = [text for _, text in checks]
    assert said[0] == f"AWS identity: {IDENTITY}"
    assert "CRD ecrpullsecrets.ecr.pullsecrets.dev is installed" in said
    assert "CRD clusterecrpullsecrets.ecr.pullsecrets.dev is installed" in said
    assert f"ServiceAccount {account} exists" in said
    user = f"system:serviceaccount:{namespace}:operator"
    assert f"RBAC: {user} has all {len(OPERATOR_PERMISSIONS)} permissions the operator needs" in said
    assert f"EcrPullSecret {namespace}/app: 3 registries, auth: the operator's identity" in said
    assert any(text.startswith(f"EcrPullSecret {namespace}/app is Ready (Issued)") for text in said)
    for host in (EAST, EAST_OTHER_ACCOUNT, WEST):
        assert any(text.startswith(f"token for {host} with {IDENTITY} (valid until ") for text in said)
    assert result.stdout.rstrip().endswith(f"{len(checks)} passed, 0 failed")
    # One token per region, as the operator would ask; and none of it printed.
    assert aws.calls("GetAuthorizationToken", service="ecr") == 2
    for token in aws.issued_tokens():
        assert token not in result.stdout
        assert base64.b64encode(f"AWS:{token}".encode()).decode() not in result.stdout


def test_missing_permissions_are_named_and_fail(
    control_plane: ControlPlane, kube: Kube, aws: AwsEmulator, namespace: str, operator_account: Any
) -> None:
    lacking = {("delete", "secrets"), ("create", "serviceaccounts/token")}
    rules = [
        {**rule, "verbs": [v for v in rule["verbs"] if (v, rule["resources"][0]) not in lacking]}
        for rule in rbac_rules()
    ]
    account = operator_account([rule for rule in rules if rule["verbs"]])

    result = doctor(control_plane, aws, "--operator-service-account", account)

    assert result.returncode == 1, result.stdout + result.stderr
    failed = [text for mark, text in verdicts(result.stdout) if mark == "✗"]
    assert len(failed) == 1, result.stdout
    user = f"system:serviceaccount:{namespace}:operator"
    total = len(OPERATOR_PERMISSIONS)
    assert failed[0] == (
        f"RBAC: {user} lacks 2 of {total} permissions: delete secrets, create serviceaccounts/token"
    )
    lines = result.stdout.splitlines()
    fix = lines[lines.index(f"✗ {failed[0]}") + 1]
    assert fix.startswith("  fix: bind a ClusterRole granting them")
    assert result.stdout.rstrip().endswith(f"{len(verdicts(result.stdout)) - 1} passed, 1 failed")


def test_aws_failures_and_other_identities(
    control_plane: ControlPlane, kube: Kube, aws: AwsEmulator, namespace: str, operator_account: Any
) -> None:
    """Not reconciled (no operator here), a registry AWS refuses, and a role chain doctor cannot
    stand in for: each said, with the fix."""
    account = operator_account(rbac_rules())
    kube.create_eps(namespace, "app", {"registries": [WEST]})
    kube.create_eps(namespace, "chained", {"registries": [EAST], "auth": {"roleChain": [{"roleArn": ROLE}]}})
    aws.fail("GetAuthorizationToken", "AccessDeniedException", status=400, service="ecr")

    denied = doctor(control_plane, aws, "-n", namespace, "app", "--operator-service-account", account)
    chained = doctor(control_plane, aws, "-n", namespace, "chained", "--operator-service-account", account)
    missing = doctor(control_plane, aws, "-n", namespace, "nope", "--operator-service-account", account)

    assert denied.returncode == 1, denied.stdout + denied.stderr
    failed = [text for mark, text in verdicts(denied.stdout) if mark == "✗"]
    assert (
        failed[0]
        == f"EcrPullSecret {namespace}/app has no Ready condition: the operator has not reconciled it"
    )
    assert failed[1].startswith(
        f"token for {WEST}: ecr:GetAuthorizationToken in eu-west-1 failed: AccessDenied"
    )
    assert f"`ecr-pull-secrets iam-policy --registry {WEST}` prints the policy" in denied.stdout

    assert (
        "-",
        f"tokens not checked: spec.auth uses the operator's identity → {ROLE}; doctor checks "
        "only the operator-identity path",
    ) in verdicts(chained.stdout)
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1, "only for app"

    assert missing.returncode == 1
    assert (f"✗ EcrPullSecret {namespace}/nope not found") in missing.stdout.splitlines()
