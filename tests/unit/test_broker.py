"""TokenBroker: cache, single flight, per-key separation, failure fan-out, the per-namespace chain
quota, cache clean-up and the fair order of calls at the rate limit, with a fake source."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import pytest

from ecr_pull_secrets.aws.broker import Accept, TokenBroker, TokenKey
from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.aws.ratelimit import AsyncLimiter, RateLimiter
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
    fips: bool = False


class IdentityCall(NamedTuple):
    chain: Chain
    partition: str
    owner: tuple[str, str]


class SessionCall(NamedTuple):
    chain: Chain
    partition: str
    owner: tuple[str, str]


class FakeSource:
    """A TokenSource that records calls and, with a gate, blocks inside a call until released.

    Its passwords name the call: `<chain key>/<partition>/<region>/<public|private>/<call number>`.
    Sessions are resolved as the real source does: by the broker ahead of the calls, or else inside
    a call (under the chain's lock), with `session_gate` to hold a resolution until released.
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
        self.session_calls: list[SessionCall] = []
        self.session_gate: threading.Event | None = None
        self.resolving = threading.Event()
        self._resolved: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._session_lock = threading.Lock()

    def authorization_token(
        self,
        chain: Chain,
        partition: str,
        region: str,
        public: bool,
        owner: tuple[str, str],
        *,
        fips: bool = False,
    ) -> tuple[Credential, datetime]:
        self.resolve_session(chain, partition, owner)
        with self._lock:
            self.token_calls.append(TokenCall(chain, partition, region, public, owner, fips))
            number = len(self.token_calls)
        self._block()
        if number <= self.failures:
            raise AwsCallFailed("Throttled", f"call {number} throttled")
        kind = "public" if public else "fips" if fips else "private"
        return Credential("AWS", f"{chain.key}/{partition}/{region}/{kind}/{number}"), EXPIRES

    def caller_arn(self, chain: Chain, partition: str, owner: tuple[str, str]) -> str:
        self.resolve_session(chain, partition, owner)
        with self._lock:
            self.identity_calls.append(IdentityCall(chain, partition, owner))
            number = len(self.identity_calls)
        self._block()
        if number <= self.identity_failures:
            raise AwsCallFailed("AccessDenied", f"identity call {number} denied")
        return f"arn:{partition}:sts::123456789012:assumed-role/{chain.key}/{number}"

    def session_requests(self, chain: Chain, partition: str) -> int | None:
        if (chain.key, partition) in self._resolved:
            return None
        return len(chain.hops) + isinstance(chain.start, WebIdentity)

    def resolve_session(self, chain: Chain, partition: str, owner: tuple[str, str]) -> None:
        with self._session_lock:
            if (chain.key, partition) in self._resolved:
                return
            self.session_calls.append(SessionCall(chain, partition, owner))
            self.resolving.set()
            if self.session_gate is not None and not self.session_gate.wait(WAIT):
                raise TimeoutError("the test never released the session gate")
            self._resolved.add((chain.key, partition))

    def forget(self, chain_key: str) -> None:
        with self._session_lock:
            self._resolved = {k for k in self._resolved if k[0] != chain_key}

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


def outlives(moment: datetime) -> Accept:
    return lambda token: token.expires_at > moment


ANY = outlives(NOW)


def password(chain: Chain, key: TokenKey, number: int) -> str:
    kind = "public" if key.public else "fips" if key.fips else "private"
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
        first = await broker.token(OPERATOR_CHAIN, KEY, ANY)
        return first, await broker.token(OPERATOR_CHAIN, KEY, outlives(valid_until))

    first, second = run(scenario)

    assert (second is first) is hit
    assert second.credential.password == password(OPERATOR_CHAIN, KEY, 1 if hit else 2)
    assert len(source.token_calls) == (1 if hit else 2)
    assert broker.calls == (1 if hit else 2)


def test_token_records_clock_and_source_expiry_and_passes_the_request_through() -> None:
    source = FakeSource()
    clock = Clock(later(minutes=7))
    key = TokenKey(ROLE_CHAIN.key, "aws", "eu-west-1")

    token = run(lambda: TokenBroker(source, clock).token(ROLE_CHAIN, key, ANY, owner=OWNER))

    assert token == RegistryToken(Credential("AWS", password(ROLE_CHAIN, key, 1)), later(minutes=7), EXPIRES)
    assert source.token_calls == [TokenCall(ROLE_CHAIN, "aws", "eu-west-1", False, OWNER)]


def test_owner_defaults_to_nobody() -> None:
    source = FakeSource()

    run(lambda: TokenBroker(source, Clock()).token(OPERATOR_CHAIN, KEY, ANY))

    assert source.token_calls == [TokenCall(OPERATOR_CHAIN, "aws", "us-east-1", False, ("", ""))]


def test_fresh_bypasses_cache_and_replaces_it() -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock())

    async def scenario() -> list[RegistryToken]:
        return [
            await broker.token(OPERATOR_CHAIN, KEY, ANY),
            await broker.token(OPERATOR_CHAIN, KEY, ANY, fresh=True),
            await broker.token(OPERATOR_CHAIN, KEY, ANY),
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

    assert broker.cached(KEY, ANY) is None, "nothing fetched yet"
    token = run(lambda: broker.token(OPERATOR_CHAIN, KEY, ANY))

    assert (broker.cached(KEY, outlives(valid_until)) is token) is expected
    assert broker.cached(other, ANY) is None
    assert len(source.token_calls) == 1, "cached() never calls AWS"
    assert broker.calls == 1


# -- single flight and separation --------------------------------------------------------------


@pytest.mark.parametrize("fresh", [False, True], ids=["cached", "fresh"])
def test_single_flight_50_concurrent_calls_make_one_source_call(fresh: bool) -> None:
    source = FakeSource(gate=threading.Event())
    broker = TokenBroker(source, Clock())

    results = run(
        lambda: overlapping(source, [broker.token(OPERATOR_CHAIN, KEY, ANY, fresh=fresh) for _ in range(50)])
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
    "fips": (OPERATOR_CHAIN, TokenKey(OPERATOR_CHAIN.key, "aws", "us-east-1", fips=True)),
}


@pytest.mark.parametrize("different", DIFFERENT)
def test_keys_that_differ_in_one_field_do_not_share(different: str) -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock())
    chain, key = DIFFERENT[different]

    mine, theirs = ("team-a", "base"), ("team-a", "other")  # one chain per resource

    async def scenario() -> list[RegistryToken]:
        return [
            await broker.token(*BASE, ANY, owner=mine),
            await broker.token(chain, key, ANY, owner=theirs),
            await broker.token(*BASE, ANY, owner=mine),
            await broker.token(chain, key, ANY, owner=theirs),
        ]

    base, other, base_again, other_again = run(scenario)

    assert base.credential.password == password(*BASE, 1)
    assert other.credential.password == password(chain, key, 2)
    assert (base_again, other_again) == (base, other), "each key kept its own token"
    assert source.token_calls == [
        TokenCall(OPERATOR_CHAIN, "aws", "us-east-1", False, mine),
        TokenCall(chain, key.partition, key.region, key.public, theirs, key.fips),
    ]


