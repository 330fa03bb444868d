"""Outside EKS (docs/outside-eks.md): the operator's own AWS identity from a ServiceAccount token
that the cluster's own issuer signed, exchanged with sts:AssumeRoleWithWebIdentity.

No pod identity webhook, no EKS: the test apiserver mints the token (TokenRequest, with the
audience and lifetime of the chart's projected volume), the operator runs with exactly the AWS
variables the chart renders for `aws.webIdentity` and `aws.region` and no static keys, and the AWS
emulator records what reached STS. The token is checked the way
IAM checks it: `iss` is the issuer the cluster publishes in its discovery document, and the
signature verifies against the JWKS it publishes.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from botocore.awsrequest import AWSRequest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
from cryptography.hazmat.primitives.hashes import SHA256
from prometheus_client.parser import text_string_to_metric_families

from ecr_pull_secrets.aws.ratelimit import RateLimiter
from ecr_pull_secrets.aws.sessions import SessionResolver
from ecr_pull_secrets.model.identity import OPERATOR_CHAIN
from tests.harness import dockerconfig, helm
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.controlplane import SERVICE_ACCOUNT_ISSUER, ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.integration.conftest import ALLOW_ALL, FAST, stop_all
from tests.unit import test_dashboard as dashboard

WALKTHROUGH = Path(__file__).resolve().parents[2] / "docs" / "outside-eks.md"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ROLE = "arn:aws:iam::123456789012:role/ecr-pull-secret-operator"
REGION = "eu-west-1"
SERVICE_ACCOUNT = "ecr-pull-secret-operator"
# What the harness adds to every operator it runs: its endpoint, and no instance metadata lookups
# (there is no IMDS here; a real off-EKS node has none for the operator either, or must not use it).
HARNESS_ONLY = {"AWS_ENDPOINT_URL", "AWS_EC2_METADATA_DISABLED"}


@dataclass(frozen=True)
class OffEks:
    """What the chart renders for an off-EKS install: the container's AWS variables and the
    projected token (audience, lifetime, file)."""

    env: dict[str, str]
    audience: str
    expiration_seconds: int
    token_file: Path

    def without(self, name: str) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if k != name}


def walkthrough_values() -> str:
    """The values file docs/outside-eks.md tells users to install with."""
    match = re.search(r"```yaml\n(# values-outside-eks\.yaml\n.*?)```", WALKTHROUGH.read_text(), re.DOTALL)
    assert match, f"no values-outside-eks.yaml block in {WALKTHROUGH}"
    return match.group(1)


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> OffEks:
    """`helm template` with the walk-through's values file; only the token directory is changed,
    to a local one, so the rendered AWS_WEB_IDENTITY_TOKEN_FILE is a file this test writes, as the
    kubelet would."""
    work = tmp_path_factory.mktemp("chart")
    values = work / "values-outside-eks.yaml"
    values.write_text(walkthrough_values())
    mount = work / "projected"
    mount.mkdir()
    rendered = helm.template(
        helm.ensure_helm(), values_files=[values], set_values=[f"aws.webIdentity.mountPath={mount}"]
    )
    documents = yaml.safe_load_all(rendered)
    [deployment] = [d for d in documents if d and d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("AWS_")}
    [volume] = [v for v in pod["volumes"] if "projected" in v]
    [mounted] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    [source] = volume["projected"]["sources"]
    projection = source["serviceAccountToken"]

    assert set(env) == {
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",  # botocore reads this one, not AWS_REGION
        "AWS_STS_REGIONAL_ENDPOINTS",
    }, "no keys, no profile, nothing else AWS"
    assert env["AWS_ROLE_ARN"] == ROLE
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == REGION
    assert env["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == f"{mounted['mountPath']}/{projection['path']}"
    return OffEks(
        env,
        projection["audience"],
        projection["expirationSeconds"],
        Path(mounted["mountPath"]) / projection["path"],
    )


class RunOperator(Protocol):
    def __call__(self, env: Mapping[str, str]) -> OperatorProcess: ...


@pytest.fixture
def run_operator(
    control_plane: ControlPlane,
    aws: AwsEmulator,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[RunOperator]:
    """Like conftest's start_operator, but the process's AWS variables are exactly `env` plus
    HARNESS_ONLY: nothing of the harness's default region or keys is laid underneath."""
    started: list[OperatorProcess] = []
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(ALLOW_ALL))

    def run(env: Mapping[str, str]) -> OperatorProcess:
        harness = {k: v for k, v in aws.env(static_credentials=False).items() if k in HARNESS_ONLY}
        assert set(harness) == HARNESS_ONLY
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
        process = OperatorProcess(
            tmp_path / f"operator-{len(started)}.log",
            {**harness, **env, "KUBECONFIG": str(control_plane.kubeconfig)},
            ["--namespace", namespace, "--policy", str(policy), *FAST],
        )
        started.append(process)
        return process.start()

    yield run
    stop_all(started, request)


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part: dict[str, Any] = json.loads(b64url(token.split(".")[index]))
    return part


