"""Whether this replica works or stands by, from kopf's peering object: kopf's own rule, read.

kopf keeps the peering object (each replica's priority and last keep-alive) and pauses the watches
it runs; the operator runs its own watches, so it reads the same object and applies the same rule
(kopf's `process_peering_event`): a live peer other than us with a higher priority, or the same
one, means stand by. A peer is live until its last keep-alive plus its lifetime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DEFAULT_LIFETIME = 60


@dataclass(frozen=True, slots=True)
class Blocker:
    identity: str
    priority: int
    until: datetime
    """When it stops counting unless it keeps alive again."""


def blockers(peers: Mapping[str, Any], *, identity: str, priority: int, now: datetime) -> list[Blocker]:
    """The live peers (a peering object's status: identity -> priority, lifetime, lastseen) that
    outrank us, soonest to expire first. An entry that cannot be read counts for nothing."""
    found = []
    for peer, entry in peers.items():
        if peer == identity or not isinstance(entry, Mapping):
            continue
        try:
            their_priority = int(entry.get("priority", 0))
            lifetime = timedelta(seconds=int(entry.get("lifetime", DEFAULT_LIFETIME)))
            seen = datetime.fromisoformat(str(entry["lastseen"]))
        except (KeyError, TypeError, ValueError):
            continue
        if seen.tzinfo is None:
            continue
        until = seen + lifetime
        if until > now and their_priority >= priority:
            found.append(Blocker(peer, their_priority, until))
    return sorted(found, key=lambda b: b.until)
