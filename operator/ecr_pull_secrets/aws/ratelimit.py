"""A blocking rate limiter (GCRA) for every AWS request the operator makes, retries included."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._interval = 1.0 / rate
        self._slack = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0  # theoretical arrival time of the next request
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Blocks until a request may go; returns how long it waited."""
        with self._lock:
            now = self._clock()
            arrival = max(self._next, now)
            wait = max(0.0, arrival - now - self._slack)
            self._next = arrival + self._interval
        if wait:
            self._sleep(wait)
        return wait
