"""Typed view of an EcrPullSecret body: what the user asked for and what we last recorded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.duration import InvalidDuration, parse_duration
from ecr_pull_secrets.model.identity import Auth, InvalidAuth, parse_auth, without_namespaces
from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost
from ecr_pull_secrets.model.scope import (
    NamespaceScope,
    ServiceAccountScope,
    parse_namespace_scope,
    parse_service_account_scope,
)
from ecr_pull_secrets.model.timestamps import parse_time


class InvalidSpec(ValueError):
    """A spec the CRD schema should have rejected; reported on the resource, never retried."""


@dataclass(frozen=True)
class Spec:
    registries: tuple[RegistryHost, ...]
    secret_name: str
    renew_before: timedelta
    auth: Auth = field(default_factory=Auth)
    service_accounts: ServiceAccountScope | None = None
    secret_policy: str = "Fail"
    """Fail: never touch a Secret this resource does not own. Adopt: take over an unowned one."""
    scope: NamespaceScope | None = None
    """Cluster-scoped resources only: the namespaces to serve."""

    @property
    def partition(self) -> str:
        return self.registries[0].partition

    @property
    def regions(self) -> frozenset[tuple[str, str]]:
        """(partition, region) pairs of private registries: one token request each."""
        return frozenset((r.partition, r.region) for r in self.registries if not r.public)

    @property
    def token_groups(self) -> frozenset[tuple[str, bool]]:
        """(region, public) pairs: one token each, shared by every host of the group."""
        return frozenset((r.region, r.public) for r in self.registries)


@dataclass(frozen=True)
class Status:
    secret_name: str | None = None
    expires_at: datetime | None = None
    renewal_time: datetime | None = None
    last_refresh_time: datetime | None = None
    last_failure_time: datetime | None = None
    failed_attempts: int = 0
    observed_generation: int | None = None
    force_refresh: str | None = None
    conditions: tuple[Mapping[str, Any], ...] = field(default=())
    failed_namespaces: tuple[Mapping[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class Resource:
    kind: str
    namespace: str
    """Empty for the cluster-scoped kind."""
    name: str
    uid: str
    generation: int
    force_refresh: str | None
    spec: Spec
    status: Status


def parse_spec(raw: Mapping[str, Any], default_name: str, *, cluster: bool = False) -> Spec:
    hosts = raw.get("registries") or []
    if not hosts:
        raise InvalidSpec("spec.registries must name at least one ECR registry")
    if len(hosts) > api.MAX_REGISTRIES:
        raise InvalidSpec(f"spec.registries may name at most {api.MAX_REGISTRIES} registries")
    try:
        registries = tuple(RegistryHost.parse(h) for h in hosts)
        renew_before = parse_duration(str(raw.get("renewBefore") or api.DEFAULT_RENEW_BEFORE))
        auth = parse_auth(raw.get("auth"))
    except (InvalidRegistryHost, InvalidDuration, InvalidAuth) as error:
        raise InvalidSpec(str(error)) from None
    if len({r.host for r in registries}) != len(registries):
        raise InvalidSpec("spec.registries lists a registry more than once")
    partitions = sorted({r.partition for r in registries})
    if len(partitions) > 1:
        raise InvalidSpec(
            f"spec.registries mixes AWS partitions ({', '.join(partitions)}); one identity cannot "
            "hold credentials in two partitions, so use one resource per partition"
        )
    if cluster and (
        (auth.service_account and not auth.service_account.namespace)
        or (auth.secret and not auth.secret.namespace)
    ):
        raise InvalidSpec("a ClusterEcrPullSecret's serviceAccountRef or secretRef must name its namespace")
    if not cluster:
        # A namespaced resource may only use its own namespace's ServiceAccounts and Secrets.
        auth = without_namespaces(auth)
    return Spec(
        registries=registries,
        secret_name=str(raw.get("secretName") or default_name),
        renew_before=renew_before,
        auth=auth,
        service_accounts=parse_service_account_scope(raw.get("serviceAccounts")),
        secret_policy=str(raw.get("secretPolicy") or "Fail"),
        scope=parse_namespace_scope(raw.get("namespaceSelector"), raw.get("namespaces")) if cluster else None,
    )


def parse_status(raw: Mapping[str, Any]) -> Status:
    return Status(
        secret_name=raw.get("secretName"),
        expires_at=parse_time(raw.get("expiresAt")),
        renewal_time=parse_time(raw.get("renewalTime")),
        last_refresh_time=parse_time(raw.get("lastRefreshTime")),
        last_failure_time=parse_time(raw.get("lastFailureTime")),
        failed_attempts=int(raw.get("failedAttempts") or 0),
        observed_generation=raw.get("observedGeneration"),
        force_refresh=raw.get("forceRefresh"),
        conditions=tuple(raw.get("conditions") or ()),
        failed_namespaces=tuple(raw.get("failedNamespaces") or ()),
    )


def parse_resource(body: Mapping[str, Any]) -> Resource:
    """Raises InvalidSpec; the status and metadata always parse."""
    meta = body["metadata"]
    kind = body.get("kind") or api.KIND
    return Resource(
        kind=kind,
        namespace=meta.get("namespace") or "",
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        force_refresh=(meta.get("annotations") or {}).get(api.FORCE_REFRESH_ANNOTATION),
        spec=parse_spec(body.get("spec") or {}, default_name=meta["name"], cluster=kind == api.CLUSTER_KIND),
        status=parse_status(body.get("status") or {}),
    )
