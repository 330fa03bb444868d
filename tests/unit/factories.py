"""Builders for parsed resources and a fixed clock; every time is a whole second in UTC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.registry import RegistryHost
from ecr_pull_secrets.model.resource import Resource, Spec, Status
from ecr_pull_secrets.model.scope import NamespaceScope, ServiceAccountScope
from ecr_pull_secrets.model.timestamps import format_time

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
GENERATION = 3


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def later(**delta: float) -> datetime:
    return NOW + timedelta(**delta)


def condition(
    type_: str, status: str, *, generation: int = GENERATION, reason: str = "Issued", since: datetime = NOW
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": f"{type_} is {status}",
        "observedGeneration": generation,
        "lastTransitionTime": format_time(since),
    }


def issued(**changes: Any) -> Status:
    """The status after a successful issue four hours ago: 12h token, renewal 4h from now."""
    status = Status(
        secret_name="pull",
        expires_at=later(hours=8),
        renewal_time=later(hours=4),
        last_refresh_time=ago(hours=4),
        observed_generation=GENERATION,
        conditions=(condition("Ready", "True", since=ago(hours=4)),),
    )
    return replace(status, **changes)


def resource(
    status: Status | None = None,
    *,
    generation: int = GENERATION,
    force_refresh: str | None = None,
    secret_name: str = "pull",  # noqa: S107  # the name of a Secret, not a password
    hosts: tuple[str, ...] = (HOST,),
    renew_before: timedelta = timedelta(hours=4),
    uid: str = "0b6f4c1e-uid",
    conditions: tuple[Mapping[str, Any], ...] | None = None,
    scope: NamespaceScope | None = None,
    service_accounts: ServiceAccountScope | None = None,
) -> Resource:
    """An EcrPullSecret in team-a; with a `scope`, a ClusterEcrPullSecret (no namespace)."""
    status = status if status is not None else Status()
    if conditions is not None:
        status = replace(status, conditions=conditions)
    return Resource(
        kind=api.KIND if scope is None else api.CLUSTER_KIND,
        namespace="team-a" if scope is None else "",
        name="pull",
        uid=uid,
        generation=generation,
        force_refresh=force_refresh,
        spec=Spec(
            registries=tuple(RegistryHost.parse(h) for h in hosts),
            secret_name=secret_name,
            renew_before=renew_before,
            service_accounts=service_accounts,
            scope=scope,
        ),
        status=status,
    )