def test_concurrent_calls_for_different_keys_make_one_call_each() -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock())
    pairs = [BASE, *DIFFERENT.values()]

    async def scenario() -> list[RegistryToken]:
        calls = [
            broker.token(chain, key, ANY, owner=("team-a", f"r{index}"))
            for index, (chain, key) in enumerate(pairs)
            for _ in range(5)
        ]
        return list(await asyncio.gather(*calls))

    results = run(scenario)

    assert sorted(
        (c.chain.key, c.partition, c.region, c.public, c.fips) for c in source.token_calls
    ) == sorted((k.chain, k.partition, k.region, k.public, k.fips) for _, k in pairs)
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
        failed = await overlapping(source, [broker.token(OPERATOR_CHAIN, KEY, ANY) for _ in range(50)])
        return failed, await broker.token(OPERATOR_CHAIN, KEY, ANY)

    failed, retried = run(scenario)

    assert len(failed) == 50
    assert all(isinstance(r, AwsCallFailed) and r.reason == "Throttled" for r in failed), failed
    assert retried.credential.password == password(OPERATOR_CHAIN, KEY, 2)
    assert len(source.token_calls) == 2
    assert broker.cached(KEY, ANY) is retried


def test_failure_leaves_a_cached_token_in_place() -> None:
    source = FakeSource(failures=0)
    broker = TokenBroker(source, Clock())

    async def scenario() -> tuple[RegistryToken, BaseException | None]:
        first = await broker.token(OPERATOR_CHAIN, KEY, ANY)
        source.failures = 2  # the forced refresh (call 2) fails
        try:
            await broker.token(OPERATOR_CHAIN, KEY, ANY, fresh=True)
        except AwsCallFailed as error:
            return first, error
        return first, None

    first, error = run(scenario)

    assert isinstance(error, AwsCallFailed)
    assert broker.cached(KEY, ANY) is first


