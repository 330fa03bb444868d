"""The AWS rate limit: GCRA spacing, burst, refill and thread safety, prepaid slots, and the fair
order of waiting calls, on fake time; the event-loop side on real time at a high rate."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ecr_pull_secrets.aws.ratelimit import AsyncLimiter, FairQueue, RateLimiter, Waiter, prepaid

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


# -- booking without waiting, and the prepaid slot of a broker call ---------------------------


def test_book_takes_the_next_slot_without_sleeping_and_delay_only_looks() -> None:
    fake = FakeTime(100.0)
    limit = limiter(fake, 10)

    assert limit.delay() == 0.0
    assert [limit.book() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2], abs=NOISE)
    assert limit.delay() == pytest.approx(0.3, abs=NOISE)
    assert limit.delay() == pytest.approx(0.3, abs=NOISE), "delay() books nothing"
    assert fake.sleeps == []
    assert limit.acquire() == pytest.approx(0.3, abs=NOISE), "a waiting request queues behind the booked"


def test_spend_outside_a_broker_call_waits_like_acquire() -> None:
    fake = FakeTime(0.0)
    limit = limiter(fake, 10)

    limit.spend()
    limit.spend()

    assert fake.sleeps == pytest.approx([0.1], abs=NOISE)


def test_spend_uses_the_prepaid_slot_then_books_further_requests_without_waiting() -> None:
    fake = FakeTime(0.0)
    limit = limiter(fake, 10)
    limit.book()  # the slot the call waited for in the event loop

    with prepaid(1):
        limit.spend()  # first request: prepaid, books nothing
        assert limit.delay() == pytest.approx(0.1, abs=NOISE)
        limit.spend()  # a retry: booked, not waited for
        limit.spend()
    assert fake.sleeps == []
    assert limit.delay() == pytest.approx(0.3, abs=NOISE), "the next call waits for both retries"

    limit.spend()  # outside the call again: waits
    assert fake.sleeps == pytest.approx([0.3], abs=NOISE)


def test_prepaid_slots_reach_a_thread_started_with_to_thread() -> None:
    fake = FakeTime(0.0)
    limit = limiter(fake, 10)
    limit.book()

    async def call() -> None:
        with prepaid(1):
            await asyncio.to_thread(limit.spend)

    asyncio.run(call())

    assert fake.sleeps == []
    assert limit.delay() == pytest.approx(0.1, abs=NOISE), "the thread spent the prepaid slot"


# -- FairQueue: who goes next -------------------------------------------------------------------


def fair(rate: float = 10, burst: int = 1) -> tuple[FakeTime, FairQueue]:
    fake = FakeTime(1000.0)
    return fake, FairQueue(limiter(fake, rate, burst))


def wants(namespace: str, resources: int = 1) -> Counter[str]:
    return Counter({namespace: resources})


def drain(fake: FakeTime, queue: FairQueue) -> list[tuple[Waiter, float]]:
    """Releases everything, advancing the fake clock as release() says; (waiter, when) in order."""
    order: list[tuple[Waiter, float]] = []
    while len(queue):
        going, wait = queue.release()
        order += [(w, fake.now) for w in going]
        fake.now += wait
    return order


def test_release_follows_the_pace() -> None:
    fake, queue = fair(rate=10, burst=2)
    for _ in range(5):
        queue.add(wants("a"), "a")

    first, wait = queue.release()
    assert len(first) == 2, "a burst of 2"
    assert wait == pytest.approx(0.1, abs=NOISE), "then one per interval"
    fake.now += 0.05
    none, wait = queue.release()
    assert none == []
    assert wait == pytest.approx(0.05, abs=NOISE)
    fake.now += 0.05
    going, wait = queue.release()
    assert len(going) == 1
    assert [t - 1000.1 for _, t in drain(fake, queue)] == pytest.approx([0.1, 0.2], abs=NOISE)
    assert queue.release() == ([], 0.0), "nobody waits: no next slot to wait for"


@pytest.mark.parametrize("backlog", [10, 1000])
def test_a_namespace_with_a_backlog_delays_another_by_one_slot(backlog: int) -> None:
    fake, queue = fair()
    hogs = [queue.add(wants("hog"), "hog") for _ in range(backlog)]
    queue.release()  # the hog's first call goes; the rest wait
    single = queue.add(wants("quiet"), "quiet")

    order = [w for w, _ in drain(fake, queue)]

    assert order.index(single) <= 1, "at most one hog call goes before it"
    assert [w for w in order if w is not single] == hogs[1:], "the hog's calls keep their order"


def test_waiting_namespaces_take_turns_in_the_order_they_started_waiting() -> None:
    fake, queue = fair()
    for namespace in ["a", "a", "a", "b", "b", "c"]:
        queue.add(wants(namespace), namespace)

    order = [w.home for w, _ in drain(fake, queue)]

    assert order == ["a", "b", "c", "a", "b", "a"]


def test_a_namespace_turn_goes_to_the_call_most_resources_wait_on() -> None:
    fake, queue = fair()
    early = [queue.add(wants("a"), "a") for _ in range(3)]
    shared = queue.add(wants("a", 40), "a")
    middle = queue.add(wants("a", 2), "a")

    order = [w for w, _ in drain(fake, queue)]

    assert order == [shared, middle, *early]


def test_followers_that_join_later_move_a_call_up() -> None:
    fake, queue = fair()
    single = queue.add(wants("a"), "a")
    interest = wants("a")
    joined = queue.add(interest, "a")
    interest["a"] += 5  # followers joined the call's single flight while it waits

    assert [w for w, _ in drain(fake, queue)] == [joined, single]


def test_a_call_is_served_on_the_turn_of_any_namespace_waiting_on_it() -> None:
    fake, queue = fair()
    hogs = [queue.add(wants("hog"), "hog") for _ in range(20)]
    queue.release()
    shared = queue.add(Counter({"hog": 1, "quiet": 1}), "hog")  # e.g. the operator's own identity

    order = [w for w, _ in drain(fake, queue)]

    assert order.index(shared) <= 1
    assert len(order) == len(hogs)  # hogs[0] went at the first release


def test_a_call_nobody_waits_on_any_more_still_goes_on_its_starters_turn() -> None:
    fake, queue = fair()
    queue.add(wants("a"), "a")
    orphan = queue.add(Counter(), "b")  # its callers were cancelled; the flight goes on

    assert [w.home for w, _ in drain(fake, queue)] == ["a", "b"]
    assert orphan.namespaces() == ["b"]


def test_removed_waiters_are_never_released() -> None:
    fake, queue = fair()
    keep = queue.add(wants("a"), "a")
    gone = queue.add(wants("b"), "b")
    queue.remove(gone)
    queue.remove(gone)  # twice is harmless

    assert [w for w, _ in drain(fake, queue)] == [keep]


# -- AsyncLimiter: waiting in the event loop ----------------------------------------------------


def test_async_acquire_follows_the_fair_order_and_the_pace() -> None:
    pace = RateLimiter(200)  # real time, 5 ms apart

    async def scenario() -> list[str]:
        limit = AsyncLimiter(pace)
        done: list[str] = []

        async def call(name: str, namespace: str) -> None:
            await limit.acquire(wants(namespace), namespace)
            done.append(name)

        tasks = [asyncio.create_task(call(f"hog{i}", "hog")) for i in range(6)]
        await asyncio.sleep(0)  # hog0 goes at once, the others wait
        tasks.append(asyncio.create_task(call("quiet", "quiet")))
        started = time.monotonic()
        await asyncio.gather(*tasks)
        assert time.monotonic() - started >= 6 * 0.005 - 0.001, "6 more slots, 5 ms apart"
        assert limit.waiting == 0
        return done

    done = asyncio.run(scenario())

    assert done[0] == "hog0"
    assert done.index("quiet") <= 2


def test_a_cancelled_wait_gives_its_turn_up() -> None:
    pace = RateLimiter(100)

    async def scenario() -> tuple[list[str], int]:
        limit = AsyncLimiter(pace)
        done: list[str] = []

        async def call(name: str) -> None:
            await limit.acquire(wants(name), name)
            done.append(name)

        first = asyncio.create_task(call("first"))
        await first
        doomed = asyncio.create_task(call("doomed"))
        later_ = asyncio.create_task(call("later"))
        await asyncio.sleep(0)
        waiting = limit.waiting
        doomed.cancel()
        await asyncio.gather(doomed, later_, return_exceptions=True)
        return done, waiting

    done, waiting = asyncio.run(scenario())

    assert waiting == 2
    assert done == ["first", "later"]


def test_waiting_for_the_limit_holds_no_thread() -> None:
    """One worker thread, twenty calls waiting for the limit: other blocking work still runs."""
    pace = RateLimiter(20)  # 50 ms apart: the queue drains in about a second

    async def scenario() -> tuple[int, int]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        limit = AsyncLimiter(pace)
        released: list[int] = []

        async def call(index: int) -> None:
            await limit.acquire(wants("a"), "a")
            released.append(index)

        tasks = [asyncio.create_task(call(i)) for i in range(20)]
        await asyncio.sleep(0)
        await asyncio.to_thread(threading.get_ident)  # needs the pool's one thread
        released_meanwhile = len(released)
        await asyncio.gather(*tasks)
        return released_meanwhile, len(released)

    meanwhile, total = asyncio.run(scenario())

    assert total == 20
    assert meanwhile < 20, "the thread was free while calls still waited for the limit"


# -- fair in requests: a call's turn is charged what it costs ----------------------------------


def drain_spending(fake: FakeTime, queue: FairQueue, requests: dict[str, int]) -> list[tuple[Waiter, float]]:
    """As drain(), and each released call then makes its requests as a thread would (`requests`
    by home namespace: retries included), spending what its turn booked; any beyond is booked
    without waiting and charged to its namespace, as AsyncLimiter.slots does."""
    order: list[tuple[Waiter, float]] = []
    while len(queue):
        going, wait = queue.release()
        for waiter in going:
            order.append((waiter, fake.now))
            with prepaid(waiter.cost) as paid:
                for _ in range(requests[waiter.home]):
                    queue.pace.spend()
            queue.charge(waiter.payer, paid.overrun)
        fake.now += wait
    assert fake.sleeps == [], "no request waited in its thread"
    return order


def cheap_calls_released(order: list[tuple[Waiter, float]], start: float) -> list[int]:
    """When each of the cheap namespace's calls went, in slots of 0.1 s after `start`."""
    return [round((when - start) / 0.1) for w, when in order if w.home == "cheap"]


