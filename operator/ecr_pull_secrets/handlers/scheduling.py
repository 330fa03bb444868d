"""Per-resource reconcile loops: run on every change, and again when the plan says to.

kopf's own daemons would do this but put a finalizer on every resource, which blocks deletion
whenever the operator is down; a task per resource fed by watch events needs none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ecr_pull_secrets.handlers.reconciler import Outcome

log = logging.getLogger(__name__)

Reconcile = Callable[[Mapping[str, Any]], Awaitable[Outcome]]
Observed = Callable[[Mapping[str, Any]], datetime | None]
Clock = Callable[[], datetime]

# Re-reading the plan at least this often bounds the harm of a wall-clock jump.
MAX_SLEEP = timedelta(minutes=30)
# How long to wait for our own status write to come back through the watch.
ECHO_TIMEOUT = timedelta(seconds=30)
ERROR_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Scheduler:
    def __init__(
        self,
        reconcile: Reconcile,
        observed_attempt: Observed,
        clock: Callable[[], datetime],
        forget: Callable[[str], None] = lambda uid: None,
    ) -> None:
        self._reconcile = reconcile
        self._on_forget = forget
        self._observed_attempt = observed_attempt
        self._clock = clock
        self._bodies: dict[str, Mapping[str, Any]] = {}
        self._kicks: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def observe(self, uid: str, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Feed every watch event here; the loop for that resource wakes up and looks."""
        if deleted:
            self._forget(uid)
            return
        self._bodies[uid] = body
        if uid not in self._tasks:
            self._kicks[uid] = asyncio.Event()
            self._tasks[uid] = asyncio.create_task(self._loop(uid), name=f"reconcile/{uid}")
        self._kicks[uid].set()

    def kick(self, uid: str) -> None:
        """Something the resource depends on changed (its Secret, say): look at it again."""
        kick = self._kicks.get(uid)
        if kick is not None:
            kick.set()

    def kick_where(self, concerned: Callable[[Mapping[str, Any]], bool]) -> None:
        for uid, body in self._bodies.items():
            if concerned(body):
                self._kicks[uid].set()

    @property
    def tracked(self) -> int:
        return len(self._tasks)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for uid in list(self._tasks):
            self._forget(uid)
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, uid: str) -> None:
        self._on_forget(uid)
        task = self._tasks.pop(uid, None)
        if task is not None:
            task.cancel()
        self._bodies.pop(uid, None)
        self._kicks.pop(uid, None)

    async def _loop(self, uid: str) -> None:
        kick = self._kicks[uid]
        errors = 0
        while True:
            kick.clear()
            body = self._bodies[uid]
            try:
                outcome = await self._reconcile(body)
            except Exception:
                # Only unexpected faults land here (e.g. the API server is down); never token material.
                delay = ERROR_BACKOFF[min(errors, len(ERROR_BACKOFF) - 1)]
                errors += 1
                log.exception("reconciling %s failed; retrying in %.0fs", _name(body), delay)
                await _sleep_or_kick(kick, delay)
                continue
            errors = 0
            if outcome.attempted_at is not None:
                await self._await_echo(uid, outcome.attempted_at)
                continue
            if outcome.wake_at is None:
                await kick.wait()
            else:
                delay = min(outcome.wake_at - self._clock(), MAX_SLEEP).total_seconds()
                await _sleep_or_kick(kick, delay)

    async def _await_echo(self, uid: str, attempted_at: datetime) -> None:
        """Deciding again on a body that predates our own write could renew twice."""
        deadline = self._clock() + ECHO_TIMEOUT
        kick = self._kicks[uid]
        while True:
            kick.clear()
            remaining = (deadline - self._clock()).total_seconds()
            if remaining <= 0 or _caught_up(self._observed_attempt(self._bodies[uid]), attempted_at):
                return
            await _sleep_or_kick(kick, remaining)


def _caught_up(observed: datetime | None, attempted_at: datetime) -> bool:
    return observed is not None and observed >= attempted_at


async def _sleep_or_kick(kick: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(kick.wait(), timeout=seconds)


def _name(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{body.get('kind', 'resource')} {where}{meta.get('name')}"
