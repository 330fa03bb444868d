"""kopf registrations: the start-up lists and watches, and the cleanup. kopf itself watches none of
our kinds; it runs the operator's life (start-up, signals, liveness, peering keep-alives).

No kopf indexes and no kopf watches: kopf would hold every handler until each indexed object had
been seen (a toggle per object, waking every waiting worker on every flip), which at thousands of
namespaces paused all work for minutes, and its processing of each event costs more than our work
on it (handlers/sync.py). The caches are filled by lists (started before kopf by runtime/, awaited
in a start-up handler, so no work starts before they end) and followed by watches of our own.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

import kopf

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.peering import PeeringGate
from ecr_pull_secrets.handlers.queue import WorkQueue
from ecr_pull_secrets.handlers.sync import CacheSync, Primed
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.events import EventPoster
from ecr_pull_secrets.plan.status import settled

RETRY_SECONDS = 2.0


def register(
    registry: kopf.OperatorRegistry,
    *,
    cache: ClusterCache,
    sync: CacheSync,
    primed: Future[Primed] | None = None,
    queue: WorkQueue,
    events: EventPoster,
    gate: PeeringGate | None,
    relist_interval: timedelta,
) -> None:
    background: list[asyncio.Task[None]] = []
    first = [primed] if primed is not None else []

    @kopf.on.startup(id="prime-caches", registry=registry, errors=kopf.ErrorsMode.TEMPORARY)
    async def prime(logger: kopf.Logger, **_: Any) -> None:
        started = first.pop() if first else None  # the lists started before kopf (runtime says why)
        try:
            versions, peers = await (
                asyncio.wrap_future(started) if started else asyncio.to_thread(sync.prime)
            )
        except KubeError as error:
            raise kopf.TemporaryError(f"listing what the caches need: {error}", delay=RETRY_SECONDS) from None
        logger.info(
            "Listed %d namespaces, %d ServiceAccounts, %d managed Secrets, %d resources in %.1fs",
            *sync.counts,
            cache.resource_count,
            sync.prime_seconds,
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