def test_cancelled_leader_does_not_cancel_joined_waiters() -> None:
    gate = threading.Event()
    source = FakeSource(gate=gate)
    broker = TokenBroker(source, Clock())

    async def scenario() -> tuple[BaseException | RegistryToken, BaseException | RegistryToken]:
        leader = asyncio.create_task(broker.token(OPERATOR_CHAIN, KEY, ANY))
        try:
            assert await asyncio.to_thread(source.entered.wait, WAIT)
            follower = asyncio.create_task(broker.token(OPERATOR_CHAIN, KEY, ANY))
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
        leader = asyncio.create_task(broker.token(OPERATOR_CHAIN, KEY, ANY))
        try:
            assert await asyncio.to_thread(source.entered.wait, WAIT)
            leader.cancel()
            await asyncio.gather(leader, return_exceptions=True)
        finally:
            gate.set()
        return await broker.token(OPERATOR_CHAIN, KEY, ANY)  # joins the flight, or hits the cache

    token = run(scenario)

    assert token.credential.password == password(OPERATOR_CHAIN, KEY, 1)
    assert len(source.token_calls) == 1
    assert broker.cached(KEY, ANY) is token


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
            source, [broker.identity(OPERATOR_CHAIN, "aws"), broker.token(OPERATOR_CHAIN, KEY, ANY)]
        )

    arn, token = run(scenario)

    assert arn == f"arn:aws:sts::123456789012:assumed-role/{OPERATOR_CHAIN.key}/1"
    assert isinstance(token, RegistryToken)
    assert (len(source.identity_calls), len(source.token_calls)) == (1, 1)


# -- accept: the caller judges the cached token itself -----------------------------------------


def test_accept_sees_the_cached_token_and_decides_by_its_own_lifetime() -> None:
    source = FakeSource()
    clock = Clock()
    broker = TokenBroker(source, clock)
    seen: list[RegistryToken] = []

    def a_third_left(token: RegistryToken) -> bool:
        """Good while at least a third of the token's own lifetime is left."""
        seen.append(token)
        return token.expires_at - clock.now >= (token.expires_at - token.issued_at) / 3

    async def scenario() -> list[RegistryToken]:
        first = await broker.token(OPERATOR_CHAIN, KEY, a_third_left)
        clock.now = later(hours=8)  # 4 h of 12 left: still a third
        second = await broker.token(OPERATOR_CHAIN, KEY, a_third_left)
        clock.now = later(hours=8, seconds=1)
        return [first, second, await broker.token(OPERATOR_CHAIN, KEY, a_third_left)]

    first, second, third = run(scenario)

    assert second is first
    assert third is not first
    assert third.credential.password == password(OPERATOR_CHAIN, KEY, 2)
    assert seen == [first, first], "asked about the cached token, never about a new one"


# -- the per-namespace quota of credential chains -----------------------------------------------


def role_chain(name: str, namespace: str = "team-a") -> Chain:
    role = RoleHop(f"arn:aws:iam::123456789012:role/{name}")
    return Chain(OperatorIdentity(), (role,), session_tags(namespace, name))


def key_of(chain: Chain, region: str = "us-east-1") -> TokenKey:
    return TokenKey(chain.key, "aws", region)


async def claim(broker: TokenBroker, owner: tuple[str, str], chain: Chain) -> str:
    """'ok', or the reason the broker refused."""
    try:
        await broker.token(chain, key_of(chain), ANY, owner=owner)
    except AwsCallFailed as error:
        return error.reason
    return "ok"


