"""TokenBroker: cache, single flight, per-key separation and failure fan-out, with a fake source."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import pytest

from ecr_pull_secrets.aws.broker import TokenBroker, TokenKey
from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.model.credential import Credential, RegistryToken
from ecr_pull_secrets.model.identity import (
    OPERATOR_CHAIN,
    Chain,
    OperatorIdentity,
    RoleHop,
    WebIdentity,
    session_tags,
)
from tests.unit.factories import NOW, later

T = TypeVar("T")
ROLE_CHAIN = Chain(
    OperatorIdentity(), (RoleHop("arn:aws:iam::123456789012:role/ecr-pull"),), session_tags("team-a", "pull")
)
WEB_CHAIN = Chain(WebIdentity("team-b", "puller", "sts.amazonaws.com", "arn:aws:iam::123456789012:role/b"))
KEY = TokenKey(OPERATOR_CHAIN.key, "aws", "us-east-1")
OWNER = ("team-a", "pull")
EXPIRES = later(hours=12)
WAIT = 10  # seconds a blocked fake waits for the test before giving up, so nothing can hang


class TokenCall(NamedTuple):
    chain: Chain
    partition: str
    region: str
    public: bool
    owner: tuple[str, str]


class IdentityCall(NamedTuple):
    chain: Chain
    partition: str
    owner: tuple[str, str]


class FakeSource:
    """A TokenSource that records calls and, with a gate, blocks inside a call until released.

    Its passwords name the call: `<chain key>/<partition>/<region>/<public|private>/<call number>`.
    """

    def __init__(
        self, *, gate: threading.Event | None = None, failures: int = 0, identity_failures: int = 0
    ) -> None:
        self.gate = gate
        self.failures = failures
        self.identity_failures = identity_failures
        self.entered = threading.Event()
        self.token_calls: list[TokenCall] = []
        self.identity_calls: list[IdentityCall] = []
        self._lock = threading.Lock()

    def authorization_token(
        self, chain: Chain, partition: str, region: str, public: bool, owner: tuple[str, str]
    ) -> tuple[Credential, datetime]:
        with self._lock:
            self.token_calls.append(TokenCall(chain, partition, region, public, owner))
            number = len(self.token_calls)
        self._block()
        if number <= self.failures:
            raise AwsCallFailed("Throttled", f"call {number} throttled")
        kind = "public" if public else "private"
        return Credential("AWS", f"{chain.key}/{partition}/{region}/{kind}/{number}"), EXPIRES

    def caller_arn(self, chain: Chain, partition: str, owner: tuple[str, str]) -> str:
        with self._lock:
            self.identity_calls.append(IdentityCall(chain, partition, owner))
            number = len(self.identity_calls)
        self._block()
        if number <= self.identity_failures:
            raise AwsCallFailed("AccessDenied", f"identity call {number} denied")
        return f"arn:{partition}:sts::123456789012:assumed-role/{chain.key}/{number}"

    def _block(self) -> None:
        self.entered.set()
        if self.gate is not None and not self.gate.wait(WAIT):
            raise TimeoutError("the test never released the gate")


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(factory())


def password(chain: Chain, key: TokenKey, number: int) -> str:
    kind = "public" if key.public else "private"
    return f"{chain.key}/{key.partition}/{key.region}/{kind}/{number}"


async def overlapping(source: FakeSource, calls: list[Coroutine[Any, Any, T]]) -> list[T | BaseException]:
    """Starts every call, holds the source until all have started, then lets it answer."""
    assert source.gate is not None
    tasks = [asyncio.create_task(c) for c in calls]
    try:
        assert await asyncio.to_thread(source.entered.wait, WAIT)
        await asyncio.sleep(0)  # one more turn so that every task has reached its await
    finally:
        source.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


# -- cache -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("valid_until", "hit"),
    [
        pytest.param(NOW, True, id="long-before-expiry"),
        pytest.param(EXPIRES - timedelta(seconds=1), True, id="1s-before-expiry"),
        pytest.param(EXPIRES, False, id="at-expiry"),
        pytest.param(EXPIRES + timedelta(hours=1), False, id="after-expiry"),
    ],
)
def test_cache_hit_only_when_cached_token_outlives_valid_until(valid_until: datetime, hit: bool) -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock())

    async def scenario() -> tuple[RegistryToken, RegistryToken]:
        first = await broker.token(OPERATOR_CHAIN, KEY, NOW)
        return first, await broker.token(OPERATOR_CHAIN, KEY, valid_until)

    first, second = run(scenario)

    assert (second is first) is hit
    assert second.credential.password == password(OPERATOR_CHAIN, KEY, 1 if hit else 2)
    assert len(source.token_calls) == (1 if hit else 2)
    assert broker.calls == (1 if hit else 2)


def test_token_records_clock_and_source_expiry_and_passes_the_request_through() -> None:
    source = FakeSource()
    clock = Clock(later(minutes=7))
    key = TokenKey(ROLE_CHAIN.key, "aws", "eu-west-1")

    token = run(lambda: TokenBroker(source, clock).token(ROLE_CHAIN, key, NOW, owner=OWNER))

    assert token == RegistryToken(Credential("AWS", password(ROLE_CHAIN, key, 1)), later(minutes=7), EXPIRES)
    assert source.token_calls == [TokenCall(ROLE_CHAIN, "aws", "eu-west-1", False, OWNER)]


def test_owner_defaults_to_nobody() -> None:
    source = FakeSource()

    run(lambda: TokenBroker(source, Clock()).token(OPERATOR_CHAIN, KEY, NOW))

    assert source.token_calls == [TokenCall(OPERATOR_CHAIN, "aws", "us-east-1", False, ("", ""))]


def test_fresh_bypasses_cache_and_replaces_it() -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock())

    async def scenario() -> list[RegistryToken]:
        return [
            await broker.token(OPERATOR_CHAIN, KEY, NOW),
            await broker.token(OPERATOR_CHAIN, KEY, NOW, fresh=True),
            await broker.token(OPERATOR_CHAIN, KEY, NOW),
        ]

    first, forced, after = run(scenario)

    assert first.credential.password == password(OPERATOR_CHAIN, KEY, 1)
    assert forced.credential.password == password(OPERATOR_CHAIN, KEY, 2)
    assert after is forced
    assert len(source.token_calls) == 2


@pytest.mark.parametrize(
    ("valid_until", "expected"),
    [
        pytest.param(NOW, True, id="valid"),
        pytest.param(EXPIRES - timedelta(seconds=1), True, id="1s-before-expiry"),
        pytest.param(EXPIRES, False, id="at-expiry"),
        pytest.param(EXPIRES + timedelta(seconds=1), False, id="after-expiry"),
    ],
)
def test_cached_answers_from_the_cache_only(valid_until: datetime, expected: bool) -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock())
    other = TokenKey(OPERATOR_CHAIN.key, "aws", "eu-west-1")

    assert broker.cached(KEY, NOW) is None, "nothing fetched yet"
    token = run(lambda: broker.token(OPERATOR_CHAIN, KEY, NOW))

    assert (broker.cached(KEY, valid_until) is token) is expected
    assert broker.cached(other, NOW) is None
    assert len(source.token_calls) == 1, "cached() never calls AWS"
    assert broker.calls == 1


# -- single flight and separation --------------------------------------------------------------


@pytest.mark.parametrize("fresh", [False, True], ids=["cached", "fresh"])
def test_single_flight_50_concurrent_calls_make_one_source_call(fresh: bool) -> None:
    source = FakeSource(gate=threading.Event())
    broker = TokenBroker(source, Clock())

    results = run(
        lambda: overlapping(source, [broker.token(OPERATOR_CHAIN, KEY, NOW, fresh=fresh) for _ in range(50)])
    )

    assert len(source.token_calls) == 1
    assert broker.calls == 1
    assert all(r is results[0] for r in results)
    assert isinstance(results[0], RegistryToken)
    assert results[0].credential.password == password(OPERATOR_CHAIN, KEY, 1)


BASE = (OPERATOR_CHAIN, KEY)
DIFFERENT: dict[str, tuple[Chain, TokenKey]] = {
    "chain-role": (ROLE_CHAIN, TokenKey(ROLE_CHAIN.key, "aws", "us-east-1")),
    "chain-web": (WEB_CHAIN, TokenKey(WEB_CHAIN.key, "aws", "us-east-1")),
    "partition": (OPERATOR_CHAIN, TokenKey(OPERATOR_CHAIN.key, "aws-us-gov", "us-east-1")),
    "region": (OPERATOR_CHAIN, TokenKey(OPERATOR_CHAIN.key, "aws", "eu-west-1")),
    "public": (OPERATOR_CHAIN, TokenKey(OPERATOR_CHAIN.key, "aws", "us-east-1", public=True)),
}


@pytest.mark.parametrize("different", DIFFERENT)
def test_keys_that_differ_in_one_field_do_not_share(different: str) -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock())
    chain, key = DIFFERENT[different]

    async def scenario() -> list[RegistryToken]:
        return [
            await broker.token(*BASE, NOW),
            await broker.token(chain, key, NOW),
            await broker.token(*BASE, NOW),
            await broker.token(chain, key, NOW),
        ]

    base, other, base_again, other_again = run(scenario)

    assert base.credential.password == password(*BASE, 1)
    assert other.credential.password == password(chain, key, 2)
    assert (base_again, other_again) == (base, other), "each key kept its own token"
    assert source.token_calls == [
        TokenCall(OPERATOR_CHAIN, "aws", "us-east-1", False, ("", "")),
        TokenCall(chain, key.partition, key.region, key.public, ("", "")),
    ]


def test_concurrent_calls_for_different_keys_make_one_call_each() -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock())
    pairs = [BASE, *DIFFERENT.values()]

    async def scenario() -> list[RegistryToken]:
        calls = [broker.token(chain, key, NOW) for chain, key in pairs for _ in range(5)]
        return list(await asyncio.gather(*calls))

    results = run(scenario)

    assert sorted((c.chain.key, c.partition, c.region, c.public) for c in source.token_calls) == sorted(
        (k.chain, k.partition, k.region, k.public) for _, k in pairs
    )
    assert broker.calls == len(pairs)
    for index, (_, key) in enumerate(pairs):
        group = results[index * 5 : index * 5 + 5]
        assert all(t is group[0] for t in group)
        assert group[0].credential.password.startswith(f"{key.chain}/{key.partition}/{key.region}/")


# -- failures and cancellation -----------------------------------------------------------------


def test_failure_reaches_every_joined_waiter_and_next_call_retries() -> None:
    source = FakeSource(gate=threading.Event(), failures=1)
    broker = TokenBroker(source, Clock())

    async def scenario() -> tuple[list[RegistryToken | BaseException], RegistryToken]:
        failed = await overlapping(source, [broker.token(OPERATOR_CHAIN, KEY, NOW) for _ in range(50)])
        return failed, await broker.token(OPERATOR_CHAIN, KEY, NOW)

    failed, retried = run(scenario)

    assert len(failed) == 50
    assert all(isinstance(r, AwsCallFailed) and r.reason == "Throttled" for r in failed), failed
    assert retried.credential.password == password(OPERATOR_CHAIN, KEY, 2)
    assert len(source.token_calls) == 2
    assert broker.cached(KEY, NOW) is retried


def test_failure_leaves_a_cached_token_in_place() -> None:
    source = FakeSource(failures=0)
    broker = TokenBroker(source, Clock())

    async def scenario() -> tuple[RegistryToken, BaseException | None]:
        first = await broker.token(OPERATOR_CHAIN, KEY, NOW)
        source.failures = 2  # the forced refresh (call 2) fails
        try:
            await broker.token(OPERATOR_CHAIN, KEY, NOW, fresh=True)
        except AwsCallFailed as error:
            return first, error
        return first, None

    first, error = run(scenario)

    assert isinstance(error, AwsCallFailed)
    assert broker.cached(KEY, NOW) is first


def test_cancelled_leader_does_not_cancel_joined_waiters() -> None:
    gate = threading.Event()
    source = FakeSource(gate=gate)
    broker = TokenBroker(source, Clock())

    async def scenario() -> tuple[BaseException | RegistryToken, BaseException | RegistryToken]:
        leader = asyncio.create_task(broker.token(OPERATOR_CHAIN, KEY, NOW))
        try:
            assert await asyncio.to_thread(source.entered.wait, WAIT)
            follower = asyncio.create_task(broker.token(OPERATOR_CHAIN, KEY, NOW))
            await asyncio.sleep(0)  # the follower joins the leader's flight
            leader.cancel()
        finally:
            gate.set()
        led, followed = await asyncio.gather(leader, follower, return_exceptions=True)
        return led, followed

    led, followed = run(scenario)

    assert isinstance(led, asyncio.CancelledError)
    assert isinstance(followed, RegistryToken)
    assert followed.credential.password == password(OPERATOR_CHAIN, KEY, 1)
    assert len(source.token_calls) == 1


def test_cancelled_sole_caller_still_fills_the_cache() -> None:
    gate = threading.Event()
    source = FakeSource(gate=gate)
    broker = TokenBroker(source, Clock())

    async def scenario() -> RegistryToken:
        leader = asyncio.create_task(broker.token(OPERATOR_CHAIN, KEY, NOW))
        try:
            assert await asyncio.to_thread(source.entered.wait, WAIT)
            leader.cancel()
            await asyncio.gather(leader, return_exceptions=True)
        finally:
            gate.set()
        return await broker.token(OPERATOR_CHAIN, KEY, NOW)  # joins the flight, or hits the cache

    token = run(scenario)

    assert token.credential.password == password(OPERATOR_CHAIN, KEY, 1)
    assert len(source.token_calls) == 1
    assert broker.cached(KEY, NOW) is token


# -- identity ----------------------------------------------------------------------------------


def test_identity_is_asked_once_per_chain_and_partition() -> None:
    source = FakeSource(gate=threading.Event())
    broker = TokenBroker(source, Clock())

    async def scenario() -> list[str | BaseException]:
        joined = await overlapping(source, [broker.identity(OPERATOR_CHAIN, "aws", OWNER) for _ in range(20)])
        return [
            *joined,
            await broker.identity(OPERATOR_CHAIN, "aws"),
            await broker.identity(OPERATOR_CHAIN, "aws-cn"),
            await broker.identity(ROLE_CHAIN, "aws"),
            await broker.identity(ROLE_CHAIN, "aws"),
            await broker.identity(OPERATOR_CHAIN, "aws-cn"),
        ]

    arns = run(scenario)

    operator_aws = f"arn:aws:sts::123456789012:assumed-role/{OPERATOR_CHAIN.key}/1"
    operator_cn = f"arn:aws-cn:sts::123456789012:assumed-role/{OPERATOR_CHAIN.key}/2"
    role_aws = f"arn:aws:sts::123456789012:assumed-role/{ROLE_CHAIN.key}/3"
    assert arns == [operator_aws] * 21 + [operator_cn, role_aws, role_aws, operator_cn]
    assert source.identity_calls == [
        IdentityCall(OPERATOR_CHAIN, "aws", OWNER),
        IdentityCall(OPERATOR_CHAIN, "aws-cn", ("", "")),
        IdentityCall(ROLE_CHAIN, "aws", ("", "")),
    ]
    assert broker.calls == 3
    assert source.token_calls == []


def test_identity_failure_reaches_joined_waiters_and_is_not_remembered() -> None:
    source = FakeSource(gate=threading.Event(), identity_failures=1)
    broker = TokenBroker(source, Clock())

    async def scenario() -> tuple[list[str | BaseException], str, str]:
        failed = await overlapping(source, [broker.identity(WEB_CHAIN, "aws") for _ in range(5)])
        return failed, await broker.identity(WEB_CHAIN, "aws"), await broker.identity(WEB_CHAIN, "aws")

    failed, retried, remembered = run(scenario)

    assert all(isinstance(r, AwsCallFailed) and r.reason == "AccessDenied" for r in failed), failed
    assert retried == remembered == f"arn:aws:sts::123456789012:assumed-role/{WEB_CHAIN.key}/2"
    assert len(source.identity_calls) == 2


def test_identity_and_token_flights_do_not_collide() -> None:
    """Both kinds of call go through one in-flight table; their keys must never meet."""
    source = FakeSource(gate=threading.Event())
    broker = TokenBroker(source, Clock())

    async def scenario() -> list[Any]:
        return await overlapping(
            source, [broker.identity(OPERATOR_CHAIN, "aws"), broker.token(OPERATOR_CHAIN, KEY, NOW)]
        )

    arn, token = run(scenario)

    assert arn == f"arn:aws:sts::123456789012:assumed-role/{OPERATOR_CHAIN.key}/1"
    assert isinstance(token, RegistryToken)
    assert (len(source.identity_calls), len(source.token_calls)) == (1, 1)
