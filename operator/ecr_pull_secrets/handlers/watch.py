"""kopf registrations: the start-up lists and watches, and the cleanup. kopf itself watches none of
our kinds; it runs the operator's life (start-up, signals, liveness, peering keep-alives).

No kopf indexes and no kopf watches: kopf would hold every handler until each indexed object had
been seen (a toggle per object, waking every waiting worker on every flip), which at thousands of
namespaces paused all work for minutes, and its processing of each event costs more than our work
on it (handlers/sync.py). The caches are filled by lists that a start-up handler starts and does
not wait for: the event loop stores their pages and serves changes meanwhile (see
handlers/first_passes.py); watches of our own, each from its list's first page, follow them.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import kopf

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.first_passes import FirstPasses
from ecr_pull_secrets.handlers.peering import PeeringGate
from ecr_pull_secrets.handlers.queue import WorkQueue
from ecr_pull_secrets.handlers.sync import CacheSync
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.events import EventPoster

RETRY_SECONDS = 2.0
UNREACHABLE_RETRY_SECONDS = 0.25


def register(
    registry: kopf.OperatorRegistry,
    *,
    cache: ClusterCache,
    sync: CacheSync,
    first_passes: FirstPasses,
    queue: WorkQueue,
    events: EventPoster,
    gate: PeeringGate | None,
    relist_interval: timedelta,
    warm: Callable[[], None] = lambda: None,
) -> None:
    """`warm`: blocking, run in a thread once the lists have ended (loads what AWS calls need)."""
    background: list[asyncio.Task[None]] = []

    @kopf.on.startup(id="serve-while-listing", registry=registry)
    async def start(logger: kopf.Logger, **_: Any) -> None:
        """Returns at once (and kopf's liveness answers): the lists run, the queue serves."""
        events.start()
        queue.start()
        background.append(asyncio.create_task(list_then_sweep(logger), name="start-up lists"))

    async def list_then_sweep(logger: kopf.Logger) -> None:
        while True:
            # The lists allocate a few containers per object and keep them all: collecting
            # meanwhile only rescans what was just built (at 10,000 resources a new resource
            # waited 4.3-8.9 s after the operator was live with it, 3.0-3.6 s without).
            gc.disable()
            try:
                primed = sync.start_prime(first_passes.listed, first_passes.followed)
                versions = await asyncio.wrap_future(primed)
                break
            except KubeError as error:
                # Unreachable (status 0): the API server is restarting, and every second it is
                # back before the lists are counts against the renewals due meanwhile.
                delay = UNREACHABLE_RETRY_SECONDS if error.status == 0 else RETRY_SECONDS
                logger.warning("Listing what the caches need: %s; again in %gs", error, delay)
            except Exception:  # the lists must end some time: whatever failed, list again
                delay = RETRY_SECONDS
                logger.exception("Listing what the caches need failed; again in %gs", delay)
            finally:
                gc.enable()
            await asyncio.sleep(delay)
        # What the lists built lives as long as the operator: never scanned again. Collected
        # first, so that no garbage from the start is frozen with it.
        gc.collect()
        gc.freeze()
        sync.follow(versions)
        sync.completed()
        first_passes.completed()
        logger.info(
            "Listed %d namespaces, %d ServiceAccounts, %d managed Secrets, %d resources in %.1fs",
            *sync.counts,
            cache.resource_count,
            sync.prime_seconds,
        )
        try:
            await asyncio.to_thread(warm)
        except Exception:  # the first pass that needs AWS loads them (and says what is wrong)
            logger.exception("Loading the AWS clients ahead failed")
        await sync.relist_every(relist_interval.total_seconds())

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        for task in background:
            task.cancel()
        sync.stop()
        if gate is not None:
            gate.stop()
        await queue.stop()
        await events.stop()
