"""Work while the start-up lists still run: a change is served at once, the rest waits for the lists.

A pass over a namespaced resource needs only its own namespace of the caches, which
`CacheSync.read_namespace` reads directly; so a new or edited resource, or one whose Secret was
deleted, is served seconds after a start however large the cluster. A ClusterEcrPullSecret needs
every namespace, and a resource no list or watch has shown yet has nothing to work on: both wait
for the lists. So does the sweep over what the lists showed (resources whose status does not
answer their spec first, then the rest), which would otherwise read thousands of namespaces one
by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.queue import WorkQueue
from ecr_pull_secrets.handlers.sync import CACHED, CacheSync
from ecr_pull_secrets.model import api
from ecr_pull_secrets.plan.status import settled


class FirstPasses:
    def __init__(self, cache: ClusterCache, sync: CacheSync, queue: WorkQueue) -> None:
        self._cache = cache
        self._sync = sync
        self._queue = queue
        self._waiting: set[str] = set()
        """uids whose pass found it could not go yet: queued again when it can."""
        self._served: set[str] = set()
        """uids a pass went ahead for before the lists ended: the sweep leaves them out."""
        self._uncovered: dict[str, set[str]] = {}
        """namespace -> uids whose pass found the watches there not started yet"""

    async def body(self, uid: str) -> Mapping[str, Any] | None:
        """The resource to work on, once what its pass reads is in the caches; None: not now (it
        is queued again when the lists have shown what it needs) or gone."""
        body = self._cache.resource(uid)
        if self._sync.complete:
            return body
        if body is None or body.get("kind") == api.CLUSTER_KIND:
            self._waiting.add(uid)
            return None
        namespace = str(body["metadata"].get("namespace") or "")
        if not await self._sync.read_namespace(namespace):
            self._waiting.add(uid)
            self._uncovered.setdefault(namespace, set()).add(uid)
            return None
        self._waiting.discard(uid)
        self._served.add(uid)
        return self._cache.resource(uid)

    def listed(self, uid: str) -> None:
        """A start-up list recorded this resource: if a pass waited for it, it goes now."""
        if uid in self._waiting:
            self._queue.add(uid)

    def followed(self, scope: tuple[str, str | None]) -> None:
        """A watch started (its list's first page came): passes that waited for the watches of
        their namespace try again (a resource newer than the lists is never listed)."""
        plural, namespace = scope
        if plural not in CACHED:
            return
        for where in [namespace] if namespace is not None else list(self._uncovered):
            for uid in self._uncovered.pop(where, ()):
                self._queue.add(uid)

    def completed(self) -> None:
        """The lists have ended: every resource not served meanwhile is queued. First those whose
        status does not answer their spec (new, edited, being deleted, a refresh asked for) and
        those none of whose Secrets is there (deleted while the operator was away)."""
        for uid in self._cache.all_resources():
            if uid in self._served and uid not in self._waiting:
                continue
            self._queue.add(uid, urgent=uid in self._waiting or not self._looks_served(uid))
        self._waiting.clear()
        self._served.clear()
        self._uncovered.clear()

    def _looks_served(self, uid: str) -> bool:
        body = self._cache.resource(uid)
        return body is not None and settled(body) and bool(self._cache.secrets_of(uid))
