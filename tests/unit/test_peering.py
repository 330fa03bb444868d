"""plan.peering (kopf's rule, read) and handlers.peering.PeeringGate: who works, who stands by."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_pull_secrets.handlers.peering import PeeringGate
from ecr_pull_secrets.plan.peering import blockers

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def entry(priority: Any, *, seen: timedelta = timedelta(0), lifetime: Any = 60) -> dict[str, Any]:
    return {"priority": priority, "lifetime": lifetime, "lastseen": (NOW - seen).isoformat()}


@pytest.mark.parametrize(
    ("peers", "expected"),
    [
        ({}, []),
        ({"me": entry(10)}, []),  # our own entry
        ({"low": entry(5)}, []),
        ({"high": entry(20)}, ["high"]),
        ({"same": entry(10)}, ["same"]),  # kopf pauses both on a tie
        ({"high": entry(20, seen=timedelta(seconds=61))}, []),  # dead: no keep-alive for its lifetime
        ({"high": entry(20, seen=timedelta(seconds=100), lifetime=300)}, ["high"]),
        (
            {"late": entry(30, seen=timedelta(seconds=10)), "soon": entry(20, seen=timedelta(seconds=50))},
            ["soon", "late"],
        ),
        (
            {"junk": "x", "bad": entry("high"), "naive": {"priority": 99, "lastseen": "2026-12-02T12:00:00"}},
            [],
        ),
        ({"nolastseen": {"priority": 99}}, []),
    ],
)
def test_blockers(peers: dict[str, Any], expected: list[str]) -> None:
    assert [b.identity for b in blockers(peers, identity="me", priority=10, now=NOW)] == expected


def test_blocker_counts_until_its_keep_alive_runs_out() -> None:
    (found,) = blockers({"high": entry(20, seen=timedelta(seconds=15))}, identity="me", priority=10, now=NOW)
    assert found.until == NOW + timedelta(seconds=45)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_gate_pauses_for_a_higher_peer_and_resumes_when_it_leaves_or_dies() -> None:
    async def story() -> None:
        clock, said = Clock(), []
        gate = PeeringGate(
            name="ha",
            identity="me",
            priority=10,
            clock=clock,
            pause=lambda: said.append("pause"),
            resume=lambda: said.append("resume"),
        )
        gate.event(None, {"metadata": {"name": "other"}, "status": {"high": entry(20)}})  # not ours
        gate.event(None, {"metadata": {"name": "ha"}, "status": {"me": entry(10)}})
        gate.event("MODIFIED", {"metadata": {"name": "ha"}, "status": {"me": entry(10), "high": entry(20)}})
        gate.event("MODIFIED", {"metadata": {"name": "ha"}, "status": {"me": entry(10), "high": entry(20)}})
        assert said == ["resume", "pause"]  # once each: the same verdict again says nothing
        gate.event("MODIFIED", {"metadata": {"name": "ha"}, "status": {"me": entry(10)}})  # it withdrew
        assert said == ["resume", "pause", "resume"]
        gate.event(
            "MODIFIED",
            {"metadata": {"name": "ha"}, "status": {"high": entry(20, seen=timedelta(seconds=59.95))}},
        )
        assert said[-1] == "pause"
        clock.now = NOW + timedelta(seconds=1)  # its lifetime ran out without a keep-alive: the gate rechecks
        for _ in range(200):  # the recheck is due 0.15 s after that keep-alive ran out
            if said[-1] == "resume":
                break
            await asyncio.sleep(0.01)
        assert said[-1] == "resume"
        gate.stop()

    asyncio.run(story())
