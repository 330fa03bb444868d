"""handlers.queue.WorkQueue: lanes, one timer, one consumer per uid at a time, backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from ecr_pull_secrets.handlers.queue import ASIDE_PER_CONSUMER, WorkQueue, step_aside


def now() -> datetime:
    return datetime.now(UTC)


class Recorder:
    """A work function that records what it worked on and when, and can hold a uid until released."""

    def __init__(self, answers: dict[str, Callable[[], datetime | None]] | None = None) -> None:
        self.worked: list[tuple[str, datetime]] = []
        self.active: set[str] = set()
        self.overlaps: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.answers = answers or {}
        self.changed = asyncio.Event()

    async def __call__(self, uid: str) -> datetime | None:
        if uid in self.active:
            self.overlaps.append(uid)
        self.active.add(uid)
        self.changed.set()
        try:
            gate = self.gates.get(uid)
            if gate is not None:
                await gate.wait()
            self.worked.append((uid, now()))
            self.changed.set()
            answer = self.answers.get(uid)
            return answer() if answer is not None else None
        finally:
            self.active.discard(uid)

    @property
    def order(self) -> list[str]:
        return [uid for uid, _ in self.worked]

    async def until(self, holds: Callable[[], bool], timeout: float = 5.0) -> None:
        async def wait() -> None:
            while not holds():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


def run(story: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(story())


def test_urgent_lane_goes_first() -> None:
    async def story() -> None:
        work = Recorder()
        work.gates["r1"] = asyncio.Event()
        queue = WorkQueue(work, clock=now, consumers=1)
        queue.start()
        for uid in ("r1", "r2", "r3"):
            queue.add(uid, urgent=False)
        await work.until(lambda: "r1" in work.active)  # the consumer took r1; it waits at its gate
        queue.add("u1")
        work.gates["r1"].set()
        await work.until(lambda: len(work.worked) == 4)
        await queue.stop()
        assert work.order == ["r1", "u1", "r2", "r3"]

    run(story)


def test_urgent_work_is_served_while_every_other_consumer_is_busy_with_routine_work() -> None:
    async def story() -> None:
        work = Recorder()
        routine = [f"renew-{n}" for n in range(6)]
        for uid in routine:
            work.gates[uid] = asyncio.Event()  # waiting on AWS, say
        queue = WorkQueue(work, clock=now, consumers=4)  # one of them for urgent work only
        queue.start()
        for uid in routine:
            queue.add(uid, urgent=False)
        await work.until(lambda: len(work.active) == 3)
        queue.add("repair")
        await work.until(lambda: work.order == ["repair"])
        assert work.active == {"renew-0", "renew-1", "renew-2"}
        for uid in routine:
            work.gates[uid].set()
        await work.until(lambda: len(work.worked) == 7)
        await queue.stop()

    run(story)


def test_namespaces_take_turns_within_a_lane() -> None:
    async def story() -> None:
        work = Recorder()
        work.gates["first"] = asyncio.Event()
        groups = {"first": "busy", "b1": "quiet"} | {f"a{n}": "busy" for n in range(1, 5)}
        queue = WorkQueue(work, clock=now, consumers=1, group=groups.__getitem__)
        queue.start()
        queue.add("first")
        await work.until(lambda: work.active == {"first"})
        for uid in ("a1", "a2", "a3", "a4", "b1"):
            queue.add(uid)
        queue.forget("a3")
        work.gates["first"].set()
        await work.until(lambda: len(work.worked) == 5)
        await queue.stop()
        assert work.order == ["first", "a1", "b1", "a2", "a4"]

    run(story)


def test_a_routine_uid_added_as_urgent_is_promoted() -> None:
    async def story() -> None:
        work = Recorder()
        work.gates["first"] = asyncio.Event()
        queue = WorkQueue(work, clock=now, consumers=1)
        queue.start()
        queue.add("first")
        await work.until(lambda: "first" in work.active)
        for uid in ("a", "b", "c"):
            queue.add(uid, urgent=False)
        queue.add("c")
        queue.add("a", urgent=False)  # already waiting: stays where it is, once
        work.gates["first"].set()
        await work.until(lambda: len(work.worked) == 4)
        await queue.stop()
        assert work.order == ["first", "c", "a", "b"]

    run(story)


def test_one_uid_is_never_worked_on_twice_at_once_and_changes_meanwhile_are_not_lost() -> None:
    async def story() -> None:
        work = Recorder()
        work.gates["x"] = asyncio.Event()
        queue = WorkQueue(work, clock=now, consumers=4)
        queue.start()
        queue.add("x")
        await work.until(lambda: bool(work.active))
        assert work.active == {"x"}
        for _ in range(5):
            queue.add("x")  # changes while it is being worked on: one more pass, after this one
        work.gates["x"].set()
        await work.until(lambda: len(work.worked) == 2 and not work.active)
        await queue.stop()
        assert (queue.depth, queue.scheduled) == (0, 0), "nothing more is waiting or due"
        assert work.order == ["x", "x"]
        assert work.overlaps == []

    run(story)


def test_timer_works_in_time_order_and_not_before_time() -> None:
    async def story() -> None:
        work = Recorder()
        queue = WorkQueue(work, clock=now, consumers=2)
        queue.start()
        start = now()
        due = {"late": start + timedelta(milliseconds=300), "early": start + timedelta(milliseconds=100)}
        for uid, at in due.items():
            queue.add_at(uid, at)
        assert queue.scheduled == 2
        await work.until(lambda: len(work.worked) == 2)
        await queue.stop()
        assert work.order == ["early", "late"]
        assert all(when >= due[uid] for uid, when in work.worked)

    run(story)


def test_a_new_time_replaces_the_old_one_and_a_change_replaces_the_timer() -> None:
    async def story() -> None:
        work = Recorder()
        queue = WorkQueue(work, clock=now, consumers=1)
        queue.start()
        start = now()
        queue.add_at("moved", start + timedelta(milliseconds=50))
        queue.add_at("moved", start + timedelta(milliseconds=250))
        queue.add_at("changed", start + timedelta(hours=1))
        queue.add("changed")  # a change: now, and the hour-later time is void
        await work.until(lambda: len(work.worked) == 2)
        await queue.stop()
        assert work.order == ["changed", "moved"]
        moved_at = work.worked[1][1]
        assert moved_at >= start + timedelta(milliseconds=250)
        assert queue.scheduled == 0

    run(story)


def test_the_answer_of_a_pass_schedules_the_next() -> None:
    async def story() -> None:
        start = now()
        work = Recorder({"r": lambda: start + timedelta(milliseconds=100) if len(work.worked) == 1 else None})
        queue = WorkQueue(work, clock=now, consumers=1)
        queue.start()
        queue.add("r")
        await work.until(lambda: len(work.worked) == 2)
        await queue.stop()
        assert work.worked[1][1] >= start + timedelta(milliseconds=100)
        assert queue.scheduled == 0

    run(story)


def test_failures_back_off_per_resource_and_success_resets() -> None:
    async def story() -> None:
        failures = {"bad": 2}
        worked: list[tuple[str, datetime]] = []
        done = asyncio.Event()

        async def work(uid: str) -> datetime | None:
            worked.append((uid, now()))
            if failures.get(uid):
                failures[uid] -= 1
                raise RuntimeError("the API server is down")
            if uid == "bad":
                done.set()
            return None

        queue = WorkQueue(work, clock=now, consumers=2, backoff=(0.05, 0.2))
        queue.start()
        queue.add("bad")
        queue.add("good")
        await asyncio.wait_for(done.wait(), 5)
        await queue.stop()
        bad = [when for uid, when in worked if uid == "bad"]
        assert [uid for uid, _ in worked].count("good") == 1
        assert len(bad) == 3
        assert (bad[1] - bad[0]).total_seconds() >= 0.05
        assert (bad[2] - bad[1]).total_seconds() >= 0.2

    run(story)


def test_forget_drops_what_waits_and_what_is_scheduled() -> None:
    async def story() -> None:
        work = Recorder()
        queue = WorkQueue(work, clock=now, consumers=1)
        queue.add("waiting", urgent=False)
        queue.add_at("scheduled", now() + timedelta(milliseconds=10))
        queue.forget("waiting")
        queue.forget("scheduled")
        assert (queue.depth, queue.scheduled) == (0, 0)
        queue.start()
        queue.add("marker")
        await work.until(lambda: len(work.worked) == 1)
        await queue.stop()
        assert work.order == ["marker"]
        assert (queue.depth, queue.scheduled, queue.timer_size) == (0, 0, 0), "nothing more can come"

    run(story)


@pytest.mark.parametrize("reschedules", [10, 1000])
def test_rescheduling_does_not_grow_the_timer_without_bound(reschedules: int) -> None:
    async def story() -> None:
        queue = WorkQueue(Recorder(), clock=now, consumers=1)
        far = now() + timedelta(hours=1)
        for n in range(reschedules):
            for uid in ("a", "b", "c"):
                queue.add_at(uid, far + timedelta(seconds=n))
        assert queue.scheduled == 3
        assert queue.timer_size <= 2 * 3 + 64 + 1

    run(story)


def test_a_paused_queue_finishes_the_pass_under_way_and_starts_none_until_resumed() -> None:
    async def story() -> None:
        work = Recorder()
        work.gates["r1"] = asyncio.Event()
        queue = WorkQueue(work, clock=now, consumers=2)
        queue.start()
        queue.add("r1")
        await work.until(lambda: "r1" in work.active)
        queue.pause()  # another replica outranks this one
        queue.add("u1")
        work.gates["r1"].set()
        await work.until(lambda: work.order == ["r1"])
        for _ in range(20):  # a consumer that could take u1 would have by now: it is ready at once
            await asyncio.sleep(0)
        assert (work.order, queue.depth, queue.paused) == (["r1"], 1, True)
        queue.resume()
        await work.until(lambda: work.order == ["r1", "u1"])
        await queue.stop()

    run(story)


def test_a_pass_waiting_for_aws_steps_aside_and_its_consumer_serves_the_next() -> None:
    """One consumer: `chained` must wait for AWS; the cheap ones behind it are served meanwhile,
    and `chained` is still never worked on twice at once."""

    async def story() -> None:
        aws = asyncio.Event()
        worked: list[str] = []

        async def work(uid: str) -> None:
            if uid == "chained":
                step_aside()  # about to wait at the AWS rate limit
                await aws.wait()
            worked.append(uid)

        queue = WorkQueue(work, clock=now, consumers=1)
        queue.start()
        for uid in ("chained", "cheap-1", "cheap-2"):
            queue.add(uid, urgent=False)
        for _ in range(50):
            if worked == ["cheap-1", "cheap-2"]:
                break
            await asyncio.sleep(0)
        assert worked == ["cheap-1", "cheap-2"]
        queue.add("chained", urgent=False)  # a change while it waits: one more pass, after this one
        for _ in range(20):
            await asyncio.sleep(0)
        assert worked == ["cheap-1", "cheap-2"], "never two passes of one uid at once"
        aws.set()
        for _ in range(50):
            if worked.count("chained") == 2:
                break
            await asyncio.sleep(0)
        await queue.stop()
        assert worked == ["cheap-1", "cheap-2", "chained", "chained"]

    run(story)


def test_step_aside_outside_a_pass_does_nothing() -> None:
    step_aside()


def test_passes_aside_are_bounded_beyond_that_a_consumer_waits_with_its_own() -> None:
    async def story() -> None:
        aws = asyncio.Event()
        worked: list[str] = []
        started: list[str] = []

        async def work(uid: str) -> None:
            started.append(uid)
            if uid.startswith("chained"):
                step_aside()
                await aws.wait()
            worked.append(uid)

        queue = WorkQueue(work, clock=now, consumers=1)
        queue.start()
        chained = [f"chained-{n}" for n in range(ASIDE_PER_CONSUMER + 1)]
        for uid in (*chained, "cheap"):
            queue.add(uid, urgent=False)
        for _ in range(50):
            await asyncio.sleep(0)
        # Four wait aside, the fifth holds the only consumer: the cheap one waits.
        assert (started, worked) == (chained, [])
        aws.set()
        for _ in range(50):
            if "cheap" in worked:
                break
            await asyncio.sleep(0)
        await queue.stop()
        assert sorted(worked) == sorted([*chained, "cheap"])

    run(story)


def test_no_routine_pass_starts_while_an_urgent_one_is_under_way_and_background_work_waits_too() -> None:
    async def story() -> None:
        work = Recorder()
        work.gates["repair"] = asyncio.Event()
        queue = WorkQueue(work, clock=now, consumers=4)
        queue.start()
        queue.add("repair")
        await work.until(lambda: work.active == {"repair"})
        queue.add("renew-0", urgent=False)
        queue.add("renew-1", urgent=False)
        calm = asyncio.create_task(asyncio.to_thread(queue.wait_calm, 5.0))
        for _ in range(50):
            await asyncio.sleep(0)
        assert work.order == [], "three consumers idle, yet no renewal starts beside the repair"
        assert not calm.done()
        work.gates["repair"].set()
        await work.until(lambda: len(work.worked) == 3)
        assert work.order[0] == "repair"
        await asyncio.wait_for(calm, 1.0)
        await queue.stop()

    run(story)


def test_an_urgent_pass_that_steps_aside_lets_routine_work_go_on() -> None:
    async def story() -> None:
        aws = asyncio.Event()
        worked: list[str] = []

        async def work(uid: str) -> None:
            if uid == "new-chained":
                step_aside()  # waits for AWS: the process is not needed meanwhile
                await aws.wait()
            worked.append(uid)

        queue = WorkQueue(work, clock=now, consumers=2)
        queue.start()
        queue.add("new-chained")
        queue.add("renew", urgent=False)
        for _ in range(50):
            if worked == ["renew"]:
                break
            await asyncio.sleep(0)
        assert worked == ["renew"]
        aws.set()
        for _ in range(50):
            if len(worked) == 2:
                break
            await asyncio.sleep(0)
        await queue.stop()
        assert worked == ["renew", "new-chained"]

    run(story)


def test_changes_one_after_another_hold_routine_work_back_for_a_while_only() -> None:
    async def story() -> None:
        work = Recorder()
        work.gates["edited-forever"] = asyncio.Event()  # a change that never ends, as a stream of them
        queue = WorkQueue(work, clock=now, consumers=4, routine_yields_at_most=0.2)
        queue.start()
        queue.add("edited-forever")
        await work.until(lambda: work.active == {"edited-forever"})
        started = asyncio.get_running_loop().time()
        queue.add("renew", urgent=False)
        await work.until(lambda: work.order == ["renew"])
        assert asyncio.get_running_loop().time() - started >= 0.2
        assert work.active == {"edited-forever"}
        work.gates["edited-forever"].set()
        await queue.stop()

    run(story)
