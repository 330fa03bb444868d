"""One work queue for every resource, in place of a task per resource.

A uid is in at most one place at a time: waiting in a lane, being worked on, or due at a time on
the timer. Two lanes: `urgent` (a change: a new or edited resource, a deleted or edited Secret, a
namespace or ServiceAccount that matters) is always taken before `routine` (scheduled renewals,
the sweep over what was listed at start). A uid added while it is being worked on is worked on
again right after, never by two consumers at once. One heap and one task make the timer, however
many resources wait. A failed pass is retried after a per-resource backoff. A pass that must wait
for AWS steps aside (step_aside): its consumer goes on with the next uid meanwhile. While an urgent
pass is under way (and not stepped aside), no routine pass starts for up to a second, and
background work that asks (wait_calm) waits too.

Within a lane, namespaces take turns (round robin): a tenant that makes hundreds of its resources
due at once waits behind itself, not in front of everybody else. A quarter of the consumers (none
when there are fewer than four) take only urgent work: a storm
of renewals waiting on the AWS rate limit never holds up the repair of a deleted Secret from tokens
already at hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import heapq
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

Work = Callable[[str], Awaitable[datetime | None]]
_stepping_aside: contextvars.ContextVar[asyncio.Future[None] | None] = contextvars.ContextVar(
    "stepping_aside", default=None
)


def step_aside() -> None:
    """Called by a pass that is about to wait for AWS (a token no one holds yet): its consumer
    takes the next uid while it waits, so that passes waiting at the AWS rate limit never hold up
    those that need no AWS call. The pass goes on (and its uid stays taken) until it ends; the
    rate limit and the per-namespace chain quota bound how many wait. At most ASIDE_PER_CONSUMER x
    consumers wait aside; beyond that a consumer waits with its pass. Outside a pass: nothing."""
    released = _stepping_aside.get()
    if released is not None:
        _release(released)


def _released_by(released: asyncio.Future[None], _: asyncio.Task[None]) -> None:
    _release(released)


def _release(released: asyncio.Future[None]) -> None:
    if not released.done():
        released.set_result(None)


class _Lane:
    """uids waiting, in turns by group (a namespace), first come first served within a group."""

    def __init__(self) -> None:
        self._groups: dict[str, deque[str]] = {}
        self._turns: deque[str] = deque()

    def __bool__(self) -> bool:
        return bool(self._turns)

    def push(self, group: str, uid: str) -> None:
        waiting = self._groups.get(group)
        if waiting is None:
            waiting = self._groups[group] = deque()
            self._turns.append(group)
        waiting.append(uid)

    def pop(self) -> str:
        group = self._turns.popleft()
        waiting = self._groups[group]
        uid = waiting.popleft()
        if waiting:
            self._turns.append(group)  # its next one waits for everybody else's turn
        else:
            del self._groups[group]
        return uid

    def remove(self, group: str, uid: str) -> None:
        waiting = self._groups[group]
        waiting.remove(uid)
        if not waiting:
            del self._groups[group]
            self._turns.remove(group)


"""Works on one uid; returns when to work on it again (None: at its next change)."""

# Re-reading the plan at least this often bounds the harm of a wall-clock jump.
MAX_SLEEP = timedelta(minutes=30)
ERROR_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
ROUTINE_YIELDS_AT_MOST = 1.0
"""Seconds routine work waits for urgent passes before it goes on in turns with them."""
ASIDE_PER_CONSUMER = 4
"""Passes waiting for AWS per consumer before a consumer waits with its own."""


class WorkQueue:
    def __init__(
        self,
        work: Work,
        *,
        clock: Callable[[], datetime],
        consumers: int = 8,
        describe: Callable[[str], str] = str,
        group: Callable[[str], str] = lambda uid: "",
        backoff: tuple[float, ...] = ERROR_BACKOFF,
        routine_yields_at_most: float = ROUTINE_YIELDS_AT_MOST,
    ) -> None:
        self._work = work
        self._clock = clock
        self._consumers = consumers
        self._describe = describe
        self._group = group
        self._backoff = backoff
        self._lanes = (_Lane(), _Lane())
        self._queued: dict[str, tuple[int, str]] = {}
        """uid -> the lane it waits in (0 urgent, 1 routine) and its group"""
        self._active: set[str] = set()
        self._again: dict[str, int] = {}
        """uids added while being worked on -> the lane to go back to"""
        self._due: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._sequence = 0
        self._errors: dict[str, int] = {}
        self._ready = asyncio.Event()
        self._timer_changed = asyncio.Event()
        self._open = asyncio.Event()
        self._open.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._passes: set[asyncio.Task[None]] = set()
        self._aside = asyncio.Semaphore(max(consumers, 1) * ASIDE_PER_CONSUMER)
        """Places for passes that stepped aside: their number is bounded, so is the memory they hold."""
        self._changing: set[str] = set()
        """uids of urgent passes under way and not stepped aside: while there are any, no routine
        pass starts (see calm)."""
        self._calm = threading.Event()
        self._calm.set()
        self._yields_at_most = routine_yields_at_most
        self._yielding_since: float | None = None
        """When routine work began to wait for urgent passes (None: it does not)."""

    # -- feeding -----------------------------------------------------------------------------

    def add(self, uid: str, *, urgent: bool = True) -> None:
        lane = 0 if urgent else 1
        if uid in self._active:
            self._again[uid] = min(lane, self._again.get(uid, lane))
            return
        queued = self._queued.get(uid)
        if queued is not None:
            if queued[0] <= lane:
                return
            self._lanes[queued[0]].remove(queued[1], uid)  # promoted
        self._due.pop(uid, None)  # the heap entry goes stale and is skipped
        group = self._group(uid)
        self._queued[uid] = (lane, group)
        self._lanes[lane].push(group, uid)
        self._ready.set()

    def add_at(self, uid: str, at: datetime) -> None:
        """Work on it at `at` (routine lane), unless it is added sooner; replaces an earlier time."""
        if uid in self._queued or uid in self._active:
            return
        self._due[uid] = at
        self._sequence += 1
        if len(self._heap) > 2 * len(self._due) + 64:  # mostly replaced times: start afresh
            self._heap = [(when, n, u) for n, (u, when) in enumerate(self._due.items())]
            heapq.heapify(self._heap)
        heapq.heappush(self._heap, (at, self._sequence, uid))
        if self._heap[0][2] == uid:
            self._timer_changed.set()

    def forget(self, uid: str) -> None:
        queued = self._queued.pop(uid, None)
        if queued is not None:
            self._lanes[queued[0]].remove(queued[1], uid)
        self._again.pop(uid, None)
        self._due.pop(uid, None)
        self._errors.pop(uid, None)

    @property
    def depth(self) -> int:
        """Waiting to be worked on now."""
        return len(self._queued)

    @property
    def working(self) -> int:
        return len(self._active)

    @property
    def scheduled(self) -> int:
        return len(self._due)

    @property
    def timer_size(self) -> int:
        """Entries in the timer's heap, replaced times included until they surface."""
        return len(self._heap)

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        reserved = self._consumers // 4
        self._tasks = [
            asyncio.create_task(self._consume(urgent_only=n < reserved), name=f"work-queue/{n}")
            for n in range(self._consumers)
        ]
        self._tasks.append(asyncio.create_task(self._timer(), name="work-queue/timer"))

    async def stop(self) -> None:
        for task in (*self._tasks, *self._passes):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._passes, return_exceptions=True)
        self._tasks = []

    def pause(self) -> None:
        """No new pass starts until resume() (one under way finishes); adding goes on."""
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    def wait_calm(self, timeout: float) -> None:
        """From any thread: returns once no urgent pass is under way, or after `timeout`. Background
        work (the start-up lists) gives way with it, as routine passes do."""
        self._calm.wait(timeout)

    async def _take(self, *, urgent_only: bool) -> tuple[str, bool]:
        """The next uid, and whether it came from the urgent lane. Routine work waits while an
        urgent pass is under way: a change is served with the whole process (the event loop and
        the GIL), not in turns with hundreds of renewals."""
        loop = asyncio.get_running_loop()
        while True:
            await self._open.wait()
            wait: float | None = None
            if self._lanes[0]:
                break
            if self._lanes[1] and not urgent_only:
                if not self._changing:
                    break
                # Changes one after another must not starve renewals: routine work gives way for
                # at most a while, then goes on in turns with them until the changes are done.
                if self._yielding_since is None:
                    self._yielding_since = loop.time()
                wait = self._yielding_since + self._yields_at_most - loop.time()
                if wait <= 0:
                    break
            self._ready.clear()
            timer = loop.call_later(wait, self._ready.set) if wait is not None else None
            try:
                await self._ready.wait()
            finally:
                if timer is not None:
                    timer.cancel()
        urgent = bool(self._lanes[0])
        uid = self._lanes[0 if urgent else 1].pop()
        del self._queued[uid]
        self._active.add(uid)
        if urgent:
            self._changing.add(uid)
            self._calm.clear()
        return uid, urgent

    def _settle(self, uid: str) -> None:
        """An urgent pass has ended or stepped aside."""
        self._changing.discard(uid)
        if not self._changing:
            self._yielding_since = None
            self._calm.set()
            self._ready.set()

    async def _consume(self, *, urgent_only: bool) -> None:
        """Takes a uid, runs its pass, and takes the next once the pass has ended or stepped
        aside to wait for AWS (see step_aside)."""
        loop = asyncio.get_running_loop()
        while True:
            uid, urgent = await self._take(urgent_only=urgent_only)
            released: asyncio.Future[None] = loop.create_future()
            task = asyncio.create_task(self._pass(uid, released), name=f"pass/{uid}")
            self._passes.add(task)
            task.add_done_callback(self._passes.discard)
            task.add_done_callback(functools.partial(_released_by, released))
            try:
                await released
                if urgent:
                    self._settle(uid)
                if not task.done():  # it stepped aside: it holds a place among those waiting
                    await self._aside.acquire()
                    task.add_done_callback(lambda _: self._aside.release())
            except asyncio.CancelledError:
                task.cancel()
                if urgent:
                    self._settle(uid)
                raise

    async def _pass(self, uid: str, released: asyncio.Future[None]) -> None:
        _stepping_aside.set(released)
        try:
            next_at = await self._run(uid)
        finally:
            self._active.discard(uid)
        again = self._again.pop(uid, None)
        if again is not None:
            self.add(uid, urgent=again == 0)
        elif next_at is not None:
            self.add_at(uid, next_at)

    async def _run(self, uid: str) -> datetime | None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("working on %s", self._describe(uid))
        try:
            next_at = await self._work(uid)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Only unexpected faults land here (the API server is down, say); never token material.
            errors = self._errors.get(uid, 0)
            self._errors[uid] = errors + 1
            delay = self._backoff[min(errors, len(self._backoff) - 1)]
            log.exception("working on %s failed; retrying in %.0fs", self._describe(uid), delay)
            return self._clock() + timedelta(seconds=delay)
        self._errors.pop(uid, None)
        return next_at

    async def _timer(self) -> None:
        while True:
            self._timer_changed.clear()
            now = self._clock()
            while self._heap and (
                self._heap[0][0] <= now or self._due.get(self._heap[0][2]) != self._heap[0][0]
            ):
                at, _, uid = heapq.heappop(self._heap)
                if self._due.get(uid) == at:
                    del self._due[uid]
                    self.add(uid, urgent=False)
            wait = MAX_SLEEP.total_seconds()
            if self._heap:
                wait = min(wait, (self._heap[0][0] - now).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_changed.wait(), timeout=max(wait, 0.0))
