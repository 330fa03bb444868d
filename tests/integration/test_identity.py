"""Identity: IRSA, role chains, tenant ServiceAccounts, static keys, the namespace policy,
ECR Public — against the real apiserver (TokenRequest) and the AWS emulator."""

from __future__ import annotations

import base64
import json
import time

from tests.harness import dockerconfig
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.kube import Kube, wait_for
from tests.integration.conftest import StartOperator

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
WEST = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
FIRST = "arn:aws:iam::111111111111:role/first"
SECOND = "arn:aws:iam::222222222222:role/second"
TENANT = "arn:aws:iam::333333333333:role/tenant"


def jwt_claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def make_service_account(kube: Kube, namespace: str, name: str, role: str | None) -> None:
    annotations = {"eks.amazonaws.com/role-arn": role} if role else {}
    kube.core.create_namespaced_service_account(
        namespace, {"metadata": {"name": name, "annotations": annotations}}
    )


def test_irsa_end_to_end(
    kube: Kube, namespace: str, start_operator: StartOperator, aws: AwsEmulator, tmp_path: object
) -> None:
    """The operator's pod identity as EKS sets it up: a projected SA token file + AWS_ROLE_ARN."""
    make_service_account(kube, namespace, "operator", None)
    token = kube.core.create_namespaced_service_account_token(
        "operator", namespace, {"spec": {"audiences": ["sts.amazonaws.com"], "expirationSeconds": 3600}}
    ).status.token
    token_file = tmp_path / "token"  # type: ignore[operator]
    token_file.write_text(token)
    start_operator(
        aws_keys=False,
        env={
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/ecr-puller",
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_SESSION_NAME": "operator",
        },
    )
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    body = kube.wait_ready(namespace, "app", timeout=15)

    assert body["status"]["identity"] == "arn:aws:sts::123456789012:assumed-role/ecr-puller/operator"
    [exchange] = aws.requests("AssumeRoleWithWebIdentity")
    assert exchange["RoleArn"] == "arn:aws:iam::123456789012:role/ecr-puller"
    assert jwt_claims(exchange["WebIdentityToken"])["sub"] == f"system:serviceaccount:{namespace}:operator"


def test_two_role_chain_with_external_id_and_session_tags(
    kube: Kube, namespace: str, operator: object, aws: AwsEmulator
) -> None:
    chain = [{"roleArn": FIRST, "externalId": "shared-secret-1"}, {"roleArn": SECOND, "sessionName": "pull"}]
    kube.create_eps(namespace, "app", {"registries": [EAST], "auth": {"roleChain": chain}})
    body = kube.wait_ready(namespace, "app", timeout=15)

    # Session names always start with the namespace: CloudTrail shows the true requester.
    assert body["status"]["identity"] == f"arn:aws:sts::222222222222:assumed-role/second/{namespace}.pull"
    first, second = aws.requests("AssumeRole")
    assert (first["RoleArn"], first["ExternalId"]) == (FIRST, "shared-secret-1")
    assert first["RoleSessionName"] == f"{namespace}.app"
    assert (second["RoleArn"], second["RoleSessionName"]) == (SECOND, f"{namespace}.pull")
    assert "ExternalId" not in second
    for request in (first, second):
        tags = {request[f"Tags.member.{i}.Key"]: request[f"Tags.member.{i}.Value"] for i in (1, 2)}
        assert tags == {"ecr-pull-secrets:namespace": namespace, "ecr-pull-secrets:name": "app"}


def test_tenant_service_account_identity_needs_no_permission(
    kube: Kube, namespace: str, start_operator: StartOperator, aws: AwsEmulator
) -> None:
    """serviceAccountRef works under a deny-all policy: the tenant uses its own IAM role."""
    start_operator(policy={})
    make_service_account(kube, namespace, "puller", TENANT)
    kube.create_eps(
        namespace, "app", {"registries": [EAST], "auth": {"serviceAccountRef": {"name": "puller"}}}
    )
    body = kube.wait_ready(namespace, "app", timeout=15)

    assert body["status"]["identity"].startswith("arn:aws:sts::333333333333:assumed-role/tenant/")
    [exchange] = aws.requests("AssumeRoleWithWebIdentity")
    claims = jwt_claims(exchange["WebIdentityToken"])
    assert claims["sub"] == f"system:serviceaccount:{namespace}:puller"
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert int(claims["exp"]) - int(claims["iat"]) == 600  # type: ignore[call-overload]


