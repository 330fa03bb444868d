"""handlers.watch: what the start-up task does after the lists, whatever fails on the way."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

import kopf

from ecr_pull_secrets.handlers import watch
from ecr_pull_secrets.handlers.cache import ClusterCache


class Sync:
    """CacheSync as the start-up task sees it: lists that end at once."""

    counts = (0, 0, 0)
    prime_seconds = 0.0

    def __init__(self) -> None:
        self.relisting = asyncio.Event()

    def start_prime(self, *_: Any) -> Future[dict[Any, Any]]:
        done: Future[dict[Any, Any]] = Future()
        done.set_result({})
        return done

    def follow(self, versions: Any) -> None: ...
    def completed(self) -> None: ...
    def stop(self) -> None: ...

    async def relist_every(self, seconds: float) -> None:
        self.relisting.set()


class Parts:
    """FirstPasses, WorkQueue and EventPoster as the start-up task sees them."""

    def listed(self, uid: str) -> None: ...
    def followed(self, scope: Any) -> None: ...
    def completed(self) -> None: ...
    def start(self) -> None: ...


def test_the_relists_run_even_when_loading_the_aws_clients_ahead_fails() -> None:
    def warm() -> None:
        raise ValueError("botocore refuses AWS_STS_REGIONAL_ENDPOINTS=bogus at create_client")

    sync = Sync()
    registry = kopf.OperatorRegistry()
    watch.register(
        registry,
        cache=ClusterCache(),
        sync=sync,  # type: ignore[arg-type]
        first_passes=Parts(),  # type: ignore[arg-type]
        queue=Parts(),  # type: ignore[arg-type]
        events=Parts(),  # type: ignore[arg-type]
        gate=None,
        relist_interval=timedelta(seconds=1),
        warm=warm,
    )
    (start,) = (h for h in registry._activities.get_all_handlers() if h.id == "serve-while-listing")

    async def story() -> None:
        await start.fn(logger=logging.getLogger("test"))
        await asyncio.wait_for(sync.relisting.wait(), 5)

    asyncio.run(story())
