"""kube.events: the posters' bounded backlogs, and what they send."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ecr_pull_secrets.kube.events import Backlog, EventPoster


def event(n: int, type_: str = "Normal") -> dict[str, Any]:
    return {"type": type_, "reason": f"r{n}", "metadata": {"namespace": "team-a"}}


def drain(backlog: Backlog) -> list[str]:
    async def take() -> list[str]:
        taken = []
        while len(backlog):
            taken.append((await backlog.get())["reason"])
            backlog.done()
        return taken

    return asyncio.run(take())


def test_a_full_backlog_drops_its_oldest_normal_event_and_keeps_the_warning() -> None:
    backlog = Backlog(size=3)
    backlog.put(event(1, "Warning"))  # the reason a pull fails
    for n in (2, 3, 4, 5):
        backlog.put(event(n))
    assert backlog.dropped == 2
    assert drain(backlog) == ["r1", "r4", "r5"]


def test_a_backlog_of_warnings_only_drops_the_oldest() -> None:
    backlog = Backlog(size=2)
    for n in (1, 2, 3):
        backlog.put(event(n, "Warning"))
    assert backlog.dropped == 1
    assert drain(backlog) == ["r2", "r3"]


class FakeRest:
    """The API server as kube.client.Rest shows it: records what is posted."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []

    def request(self, method: str, path: str, what: str, body: Any = None, **_: Any) -> dict[str, Any]:
        self.posted.append((path, body["reason"]))
        return {}


def test_posters_send_each_objects_events_in_order_and_stop_once_sent() -> None:
    rest = FakeRest()

    async def story() -> None:
        poster = EventPoster(rest, clock=lambda: datetime.now(UTC), posters=2)  # type: ignore[arg-type]
        for n in range(5):
            for name in ("app", "other"):
                meta = {"namespace": "team-a", "name": name, "uid": name}
                poster.post(
                    {"kind": "EcrPullSecret", "metadata": meta},
                    type="Normal",
                    reason=f"{name}-{n}",
                    message="m",
                )
        poster.start()
        await poster.stop()  # sends what waits first
        assert poster.dropped == 0

    asyncio.run(story())
    assert all(path == "/api/v1/namespaces/team-a/events" for path, _ in rest.posted)
    for name in ("app", "other"):
        assert [r for _, r in rest.posted if r.startswith(name)] == [f"{name}-{n}" for n in range(5)]