def test_a_namespace_may_use_up_to_the_cap_of_distinct_chains() -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock(), chains_per_namespace=2)
    one, two, three = role_chain("one"), role_chain("two"), role_chain("three")

    async def scenario() -> list[str]:
        return [
            await claim(broker, ("team-a", "r1"), one),
            await claim(broker, ("team-a", "r2"), two),
            await claim(broker, ("team-a", "r3"), one),  # a chain in use already: no new one
            await claim(broker, ("team-a", "r4"), three),  # a third: refused
            await claim(broker, ("team-b", "r1"), three),  # another namespace has its own count
            await claim(broker, ("", "cluster-wide"), three),  # cluster-scoped: not capped
        ]

    assert run(scenario) == ["ok", "ok", "ok", "QuotaExceeded", "ok", "ok"]
    assert (broker.chains("team-a"), broker.chains("team-b")) == (2, 1)
    calls = [(c.chain.key, c.owner) for c in source.token_calls]
    assert calls == [(one.key, ("team-a", "r1")), (two.key, ("team-a", "r2")), (three.key, ("team-b", "r1"))]


def test_the_quota_message_names_the_cap_and_how_to_raise_it() -> None:
    broker = TokenBroker(FakeSource(), Clock(), chains_per_namespace=1)

    async def scenario() -> AwsCallFailed:
        await broker.token(ROLE_CHAIN, key_of(ROLE_CHAIN), ANY, owner=("team-a", "r1"))
        with pytest.raises(AwsCallFailed) as refused:
            await broker.identity(role_chain("other"), "aws", owner=("team-a", "r2"))
        return refused.value

    error = run(scenario)

    assert error.reason == "QuotaExceeded"
    assert "team-a" in error.message
    assert "1 distinct AWS credential chains" in error.message
    assert "--max-chains-per-namespace" in error.message


def test_released_or_changed_chains_free_their_place_in_the_quota() -> None:
    broker = TokenBroker(FakeSource(), Clock(), chains_per_namespace=2)
    one, two, three, four = (role_chain(n) for n in ("one", "two", "three", "four"))

    async def scenario() -> list[str]:
        return [
            await claim(broker, ("team-a", "r1"), one),
            await claim(broker, ("team-a", "r2"), two),
            await claim(broker, ("team-a", "r3"), three),  # full
            await claim(broker, ("team-a", "r2"), three),  # r2 changed its chain: two is free
            await claim(broker, ("team-a", "r3"), four),  # full again (one, three)
        ]

    assert run(scenario) == ["ok", "ok", "QuotaExceeded", "ok", "QuotaExceeded"]
    broker.release(("team-a", "r1"))
    broker.release(("team-a", "r1"))  # twice is harmless
    assert run(lambda: claim(broker, ("team-a", "r3"), four)) == "ok"
    assert broker.chains("team-a") == 2


# -- caches keep what resources use ---------------------------------------------------------------


def test_release_of_the_last_user_drops_a_chains_tokens_identity_and_sessions() -> None:
    source = FakeSource()
    forgotten: list[str] = []
    broker = TokenBroker(source, Clock(), forget_chain=forgotten.append)
    shared, alone = ("team-a", "r1"), ("team-a", "r2")
    role_key = key_of(ROLE_CHAIN)

    async def use(owner: tuple[str, str]) -> None:
        await broker.token(ROLE_CHAIN, role_key, ANY, owner=owner)
        await broker.identity(ROLE_CHAIN, "aws", owner)

    run(lambda: use(shared))
    run(lambda: use(alone))
    broker.release(alone)
    kept = broker.cached(role_key, ANY)
    broker.release(shared)
    dropped = broker.cached(role_key, ANY)
    run(lambda: use(alone))  # back again: asks AWS anew

    assert kept is not None, "another resource still used the chain"
    assert dropped is None
    assert forgotten == [ROLE_CHAIN.key]
    assert (len(source.token_calls), len(source.identity_calls)) == (2, 2)


def test_a_token_fetched_for_a_resource_released_meanwhile_is_not_kept() -> None:
    gate = threading.Event()
    source = FakeSource(gate=gate)
    broker = TokenBroker(source, Clock())

    async def scenario() -> RegistryToken:
        call = asyncio.create_task(broker.token(ROLE_CHAIN, key_of(ROLE_CHAIN), ANY, owner=OWNER))
        try:
            assert await asyncio.to_thread(source.entered.wait, WAIT)
            broker.release(OWNER)  # deleted while its call was out
        finally:
            gate.set()
        return await call

    token = run(scenario)

    assert token.credential.password == password(ROLE_CHAIN, key_of(ROLE_CHAIN), 1)
    assert broker.cached(key_of(ROLE_CHAIN), ANY) is None


