"""The status an EcrPullSecret should show after an attempt: what `kubectl get/describe` tells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.resource import Resource
from ecr_pull_secrets.model.timestamps import format_time
from ecr_pull_secrets.plan.renewal import Trigger

READY = "Ready"
DEGRADED = "Degraded"
VERIFIED = "Verified"


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed, in words safe for status, Events and logs (never token material)."""

    reason: str
    message: str
    retryable: bool = True


@dataclass(frozen=True)
class Issued:
    secret_name: str
    registries: int
    expires_at: datetime
    renewal_time: datetime
    identity: str | None


def success(resource: Resource, issued: Issued, trigger: Trigger, now: datetime) -> dict[str, Any]:
    reason = "Issued" if trigger is Trigger.ISSUE else "Renewed"
    message = (
        f"Secret {issued.secret_name} holds tokens for {issued.registries} "
        f"registr{'y' if issued.registries == 1 else 'ies'}, valid until {format_time(issued.expires_at)}"
    )
    conditions = _with(resource, READY, "True", reason, message, now=now)
    conditions = _with(
        resource, DEGRADED, "False", reason, "Last renewal succeeded", base=conditions, now=now
    )
    return {
        "secretName": issued.secret_name,
        "expiresAt": format_time(issued.expires_at),
        "renewalTime": format_time(issued.renewal_time),
        "lastRefreshTime": format_time(now),
        "lastFailureTime": None,
        "failedAttempts": 0,
        "identity": issued.identity,
        "observedGeneration": resource.generation,
        "forceRefresh": resource.force_refresh,
        "conditions": conditions,
    }


def failure(resource: Resource, failed: Failure, retry_at: datetime | None, now: datetime) -> dict[str, Any]:
    """The old Secret is kept; Ready stays True only while the token it holds is still valid."""
    status = resource.status
    still_valid = status.secret_name is not None and status.expires_at is not None and status.expires_at > now
    retry = f"; retrying at {format_time(retry_at)}" if retry_at else ""
    if still_valid:
        assert status.expires_at is not None
        degraded = f"{failed.message}; Secret {status.secret_name} stays valid until "
        degraded += f"{format_time(status.expires_at)}{retry}"
        conditions = _keep_ready(resource, now)
    else:
        degraded = f"{failed.message}{retry}"
        conditions = _with(resource, READY, "False", failed.reason, degraded, now=now)
    conditions = _with(resource, DEGRADED, "True", failed.reason, degraded, base=conditions, now=now)
    return {
        "lastFailureTime": format_time(now),
        "failedAttempts": status.failed_attempts + 1,
        "conditions": conditions,
    }


@dataclass(frozen=True)
class NamespaceFailure:
    namespace: str
    reason: str
    message: str


MAX_LISTED_FAILURES = 10
NAMESPACE_REASONS = frozenset({"SecretConflict", "KubernetesError"})
"""Reasons that concern writing Secrets in namespaces, not obtaining tokens."""


def fanout(
    resource: Resource,
    *,
    targets: int,
    failures: Sequence[NamespaceFailure],
    base: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """Counts, the failing namespaces (a bounded list), and Ready as they imply it.

    `base` is this pass's success or failure patch, if it made one; otherwise Ready is
    recomputed from the namespaces alone.
    """
    patch = dict(base or {})
    conditions = patch.get("conditions", resource.status.conditions)
    ready = targets - len(failures)
    patch["targetNamespaces"] = targets
    patch["readyNamespaces"] = ready
    patch["failedNamespaces"] = [
        {"namespace": f.namespace, "reason": f.reason, "message": f.message}
        for f in failures[:MAX_LISTED_FAILURES]
    ] or None
    current_ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == READY), {})
    if failures:
        first = failures[0]
        if resource.spec.scope is None:
            message = first.message
        else:
            listed = "; ".join(f"{f.namespace}: {f.message}" for f in failures[:3])
            more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
            message = f"{ready} of {targets} namespaces ready; {listed}{more}"
        patch["conditions"] = _replace(
            conditions,
            _condition(READY, "False", first.reason, message, resource.generation, now, conditions),
        )
    elif (
        base is None
        and current_ready.get("reason") in NAMESPACE_REASONS
        and resource.status.expires_at is not None
        and resource.status.expires_at > now
    ):
        # Recovered without a new token (e.g. a conflicting Secret was removed).
        message = f"Secret {resource.spec.secret_name} is ready in {targets} namespace(s)"
        if resource.spec.scope is None:
            message = (
                f"Secret {resource.spec.secret_name} is valid until {format_time(resource.status.expires_at)}"
            )
        patch["conditions"] = _replace(
            conditions, _condition(READY, "True", "Reconciled", message, resource.generation, now, conditions)
        )
    return patch


