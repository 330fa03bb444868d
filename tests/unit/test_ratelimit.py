"""RateLimiter: spacing, burst, refill and thread safety, on fake time."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from ecr_pull_secrets.aws.ratelimit import RateLimiter

# time.monotonic() is seconds since boot: fake clocks start at realistic values, not only at 0.
STARTS = [0.0, 1000.0, 3_600_000.0]
NOISE = 1e-6  # float residue of adding 0.1 s to large clock values; far below any real wait


class FakeTime:
    """A clock whose sleep advances it, so waiting costs no real time."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(time_: FakeTime, rate: float, burst: int = 1) -> RateLimiter:
    return RateLimiter(rate, burst, clock=time_.clock, sleep=time_.sleep)


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize(
    ("rate", "count", "elapsed"),
    [
        pytest.param(10, 30, 2.9, id="10/s-30"),
        pytest.param(10, 1, 0.0, id="10/s-1"),
        pytest.param(2, 5, 2.0, id="2/s-5"),
        pytest.param(0.5, 3, 4.0, id="0.5/s-3"),
    ],
)
def test_requests_are_spaced_one_interval_apart(
    start: float, rate: float, count: int, elapsed: float
) -> None:
    fake = FakeTime(start)
    limit = limiter(fake, rate)

    waits = [limit.acquire() for _ in range(count)]

    assert fake.now - start == pytest.approx(elapsed, abs=NOISE)
    assert waits[0] == 0.0
    assert waits[1:] == pytest.approx([1 / rate] * (count - 1), abs=NOISE)
    assert fake.sleeps == pytest.approx(waits[1:], abs=NOISE)


@pytest.mark.parametrize("start", STARTS)
def test_burst_lets_the_first_requests_through_then_spaces_the_rest(start: float) -> None:
    fake = FakeTime(start)
    limit = limiter(fake, 10, burst=5)

    first = [limit.acquire() for _ in range(5)]
    after_burst = fake.now
    rest = [limit.acquire() for _ in range(5)]

    assert after_burst - start < NOISE, "the burst went through without waiting"
    assert first == pytest.approx([0.0] * 5, abs=NOISE)
    assert rest == pytest.approx([0.1] * 5, abs=NOISE)
    assert fake.now - start == pytest.approx(0.5, abs=NOISE)


def test_idle_time_refills_the_burst_but_no_further() -> None:
    fake = FakeTime(500.0)
    limit = limiter(fake, 10, burst=3)
    for _ in range(3):
        limit.acquire()

    fake.now += 60.0  # a long idle spell refills at most `burst` requests
    waits = [limit.acquire() for _ in range(5)]

    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.1], abs=NOISE)


def test_partial_idle_refills_partially() -> None:
    fake = FakeTime(0.0)
    limit = limiter(fake, 10, burst=1)
    limit.acquire()
    limit.acquire()  # waited 0.1: the next slot is at 0.2

    assert fake.now == pytest.approx(0.1, abs=NOISE)

    fake.now += 0.06  # 0.16: 0.04 short of the next slot
    wait = limit.acquire()

    assert wait == pytest.approx(0.04, abs=NOISE)
    assert fake.now == pytest.approx(0.2, abs=NOISE)


def test_acquire_returns_zero_and_does_not_sleep_when_idle() -> None:
    fake = FakeTime(10.0)
    limit = limiter(fake, 10)

    for _ in range(3):
        assert limit.acquire() == 0.0
        fake.now += 1.0

    assert fake.sleeps == []


@pytest.mark.parametrize(
    ("rate", "burst"),
    [
        pytest.param(0, 1, id="rate-zero"),
        pytest.param(-1, 1, id="rate-negative"),
        pytest.param(-0.001, 5, id="rate-slightly-negative"),
        pytest.param(10, 0, id="burst-zero"),
        pytest.param(10, -3, id="burst-negative"),
    ],
)
def test_invalid_settings_raise(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate must be > 0 and burst >= 1"):
        RateLimiter(rate, burst)


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Switch threads every microsecond, so that an unguarded read-modify-write does race."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class Yielding(float):
    """A clock reading that lets other threads run whenever it is compared: acquire() compares it
    with its state between reading and updating that state, exactly where a race would be."""

    def __gt__(self, other: object) -> bool:
        time.sleep(0)
        return float(self) > other  # type: ignore[operator]

    def __lt__(self, other: object) -> bool:
        time.sleep(0)
        return float(self) < other  # type: ignore[operator]


class FrozenTime:
    """Lock-free fake time for threads: the clock stands still, sleeps are only recorded.

    Every acquisition then sees the same `now`, so the wait it is given names the slot it got:
    slots must be 0, 1, 2, ... intervals, each handed out once.
    """

    def __init__(self, now: float) -> None:
        self.now = Yielding(now)
        self.sleeps: list[float] = []  # list.append is atomic: no lock of our own

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.mark.usefixtures("frequent_switches")
@pytest.mark.parametrize("start", [0.0, 1000.0])
def test_threads_never_share_a_slot(start: float) -> None:
    fake = FrozenTime(start)
    limit = RateLimiter(10, 1, clock=fake.clock, sleep=fake.sleep)
    waits: list[float] = []
    go = threading.Barrier(10)

    def worker() -> None:
        go.wait()
        for _ in range(10):
            waits.append(limit.acquire())

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(waits) == 100
    assert max(waits) >= 99 * 0.1 - NOISE, "100 requests at 10/s span at least 99 intervals"
    assert sorted(waits) == pytest.approx([i * 0.1 for i in range(100)], abs=NOISE)
    assert len(fake.sleeps) == 99, "only the first request went without sleeping"
