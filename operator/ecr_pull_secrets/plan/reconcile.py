"""One reconcile pass, decided. Pure: the reconciler gathers an Input, applies the Work (tokens, then
Secret writes and deletes), and then applies the Report this module makes of the results.

    Input --plan_work--> Work --(tokens, writes)--> results --plan_report--> Report (status, Events)

The rules live here and in the modules it calls (renewal, fanout, status, adoption); the shell only
asks the cluster and AWS, and writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ecr_pull_secrets.model.cluster import SecretView
from ecr_pull_secrets.model.resource import Resource
from ecr_pull_secrets.plan import adoption, fanout, renewal, status
from ecr_pull_secrets.plan.fanout import SecretState
from ecr_pull_secrets.plan.renewal import Decision, RenewalPolicy, Trigger
from ecr_pull_secrets.plan.verify import Verdict

CONFLICT_RETRY = timedelta(seconds=30)
"""A name taken by a Secret we may not touch is looked at again after this long, not on every event."""


@dataclass(frozen=True)
class Input:
    resource: Resource
    now: datetime
    namespaces: Sequence[str]
    """The resource's target namespaces."""
    secrets: Mapping[str, SecretView | None]
    """The Secret of the resource's secretName in each target namespace, as cached."""
    owned: Sequence[SecretView] = ()
    """Every Secret the resource controls, wherever it is."""
    conflicts: Mapping[str, datetime] = field(default_factory=dict)
    """namespace -> when a name found taken there is looked at again."""
    holds_tokens: bool = False
    """The tokens of status.expiresAt are held in memory, so a repair needs no new ones."""


@dataclass(frozen=True)
class Work:
    decision: Decision
    issue: bool
    """Obtain tokens (the broker still answers from what it holds when it can)."""
    write_to: tuple[str, ...]
    """Namespaces to write the Secret in, once the tokens are at hand."""
    delete: tuple[SecretView, ...]
    """Secrets the resource made where it no longer should be: out of scope, or renamed."""
    reported: tuple[status.NamespaceFailure, ...]
    """Namespaces not written this pass and why: another resource's Secret, or a conflict still
    waiting for its next look."""

    def due(self, now: datetime) -> bool:
        return self.decision.due(now)


def plan_work(inp: Input, policy: RenewalPolicy) -> Work:
    resource, now, uid = inp.resource, inp.now, inp.resource.uid
    hosts = [r.host for r in resource.spec.registries]
    states = {
        ns: fanout.examine(inp.secrets.get(ns), uid, hosts, resource.status.expires_at, resource.spec.output)
        for ns in inp.namespaces
    }
    drift = [ns for ns, state in states.items() if state in (SecretState.MISSING, SecretState.STALE)]
    retry = [ns for ns in drift if inp.conflicts.get(ns, now) <= now]
    decision = renewal.decide(resource, now, policy, drift=bool(retry))
    repair_only = decision.trigger is Trigger.REPAIR and inp.holds_tokens
    write_to: tuple[str, ...] = ()
    if decision.due(now):
        write_to = (
            tuple(retry)
            if repair_only
            else tuple(ns for ns in inp.namespaces if states[ns] is not SecretState.FOREIGN)
        )
    wanted = {(ns, resource.spec.secret_name) for ns in inp.namespaces}
    reported = [
        status.NamespaceFailure(ns, "SecretConflict", taken_message(resource, inp.secrets.get(ns)))
        for ns, state in states.items()
        if state is SecretState.FOREIGN
    ]
    reported += [
        status.NamespaceFailure(ns, "SecretConflict", conflict_message(resource))
        for ns in drift
        if ns not in retry
    ]
    return Work(
        decision=decision,
        issue=decision.due(now) and not repair_only,
        write_to=write_to,
        delete=tuple(s for s in inp.owned if (s.namespace, s.name) not in wanted),
        reported=tuple(reported),
    )


# -- after the tokens and the writes -----------------------------------------------------------


@dataclass(frozen=True)
class Obtained:
    """Tokens this pass holds for the resource's Secrets."""

    issued_at: datetime
    expires_at: datetime
    identity: str | None


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Report:
    status: dict[str, Any] | None
    """The status patch, or None when status already says it all."""
    events: tuple[Event, ...]
    renewal: tuple[datetime | None, datetime | None]
    """(expiresAt, next renewal or retry) for the schedule metrics."""
    renewed: str | None = None
    """The Ready reason when this pass renewed ("Issued", "Renewed"), for the renewal metric."""


