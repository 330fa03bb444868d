"""TokenBroker: cache, single flight, per-key separation and failure fan-out, with a fake source."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from ecr_pull_secrets.aws.broker import TokenBroker, TokenKey
from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.model.credential import Credential, RegistryToken
from tests.unit.factories import NOW, later

T = TypeVar("T")
KEY = TokenKey("default", "aws", "us-east-1")
EXPIRES = later(hours=12)
WAIT = 10  # seconds a blocked fake waits for the test before giving up, so nothing can hang


class FakeSource:
    """A TokenSource that counts calls and, with a gate, blocks inside the call until released."""

    def __init__(
        self, name: str = "default", *, gate: threading.Event | None = None, failures: int = 0
    ) -> None:
        self.name = name
        self.gate = gate
        self.failures = failures
        self.entered = threading.Event()
        self.token_calls: Counter[str] = Counter()
        self.identity_calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def authorization_token(self, region: str) -> tuple[Credential, datetime]:
        with self._lock:
            self.token_calls[region] += 1
            number = sum(self.token_calls.values())
        self.entered.set()
        if self.gate is not None and not self.gate.wait(WAIT):
            raise TimeoutError("the test never released the gate")
        if number <= self.failures:
            raise AwsCallFailed("Throttled", f"call {number} throttled")
        return Credential("AWS", f"{self.name}-{region}-{number}"), EXPIRES

    def caller_arn(self, region: str) -> str:
        with self._lock:
            self.identity_calls[region] += 1
        self.entered.set()
        if self.gate is not None and not self.gate.wait(WAIT):
            raise TimeoutError("the test never released the gate")
        return f"arn:aws:iam::123456789012:role/{self.name}"


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def broker_for(*sources: FakeSource, clock: Clock | None = None) -> TokenBroker:
    by_chain = {s.name: s for s in sources}
    return TokenBroker(by_chain.__getitem__, clock or Clock())


def run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(factory())


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
    broker = broker_for(source)

    async def scenario() -> tuple[RegistryToken, RegistryToken]:
        return await broker.token(KEY, NOW), await broker.token(KEY, valid_until)

    first, second = run(scenario)

    assert (second is first) is hit
    assert source.token_calls == {"us-east-1": 1 if hit else 2}
    assert broker.calls == (1 if hit else 2)


def test_token_records_clock_and_source_expiry() -> None:
    source = FakeSource()
    clock = Clock(later(minutes=7))

    token = run(lambda: broker_for(source, clock=clock).token(KEY, NOW))

    assert token == RegistryToken(Credential("AWS", "default-us-east-1-1"), later(minutes=7), EXPIRES)


def test_fresh_bypasses_cache_and_replaces_it() -> None:
    source = FakeSource()
    broker = broker_for(source)

    async def scenario() -> list[RegistryToken]:
        return [
            await broker.token(KEY, NOW),
            await broker.token(KEY, NOW, fresh=True),
            await broker.token(KEY, NOW),
        ]

    first, forced, after = run(scenario)

    assert first.credential.password == "default-us-east-1-1"
    assert forced.credential.password == "default-us-east-1-2"
    assert after is forced
    assert source.token_calls == {"us-east-1": 2}


@pytest.mark.parametrize("fresh", [False, True], ids=["cached", "fresh"])
def test_single_flight_50_concurrent_calls_make_one_source_call(fresh: bool) -> None:
    source = FakeSource(gate=threading.Event())
    broker = broker_for(source)

    results = run(lambda: overlapping(source, [broker.token(KEY, NOW, fresh=fresh) for _ in range(50)]))

    assert source.token_calls == {"us-east-1": 1}
    assert broker.calls == 1
    assert all(r is results[0] for r in results)
    assert isinstance(results[0], RegistryToken)


def test_different_chains_and_regions_are_separate_calls() -> None:
    alpha, beta = FakeSource("alpha"), FakeSource("beta")
    broker = broker_for(alpha, beta)
    keys = [
        TokenKey("alpha", "aws", "us-east-1"),
        TokenKey("alpha", "aws", "eu-west-1"),
        TokenKey("alpha", "aws-cn", "cn-north-1"),
        TokenKey("beta", "aws", "us-east-1"),
    ]

    async def scenario() -> list[RegistryToken]:
        return list(await asyncio.gather(*(broker.token(k, NOW) for k in keys for _ in range(5))))

    results = run(scenario)

    assert alpha.token_calls == {"us-east-1": 1, "eu-west-1": 1, "cn-north-1": 1}
    assert beta.token_calls == {"us-east-1": 1}
    assert broker.calls == 4
    passwords = {r.credential.password.rsplit("-", 1)[0] for r in results}
    assert passwords == {"alpha-us-east-1", "alpha-eu-west-1", "alpha-cn-north-1", "beta-us-east-1"}


def test_failure_reaches_every_joined_waiter_and_next_call_retries() -> None:
    source = FakeSource(gate=threading.Event(), failures=1)
    broker = broker_for(source)

    async def scenario() -> tuple[list[RegistryToken | BaseException], RegistryToken]:
        failed = await overlapping(source, [broker.token(KEY, NOW) for _ in range(50)])
        return failed, await broker.token(KEY, NOW)

    failed, retried = run(scenario)

    assert all(isinstance(r, AwsCallFailed) and r.reason == "Throttled" for r in failed), failed
    assert retried.credential.password == "default-us-east-1-2"
    assert source.token_calls == {"us-east-1": 2}


def test_cancelled_leader_does_not_cancel_joined_waiters() -> None:
    gate = threading.Event()
    source = FakeSource(gate=gate)
    broker = broker_for(source)

    async def scenario() -> RegistryToken | BaseException:
        leader = asyncio.create_task(broker.token(KEY, NOW))
        try:
            assert await asyncio.to_thread(source.entered.wait, WAIT)
            follower = asyncio.create_task(broker.token(KEY, NOW))
            await asyncio.sleep(0)  # the follower joins the leader's flight
            leader.cancel()
        finally:
            gate.set()
        _, result = await asyncio.gather(leader, follower, return_exceptions=True)
        return result

    assert isinstance(run(scenario), RegistryToken)


def test_identity_is_asked_once_per_chain() -> None:
    alpha, beta = FakeSource("alpha", gate=threading.Event()), FakeSource("beta")
    broker = broker_for(alpha, beta)

    async def scenario() -> list[str | BaseException]:
        joined = await overlapping(alpha, [broker.identity("alpha", "us-east-1") for _ in range(20)])
        return [
            *joined,
            await broker.identity("alpha", "eu-west-1"),
            await broker.identity("beta", "us-east-1"),
            await broker.identity("beta", "us-east-1"),
        ]

    arns = run(scenario)

    assert arns == ["arn:aws:iam::123456789012:role/alpha"] * 21 + ["arn:aws:iam::123456789012:role/beta"] * 2
    assert alpha.identity_calls == {"us-east-1": 1}
    assert beta.identity_calls == {"us-east-1": 1}
    assert broker.calls == 2


def remembered(password: str, expires_at: datetime) -> RegistryToken:
    return RegistryToken(Credential("AWS", password), NOW - timedelta(hours=1), expires_at)


@pytest.mark.parametrize(
    ("seeds", "expected"),
    [
        pytest.param([("a", later(hours=10))], "a", id="seed"),
        pytest.param([("a", later(hours=10)), ("b", later(hours=11))], "b", id="newer-replaces"),
        pytest.param([("a", later(hours=11)), ("b", later(hours=10))], "a", id="older-ignored"),
        pytest.param([("a", later(hours=11)), ("b", later(hours=11))], "a", id="equal-kept"),
    ],
)
def test_remember_seeds_cache(seeds: list[tuple[str, datetime]], expected: str) -> None:
    source = FakeSource()
    broker = broker_for(source)
    for password, expires_at in seeds:
        broker.remember(KEY, remembered(password, expires_at))

    token = run(lambda: broker.token(KEY, later(hours=9)))

    assert token.credential.password == expected
    assert source.token_calls == Counter()
    assert broker.calls == 0


def test_remembered_token_too_short_is_refetched() -> None:
    source = FakeSource()
    broker = broker_for(source)
    broker.remember(KEY, remembered("old", later(hours=2)))

    token = run(lambda: broker.token(KEY, later(hours=4)))

    assert token.credential.password == "default-us-east-1-1"
    assert source.token_calls == {"us-east-1": 1}


def test_remember_is_per_key() -> None:
    source = FakeSource()
    broker = broker_for(source)
    broker.remember(TokenKey("default", "aws", "eu-west-1"), remembered("eu", later(hours=10)))

    token = run(lambda: broker.token(KEY, NOW))

    assert token.credential.password == "default-us-east-1-1"
