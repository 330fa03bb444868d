"""The composition root: build the operator's parts from Settings and hand them to kopf.

In two steps, so that a restart serves sooner: first the few parts the start-up lists need (the
Kubernetes client, the caches, the queue, the watches), and the lists start in a thread; then,
while they run, the rest of the operator is imported and built (kopf, aiohttp and botocore take
about a second to import, as long as the lists of a few thousand objects) in `assembly`.
"""

from __future__ import annotations

import getpass
import os
import random
import socket
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.peering import PeeringGate
from ecr_pull_secrets.handlers.queue import WorkQueue
from ecr_pull_secrets.handlers.sync import CacheSync, Primed, ResourceEvents
from ecr_pull_secrets.kube.client import ApiClient, new_api_client
from ecr_pull_secrets.kube.listing import Listing
from ecr_pull_secrets.kube.watching import Watching
from ecr_pull_secrets.settings import Settings

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ecr_pull_secrets.handlers.reconciler import Reconciler

WATCH_CONNECTIONS = 64
"""Each watch holds a connection for minutes: a pool of their own, so that they never take the
connections the workers' short requests reuse."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Passes:
    """The queue's work: a reconciler's pass over one resource. The reconciler is built after the
    lists have started, and no pass runs before they have ended."""

    cache: ClusterCache
    reconciler: Reconciler | None = None

    async def work(self, uid: str) -> datetime | None:
        body = self.cache.resource(uid)
        if body is None or self.reconciler is None:
            return None
        return (await self.reconciler.reconcile(body)).wake_at

    def forget(self, uid: str) -> None:
        if self.reconciler is not None:
            self.reconciler.forget(uid)


@dataclass
class Early:
    """What the first step built and started."""

    api_client: ApiClient
    cache: ClusterCache
    queue: WorkQueue
    sync: CacheSync
    gate: PeeringGate | None
    identity: str
    passes: Passes
    primed: Future[Primed] = field(repr=False)


def run(config: Settings) -> int:
    api_client = new_api_client(pool_size=config.workers)
    cache = ClusterCache()
    passes = Passes(cache)
    queue = WorkQueue(
        passes.work,
        clock=utcnow,
        consumers=config.workers,
        describe=lambda uid: describe(cache.resource(uid) or {}, uid),
        group=lambda uid: ((cache.resource(uid) or {}).get("metadata") or {}).get("namespace", ""),
    )
    identity = own_identity()
    gate = (
        PeeringGate(
            name=config.peering,
            identity=identity,
            priority=config.peering_priority,
            clock=utcnow,
            pause=queue.pause,
            resume=queue.resume,
        )
        if config.peering is not None
        else None
    )
    sync = CacheSync(
        cache,
        Listing(api_client),
        queue.add,
        config.namespaces,
        watching=Watching(new_api_client(pool_size=WATCH_CONNECTIONS)),
        on_resource=ResourceEvents(cache, queue, passes.forget),
        peering=None
        if gate is None
        else ("kopfpeerings" if config.namespaces else "clusterkopfpeerings", gate.event),
    )
    primed = sync.start_prime()
    # Imported here, while the lists run: kopf, aiohttp and botocore.
    from ecr_pull_secrets.runtime import assembly  # noqa: PLC0415

    early = Early(api_client, cache, queue, sync, gate, identity, passes, primed)
    return assembly.serve(config, early)


def own_identity() -> str:
    """This replica's name in kopf's peering object, as kopf would make it: POD_ID, or who and
    where plus the start time. Given to kopf, so that the peering gate knows its own entry."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=3))  # noqa: S311
    return f"{getpass.getuser()}@{socket.gethostname()}/{started}/{suffix}"


def describe(body: Mapping[str, Any], uid: str) -> str:
    meta = body.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{body.get('kind', 'resource')} {where}{meta.get('name', uid)}"