def test_tenant_service_account_without_role_reports_why(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator(policy={})
    make_service_account(kube, namespace, "puller", None)
    kube.create_eps(
        namespace, "app", {"registries": [EAST], "auth": {"serviceAccountRef": {"name": "puller"}}}
    )
    ready = wait_for(
        "Ready=False",
        lambda: (c := kube.condition(namespace, "app")).get("status") == "False" and c,
        timeout=10,
    )
    assert ready["reason"] == "AuthUnresolved"
    assert "has no eks.amazonaws.com/role-arn annotation" in ready["message"]


def test_static_keys_from_a_secret(kube: Kube, namespace: str, start_operator: StartOperator) -> None:
    """The operator itself has no AWS credentials at all here, so only the keys can work."""
    start_operator(aws_keys=False)
    kube.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "aws-keys"},
            "stringData": {
                "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY000001",
                "AWS_SECRET_ACCESS_KEY": "example-secret",
            },
        },
    )
    kube.create_eps(namespace, "app", {"registries": [EAST], "auth": {"secretRef": {"name": "aws-keys"}}})
    body = kube.wait_ready(namespace, "app", timeout=15)
    assert body["status"]["identity"] == "arn:aws:sts::123456789012:user/moto"

    kube.create_eps(namespace, "no-keys", {"registries": [EAST]})
    wait_for(
        "the keyless resource to fail",
        lambda: kube.condition(namespace, "no-keys").get("reason") == "NoCredentials",
        timeout=10,
    )


def test_policy_refuses_the_operator_identity(
    kube: Kube, namespace: str, start_operator: StartOperator, aws: AwsEmulator
) -> None:
    start_operator(
        policy={
            "operatorIdentity": {"namespaces": ["platform-*"]},
            "assumeRoles": [{"namespaces": ["team-*"], "roleArns": ["arn:aws:iam::*:role/ecr-*"]}],
        }
    )
    kube.create_eps(namespace, "own", {"registries": [EAST]})
    kube.create_eps(namespace, "chained", {"registries": [EAST], "auth": {"roleChain": [{"roleArn": FIRST}]}})

    own = wait_for(
        "a refusal", lambda: (c := kube.condition(namespace, "own")).get("status") == "False" and c
    )
    chained = wait_for(
        "a refusal", lambda: (c := kube.condition(namespace, "chained")).get("status") == "False" and c
    )
    assert own["reason"] == chained["reason"] == "AuthNotAllowed"
    assert "may not use the operator's own AWS identity" in own["message"]
    assert "platform-*" not in own["message"], "the policy's globs are not the tenant's business"
    assert f"may not assume {FIRST}" in chained["message"]
    assert "team-*" not in chained["message"]
    # kopf posts Events from a queue of its own, a moment after the status.
    wait_for(
        "two AuthNotAllowed Events",
        lambda: [e["reason"] for e in kube.events(namespace)].count("AuthNotAllowed") == 2,
    )
    time.sleep(2)  # a refusal is not retried: no more Events, no AWS calls
    assert [e["reason"] for e in kube.events(namespace)].count("AuthNotAllowed") == 2
    assert aws.call_counts() == {}
    assert kube.get_secret(namespace, "own") is None


def test_public_ecr(kube: Kube, namespace: str, operator: object, aws: AwsEmulator) -> None:
    kube.create_eps(namespace, "app", {"registries": ["public.ecr.aws", EAST]})
    kube.wait_ready(namespace, "app")
    secret = kube.get_secret(namespace, "app")
    assert secret is not None
    auths = dockerconfig.auths(secret)
    assert set(auths) == {"public.ecr.aws", EAST}
    assert auths["public.ecr.aws"]["password"] != auths[EAST]["password"]
    assert aws.calls("GetAuthorizationToken", service="ecr-public") == 1
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1


def test_two_role_chains_cost_two_token_calls(
    kube: Kube, namespace: str, operator: object, aws: AwsEmulator
) -> None:
    for name, role in (("a", FIRST), ("b", SECOND)):
        kube.create_eps(namespace, name, {"registries": [EAST], "auth": {"roleChain": [{"roleArn": role}]}})
    for name in ("a", "b"):
        kube.wait_ready(namespace, name, timeout=15)
    # Chains never share credentials or tokens: two chains, one region, two calls.
    assert aws.calls("GetAuthorizationToken", service="ecr") == 2
    assert [r["RoleArn"] for r in sorted(aws.requests("AssumeRole"), key=lambda r: r["RoleArn"])] == [
        FIRST,
        SECOND,
    ]
