"""The AWS rate limit: one GCRA pace for every request the operator makes, shared out fairly in
requests, not in calls.

A broker call waits for its turn in the event loop (`AsyncLimiter.slots`) and only then goes to a
worker thread, so waiting for the limit never holds a thread. Its turn books every request the
call is known to make (its `cost`: one per role a session resolution assumes, web identity
included; one for a token or identity call); in the thread, botocore's `before-send` hook
(`RateLimiter.spend`) spends those prepaid slots, and books any further request (one of botocore's
retries) without waiting. Those extra requests are charged to the namespace whose turn it was, so
its next turn comes that much later. Requests made outside any broker call (the CLI) wait in their
thread, as before.

Who gets a turn: the waiting namespace that has been given the fewest requests (`FairQueue`), and
within it the call most resources wait on (single-flight followers count), the oldest among equals.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
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
        self.booked = 0
        """Requests booked so far (waited for or not): what the operator sent or is about to."""

    def acquire(self) -> float:
        """Blocks until a request may go; returns how long it waited."""
        wait = self.book()
        if wait:
            self._sleep(wait)
        return wait

    def book(self, slots: int = 1) -> float:
        """Books the next `slots` slots at once; returns how long after now the first of them is
        (0 if free now)."""
        with self._lock:
            now = self._clock()
            arrival = max(self._next, now)
            self._next = arrival + slots * self._interval
            self.booked += slots
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
            prepaid.overrun += 1


def _wait(seconds: float) -> float:
    """Float residue of adding intervals to large clock values (1e-14 s) is no wait."""
    return seconds if seconds > 1e-9 else 0.0


@dataclass
class Prepaid:
    slots: int
    """Booked in the event loop, not spent yet."""
    overrun: int = 0
    """Requests made beyond those: booked without waiting."""


_PREPAID: ContextVar[Prepaid | None] = ContextVar("prepaid_aws_requests", default=None)


@contextlib.contextmanager
def prepaid(slots: int = 1) -> Iterator[Prepaid]:
    """Marks the calls run in this context (and threads started from it with asyncio.to_thread,
    which copies the context) as holding `slots` slots already paid for in the event loop."""
    paid = Prepaid(slots)
    token = _PREPAID.set(paid)
    try:
        yield paid
    finally:
        _PREPAID.reset(token)


@dataclass(eq=False)
class Waiter:
    """One call waiting for its turn. `interest` is live: namespace -> resources waiting on the call."""

    interest: Mapping[str, int]
    home: str
    """The namespace of the caller that started it: its turn when nobody waits any more."""
    cost: int = 1
    """The AWS requests its turn books."""
    seq: int = 0
    payer: str = ""
    """The namespace whose turn it went on, once released: charged for its requests."""

    def namespaces(self) -> list[str]:
        return [ns for ns, n in self.interest.items() if n > 0] or [self.home]


@dataclass
class FairQueue:
    """Who goes next, on the limiter's pace, fair in AWS requests. Pure: time comes from the
    RateLimiter's clock.

    Deficit round robin with a one-request quantum, in closed form (start-time fair queuing): each
    namespace has a count of the requests it has been given; the waiting namespace with the
    lowest count has the turn, its call books all `cost` requests at once and adds them to the
    count. A namespace that starts waiting is brought up to the count the last turn started from,
    so time spent idle banks no credit; requests a call made beyond its cost are added afterwards
    (`charge`). Ties go to the namespace served least recently (one new to the queue joins at the
    end of that ring).

    So namespaces get requests, not calls, in equal shares: a namespace whose calls cost 7
    requests (web identity, 5 role hops, the token) gets one call in while a namespace of 1-request
    calls gets seven, and a call waits for at most one call of each other waiting namespace,
    however many those queue. A namespace's turn goes to its call the most resources wait on;
    among equals, the oldest.
    """

    pace: RateLimiter
    _waiting: list[Waiter] = field(default_factory=list)
    _turns: deque[str] = field(default_factory=deque)
    _given: dict[str, int] = field(default_factory=dict)
    """Namespace -> requests given; only namespaces that wait or are ahead of `_start`."""
    _start: int = 0
    """The count the last turn started from (the virtual time)."""
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, interest: Mapping[str, int], home: str, cost: int = 1) -> Waiter:
        waiter = Waiter(interest, home, cost, next(self._seq))
        self._waiting.append(waiter)
        return waiter

    def remove(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(waiter)

    def charge(self, namespace: str, requests: int) -> None:
        """`namespace` had `requests` more than its turns booked (retries): its next turn comes later."""
        if requests > 0:
            self._given[namespace] = max(self._given.get(namespace, 0), self._start) + requests

    def given(self, namespace: str) -> int:
        """The requests `namespace` has been given, counted from the virtual time it joined at."""
        return self._given.get(namespace, self._start)

    def release(self) -> tuple[list[Waiter], float]:
        """The waiters that may go now, in order (each has booked its cost), and how long until
        the next slot if some still wait (0 when none do)."""
        going: list[Waiter] = []
        while self._waiting:
            wait = self.pace.delay()
            if wait > 0:
                return going, wait
            waiter = self._pop()
            self.pace.book(waiter.cost)
            going.append(waiter)
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
        for namespace in best:  # idle time banks no credit
            self._given[namespace] = max(self._given.get(namespace, 0), self._start)
        namespace = min(self._turns, key=lambda ns: self._given[ns])  # the first of equals in the ring
        self._turns.remove(namespace)
        self._turns.append(namespace)
        chosen = best[namespace][2]
        self._waiting.remove(chosen)
        chosen.payer = namespace
        self._start = self._given[namespace]
        self._given[namespace] += chosen.cost
        for idle in [ns for ns, n in self._given.items() if ns not in best and n <= self._start]:
            del self._given[idle]  # it would join at `_start` anyway
        return chosen


class AsyncLimiter:
    """The FairQueue driven by the event loop: waiting for a turn holds no thread."""

    def __init__(self, pace: RateLimiter) -> None:
        self.pace = pace
        self.queue = FairQueue(pace)
        self._futures: dict[Waiter, asyncio.Future[None]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return len(self.queue)

    @contextlib.asynccontextmanager
    async def slots(self, interest: Mapping[str, int], home: str, cost: int = 1) -> AsyncIterator[None]:
        """Waits for the call's turn, which books its `cost` requests (none: no wait); the call
        runs inside and spends them (threads started with asyncio.to_thread too). Requests beyond
        are booked without waiting and charged to the namespace whose turn it was."""
        payer = (await self.acquire(interest, home, cost)).payer if cost else home
        with prepaid(cost) as paid:
            try:
                yield
            finally:
                self.queue.charge(payer, paid.overrun)

    async def acquire(self, interest: Mapping[str, int], home: str, cost: int = 1) -> Waiter:
        """Returns when the call may send its first request (`cost` slots booked for it)."""
        waiter = self.queue.add(interest, home, cost)
        future = asyncio.get_running_loop().create_future()
        self._futures[waiter] = future
        try:
            if self._timer is None:
                self._dispatch()
            await future
            return waiter
        finally:
            self._futures.pop(waiter, None)
            if future.cancelled() or not future.done():  # cancelled while waiting: give the turn up
                self.queue.remove(waiter)
                if not len(self.queue) and self._timer is not None:
                    self._timer.cancel()
                    self._timer = None

    def _dispatch(self) -> None:
        self._timer = None
        going, wait = self.queue.release()
        for waiter in going:
            future = self._futures.get(waiter)
            if future is not None and not future.done():
                future.set_result(None)
        if wait:
            self._timer = asyncio.get_running_loop().call_later(wait, self._dispatch)
