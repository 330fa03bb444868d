"""The one place that hands out ECR tokens: cached, single-flight, one call per key.

A token is valid for every registry of its region that the identity may pull from, so all
resources sharing an identity and region share one token per renewal window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from ecr_pull_secrets.aws.tokens import TokenSource
from ecr_pull_secrets.model.credential import RegistryToken

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class TokenKey:
    chain: str
    """Which credential chain asks; different chains never share tokens or credentials."""
    partition: str
    region: str


class TokenBroker:
    def __init__(
        self,
        sources: Callable[[str], TokenSource],
        clock: Clock,
    ) -> None:
        self._sources = sources
        self._clock = clock
        self._cache: dict[TokenKey, RegistryToken] = {}
        self._identities: dict[str, str] = {}
        self._inflight: dict[object, asyncio.Future[object]] = {}
        self.calls = 0
        """AWS calls made (tokens and identities), for metrics and benchmarks."""

    async def token(self, key: TokenKey, valid_until: datetime, *, fresh: bool = False) -> RegistryToken:
        """A token still valid at `valid_until`; `fresh` skips the cache (a forced refresh)."""
        cached = self._cache.get(key)
        if cached is not None and not fresh and cached.expires_at > valid_until:
            return cached
        token = await self._single_flight(key, lambda: self._fetch(key))
        assert isinstance(token, RegistryToken)
        return token

    async def identity(self, chain: str, region: str) -> str:
        """The caller ARN of a chain; asked once, since a chain's identity does not change."""
        if chain not in self._identities:
            arn = await self._single_flight(("identity", chain), lambda: self._ask_identity(chain, region))
            assert isinstance(arn, str)
            self._identities[chain] = arn
        return self._identities[chain]

    def remember(self, key: TokenKey, token: RegistryToken) -> None:
        """Seed the cache with a token found in a managed Secret, so a restart re-fetches nothing."""
        cached = self._cache.get(key)
        if cached is None or cached.expires_at < token.expires_at:
            self._cache[key] = token

    async def _fetch(self, key: TokenKey) -> RegistryToken:
        issued_at = self._clock()
        source = self._sources(key.chain)
        self.calls += 1
        credential, expires_at = await asyncio.to_thread(source.authorization_token, key.region)
        token = RegistryToken(credential=credential, issued_at=issued_at, expires_at=expires_at)
        self._cache[key] = token
        return token

    async def _ask_identity(self, chain: str, region: str) -> str:
        self.calls += 1
        return await asyncio.to_thread(self._sources(chain).caller_arn, region)

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
