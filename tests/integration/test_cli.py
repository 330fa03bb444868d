"""The `login` and `iam-policy` commands, run as real processes against the AWS emulator.

Only the `aws` fixture is used, so these tests need no control plane.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.harness.aws_emulator import AwsEmulator

A = "123456789012"
B = "210987654321"
US = f"{A}.dkr.ecr.us-east-1.amazonaws.com"
US_OTHER_ACCOUNT = f"{B}.dkr.ecr.us-east-1.amazonaws.com"
EU = f"{A}.dkr.ecr.eu-west-1.amazonaws.com"
PUBLIC = "public.ecr.aws"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m ecr_pull_secrets ARGS`, with none of the developer's own AWS setup."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    return subprocess.run(
        [sys.executable, "-m", "ecr_pull_secrets", *args],
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


# -- login -----------------------------------------------------------------------------------


def test_login_prints_an_issued_password(aws: AwsEmulator) -> None:
    result = cli("login", US, env=aws.env())

    assert result.returncode == 0, result.stderr
    password = result.stdout.removesuffix("\n")
    assert "\n" not in password
    assert password in aws.issued_tokens()
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1


def test_login_dockerconfigjson_asks_once_per_region(aws: AwsEmulator) -> None:
    result = cli("login", "--dockerconfigjson", US, EU, f"https://{US_OTHER_ACCOUNT}/", env=aws.env())

    assert result.returncode == 0, result.stderr
    auths = json.loads(result.stdout)["auths"]
    assert set(auths) == {US, US_OTHER_ACCOUNT, EU}, "hosts are keyed in their canonical form"
    issued = aws.issued_tokens()
    for entry in auths.values():
        assert entry["username"] == "AWS"
        assert entry["password"] in issued
        assert base64.b64decode(entry["auth"]).decode() == f"AWS:{entry['password']}"
    assert auths[US]["password"] == auths[US_OTHER_ACCOUNT]["password"], "one token serves a region"
    assert auths[US]["password"] != auths[EU]["password"]
    assert aws.calls("GetAuthorizationToken", service="ecr") == 2
    assert aws.calls("GetAuthorizationToken", service="ecr-public") == 0


def test_login_public_ecr(aws: AwsEmulator) -> None:
    result = cli("login", PUBLIC, env=aws.env())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in aws.issued_tokens()
    assert aws.calls("GetAuthorizationToken", service="ecr-public") == 1
    assert aws.calls("GetAuthorizationToken", service="ecr") == 0


def test_login_dockerconfigjson_mixes_public_and_private(aws: AwsEmulator) -> None:
    result = cli("login", "--dockerconfigjson", PUBLIC, US, env=aws.env())

    assert result.returncode == 0, result.stderr
    auths = json.loads(result.stdout)["auths"]
    assert set(auths) == {PUBLIC, US}
    assert auths[PUBLIC]["password"] != auths[US]["password"]
    assert aws.calls("GetAuthorizationToken", service="ecr-public") == 1
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1


@pytest.mark.parametrize(("host", "service"), [(US, "ecr"), (PUBLIC, "ecr-public")])
def test_login_access_denied_is_one_line_without_traceback(aws: AwsEmulator, host: str, service: str) -> None:
    aws.fail("GetAuthorizationToken", "AccessDeniedException", status=400, service=service)

    result = cli("login", host, env=aws.env())

    assert_one_line_error(result, 1, "AccessDeniedException", "GetAuthorizationToken")
    assert aws.calls("GetAuthorizationToken", service=service) == 1, "access denied is not retried"


def test_login_never_prints_token_material_on_failure(aws: AwsEmulator) -> None:
    """The ECR Public token is fetched, then the private one fails: no token may be printed."""
    aws.fail("GetAuthorizationToken", "AccessDeniedException", status=400, service="ecr")

    result = cli("login", "--dockerconfigjson", PUBLIC, US, env=aws.env())

    assert_one_line_error(result, 1, "AccessDenied")
    assert aws.calls("GetAuthorizationToken", service="ecr-public") == 1, "a token was issued first"
    for password in aws.issued_tokens():
        assert password not in result.stderr
        assert base64.b64encode(f"AWS:{password}".encode()).decode() not in result.stderr


def test_login_without_credentials_is_one_line(aws: AwsEmulator) -> None:
    result = cli("login", US, env=aws.env(static_credentials=False))

    assert_one_line_error(result, 1, "no usable AWS credentials")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param([US, EU], "--dockerconfigjson for several", id="two-hosts-without-dockerconfigjson"),
        pytest.param(["docker.io"], "not an Amazon ECR registry host", id="not-ecr"),
    ],
)
def test_login_usage_errors(aws: AwsEmulator, args: list[str], fragment: str) -> None:
    result = cli("login", *args, env=aws.env())

    assert_one_line_error(result, 2, fragment)
    assert aws.calls() == 0


# -- iam-policy ------------------------------------------------------------------------------


def policy_resources(policy: dict[str, Any]) -> dict[str, list[str]]:
    return {statement["Sid"]: statement["Resource"] for statement in policy["Statement"]}


@pytest.mark.parametrize(
    ("host", "arn"),
    [
        pytest.param(US, f"arn:aws:ecr:us-east-1:{A}:repository/team/app", id="standard"),
        pytest.param(
            f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn",
            f"arn:aws-cn:ecr:cn-north-1:{A}:repository/team/app",
            id="china",
        ),
        pytest.param(
            f"{A}.dkr.ecr.us-gov-west-1.amazonaws.com",
            f"arn:aws-us-gov:ecr:us-gov-west-1:{A}:repository/team/app",
            id="govcloud",
        ),
        pytest.param(
            f"{A}.dkr.ecr.eusc-de-east-1.amazonaws.eu",
            f"arn:aws-eusc:ecr:eusc-de-east-1:{A}:repository/team/app",
            id="eu-sovereign",
        ),
        pytest.param(
            f"{A}.dkr.ecr.us-iso-east-1.c2s.ic.gov",
            f"arn:aws-iso:ecr:us-iso-east-1:{A}:repository/team/app",
            id="iso",
        ),
        pytest.param(
            f"{A}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
            f"arn:aws-iso-b:ecr:us-isob-east-1:{A}:repository/team/app",
            id="iso-b",
        ),
        pytest.param(
            f"{A}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            f"arn:aws-iso-e:ecr:eu-isoe-west-1:{A}:repository/team/app",
            id="iso-e",
        ),
        pytest.param(
            f"{A}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
            f"arn:aws-iso-f:ecr:us-isof-south-1:{A}:repository/team/app",
            id="iso-f",
        ),
    ],
)
def test_iam_policy_arns(host: str, arn: str) -> None:
    result = cli("iam-policy", "--registry", host, "--repository", "team/app", "--output", "json")

    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)
    assert policy["Version"] == "2012-10-17"
    assert policy_resources(policy) == {"GetEcrAuthorizationToken": ["*"], "PullFromEcrRepositories": [arn]}


def test_iam_policy_with_trust_policy() -> None:
    provider = f"arn:aws:iam::{A}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
    result = cli(
        "iam-policy",
        "--registry",
        US,
        "--registry",
        PUBLIC,
        "--trust-service-account",
        "kube-system/ecr-pull-secrets",
        "--oidc-provider",
        provider,
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"identityPolicy", "trustPolicy"}
    assert policy_resources(document["identityPolicy"]) == {
        "GetEcrAuthorizationToken": ["*"],
        "PullFromEcrRepositories": [f"arn:aws:ecr:us-east-1:{A}:repository/*"],
        "GetEcrPublicAuthorizationToken": ["*"],
    }
    (statement,) = document["trustPolicy"]["Statement"]
    assert statement["Principal"] == {"Federated": provider}
    assert statement["Condition"]["StringEquals"] == {
        "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:kube-system:ecr-pull-secrets",
        "oidc.eks.us-east-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
    }


def test_iam_policy_pull_through_cache() -> None:
    result = cli(
        "iam-policy",
        "--registry",
        US,
        "--registry",
        EU,
        "--repository",
        "team/app",
        "--pull-through-cache",
        "docker-hub",
        "--pull-through-cache",
        "quay",
    )

    assert result.returncode == 0, result.stderr
    resources = policy_resources(json.loads(result.stdout))
    cached = [
        f"arn:aws:ecr:{region}:{A}:repository/{prefix}/*"
        for region in ("eu-west-1", "us-east-1")
        for prefix in ("docker-hub", "quay")
    ]
    assert resources["ImportIntoPullThroughCache"] == cached
    assert set(resources["PullFromEcrRepositories"]) == {
        *cached,
        f"arn:aws:ecr:eu-west-1:{A}:repository/team/app",
        f"arn:aws:ecr:us-east-1:{A}:repository/team/app",
    }


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            ["--registry", US, "--pull-through-cache", "Docker-Hub"],
            "'Docker-Hub' is not a pull-through cache prefix",
            id="bad-cache-prefix",
        ),
        pytest.param(
            ["--registry", US, "--registry", f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn"],
            "span several AWS partitions",
            id="mixed-partitions",
        ),
        pytest.param(["--registry", "ghcr.io"], "not an Amazon ECR registry host", id="not-ecr"),
        pytest.param(
            ["--registry", US, "--trust-service-account", "ns/sa"], "go together", id="trust-without-provider"
        ),
    ],
)
def test_iam_policy_usage_errors(args: list[str], fragment: str) -> None:
    result = cli("iam-policy", *args)

    assert_one_line_error(result, 2, fragment)


def test_iam_policy_does_not_load_boto3() -> None:
    code = (
        "import sys\n"
        "from ecr_pull_secrets.cli.main import main\n"
        f"assert main(['iam-policy', '--registry', '{US}']) == 0\n"
        "heavy = sorted({'boto3', 'botocore', 'kopf', 'kubernetes'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