def test_expired_tokens_leave_the_cache() -> None:
    source = FakeSource()
    clock = Clock()
    broker = TokenBroker(source, clock)
    east, west = KEY, TokenKey(OPERATOR_CHAIN.key, "aws", "eu-west-1")
    always: Accept = lambda token: True  # noqa: E731

    run(lambda: broker.token(OPERATOR_CHAIN, east, ANY))
    clock.now = EXPIRES  # east has expired
    run(lambda: broker.token(OPERATOR_CHAIN, west, ANY))

    assert broker.cached(east, always) is None
    assert broker.cached(west, always) is not None


# -- the rate limit: waiting in the event loop, fair order ----------------------------------------


def test_the_broker_waits_for_the_limit_before_each_call_and_serves_namespaces_in_turn() -> None:
    source = FakeSource()
    pace = RateLimiter(200)  # real time, 5 ms apart
    broker = TokenBroker(source, Clock(), limiter=AsyncLimiter(pace))
    hogs = [role_chain(f"hog-{i}", "hog") for i in range(8)]
    quiet = role_chain("quiet", "quiet")

    async def scenario() -> None:
        calls = [broker.token(c, key_of(c), ANY, owner=("hog", f"r{i}")) for i, c in enumerate(hogs)]
        tasks = [asyncio.create_task(c) for c in calls]
        await asyncio.sleep(0)  # the first hog call goes at once, the others queue
        tasks.append(asyncio.create_task(broker.token(quiet, key_of(quiet), ANY, owner=("quiet", "r"))))
        await asyncio.gather(*tasks)

    started = time.monotonic()
    run(scenario)

    order = [call.owner[0] for call in source.token_calls]
    assert order.index("quiet") <= 2, order
    assert time.monotonic() - started >= 8 * 0.005 - 0.001, "9 calls, 5 ms apart"


def test_a_call_many_resources_wait_on_goes_before_single_ones() -> None:
    source = FakeSource()
    broker = TokenBroker(source, Clock(), limiter=AsyncLimiter(RateLimiter(200)))
    singles = [role_chain(f"single-{i}") for i in range(6)]
    popular = TokenKey(OPERATOR_CHAIN.key, "aws", "eu-west-1")

    async def scenario() -> None:
        tasks = [
            asyncio.create_task(broker.token(c, key_of(c), ANY, owner=("team-a", f"s{i}")))
            for i, c in enumerate(singles)
        ]
        await asyncio.sleep(0)
        tasks += [
            asyncio.create_task(broker.token(OPERATOR_CHAIN, popular, ANY, owner=("team-a", f"p{i}")))
            for i in range(30)
        ]
        await asyncio.gather(*tasks)

    run(scenario)

    regions = [call.region for call in source.token_calls]
    assert regions.count("eu-west-1") == 1, "30 followers, one call"
    assert regions.index("eu-west-1") <= 1, regions


# -- sessions: resolved once per chain, ahead of the calls, charged what they cost --------------


def hops_chain(hops: int, namespace: str = "team-a") -> Chain:
    """A web identity and `hops` roles: 1 + hops STS requests to resolve."""
    roles = tuple(RoleHop(f"arn:aws:iam::123456789012:role/hop-{i}") for i in range(hops))
    start = WebIdentity(namespace, "puller", "sts.amazonaws.com", "arn:aws:iam::123456789012:role/web")
    return Chain(start, roles, session_tags(namespace, "pull"))


REGIONS = [f"region-{i}" for i in range(20)]


def test_twenty_regions_of_one_chain_resolve_its_session_once_without_holding_threads() -> None:
    source = FakeSource()
    source.session_gate = gate = threading.Event()
    broker = TokenBroker(source, Clock())
    chain = hops_chain(2)

    async def scenario() -> tuple[list[TokenCall], list[RegistryToken]]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2))
        calls = [broker.token(chain, key_of(chain, r), ANY, owner=OWNER) for r in REGIONS]
        tasks = [asyncio.create_task(c) for c in calls]
        try:
            deadline = time.monotonic() + WAIT
            while not source.resolving.is_set():  # the resolution holds one of the two threads
                assert time.monotonic() < deadline, "the session was never resolved"
                await asyncio.sleep(0.001)
            # The 20 token calls wait in the event loop, not in threads blocked on the session:
            # the pool's other thread is free.
            await asyncio.wait_for(asyncio.to_thread(lambda: None), WAIT)
            during = list(source.token_calls)
        finally:
            gate.set()
        return during, list(await asyncio.gather(*tasks))

    during, tokens = run(scenario)

    assert during == [], "no token call started before its session was ready"
    assert source.session_calls == [SessionCall(chain, "aws", OWNER)]
    assert sorted(c.region for c in source.token_calls) == sorted(REGIONS)
    assert len({t.credential.password for t in tokens}) == 20


