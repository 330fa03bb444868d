"""aws/sessions and aws/tokens at the HTTP boundary: which endpoint a token request goes to (FIPS or
not), how its requests and retries count against the rate limit, and sessions a released chain
leaves behind. botocore's `before-send` event answers instead of the network: it sees the request
exactly as it would leave, URL included."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.loaders
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders

from ecr_pull_secrets.aws.ratelimit import RateLimiter, prepaid
from ecr_pull_secrets.aws.sessions import ChainSession, SessionResolver
from ecr_pull_secrets.aws.tokens import BotoTokenSource
from ecr_pull_secrets.model import rules
from ecr_pull_secrets.model.identity import OPERATOR_CHAIN, Chain, RoleHop, StaticKeys, WebIdentity
from tests.unit.test_ratelimit import FakeTime

OWNER = ("team-a", "pull")
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


class Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class Answering:
    """A before-send handler: records each request's URL and answers it, first with `statuses`
    (each an error for botocore to retry), then with a token."""

    def __init__(self, *statuses: int) -> None:
        self.urls: list[str] = []
        self._statuses = list(statuses)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.urls.append(request.url)
        body: dict[str, Any]
        if self._statuses:
            status = self._statuses.pop(0)
            body = {"__type": "ServerException", "message": "try again"}
        else:
            status = 200
            token = base64.b64encode(b"AWS:not-a-real-password").decode()
            body = {"authorizationData": [{"authorizationToken": token, "expiresAt": EXPIRES.timestamp()}]}
        return AWSResponse(request.url, status, HTTPHeaders(), Body(json.dumps(body).encode()))


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real AWS endpoint resolution: no endpoint override, no FIPS switch from the environment."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_USE_FIPS_ENDPOINT", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


def no_tokens(namespace: str, name: str, audience: str) -> str:
    raise AssertionError("no ServiceAccount token is needed here")


def resolver(limiter: RateLimiter | None = None) -> SessionResolver:
    return SessionResolver(no_tokens, limiter or RateLimiter(1000.0), lambda: datetime.now(UTC))


def answered(
    resolver_: SessionResolver, region: str, fips: bool, answer: Answering, partition: str = "aws"
) -> ChainSession:
    session = resolver_.resolve(OPERATOR_CHAIN, partition, OWNER)
    session.client("ecr", region, fips=fips).meta.events.register("before-send", answer)
    return session


@pytest.mark.parametrize(
    ("partition", "region", "fips", "host"),
    [
        pytest.param("aws", "us-east-1", False, "api.ecr.us-east-1.amazonaws.com", id="standard"),
        pytest.param("aws", "us-east-1", True, "api.ecr-fips.us-east-1.amazonaws.com", id="fips"),
        pytest.param(
            "aws-us-gov",
            "us-gov-west-1",
            True,
            "api.ecr-fips.us-gov-west-1.amazonaws.com",
            id="govcloud",
        ),
        pytest.param(
            "aws-eusc", "eusc-de-east-1", False, "api.ecr.eusc-de-east-1.amazonaws.eu", id="eu-sovereign"
        ),
        pytest.param("aws-iso", "us-iso-east-1", False, "api.ecr.us-iso-east-1.c2s.ic.gov", id="iso"),
        pytest.param(
            "aws-iso-b", "us-isob-east-1", False, "api.ecr.us-isob-east-1.sc2s.sgov.gov", id="iso-b"
        ),
        pytest.param(
            "aws-iso-e", "eu-isoe-west-1", False, "api.ecr.eu-isoe-west-1.cloud.adc-e.uk", id="iso-e"
        ),
        pytest.param(
            "aws-iso-f", "us-isof-south-1", False, "api.ecr.us-isof-south-1.csp.hci.ic.gov", id="iso-f"
        ),
    ],
)
def test_the_token_request_goes_to_the_fips_endpoint_only_for_fips_hosts(
    partition: str, region: str, fips: bool, host: str
) -> None:
    resolver_ = resolver()
    answer = Answering()
    answered(resolver_, region, fips, answer, partition)

    credential, expires_at = BotoTokenSource(resolver_).authorization_token(
        OPERATOR_CHAIN, partition, region, False, OWNER, fips=fips
    )

    assert [url.split("/")[2] for url in answer.urls] == [host]
    assert (credential.username, credential.password) == ("AWS", "not-a-real-password")
    assert expires_at == EXPIRES


CALLER = (
    b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    b"<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/u</Arn><UserId>U</UserId>"
    b"<Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"
)


@pytest.mark.parametrize(
    ("partition", "host"),
    [
        pytest.param("aws", "sts.us-east-1.amazonaws.com", id="aws"),
        pytest.param("aws-cn", "sts.cn-north-1.amazonaws.com.cn", id="china"),
        pytest.param("aws-us-gov", "sts.us-gov-west-1.amazonaws.com", id="govcloud"),
        pytest.param("aws-eusc", "sts.eusc-de-east-1.amazonaws.eu", id="eu-sovereign"),
        pytest.param("aws-iso", "sts.us-iso-east-1.c2s.ic.gov", id="iso"),
        pytest.param("aws-iso-b", "sts.us-isob-east-1.sc2s.sgov.gov", id="iso-b"),
        pytest.param("aws-iso-e", "sts.eu-isoe-west-1.cloud.adc-e.uk", id="iso-e"),
        pytest.param("aws-iso-f", "sts.us-isof-south-1.csp.hci.ic.gov", id="iso-f"),
    ],
)
def test_sts_calls_stay_in_the_partition(partition: str, host: str) -> None:
    urls: list[str] = []

    def answer(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        urls.append(request.url)
        return AWSResponse(request.url, 200, HTTPHeaders(), Body(CALLER))

    session = resolver().resolve(OPERATOR_CHAIN, partition, OWNER)
    session.sts().meta.events.register("before-send", answer)

    assert session.sts().get_caller_identity()["Account"] == "123456789012"
    assert [url.split("/")[2] for url in urls] == [host]


def test_every_partition_has_an_sts_region_botocore_lists_in_it() -> None:
    data = botocore.loaders.create_loader().load_data("partitions")
    regions = {p["id"]: p["regions"] for p in data["partitions"]}

    for partition in rules.PARTITIONS:
        region = ChainSession.sts_region(partition)
        assert region in regions[partition], (partition, region)


def test_fips_and_standard_clients_are_kept_apart() -> None:
    session = resolver().resolve(OPERATOR_CHAIN, "aws", OWNER)

    standard, fips = session.client("ecr", "us-east-1"), session.client("ecr", "us-east-1", fips=True)

    assert standard is not fips
    assert session.client("ecr", "us-east-1", fips=True) is fips


def test_a_broker_call_spends_its_prepaid_slot_and_books_its_retries_without_waiting() -> None:
    fake = FakeTime(0.0)
    pace = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
    resolver_ = resolver(pace)
    answer = Answering(500)  # botocore retries once
    answered(resolver_, "us-east-1", False, answer)
    pace.book()  # the slot the broker waited for in the event loop

    with prepaid(1):
        BotoTokenSource(resolver_).authorization_token(OPERATOR_CHAIN, "aws", "us-east-1", False, OWNER)

    assert len(answer.urls) == 2
    assert fake.sleeps == [], "no thread waited for the limit"
    assert pace.delay() == pytest.approx(0.2), "the retry was booked: the next call waits for it"


def test_forget_drops_the_sessions_of_a_chain_and_no_other() -> None:
    resolver_ = resolver()
    keys = Chain(StaticKeys("team-a", "aws-keys", "uid-1/7", "AKIDOTHER", "also-not-a-secret"))
    operator = resolver_.resolve(OPERATOR_CHAIN, "aws", OWNER)
    static = resolver_.resolve(keys, "aws", OWNER)
    assert resolver_.resolve(OPERATOR_CHAIN, "aws", OWNER) is operator, "cached"

    resolver_.forget(keys.key)

    assert resolver_.resolve(OPERATOR_CHAIN, "aws", OWNER) is operator
    assert resolver_.resolve(keys, "aws", OWNER) is not static


def test_requests_to_resolve_counts_the_sts_requests_until_a_session_is_cached() -> None:
    resolver_ = resolver()
    source = BotoTokenSource(resolver_)
    keys = Chain(StaticKeys("team-a", "aws-keys", "uid-1/7", "AKIDOTHER", "also-not-a-secret"))
    web = Chain(WebIdentity("team-a", "puller", "sts.amazonaws.com", "arn:aws:iam::123456789012:role/web"))
    hops = tuple(RoleHop(f"arn:aws:iam::123456789012:role/hop-{i}") for i in range(3))

    assert source.session_requests(OPERATOR_CHAIN, "aws") == 0, "botocore's default chain refreshes itself"
    assert source.session_requests(Chain(keys.start, hops), "aws") == 3, "one AssumeRole a hop"
    assert source.session_requests(Chain(web.start, hops), "aws") == 4, "and AssumeRoleWithWebIdentity"

    source.resolve_session(keys, "aws", OWNER)

    assert source.session_requests(keys, "aws") is None, "resolved: the calls make only their own"
    assert source.session_requests(keys, "aws-cn") == 0, "per partition"
    resolver_.forget(keys.key)
    assert source.session_requests(keys, "aws") == 0


class CountingLoader(botocore.loaders.Loader):
    """botocore's loader (the injected data source), counting the service models read from disk."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[str] = []

    def load_data_with_path(self, name: str) -> Any:
        self.read.append(name)
        return super().load_data_with_path(name)


def test_warm_loads_the_sts_and_ecr_models_and_the_first_chain_reads_them_no_more() -> None:
    loader = CountingLoader()
    warm = SessionResolver(no_tokens, RateLimiter(1000.0), lambda: datetime.now(UTC), loader=loader)
    warm.warm()
    read = list(loader.read)
    assert any(name.startswith("sts/") for name in read)
    assert any(name.startswith("ecr/") for name in read)
    session = warm.resolve(OPERATOR_CHAIN, "aws", OWNER)
    session.client("ecr", "us-east-1")
    session.sts()
    models = [name for name in loader.read[len(read) :] if "/" in name]  # per session: endpoints, partitions
    assert models == [], "the first resource's clients found the service models loaded"
