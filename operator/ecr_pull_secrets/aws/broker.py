"""The one place that hands out ECR tokens: cached, single-flight, one call per key.

A token is valid for every registry of its region that the identity may pull from, so all
resources sharing a credential chain and region share one token per renewal window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from ecr_pull_secrets.aws.tokens import TokenSource
from ecr_pull_secrets.model.credential import RegistryToken
from ecr_pull_secrets.model.identity import Chain

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class TokenKey:
    chain: str
    """Chain.key: different chains never share tokens or credentials."""
    partition: str
    region: str
    public: bool = False


class TokenBroker:
    def __init__(self, source: TokenSource, clock: Clock) -> None:
        self._source = source
        self._clock = clock
        self._cache: dict[TokenKey, RegistryToken] = {}
        self._identities: dict[tuple[str, str], str] = {}
        self._inflight: dict[object, asyncio.Future[object]] = {}
        self.calls = 0
        """AWS token and identity calls made, for metrics and benchmarks."""

    async def token(
        self,
        chain: Chain,
        key: TokenKey,
        valid_until: datetime,
        *,
        owner: tuple[str, str] = ("", ""),
        fresh: bool = False,
    ) -> RegistryToken:
        """A token still valid at `valid_until`; `fresh` skips the cache (a forced refresh)."""
        cached = self._cache.get(key)
        if cached is not None and not fresh and cached.expires_at > valid_until:
            return cached
        token = await self._single_flight(key, lambda: self._fetch(chain, key, owner))
        assert isinstance(token, RegistryToken)
        return token

    def cached(self, key: TokenKey, valid_until: datetime) -> RegistryToken | None:
        cached = self._cache.get(key)
        return cached if cached is not None and cached.expires_at > valid_until else None

    async def identity(self, chain: Chain, partition: str, owner: tuple[str, str] = ("", "")) -> str:
        """The caller ARN at the end of a chain; asked once, since it does not change."""
        key = (chain.key, partition)
        if key not in self._identities:
            arn = await self._single_flight(
                ("identity", key), lambda: self._ask_identity(chain, partition, owner)
            )
            assert isinstance(arn, str)
            self._identities[key] = arn
        return self._identities[key]

    async def _fetch(self, chain: Chain, key: TokenKey, owner: tuple[str, str]) -> RegistryToken:
        issued_at = self._clock()
        self.calls += 1
        credential, expires_at = await asyncio.to_thread(
            self._source.authorization_token, chain, key.partition, key.region, key.public, owner
        )
        token = RegistryToken(credential=credential, issued_at=issued_at, expires_at=expires_at)
        self._cache[key] = token
        return token

    async def _ask_identity(self, chain: Chain, partition: str, owner: tuple[str, str]) -> str:
        self.calls += 1
        return await asyncio.to_thread(self._source.caller_arn, chain, partition, owner)

    async def _single_flight(self, key: object, call: Callable[[], Awaitable[object]]) -> object:
        """Callers of one key share one call; the call runs as its own task, so a caller that is
        cancelled (its resource deleted, say) does not cancel it for the others."""
        running = self._inflight.get(key)
        if running is None:
            running = asyncio.ensure_future(call())
            self._inflight[key] = running
            running.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(running)

    def _settle(self, key: object, done: asyncio.Future[object]) -> None:
        self._inflight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here, so asyncio does not warn when nobody else waits