def test_a_namespace_of_expensive_calls_gets_its_share_of_requests_not_of_calls() -> None:
    fake, queue = fair(rate=10)
    for _ in range(50):
        queue.add(wants("heavy"), "heavy", cost=6)  # e.g. web identity, 4 role hops, the token
    queue.release()  # the first heavy call goes: 6 requests booked
    start = fake.now
    for _ in range(12):
        queue.add(wants("cheap"), "cheap")

    order = drain_spending(fake, queue, {"heavy": 6, "cheap": 1})

    slots = cheap_calls_released(order, start)
    assert slots[0] <= 6, "the first cheap call waited for one heavy call at most"
    # Equal shares of requests: 6 cheap calls for each heavy one, so the k-th cheap call has
    # waited for k cheap requests and at most k + 6 heavy ones; in calls it would be 7k.
    assert all(slot <= 2 * k + 6 for k, slot in enumerate(slots)), slots
    heavy_meanwhile = [w for w, when in order if w.home == "heavy" and when < start + slots[-1] * 0.1]
    assert 1 <= len(heavy_meanwhile) <= 3, "the heavy namespace was served too, in its share"


def test_requests_beyond_a_calls_cost_are_charged_to_its_namespace() -> None:
    fake, queue = fair(rate=10)
    for namespace in ["retrying", "cheap"] * 12:
        queue.add(wants(namespace), namespace)  # both charged 1 request a call

    order = drain_spending(fake, queue, {"retrying": 4, "cheap": 1})  # 3 retries each

    slots = cheap_calls_released(order, 1000.0)
    assert all(slot <= 2 * k + 4 for k, slot in enumerate(slots)), slots  # by calls: 5k


