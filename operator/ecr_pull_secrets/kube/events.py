"""Events about our resources, posted in the background (core/v1, as `kubectl describe` shows them).

Our own because kopf's `kopf.event()` works only inside kopf's processing of an object it watches,
and the operator watches its resources itself. Posting never blocks a reconcile: Events wait in a
bounded backlog and a few posters send them, each object's always through the same poster, so its
Events keep their order. When a backlog is full (thousands of resources issued at once), the
oldest Normal Event is dropped, a Warning only when nothing else waits: a failure's Event is the
one that says why a pull fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ecr_pull_secrets.kube.client import KubeError, Rest, collection_path

log = logging.getLogger(__name__)

COMPONENT = "ecr-pull-secret-operator"
MAX_MESSAGE = 1024
BACKLOG = 1000
"""Events waiting per poster before one is dropped (they are a story, not a record)."""
POSTERS = 4
CLUSTER_EVENTS_NAMESPACE = "default"


def event_body(
    involved: Mapping[str, Any], *, type: str, reason: str, message: str, namespace: str, at: datetime
) -> dict[str, Any]:
    """A core/v1 Event about `involved` (a resource's body), as the API server stores it."""
    meta = involved.get("metadata") or {}
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE // 2 - 2] + " … " + message[-(MAX_MESSAGE // 2 - 2) :]
    stamp = at.isoformat()
    return {
        "metadata": {"namespace": namespace, "generateName": f"{meta.get('name') or 'resource'}."},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "namespace": namespace,
        },
        "type": type,
        "reason": reason,
        "message": message,
        "action": reason,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "count": 1,
    }


class Backlog:
    """Events waiting for one poster, first in first out; bounded (see the module's docstring)."""

    def __init__(self, size: int = BACKLOG) -> None:
        self._size = size
        self._waiting: deque[dict[str, Any]] = deque()
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sending = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, event: dict[str, Any]) -> None:
        if len(self._waiting) >= self._size:
            normal = next((e for e in self._waiting if e.get("type") != "Warning"), None)
            if normal is not None:
                self._waiting.remove(normal)
            else:
                self._waiting.popleft()
            self.dropped += 1
        self._waiting.append(event)
        self._ready.set()
        self._idle.clear()

    async def get(self) -> dict[str, Any]:
        """The next Event; call done() once it is sent (or given up)."""
        while not self._waiting:
            self._ready.clear()
            await self._ready.wait()
        self._sending += 1
        return self._waiting.popleft()

    def done(self) -> None:
        self._sending -= 1
        if not self._waiting and not self._sending:
            self._idle.set()

    async def join(self) -> None:
        """Returns once nothing waits and nothing is being sent."""
        await self._idle.wait()


class EventPoster:
    def __init__(self, rest: Rest, *, clock: Callable[[], datetime], posters: int = POSTERS) -> None:
        self._rest = rest
        self._clock = clock
        self._queues = [Backlog() for _ in range(posters)]
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def dropped(self) -> int:
        return sum(queue.dropped for queue in self._queues)

    def post(self, body: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
        """In the event loop; never blocks. A cluster-scoped object's Events go to `default` (the
        chart grants that namespace for them; `kubectl describe` finds them in any namespace)."""
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace") or CLUSTER_EVENTS_NAMESPACE
        event = event_body(
            body, type=type, reason=reason, message=message, namespace=namespace, at=self._clock()
        )
        self._queues[zlib.crc32(str(meta.get("uid")).encode()) % len(self._queues)].put(event)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._send(queue), name=f"events/{n}") for n, queue in enumerate(self._queues)
        ]

    async def stop(self) -> None:
        """Sends what is waiting (a few seconds at most), then stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues)), timeout=5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self, queue: Backlog) -> None:
        while True:
            body = await queue.get()
            try:
                namespace = body["metadata"]["namespace"]
                await asyncio.to_thread(
                    self._rest.request, "POST", collection_path("events", namespace), "post an Event", body
                )
            except KubeError as error:
                log.warning("an Event (%s) was not posted: %s", body["reason"], error)
            finally:
                queue.done()
