"""The one place that hands out ECR tokens: cached, single-flight, one call per key, paced fairly.

A token is valid for every registry of its region that the identity may pull from, so all
resources sharing a credential chain and region share one token per renewal window.

Every call waits for the AWS rate limit in the event loop before it takes a worker thread; the
namespaces that wait take turns, and a namespace's turn goes to the call most resources wait on
(aws/ratelimit.py). A namespace uses at most `chains_per_namespace` distinct credential chains
(QuotaExceeded beyond). The caches keep only what resources use: a token leaves when it expires,
a chain's tokens, identity and sessions when the last resource using it is released.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from ecr_pull_secrets.aws.errors import QuotaExceeded
from ecr_pull_secrets.aws.ratelimit import AsyncLimiter, prepaid
from ecr_pull_secrets.aws.tokens import TokenSource
from ecr_pull_secrets.model.credential import RegistryToken
from ecr_pull_secrets.model.identity import Chain

Clock = Callable[[], datetime]
Accept = Callable[[RegistryToken], bool]
"""Whether a cached token is still good enough for the caller (it knows its renewal lead)."""
Owner = tuple[str, str]
"""(namespace, name) of the resource asking; namespace "" for a cluster-scoped one."""

DEFAULT_CHAINS_PER_NAMESPACE = 50


@dataclass(frozen=True)
class TokenKey:
    chain: str
    """Chain.key: different chains never share tokens or credentials."""
    partition: str
    region: str
    public: bool = False
    fips: bool = False
    """For a FIPS registry host (dkr.ecr-fips, dkr-ecr-fips): asked from ECR's FIPS endpoint."""


@dataclass
class _Flight:
    task: asyncio.Future[object]
    interest: Counter[str]
    """Namespace -> callers waiting on this call; the limiter reads it live."""


def _keep(chain_key: str) -> None:
    """The default for `forget_chain`: the source caches nothing per chain."""