def plan_report(
    inp: Input,
    work: Work,
    policy: RenewalPolicy,
    *,
    obtained: Obtained | None = None,
    failed: status.Failure | None = None,
    write_failures: Sequence[status.NamespaceFailure] = (),
    verdict: Verdict | None = None,
    current: Mapping[str, Any] | None = None,
) -> Report:
    """`obtained` or `failed`: the tokens this pass got, or why it got none (neither: none wanted).
    `write_failures`: namespaces whose write failed. `verdict`: the last verification's, if any.
    `current`: status as stored, so an unchanged status is not written again."""
    resource, now = inp.resource, inp.now
    base: dict[str, Any] | None = None
    events: list[Event] = []
    schedule: tuple[datetime | None, datetime | None]
    renewed = None
    if failed is not None:
        retry_at = now + renewal.backoff(resource.status.failed_attempts + 1, policy)
        base = status.failure(resource, failed, retry_at, now)
        message = next(c["message"] for c in base["conditions"] if c["type"] == status.DEGRADED)
        events.append(Event("Warning", failed.reason, message))
        schedule = (resource.status.expires_at, retry_at)
    elif (
        obtained is not None
        and (
            obtained.expires_at != resource.status.expires_at
            or work.decision.trigger in (Trigger.SPEC_CHANGED, Trigger.FORCED)
        )
        and (len(write_failures) < len(work.write_to) or not work.write_to)
    ):
        # A new token counts as issued once some Secret holds it (or none is wanted). A spec change
        # (a new output, secretName or template) or a forced refresh is recorded even when the
        # token is the one held: otherwise status would keep the old generation and ask again.
        assert work.decision.trigger is not None
        spec = resource.spec
        renew_at = renewal.renewal_time(
            obtained.issued_at, obtained.expires_at, spec.renew_before, resource.uid, policy
        ).replace(microsecond=0)  # whole seconds, as status records it
        issued = status.Issued(
            secret_name=spec.secret_name,
            registries=len(spec.registries),
            expires_at=obtained.expires_at,
            renewal_time=renew_at,
            identity=obtained.identity,
        )
        base = status.success(resource, issued, work.decision.trigger, now)
        ready = base["conditions"][0]
        events.append(Event("Normal", ready["reason"], ready["message"]))
        renewed = str(ready["reason"])
        schedule = (obtained.expires_at, renew_at)
    else:
        next_at = resource.status.renewal_time if work.due(now) else work.decision.at
        schedule = (resource.status.expires_at, next_at)
    said = {(f.get("namespace"), f.get("reason")) for f in resource.status.failed_namespaces}
    for failure in write_failures:  # once: status keeps saying it until it changes
        if (failure.namespace, failure.reason) not in said:
            where = "" if resource.spec.scope is None else f"namespace {failure.namespace}: "
            events.append(Event("Warning", failure.reason, f"{where}{failure.message}"))
    failures = sorted([*write_failures, *work.reported], key=lambda f: f.namespace)
    patch = status.fanout(resource, targets=len(inp.namespaces), failures=failures, base=base, now=now)
    if verdict is not None:
        conditions = patch.get("conditions", resource.status.conditions)
        patch["conditions"] = status.verified(
            conditions, verdict.ok, verdict.reason, verdict.message, resource.generation, now
        )
        before = status.condition_in(current or {}, status.VERIFIED) or {}
        if not verdict.ok and (before.get("status"), before.get("reason")) != ("False", verdict.reason):
            events.append(Event("Warning", verdict.reason, verdict.message))
    unchanged = current is not None and all(current.get(key) == value for key, value in patch.items())
    return Report(None if unchanged else patch, tuple(events), schedule, renewed)


def next_look(decision: Decision, now: datetime, *, also: Iterable[datetime | None] = ()) -> datetime | None:
    """The plan's next time, or sooner if something else (a conflict's next look, a verification)
    is due earlier; None waits for the next change."""
    candidates = [t for t in (decision.at if decision.at > now else None, *also) if t is not None and t > now]
    if decision.trigger is None or not decision.due(now):
        return min(candidates, default=None)
    # Just acted: look again at the new renewal time (in the status just written).
    return min(candidates, default=now + timedelta(seconds=1))


def taken_message(resource: Resource, secret: SecretView | None) -> str:
    holder = secret.controller if secret is not None and secret.controller else "another resource"
    return (
        f"Secret {resource.spec.secret_name} is managed by {holder}; two resources may not write one Secret"
    )


def conflict_message(resource: Resource) -> str:
    return adoption.unowned_message(resource.spec.secret_name, resource.kind)