def rejected(
    conditions: Sequence[Mapping[str, Any]], generation: int, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """A spec the operator will not act on (InvalidSpec, AuthNotAllowed) until it changes."""
    ready = _condition(READY, "False", reason, message, generation, now, conditions)
    return {"conditions": _replace(conditions, ready)}


def verified(  # noqa: PLR0917  # mirrors the fields of a Kubernetes condition
    conditions: Sequence[Mapping[str, Any]],
    ok: bool,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Conditions with Verified set; Ready and Degraded are not the verification's to change."""
    status = "True" if ok else "False"
    return _replace(conditions, _condition(VERIFIED, status, reason, message, generation, now, conditions))


def condition_in(current: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The condition of that type in a stored status, if any."""
    return next((c for c in current.get("conditions") or () if c.get("type") == type_), None)


def _keep_ready(resource: Resource, now: datetime) -> list[dict[str, Any]]:
    """Ready stays as it was if it said True; any other verdict (e.g. an old InvalidSpec) is stale."""
    current = next((c for c in resource.status.conditions if c.get("type") == READY), None)
    if current is None or current.get("status") != "True":
        assert resource.status.expires_at is not None
        message = (
            f"Secret {resource.status.secret_name} is valid until {format_time(resource.status.expires_at)}"
        )
        return _with(resource, READY, "True", "SecretValid", message, now=now)
    return _replace(resource.status.conditions, {**current, "observedGeneration": resource.generation})


def _with(
    resource: Resource,
    *args: str,
    base: Sequence[Mapping[str, Any]] | None = None,
    now: datetime,
) -> list[dict[str, Any]]:
    """`_with(resource, TYPE, STATUS, REASON, MESSAGE, now=...)`: conditions with one set."""
    type_, status, reason, message = args
    conditions = resource.status.conditions if base is None else base
    return _replace(
        conditions, _condition(type_, status, reason, message, resource.generation, now, conditions)
    )


def _condition(  # noqa: PLR0917  # mirrors the fields of a Kubernetes condition
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
    existing: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    previous = next((c for c in existing if c.get("type") == type_), None)
    unchanged = previous is not None and previous.get("status") == status
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": previous["lastTransitionTime"]
        if unchanged and previous and previous.get("lastTransitionTime")
        else format_time(now),
    }


def _replace(conditions: Sequence[Mapping[str, Any]], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    kept = [dict(c) for c in conditions if c.get("type") != new["type"]]
    ordered = [*kept, dict(new)]
    return sorted(ordered, key=lambda c: (c["type"] != READY, c["type"]))


def settled(body: Mapping[str, Any]) -> bool:
    """Whether a resource's status answers its current spec and annotations: a resource that is
    not (new, edited or deleted while no replica worked) is worked on before the others."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    asked = (meta.get("annotations") or {}).get(api.FORCE_REFRESH_ANNOTATION)
    return (
        not meta.get("deletionTimestamp")
        and status.get("observedGeneration") == meta.get("generation")
        and status.get("forceRefresh") == asked
    )