class TokenBroker:
    def __init__(
        self,
        source: TokenSource,
        clock: Clock,
        *,
        limiter: AsyncLimiter | None = None,
        chains_per_namespace: int = DEFAULT_CHAINS_PER_NAMESPACE,
        forget_chain: Callable[[str], None] = _keep,
    ) -> None:
        """`limiter`: None waits for nothing (tests); `forget_chain(chain key)` drops the source's
        own state (sessions) of a chain no resource uses any more."""
        self._source = source
        self._clock = clock
        self._limiter = limiter
        self._cap = chains_per_namespace
        self._forget_chain = forget_chain
        self._cache: dict[TokenKey, RegistryToken] = {}
        self._identities: dict[tuple[str, str], str] = {}
        self._inflight: dict[object, _Flight] = {}
        self._chain_of: dict[Owner, str] = {}
        self._users: Counter[str] = Counter()  # chain key -> owners using it
        self._by_namespace: dict[str, Counter[str]] = {}  # namespace -> chain key -> owners
        self.calls = 0
        """AWS token and identity calls made, for metrics and benchmarks."""

    async def token(
        self,
        chain: Chain,
        key: TokenKey,
        accept: Accept,
        *,
        owner: Owner = ("", ""),
        fresh: bool = False,
    ) -> RegistryToken:
        """The cached token if `accept` takes it, else a new one; `fresh` skips the cache (a forced
        refresh). Raises QuotaExceeded when `chain` would be one too many for owner's namespace."""
        self._claim(owner, chain.key)
        cached = self.cached(key, accept)
        if cached is not None and not fresh:
            return cached
        token = await self._single_flight(key, owner, lambda wanted: self._fetch(chain, key, owner, wanted))
        assert isinstance(token, RegistryToken)
        return token

    def cached(self, key: TokenKey, accept: Accept) -> RegistryToken | None:
        cached = self._cache.get(key)
        return cached if cached is not None and accept(cached) else None

    async def identity(self, chain: Chain, partition: str, owner: Owner = ("", "")) -> str:
        """The caller ARN at the end of a chain; asked once, since it does not change."""
        self._claim(owner, chain.key)
        key = (chain.key, partition)
        if key not in self._identities:
            arn = await self._single_flight(
                ("identity", key), owner, lambda wanted: self._ask_identity(chain, partition, owner, wanted)
            )
            assert isinstance(arn, str)
            if chain.key in self._users:
                self._identities[key] = arn
            return arn
        return self._identities[key]

    def release(self, owner: Owner) -> None:
        """`owner` uses no chain any more (deleted, say). A chain no owner uses leaves every cache."""
        chain = self._chain_of.pop(owner, None)
        if chain is None:
            return
        used = self._by_namespace[owner[0]]
        used[chain] -= 1
        if used[chain] <= 0:
            del used[chain]
            if not used:
                del self._by_namespace[owner[0]]
        self._users[chain] -= 1
        if self._users[chain] <= 0:
            del self._users[chain]
            for key in [k for k in self._cache if k.chain == chain]:
                del self._cache[key]
            for ident in [k for k in self._identities if k[0] == chain]:
                del self._identities[ident]
            self._forget_chain(chain)

    def chains(self, namespace: str) -> int:
        """Distinct credential chains the resources of `namespace` use."""
        return len(self._by_namespace.get(namespace, ()))

    def _claim(self, owner: Owner, chain: str) -> None:
        if self._chain_of.get(owner) == chain:
            return
        self.release(owner)  # the chain it used before, if any
        namespace = owner[0]
        used = self._by_namespace.get(namespace, Counter())
        # Cluster-scoped resources ("") are the cluster admin's; the cap is for tenants.
        if namespace and chain not in used and len(used) >= self._cap:
            raise QuotaExceeded(namespace, self._cap)
        used[chain] += 1
        self._by_namespace[namespace] = used
        self._users[chain] += 1
        self._chain_of[owner] = chain

    async def _fetch(self, chain: Chain, key: TokenKey, owner: Owner, wanted: Counter[str]) -> RegistryToken:
        async with self._slot(wanted, owner):
            issued_at = self._clock()
            self.calls += 1
            credential, expires_at = await asyncio.to_thread(
                self._source.authorization_token,
                chain,
                key.partition,
                key.region,
                key.public,
                owner,
                fips=key.fips,
            )
        token = RegistryToken(credential=credential, issued_at=issued_at, expires_at=expires_at)
        now = self._clock()
        for old in [k for k, t in self._cache.items() if t.expires_at <= now]:
            del self._cache[old]
        if key.chain in self._users:  # not released meanwhile
            self._cache[key] = token
        return token

    async def _ask_identity(self, chain: Chain, partition: str, owner: Owner, wanted: Counter[str]) -> str:
        async with self._slot(wanted, owner):
            self.calls += 1
            return await asyncio.to_thread(self._source.caller_arn, chain, partition, owner)

    @contextlib.asynccontextmanager
    async def _slot(self, wanted: Counter[str], owner: Owner) -> AsyncIterator[None]:
        """Waits for the call's turn at the rate limit (in the event loop); the thread the call then
        runs in spends that slot on its first request (see aws/ratelimit.py)."""
        if self._limiter is None:
            yield
            return
        await self._limiter.acquire(wanted, owner[0])
        with prepaid():
            yield

    async def _single_flight(
        self, key: object, owner: Owner, call: Callable[[Counter[str]], Awaitable[object]]
    ) -> object:
        """Callers of one key share one call; the call runs as its own task, so a caller that is
        cancelled (its resource deleted, say) does not cancel it for the others. While it waits
        for the rate limit, the callers it serves (by namespace) set its place in the queue."""
        flight = self._inflight.get(key)
        if flight is None:
            wanted: Counter[str] = Counter()
            flight = _Flight(asyncio.ensure_future(call(wanted)), wanted)
            self._inflight[key] = flight
            flight.task.add_done_callback(lambda done: self._settle(key, done))
        namespace = owner[0]
        flight.interest[namespace] += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.interest[namespace] -= 1
            if flight.interest[namespace] <= 0:
                del flight.interest[namespace]

    def _settle(self, key: object, done: asyncio.Future[object]) -> None:
        self._inflight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here, so asyncio does not warn when nobody else waits
