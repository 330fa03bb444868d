"""kopf registrations: our resources' watch events, the start-up lists, and the cleanup.

No kopf indexes: kopf would hold every handler until each indexed object had been seen (a toggle per
object, waking every waiting worker on every flip), which at thousands of namespaces paused all
work for minutes. The caches are filled by lists in a start-up handler instead (kopf starts its
watches after those), and followed by watches of our own (handlers/sync.py says why not kopf's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import kopf

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.queue import WorkQueue
from ecr_pull_secrets.handlers.sync import CacheSync
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.model import api

RETRY_SECONDS = 2.0


def register(
    registry: kopf.OperatorRegistry,
    *,
    cache: ClusterCache,
    sync: CacheSync,
    queue: WorkQueue,
    forget: Callable[[str], None],
    relist_interval: timedelta,
) -> None:
    relisting: list[asyncio.Task[None]] = []

    @kopf.on.startup(id="prime-caches", registry=registry, errors=kopf.ErrorsMode.TEMPORARY)
    async def prime(logger: kopf.Logger, **_: Any) -> None:
        try:
            versions = await asyncio.to_thread(sync.prime)
        except KubeError as error:
            raise kopf.TemporaryError(f"listing what the caches need: {error}", delay=RETRY_SECONDS) from None
        logger.info("Listed %d namespaces, %d ServiceAccounts, %d managed Secrets", *sync.counts)
        sync.follow(versions)

    def start() -> None:
        """The consumers start from the first watch event, not at start-up: kopf.event (our Events)
        needs the context kopf gives its watch handlers, and tasks inherit the context they start in."""
        if not relisting:
            queue.start()
            relisting.append(
                asyncio.create_task(sync.relist_every(relist_interval.total_seconds()), name="relist")
            )

    def resource_event(event: kopf.RawEvent, body: kopf.Body, uid: str) -> None:
        start()
        if event["type"] == "DELETED":
            cache.drop_resource(uid)
            queue.forget(uid)
            forget(uid)
        elif cache.put_resource(body):
            # Listed at start (type None): the routine lane, behind anything that changes meanwhile.
            queue.add(uid, urgent=event["type"] is not None)

    @kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
    async def namespaced_resource(event: kopf.RawEvent, body: kopf.Body, uid: str, **_: Any) -> None:
        resource_event(event, body, uid)

    @kopf.on.event(api.GROUP, api.VERSION, api.CLUSTER_PLURAL, registry=registry)
    async def cluster_resource(event: kopf.RawEvent, body: kopf.Body, uid: str, **_: Any) -> None:
        resource_event(event, body, uid)

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        for task in relisting:
            task.cancel()
        sync.stop()
        await queue.stop()
