"""The AWS rate limit: one GCRA pace for every request the operator makes, shared out fairly.

A broker call waits for its slot in the event loop (`AsyncLimiter.acquire`) and only then goes to a
worker thread, so waiting for the limit never holds a thread. In the thread, botocore's
`before-send` hook (`RateLimiter.spend`) spends that prepaid slot on the call's first HTTP request
and books every further one (an AssumeRole hop, one of botocore's few retries) without waiting:
the calls after it wait that much longer, so the rate holds over time. Requests made outside any
broker call (the CLI) wait in their thread, as before.

Who gets a slot: the namespaces that wait take turns, and a namespace's turn goes to the call most
resources wait on (single-flight followers count), the oldest among equals (`FairQueue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field


class RateLimiter:
    """GCRA: requests spaced 1/rate apart, `burst` of them at once after an idle spell. Thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self._interval = 1.0 / rate
        self._slack = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0  # theoretical arrival time of the next request
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Blocks until a request may go; returns how long it waited."""
        wait = self.book()
        if wait:
            self._sleep(wait)
        return wait

    def book(self) -> float:
        """Books the next slot at once; returns how long after now that slot is (0 if free now)."""
        with self._lock:
            now = self._clock()
            arrival = max(self._next, now)
            self._next = arrival + self._interval
            return _wait(arrival - now - self._slack)

    def delay(self) -> float:
        """How long until a request could go, without booking anything."""
        with self._lock:
            now = self._clock()
            return _wait(max(self._next, now) - now - self._slack)

    def spend(self) -> None:
        """For a request about to leave (botocore's before-send): the call's prepaid slot if it has
        one left, else booked without waiting inside a broker call, else waited for."""
        prepaid = _PREPAID.get()
        if prepaid is None:
            self.acquire()
        elif prepaid.slots:
            prepaid.slots -= 1
        else:
            self.book()


def _wait(seconds: float) -> float:
    """Float residue of adding intervals to large clock values (1e-14 s) is no wait."""
    return seconds if seconds > 1e-9 else 0.0


@dataclass
class _Prepaid:
    slots: int


_PREPAID: ContextVar[_Prepaid | None] = ContextVar("prepaid_aws_requests", default=None)


@contextlib.contextmanager
def prepaid(slots: int = 1) -> Iterator[None]:
    """Marks the calls run in this context (and threads started from it with asyncio.to_thread,
    which copies the context) as holding `slots` slots already paid for in the event loop."""
    token = _PREPAID.set(_Prepaid(slots))
    try:
        yield
    finally:
        _PREPAID.reset(token)


@dataclass(eq=False)
class Waiter:
    """One call waiting for a slot. `interest` is live: namespace -> resources waiting on the call."""

    interest: Counter[str]
    home: str
    """The namespace of the caller that started it: its turn when nobody waits any more."""
    seq: int = 0

    def namespaces(self) -> list[str]:
        return [ns for ns, n in self.interest.items() if n > 0] or [self.home]


@dataclass
class FairQueue:
    """Who goes next, on the limiter's pace. Pure: time comes from the RateLimiter's clock.

    The namespaces that wait take turns in a ring (a namespace that starts waiting joins at the
    end), so a namespace with a thousand calls waiting delays another's call by at most one slot
    per waiting namespace. A namespace's turn goes to its call the most resources wait on; among
    equals, the oldest.
    """

    pace: RateLimiter
    _waiting: list[Waiter] = field(default_factory=list)
    _turns: deque[str] = field(default_factory=deque)
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, interest: Counter[str], home: str) -> Waiter:
        waiter = Waiter(interest, home, next(self._seq))
        self._waiting.append(waiter)
        return waiter

    def remove(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(waiter)

    def release(self) -> tuple[list[Waiter], float]:
        """The waiters that may go now, in order (each has booked its slot), and how long until
        the next slot if some still wait (0 when none do)."""
        going: list[Waiter] = []
        while self._waiting:
            wait = self.pace.delay()
            if wait > 0:
                return going, wait
            self.pace.book()
            going.append(self._pop())
        return going, 0.0

    def _pop(self) -> Waiter:
        best: dict[str, tuple[int, int, Waiter]] = {}  # namespace -> (-weight, seq, waiter)
        for waiter in self._waiting:  # in arrival order: namespaces new to the ring join in that order
            rank = (-sum(waiter.interest.values()), waiter.seq, waiter)
            for namespace in waiter.namespaces():
                if namespace not in best or rank[:2] < best[namespace][:2]:
                    best[namespace] = rank
        ring = [ns for ns in self._turns if ns in best]
        known = set(ring)
        self._turns = deque(ring + [ns for ns in best if ns not in known])
        namespace = self._turns.popleft()
        self._turns.append(namespace)
        chosen = best[namespace][2]
        self._waiting.remove(chosen)
        return chosen


class AsyncLimiter:
    """The FairQueue driven by the event loop: `acquire` waits without a thread."""

    def __init__(self, pace: RateLimiter) -> None:
        self.pace = pace
        self._queue = FairQueue(pace)
        self._futures: dict[Waiter, asyncio.Future[None]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def acquire(self, interest: Counter[str], home: str) -> None:
        """Returns when the call may send its first request (one slot booked for it)."""
        waiter = self._queue.add(interest, home)
        future = asyncio.get_running_loop().create_future()
        self._futures[waiter] = future
        try:
            if self._timer is None:
                self._dispatch()
            await future
        finally:
            self._futures.pop(waiter, None)
            if future.cancelled() or not future.done():  # cancelled while waiting: give the turn up
                self._queue.remove(waiter)

    def _dispatch(self) -> None:
        self._timer = None
        going, wait = self._queue.release()
        for waiter in going:
            future = self._futures.get(waiter)
            if future is not None and not future.done():
                future.set_result(None)
        if wait:
            self._timer = asyncio.get_running_loop().call_later(wait, self._dispatch)
