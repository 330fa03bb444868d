"""Stand by while another replica outranks this one in kopf's peering object; work otherwise.

A standby keeps its caches current (its watches go on), so when it takes over it serves at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ecr_pull_secrets.plan.peering import blockers

log = logging.getLogger(__name__)


class PeeringGate:
    def __init__(
        self,
        *,
        name: str,
        identity: str,
        priority: int,
        clock: Callable[[], datetime],
        pause: Callable[[], None],
        resume: Callable[[], None],
    ) -> None:
        self.name = name
        self._identity = identity
        self._priority = priority
        self._clock = clock
        self._pause = pause
        self._resume = resume
        self._peers: dict[str, Mapping[str, Any]] = {}
        """namespace ("" for the cluster's object) -> that peering object's status"""
        self._standing_by: bool | None = None
        self._recheck: asyncio.TimerHandle | None = None

    def event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        """In the event loop: a watch event of a peering object (others' names are ignored)."""
        meta = body.get("metadata") or {}
        if meta.get("name") != self.name:
            return
        where = str(meta.get("namespace") or "")
        if type_ == "DELETED":
            self._peers.pop(where, None)
        else:
            status = body.get("status")
            self._peers[where] = status if isinstance(status, Mapping) else {}
        self.decide()

    def listed(self) -> None:
        """The start-up list of peering objects has ended: decide, even if it showed none."""
        self.decide()

    def decide(self) -> None:
        now = self._clock()
        found = [
            b
            for peers in self._peers.values()
            for b in blockers(peers, identity=self._identity, priority=self._priority, now=now)
        ]
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        if found:
            # A blocker that stops keeping alive (its node died) stops counting at `until`.
            soonest = min(b.until for b in found)
            delay = max((soonest - now).total_seconds(), 0.0) + 0.1
            self._recheck = asyncio.get_running_loop().call_later(delay, self.decide)
        standing_by = bool(found)
        if standing_by == self._standing_by:
            return
        self._standing_by = standing_by
        if standing_by:
            top = max(found, key=lambda b: b.priority)
            log.info(
                "Standing by: peer %s has priority %d (ours: %d); watching, not working",
                top.identity,
                top.priority,
                self._priority,
            )
            self._pause()
        else:
            log.info("Working: no live peer outranks this replica (priority %d)", self._priority)
            self._resume()

    def stop(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
