"""kopf registrations: the start-up lists and watches, and the cleanup. kopf itself watches none of
our kinds; it runs the operator's life (start-up, signals, liveness, peering keep-alives).

No kopf indexes and no kopf watches: kopf would hold every handler until each indexed object had
been seen (a toggle per object, waking every waiting worker on every flip), which at thousands of
namespaces paused all work for minutes, and its processing of each event costs more than our work
on it (handlers/sync.py). The caches are filled by lists in a start-up handler and followed by
watches of our own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import kopf

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.peering import PeeringGate
from ecr_pull_secrets.handlers.queue import WorkQueue
from ecr_pull_secrets.handlers.sync import CacheSync
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.events import EventPoster
from ecr_pull_secrets.plan.status import settled

RETRY_SECONDS = 2.0


class ResourceEvents:
    """Our resources' watch events: into the cache, onto the queue (or out of both)."""

    def __init__(self, cache: ClusterCache, queue: WorkQueue, forget: Callable[[str], None]) -> None:
        self._cache = cache
        self._queue = queue
        self._forget = forget

    def __call__(self, type_: str | None, body: Mapping[str, Any]) -> None:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if not uid:
            return
        if type_ == "DELETED":
            self._cache.drop_resource(uid)
            self._queue.forget(uid)
            self._forget(uid)
        elif self._cache.put_resource(body):
            self._queue.add(uid)


def register(
    registry: kopf.OperatorRegistry,
    *,
    cache: ClusterCache,
    sync: CacheSync,
    queue: WorkQueue,
    events: EventPoster,
    gate: PeeringGate | None,
    relist_interval: timedelta,
) -> None:
    background: list[asyncio.Task[None]] = []

    @kopf.on.startup(id="prime-caches", registry=registry, errors=kopf.ErrorsMode.TEMPORARY)
    async def prime(logger: kopf.Logger, **_: Any) -> None:
        began = time.monotonic()
        try:
            versions, peers = await asyncio.to_thread(sync.prime)
        except KubeError as error:
            raise kopf.TemporaryError(f"listing what the caches need: {error}", delay=RETRY_SECONDS) from None
        logger.info(
            "Listed %d namespaces, %d ServiceAccounts, %d managed Secrets, %d resources in %.1fs",
            *sync.counts,
            cache.resource_count,
            time.monotonic() - began,
        )
        if gate is not None:
            for body in peers:
                gate.event(None, body)
        # What answers its spec already waits behind changes (the routine lane); the rest first.
        for uid in cache.all_resources():
            listed = cache.resource(uid)
            queue.add(uid, urgent=listed is None or not settled(listed))
        events.start()
        queue.start()
        sync.follow(versions)
        relist = sync.relist_every(relist_interval.total_seconds())
        background.append(asyncio.create_task(relist, name="relist"))

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        for task in background:
            task.cancel()
        sync.stop()
        if gate is not None:
            gate.stop()
        await queue.stop()
        await events.stop()
