"""The AWS emulator behaves like AWS where the operator looks, over real HTTP.

Clients are built the way the operator builds them: from the standard environment
variables (``AwsEmulator.env()``), not from explicit endpoint arguments.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.harness.aws_emulator import MOTO_ACCOUNT_ID, AwsEmulator

pytestmark = pytest.mark.integration

LIFETIME = 20.0
REPO_ROOT = Path(__file__).resolve().parents[2]
# One attempt per call, so counts and fault budgets are exact.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEmulator]:
    with AwsEmulator(token_lifetime=LIFETIME) as emu:
        # A developer's own AWS setup must not leak into what the clients resolve.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        for name, value in emu.env().items():
            monkeypatch.setenv(name, value)
        yield emu


def client(service: str, **kwargs: Any) -> Any:
    return boto3.session.Session().client(service, config=NO_RETRIES, **kwargs)  # type: ignore[call-overload]


def password(token: str) -> str:
    user, _, secret = base64.b64decode(token).decode().partition(":")
    assert user == "AWS"
    return secret


def assert_expires_in(expires_at: datetime, seconds: float) -> None:
    assert abs(expires_at.timestamp() - (time.time() + seconds)) < 5


def test_ecr_tokens_expire_after_lifetime_and_differ_per_call(emulator: AwsEmulator) -> None:
    ecr = client("ecr")
    first = ecr.get_authorization_token()["authorizationData"]
    second = ecr.get_authorization_token()["authorizationData"]

    assert len(first) == len(second) == 1
    assert first[0]["proxyEndpoint"] == f"https://{MOTO_ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com"
    assert_expires_in(first[0]["expiresAt"], LIFETIME)
    assert password(first[0]["authorizationToken"]) != password(second[0]["authorizationToken"])

    emulator.token_lifetime = 3600
    assert_expires_in(ecr.get_authorization_token()["authorizationData"][0]["expiresAt"], 3600)


def test_ecr_token_per_registry(emulator: AwsEmulator) -> None:
    data = client("ecr").get_authorization_token(registryIds=["111122223333", "444455556666"])[
        "authorizationData"
    ]

    assert [d["proxyEndpoint"] for d in data] == [
        "https://111122223333.dkr.ecr.us-east-1.amazonaws.com",
        "https://444455556666.dkr.ecr.us-east-1.amazonaws.com",
    ]
    passwords = [password(d["authorizationToken"]) for d in data]
    assert passwords[0].startswith("111122223333-")
    assert passwords[1].startswith("444455556666-")
    for entry in data:
        assert_expires_in(entry["expiresAt"], LIFETIME)


def test_ecr_public_token(emulator: AwsEmulator) -> None:
    ecr_public = client("ecr-public", region_name="us-east-1")
    first = ecr_public.get_authorization_token()["authorizationData"]
    second = ecr_public.get_authorization_token()["authorizationData"]

    assert_expires_in(first["expiresAt"], LIFETIME)
    assert password(first["authorizationToken"]) != password(second["authorizationToken"])


def test_sts_identity_and_assumed_roles(emulator: AwsEmulator) -> None:
    sts = client("sts")
    assert sts.get_caller_identity()["Account"] == MOTO_ACCOUNT_ID

    creds = sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/puller", RoleSessionName="operator")[
        "Credentials"
    ]
    keys = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    identity = client("sts", **keys).get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::111122223333:assumed-role/puller/operator"
    # The ECR rewrite keeps moto's view of the caller's account (the default registry).
    ecr_data = client("ecr", **keys).get_authorization_token()["authorizationData"]
    assert ecr_data[0]["proxyEndpoint"] == "https://111122223333.dkr.ecr.us-east-1.amazonaws.com"

    # Web identity calls are unsigned; they must still be counted as STS.
    web = sts.assume_role_with_web_identity(
        RoleArn="arn:aws:iam::111122223333:role/puller",
        RoleSessionName="irsa",
        WebIdentityToken="a.jwt.token",
    )
    assert web["Credentials"]["AccessKeyId"]
    assert emulator.calls("AssumeRoleWithWebIdentity", service="sts") == 1


def test_calls_are_counted_per_service_and_action(emulator: AwsEmulator) -> None:
    client("ecr").get_authorization_token()
    client("ecr-public").get_authorization_token()
    client("ecr-public").get_authorization_token()
    sts = client("sts")
    threads = [threading.Thread(target=sts.get_caller_identity) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert emulator.call_counts() == {
        ("ecr", "GetAuthorizationToken"): 1,
        ("ecr-public", "GetAuthorizationToken"): 2,
        ("sts", "GetCallerIdentity"): 16,
    }
    assert emulator.calls("GetAuthorizationToken") == 3
    assert emulator.calls(service="ecr-public") == 2
    assert emulator.calls() == 19

    emulator.reset_calls()
    assert emulator.calls() == 0


def test_ecr_faults_for_n_calls(emulator: AwsEmulator) -> None:
    ecr = client("ecr")
    emulator.fail("GetAuthorizationToken", "ThrottlingException", 400, times=2, service="ecr")

    for _ in range(2):
        with pytest.raises(ClientError) as raised:
            ecr.get_authorization_token()
        assert raised.value.response["Error"]["Code"] == "ThrottlingException"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ecr.get_authorization_token()
    client("ecr-public").get_authorization_token()  # another service: not faulted

    assert emulator.calls("GetAuthorizationToken", service="ecr") == 3


def test_faults_until_cleared(emulator: AwsEmulator) -> None:
    sts, ecr_public = client("sts"), client("ecr-public")
    emulator.fail("AssumeRole", "AccessDenied", 403)
    emulator.fail("GetAuthorizationToken")  # default: ServerException / 500

    for _ in range(3):
        with pytest.raises(ClientError) as denied:
            sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/puller", RoleSessionName="op")
        assert denied.value.response["Error"]["Code"] == "AccessDenied"  # parsed from STS XML
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as broken:
        ecr_public.get_authorization_token()
    assert broken.value.response["Error"]["Code"] == "ServerException"  # parsed from JSON
    assert broken.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500

    emulator.clear_faults()
    sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/puller", RoleSessionName="op")
    ecr_public.get_authorization_token()


def test_probabilistic_faults_fail_a_share_of_calls(emulator: AwsEmulator) -> None:
    ecr = client("ecr")
    emulator.fail("GetAuthorizationToken", "ThrottlingException", 400, service="ecr", probability=0.2)
    codes = []
    for _ in range(200):
        try:
            ecr.get_authorization_token()
        except ClientError as error:
            codes.append(error.response["Error"]["Code"])
    failed = len(codes)
    assert set(codes) == {"ThrottlingException"}
    # 200 draws at p=0.2: 40 expected, outside 20..60 with probability < 1e-4.
    assert 20 <= failed <= 60, failed
    assert emulator.faulted_counts() == {("ecr", "GetAuthorizationToken"): failed}
    assert emulator.calls("GetAuthorizationToken") == 200
    with pytest.raises(ValueError, match="probability"):
        emulator.fail("GetAuthorizationToken", probability=0)


def control(emulator: AwsEmulator, method: str, name: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    url = f"{emulator.endpoint_url}/_emulator/{name}"  # always http://127.0.0.1
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        raw = response.read()
    return json.loads(raw) if raw else None


def test_http_control_api(emulator: AwsEmulator) -> None:
    ecr = client("ecr")
    assert control(emulator, "GET", "health") == {"ok": True}

    control(emulator, "POST", "token-lifetime", {"seconds": 7})
    assert control(emulator, "GET", "token-lifetime") == {"seconds": 7}
    assert_expires_in(ecr.get_authorization_token()["authorizationData"][0]["expiresAt"], 7)

    control(
        emulator,
        "POST",
        "faults",
        {"action": "GetAuthorizationToken", "error_code": "ThrottlingException", "status": 400, "times": 1},
    )
    assert control(emulator, "GET", "faults")["faults"][0]["remaining"] == 1
    with pytest.raises(ClientError, match="ThrottlingException"):
        ecr.get_authorization_token()
    ecr.get_authorization_token()

    control(emulator, "POST", "faults", {"action": "GetAuthorizationToken"})
    control(emulator, "DELETE", "faults")
    ecr.get_authorization_token()

    calls = control(emulator, "GET", "calls?action=GetAuthorizationToken")
    assert calls == {
        "total": 4,
        "calls": [{"service": "ecr", "action": "GetAuthorizationToken", "count": 4}],
    }
    control(emulator, "POST", "reset-calls")
    assert control(emulator, "GET", "calls")["total"] == 0

    with pytest.raises(urllib.error.HTTPError) as bad:
        control(emulator, "POST", "faults", {"status": 500})  # no action
    assert bad.value.code == 400


def test_cli_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.aws_emulator", "--port", "0", "--token-lifetime", "30"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        url = f"{endpoint}/_emulator/token-lifetime"  # checked above: http://127.0.0.1
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            assert json.load(response) == {"seconds": 30}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