def verify_with_jwks(token: str, jwks: Mapping[str, Any]) -> None:
    """What IAM does with the OIDC provider's keys: find the key by `kid`, check the RS256
    signature. Raises InvalidSignature if it does not verify."""
    header = jwt_part(token, 0)
    assert header["alg"] == "RS256", header
    [key] = [k for k in jwks["keys"] if k.get("kid") == header["kid"]]
    assert key["kty"] == "RSA"
    public = RSAPublicNumbers(
        int.from_bytes(b64url(key["e"]), "big"), int.from_bytes(b64url(key["n"]), "big")
    ).public_key()
    signed, _, signature = token.rpartition(".")
    public.verify(b64url(signature), signed.encode(), PKCS1v15(), SHA256())


def mint_operator_token(kube: Kube, namespace: str, chart: OffEks) -> str:
    """The token the kubelet would project (the chart's audience and lifetime) from the
    TokenRequest API, written where the chart points AWS_WEB_IDENTITY_TOKEN_FILE."""
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": SERVICE_ACCOUNT}})
    spec = {"audiences": [chart.audience], "expirationSeconds": chart.expiration_seconds}
    token: str = kube.core.create_namespaced_service_account_token(
        SERVICE_ACCOUNT, namespace, {"spec": spec}
    ).status.token
    chart.token_file.write_text(token)
    return token


def test_the_operator_gets_tokens_through_assume_role_with_web_identity(
    kube: Kube, namespace: str, run_operator: RunOperator, aws: AwsEmulator, chart: OffEks
) -> None:
    token = mint_operator_token(kube, namespace, chart)
    process = run_operator(chart.env)

    kube.create_eps(namespace, "app", {"registries": [REGISTRY]})
    body = kube.wait_ready(namespace, "app", timeout=20)

    # STS saw the exchange, for our role, with the token from the file: the only way in.
    [exchange] = aws.requests("AssumeRoleWithWebIdentity")
    assert exchange["RoleArn"] == ROLE
    assert exchange["WebIdentityToken"] == token
    assert aws.calls("AssumeRoleWithWebIdentity") == 1
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1
    # ...and the ECR token came from the assumed role's credentials.
    identity = body["status"]["identity"]
    assert identity.startswith("arn:aws:sts::123456789012:assumed-role/ecr-pull-secret-operator/")
    secret = kube.get_secret(namespace, "app")
    assert secret is not None
    issued = aws.registry_token(dockerconfig.auths(secret)[REGISTRY]["password"])
    assert issued is not None
    assert issued.principal == identity

    # The token is what IAM would accept from a self-hosted issuer: `iss` is the issuer the
    # cluster publishes (the IAM OIDC provider's URL), `aud` the provider's client id, and the
    # signature verifies against the published JWKS.
    discovery = json.loads(kube.kubectl("get", "--raw", "/.well-known/openid-configuration").stdout)
    jwks = json.loads(kube.kubectl("get", "--raw", "/openid/v1/jwks").stdout)
    claims = jwt_part(token, 1)
    assert claims["iss"] == discovery["issuer"] == SERVICE_ACCOUNT_ISSUER
    # Without --service-account-jwks-uri the apiserver advertises its own address here, which IAM
    # could not reach: the walk-through sets the flag to where the JWKS is published.
    assert discovery["jwks_uri"].endswith("/openid/v1/jwks")
    assert claims["aud"] == [chart.audience] == ["sts.amazonaws.com"]
    assert claims["exp"] - claims["iat"] == chart.expiration_seconds
    assert claims["sub"] == f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"
    verify_with_jwks(token, jwks)
    # The check can fail: a token with another subject but the same signature does not verify.
    header, _, signature = token.split(".")
    forged = {**claims, "sub": f"system:serviceaccount:{namespace}:someone-else"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(InvalidSignature):
        verify_with_jwks(f"{header}.{forged_payload}.{signature}", jwks)

    # While it runs: the chart's Grafana dashboard reads series this operator really serves. Every
    # name it uses is in this scrape, except the verification counter (verification is off here).
    scraped = {
        sample.name
        for family in text_string_to_metric_families(process.metrics())
        for sample in family.samples
    }
    used = {name for expr in dashboard.expressions(dashboard.load()) for name in dashboard.metric_names(expr)}
    assert used - scraped == {"ecr_pull_secrets_verify_requests_total"}
    # The exchange for the operator's own identity happens inside botocore's credential provider:
    # the AWS calls panel says so, as this scrape shows (GetCallerIdentity is counted, it is not).
    text = process.metrics()
    assert 'operation="GetCallerIdentity",result="success",service="sts"' in text
    assert "AssumeRoleWithWebIdentity" not in text


@pytest.mark.parametrize(
    "case",
    [
        # No token file: botocore's chain skips web identity and finds nothing else.
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "NoCredentials", ""),
        # A token file but no role: botocore refuses the half-configured web identity.
        ("AWS_ROLE_ARN", "AwsError", "InvalidConfigError"),
    ],
)
def test_without_both_variables_there_is_no_exchange_and_no_token(
    *,
    kube: Kube,
    namespace: str,
    run_operator: RunOperator,
    aws: AwsEmulator,
    chart: OffEks,
    case: tuple[str, str, str],
) -> None:
    """The negative of the test above: botocore needs both variables for web identity, and
    without them the operator has no credentials at all (no keys, no IMDS)."""
    missing, reason, says = case
    mint_operator_token(kube, namespace, chart)
    run_operator(chart.without(missing))

    kube.create_eps(namespace, "app", {"registries": [REGISTRY]})
    ready = wait_for(
        "Ready=False",
        lambda: (c := kube.condition(namespace, "app")).get("status") == "False" and c,
        timeout=20,
    )
    assert ready["reason"] == reason
    assert says in ready["message"]
    assert aws.calls("AssumeRoleWithWebIdentity") == 0
    assert aws.calls("GetAuthorizationToken") == 0
    assert kube.get_secret(namespace, "app") is None