def test_a_namespace_that_was_idle_banks_no_credit() -> None:
    fake, queue = fair(rate=10)
    for _ in range(20):
        queue.add(wants("busy"), "busy")
    drain(fake, queue)  # busy alone: 20 requests given
    for namespace in ["busy", "back"] * 4:
        queue.add(wants(namespace), namespace)

    order = [w.home for w, _ in drain(fake, queue)]

    assert order == ["back", "busy"] * 4, "turns alternate, not 20 in a row for the one that was idle"


def test_a_turn_books_the_calls_cost_and_charges_what_it_spends_beyond() -> None:
    fake = FakeTime(1000.0)
    pace = limiter(fake, 10, burst=100)  # frozen clock, room for every request: nobody waits

    async def scenario() -> None:
        limit = AsyncLimiter(pace)
        async with limit.slots(wants("a"), "a", cost=3):

            def five_requests() -> None:  # 2 retries
                for _ in range(5):
                    pace.spend()

            await asyncio.to_thread(five_requests)
        assert (pace.booked, limit.queue.given("a"), limit.queue.given("b")) == (5, 5, 0)
        async with limit.slots(wants("b"), "b", cost=0):  # nothing to book: no turn to wait for
            assert pace.booked == 5
            pace.spend()  # an unforeseen request: booked and charged
        assert (pace.booked, limit.queue.given("b")) == (6, 1)

    asyncio.run(scenario())

    assert fake.sleeps == []