def frozen_limiter(burst: int = 100) -> tuple[RateLimiter, AsyncLimiter]:
    """A pace on a clock that stands still: with a large burst nobody waits, and `booked` counts
    the requests each turn was charged."""
    pace = RateLimiter(10, burst, clock=lambda: 1000.0)
    return pace, AsyncLimiter(pace)


def test_each_step_is_charged_the_requests_it_makes() -> None:
    source = FakeSource()
    pace, limit = frozen_limiter()
    broker = TokenBroker(source, Clock(), limiter=limit, forget_chain=source.forget)
    chain = hops_chain(5)
    booked: list[int] = []

    async def scenario() -> None:
        await broker.token(chain, key_of(chain, "us-east-1"), ANY, owner=OWNER)
        booked.append(pace.booked)  # 1 + 5 for the session, 1 for the token
        await broker.token(chain, key_of(chain, "eu-west-1"), ANY, owner=OWNER)
        await broker.identity(chain, "aws", OWNER)
        await broker.token(chain, key_of(chain, "us-east-1"), ANY, owner=OWNER, fresh=True)
        booked.append(pace.booked)  # the session was resolved: 1 each
        broker.release(OWNER)  # its sessions are dropped
        await broker.token(chain, key_of(chain, "us-east-1"), ANY, owner=OWNER)
        booked.append(pace.booked)

    run(scenario)

    assert booked == [7, 10, 17]
    assert len(source.session_calls) == 2


def waiting_for(limit: AsyncLimiter, count: int) -> Coroutine[Any, Any, None]:
    async def poll() -> None:
        deadline = time.monotonic() + WAIT
        while limit.waiting != count:
            assert time.monotonic() < deadline, f"{limit.waiting} waiting, not {count}"
            await asyncio.sleep(0.001)

    return poll()


@pytest.mark.parametrize(
    "chain", [pytest.param(OPERATOR_CHAIN, id="call"), pytest.param(ROLE_CHAIN, id="session")]
)
def test_a_flight_nobody_waits_on_before_its_turn_is_cancelled_and_leaves_the_queue(chain: Chain) -> None:
    """`call`: the token call waits for its slot; `session`: the role hop waits for its slot."""
    source = FakeSource()
    ahead = [0.0]
    pace = RateLimiter(100, clock=lambda: time.monotonic() + ahead[0])
    limit = AsyncLimiter(pace)
    broker = TokenBroker(source, Clock(), limiter=limit)
    key = key_of(chain)
    other = role_chain("other", "team-b")

    async def scenario() -> tuple[list[int], int, list[TokenCall], list[SessionCall], RegistryToken]:
        pace.book(100_000)  # the next slot is 1,000 s away: everyone waits until the test moves time
        first, second = (
            asyncio.create_task(broker.token(chain, key, ANY, owner=("team-a", name)))
            for name in ("r1", "r2")
        )
        await waiting_for(limit, 1)  # one flight for both
        queued = asyncio.create_task(broker.token(other, key_of(other), ANY, owner=("team-b", "r")))
        await waiting_for(limit, 2)
        waiting = []
        for task in (first, second, queued):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            waiting.append(limit.waiting)
        made = (pace.booked, list(source.token_calls), list(source.session_calls))
        ahead[0] += 2000  # time moves on: a new caller starts a new flight, and is served
        return waiting, *made, await asyncio.wait_for(broker.token(chain, key, ANY, owner=OWNER), WAIT)

    waiting, booked, token_calls, session_calls, again = run(scenario)

    assert waiting == [2, 1, 0], "the flight stayed while a caller waited on it, then left the queue"
    assert (booked, token_calls) == (100_000, []), "no AWS request for a flight nobody waited on"
    # Resolving the operator's own identity makes no request and waits for no turn.
    assert [c.chain for c in session_calls] == ([] if chain.hops else [OPERATOR_CHAIN])
    assert source.token_calls == [TokenCall(chain, "aws", "us-east-1", False, OWNER)]
    assert again.credential.password == password(chain, key, 1)