class _Sent(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def test_the_exchange_goes_to_the_regional_sts_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, chart: OffEks
) -> None:
    """What the emulator cannot show (AWS_ENDPOINT_URL replaces every endpoint): with the off-EKS
    variables, the operator's own identity asks STS in AWS_DEFAULT_REGION's regional endpoint,
    not the global one. No network: the request is stopped before it is sent."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    chart.token_file.write_text("header.payload.signature")
    for name, value in chart.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))

    def no_tokens(namespace: str, name: str, audience: str) -> str:
        raise AssertionError("the operator's own identity mints no tokens")

    resolver = SessionResolver(no_tokens, RateLimiter(1000.0), lambda: datetime.now(UTC))
    session = resolver.resolve(OPERATOR_CHAIN, "aws", ("team-a", "app")).session

    def stop(**event: Any) -> None:
        request: AWSRequest = event["request"]
        raise _Sent(str(request.url))

    session.register("before-send", stop)
    credentials = session.get_credentials()
    assert credentials is not None
    with pytest.raises(_Sent) as sent:
        credentials.get_frozen_credentials()  # web identity credentials are fetched when first used
    assert sent.value.url == f"https://sts.{REGION}.amazonaws.com/"


@pytest.mark.parametrize(
    "case",
    [
        # No IAM OIDC provider for the token's issuer (or the JWKS cannot be fetched or verified).
        (
            "InvalidIdentityToken",
            f"No OpenIDConnect provider found in your account for {SERVICE_ACCOUNT_ISSUER}",
            "InvalidCredentials",
        ),
        # The role's trust policy does not match the token's sub/aud.
        ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", "AccessDenied"),
    ],
)
def test_sts_refusing_the_token_is_reported_without_the_token(
    *,
    kube: Kube,
    namespace: str,
    run_operator: RunOperator,
    aws: AwsEmulator,
    chart: OffEks,
    case: tuple[str, str, str],
) -> None:
    """What the walk-through's troubleshooting quotes: STS's answer in the Ready condition."""
    error_code, message, reason = case
    token = mint_operator_token(kube, namespace, chart)
    aws.fail(
        "AssumeRoleWithWebIdentity", error_code, 400 if error_code != "AccessDenied" else 403, message=message
    )
    process = run_operator(chart.env)

    kube.create_eps(namespace, "app", {"registries": [REGISTRY]})
    ready = wait_for(
        "Ready=False",
        lambda: (c := kube.condition(namespace, "app")).get("status") == "False" and c,
        timeout=20,
    )
    assert ready["reason"] == reason
    assert f"{error_code}: {message}" in ready["message"]
    assert aws.calls("AssumeRoleWithWebIdentity") >= 1
    assert aws.calls("GetAuthorizationToken") == 0
    assert kube.get_secret(namespace, "app") is None
    for text in (
        json.dumps(kube.get_eps(namespace, "app")),
        json.dumps(kube.events(namespace)),
        process.log(),
    ):
        assert token not in text
