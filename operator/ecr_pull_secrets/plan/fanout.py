"""Per target namespace: is the managed Secret as it should be? Which ServiceAccounts change?"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import SecretView, ServiceAccountView, added_entry, entry_secret
from ecr_pull_secrets.model.output import DEFAULT, TEMPLATE_ANNOTATION, Output
from ecr_pull_secrets.model.timestamps import format_time


class SecretState(StrEnum):
    OK = "OK"
    MISSING = "Missing"
    STALE = "Stale"
    """Ours, but edited, outdated, for other registries or of another shape: rewrite it (in place,
    or replaced when its type must change)."""
    FOREIGN = "Foreign"
    """Controlled by another resource of ours: report, never fight over it."""


def examine(
    secret: SecretView | None,
    owner_uid: str,
    hosts: Iterable[str],
    expires_at: datetime | None,
    output: Output = DEFAULT,
) -> SecretState:
    """Judged from the watch cache; Secrets without our label are not in it, so a name taken by
    a foreign Secret shows as MISSING here and as a conflict when the create is refused."""
    if secret is None:
        return SecretState.MISSING
    if secret.controller_uid != owner_uid:
        return SecretState.FOREIGN if secret.controller_uid else SecretState.MISSING
    fresh = (
        secret.type == output.shape.secret_type
        and secret.managed
        and secret.content_ok
        and expires_at is not None
        and secret.annotations.get(api.EXPIRES_AT_ANNOTATION) == format_time(expires_at)
        and secret.hosts == frozenset(hosts)
        and output.marks <= secret.marks
        and secret.annotations.get(TEMPLATE_ANNOTATION, "") == output.template_keys
    )
    return SecretState.OK if fresh else SecretState.STALE


@dataclass(frozen=True)
class AccountChanges:
    add: tuple[ServiceAccountView, ...]
    remove: tuple[ServiceAccountView, ...]


def account_changes(
    wanted: Iterable[ServiceAccountView],
    present: Iterable[ServiceAccountView],
    secret_name: str,
    owner_uid: str = "",
) -> AccountChanges:
    """`wanted`: the accounts that should list the Secret; `present`: every account in scope of
    cleanup. Only entries this owner added are removed; entries someone else added, even of the
    same name, are never touched, and nothing is added twice."""
    wanted = tuple(wanted)
    ours = added_entry(secret_name, owner_uid)
    wanted_keys = {(sa.namespace, sa.name) for sa in wanted}
    add = tuple(sa for sa in wanted if secret_name not in sa.image_pull_secrets)
    remove = tuple(sa for sa in present if (sa.namespace, sa.name) not in wanted_keys and ours in sa.added)
    return AccountChanges(add=add, remove=remove)


def releases(
    accounts: Iterable[ServiceAccountView], owner_uid: str
) -> tuple[tuple[ServiceAccountView, tuple[str, ...]], ...]:
    """For a resource that goes: each account with entries it added, and those entries' Secret
    names (whatever its spec says now, which may not even parse)."""
    found = []
    for sa in accounts:
        secrets = tuple(
            sorted(entry_secret(e) for e in sa.added if e == added_entry(entry_secret(e), owner_uid))
        )
        if secrets and owner_uid:
            found.append((sa, secrets))
    return tuple(found)
