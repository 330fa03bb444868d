"""When a pull secret must be (re)issued, and when to look at it again.

Modelled on cert-manager: renewal is due `renewBefore` ahead of the real token expiry, the
schedule lives in status so it survives restarts, and failures back off exponentially.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ecr_pull_secrets.model.credential import RegistryToken
from ecr_pull_secrets.model.resource import Resource


class Trigger(StrEnum):
    ISSUE = "Issue"
    SPEC_CHANGED = "SpecChanged"
    FORCED = "ForceRefresh"
    RENEW = "Renew"
    REPAIR = "Repair"
    """A Secret is missing or was edited; rewritten from the tokens held if they are current."""


@dataclass(frozen=True)
class RenewalPolicy:
    min_interval: timedelta = timedelta(seconds=60)
    """Floor between two token refreshes of one resource, so nothing can cause a storm."""
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(minutes=5)
    jitter: float = 0.1
    """Renewal comes early by up to this fraction of renewBefore, spread per resource."""


@dataclass(frozen=True)
class Decision:
    trigger: Trigger | None
    at: datetime
    """When the refresh may run (trigger set) or when to look again (trigger None)."""

    def due(self, now: datetime) -> bool:
        return self.trigger is not None and self.at <= now


def decide(resource: Resource, now: datetime, policy: RenewalPolicy, *, drift: bool = False) -> Decision:
    status = resource.status
    trigger = _trigger(resource, now) or (Trigger.REPAIR if drift else None)
    if trigger is None:
        assert status.renewal_time is not None  # _trigger returns RENEW when it is unknown
        return Decision(None, status.renewal_time)

    earliest = now
    failed_this_generation = status.failed_attempts and _ready_generation(resource) == resource.generation
    if failed_this_generation and status.last_failure_time:
        earliest = max(earliest, status.last_failure_time + backoff(status.failed_attempts, policy))
    if trigger in (Trigger.RENEW, Trigger.FORCED):
        last_attempt = max(
            (t for t in (status.last_refresh_time, status.last_failure_time) if t), default=None
        )
        if last_attempt:
            earliest = max(earliest, last_attempt + policy.min_interval)
    return Decision(trigger, earliest)


def _trigger(resource: Resource, now: datetime) -> Trigger | None:
    status, spec = resource.status, resource.spec
    if status.expires_at is None or status.secret_name is None:
        return Trigger.ISSUE
    if status.observed_generation != resource.generation or status.secret_name != spec.secret_name:
        return Trigger.SPEC_CHANGED
    if resource.force_refresh is not None and resource.force_refresh != status.force_refresh:
        return Trigger.FORCED
    if status.renewal_time is None or now >= status.renewal_time:
        return Trigger.RENEW
    return None


def _ready_generation(resource: Resource) -> int | None:
    for condition in resource.status.conditions:
        if condition.get("type") == "Ready":
            generation = condition.get("observedGeneration")
            return int(generation) if generation is not None else None
    return None


def backoff(failed_attempts: int, policy: RenewalPolicy) -> timedelta:
    exponent = min(max(failed_attempts - 1, 0), 30)
    delay: timedelta = policy.backoff_base * (2**exponent)
    return min(policy.backoff_cap, delay)


def renewal_time(
    issued_at: datetime, expires_at: datetime, renew_before: timedelta, uid: str, policy: RenewalPolicy
) -> datetime:
    """cert-manager's rule: renew `renew_before` ahead of expiry, or at 2/3 of a shorter lifetime."""
    lifetime = expires_at - issued_at
    lead = renew_before if renew_before < lifetime else lifetime / 3
    early = lead * policy.jitter * _spread(uid)
    return expires_at - lead - early


def acceptable(token: RegistryToken, now: datetime, renew_before: timedelta, policy: RenewalPolicy) -> bool:
    """May a resource take this token (cached, or held by its Secret) instead of a new one? Only
    if the token would not be due for renewal within the resource's own window: its lead is
    renewBefore, or a third of a shorter lifetime, as in `renewal_time`."""
    lifetime = token.expires_at - token.issued_at
    lead = renew_before if renew_before < lifetime else lifetime / 3
    return token.expires_at > now + lead * (1 + policy.jitter) + policy.min_interval


def _spread(uid: str) -> float:
    """A stable number in [0, 1) per resource, so jitter survives restarts and spreads load."""
    digest = hashlib.sha256(uid.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32
