"""The one place that hands out ECR tokens: cached, single-flight, one call per key, paced fairly.

A token is valid for every registry of its region that the identity may pull from, so all
resources sharing a credential chain and region share one token per renewal window.

A token (or identity) call is two single-flight steps, each awaited in the event loop: first the
chain's session (web identity and role hops), resolved once per chain and partition for all the
calls that need it, however many regions ask at once; then the call itself. Each step waits for
its turn at the AWS rate limit before it takes a worker thread, and its turn is charged the
requests it makes: 1 + hops for a session, 1 for a call (aws/ratelimit.py: namespaces get equal
shares of requests; a namespace's turn goes to the call most resources wait on). A flight that
nobody waits on any more before its turn (its callers cancelled: resources deleted) is cancelled
and leaves the queue; once it holds its slot it finishes and fills the cache.

A namespace uses at most `chains_per_namespace` distinct credential chains (QuotaExceeded
beyond). The caches keep only what resources use: a token leaves when it expires, a chain's
tokens, identity and sessions when the last resource using it is released.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ecr_pull_secrets.aws.errors import QuotaExceeded
from ecr_pull_secrets.aws.ratelimit import AsyncLimiter
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


class Interest(Mapping[str, int]):
    """Namespace -> resources waiting on a flight, live (the limiter reads it at every turn): its
    own callers, plus those of the flights waiting on it (a session's token calls)."""

    def __init__(self) -> None:
        self.callers: Counter[str] = Counter()
        self.flights: list[Interest] = []

    def total(self) -> Counter[str]:
        total = +self.callers
        for flight in self.flights:
            total.update(flight.total())
        return total

    def __getitem__(self, namespace: str) -> int:
        return self.total()[namespace]

    def __iter__(self) -> Iterator[str]:
        return iter(self.total())

    def __len__(self) -> int:
        return len(self.total())


@dataclass(eq=False)
class _Flight:
    interest: Interest = field(default_factory=Interest)
    holds_slot: bool = False
    """Past its wait at the rate limit: it goes on even when nobody waits any more."""
    task: asyncio.Future[object] | None = None


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
        token = await self._single_flight(
            key, owner[0], lambda flight: self._fetch(chain, key, owner, flight)
        )
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
                ("identity", key),
                owner[0],
                lambda flight: self._ask_identity(chain, partition, owner, flight),
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

    async def _fetch(self, chain: Chain, key: TokenKey, owner: Owner, flight: _Flight) -> RegistryToken:
        await self._session(chain, key.partition, owner, flight)
        async with self._slot(flight, owner):
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

    async def _ask_identity(self, chain: Chain, partition: str, owner: Owner, flight: _Flight) -> str:
        await self._session(chain, partition, owner, flight)
        async with self._slot(flight, owner):
            self.calls += 1
            return await asyncio.to_thread(self._source.caller_arn, chain, partition, owner)

    async def _session(self, chain: Chain, partition: str, owner: Owner, waiting: _Flight) -> None:
        """The chain's session, resolved once for every flight that needs it (`waiting` joins it
        with its callers), so that those flights take threads only when it is ready."""
        if self._source.session_requests(chain, partition) is None:
            return
        await self._single_flight(
            ("session", chain.key, partition),
            waiting.interest,
            lambda flight: self._resolve(chain, partition, owner, flight),
        )

    async def _resolve(self, chain: Chain, partition: str, owner: Owner, flight: _Flight) -> None:
        cost = self._source.session_requests(chain, partition)
        if cost is not None:  # else resolved meanwhile
            async with self._slot(flight, owner, cost):
                await asyncio.to_thread(self._source.resolve_session, chain, partition, owner)

    @contextlib.asynccontextmanager
    async def _slot(self, flight: _Flight, owner: Owner, cost: int = 1) -> AsyncIterator[None]:
        """Waits for the flight's turn at the rate limit (in the event loop), charged `cost`
        requests; the thread the call then runs in spends them (see aws/ratelimit.py)."""
        if self._limiter is None:
            flight.holds_slot = True
            yield
            return
        async with self._limiter.slots(flight.interest, owner[0], cost):
            flight.holds_slot = True
            yield

    async def _single_flight(
        self, key: object, joining: str | Interest, call: Callable[[_Flight], Awaitable[object]]
    ) -> object:
        """Callers of one key share one call; the call runs as its own task, so a caller that is
        cancelled (its resource deleted, say) does not cancel it for the others; when the last
        one goes before the call holds its slot, the call is cancelled. `joining` is a caller's
        namespace, or the interest of a flight that waits on this one."""
        flight = self._inflight.get(key)
        if flight is None:
            flight = _Flight()
            flight.task = task = asyncio.ensure_future(call(flight))
            self._inflight[key] = flight
            task.add_done_callback(lambda done: self._settle(key, flight, done))
        assert flight.task is not None
        interest = flight.interest
        if isinstance(joining, str):
            interest.callers[joining] += 1
        else:
            interest.flights.append(joining)
        try:
            return await asyncio.shield(flight.task)
        finally:
            if isinstance(joining, str):
                interest.callers[joining] -= 1
                if interest.callers[joining] <= 0:
                    del interest.callers[joining]
            else:  # by identity: two flights' interests may be equal mappings
                interest.flights = [f for f in interest.flights if f is not joining]
            if not interest and not flight.holds_slot and not flight.task.done():
                self._settle(key, flight, flight.task)  # a new caller starts a new flight
                flight.task.cancel()

    def _settle(self, key: object, flight: _Flight, done: asyncio.Future[object]) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]
        if done.done() and not done.cancelled():
            done.exception()  # retrieved here, so asyncio does not warn when nobody else waits
