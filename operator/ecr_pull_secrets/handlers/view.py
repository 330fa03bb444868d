"""The operator's view of the cluster: kopf's watch indexes, plus our own writes until the watch
has caught up with them (otherwise a pass right after a write would see drift and write twice)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ecr_pull_secrets.model.cluster import (
    NamespaceView,
    SecretView,
    ServiceAccountView,
    entry_secret,
    secret_view,
)

ALL = "*"


class Index(Protocol):
    """What kopf.Index offers: key → a collection of values."""

    def get(self, key: Any, default: Any = None) -> Any: ...


class ClusterView:
    def __init__(self) -> None:
        self._indexes: dict[str, Index] = {}
        self._written: dict[tuple[str, str], SecretView] = {}

    def bind(self, indexes: Mapping[str, Any]) -> None:
        """kopf hands its indexes to handlers as keyword arguments; keep them."""
        for name in ("ecr_namespaces", "ecr_secrets", "ecr_secrets_by_owner", "ecr_service_accounts"):
            if name in indexes:
                self._indexes[name] = indexes[name]

    def namespaces(self) -> list[NamespaceView]:
        return list(self._values("ecr_namespaces", ALL))

    def namespace(self, name: str) -> NamespaceView | None:
        found: NamespaceView | None = next(iter(self._values("ecr_namespaces", name)), None)
        return found

    def secret(self, namespace: str, name: str) -> SecretView | None:
        watched: SecretView | None = next(iter(self._values("ecr_secrets", (namespace, name))), None)
        ours = self._written.get((namespace, name))
        if ours is None:
            return watched
        if watched is not None and _not_older(watched.resource_version, ours.resource_version):
            del self._written[(namespace, name)]
            return watched
        return ours

    def secrets_of(self, owner_uid: str) -> list[SecretView]:
        return list(self._values("ecr_secrets_by_owner", owner_uid))

    def service_accounts(self, namespace: str) -> list[ServiceAccountView]:
        return list(self._values("ecr_service_accounts", namespace))

    def accounts_with(self, secret_name: str) -> list[ServiceAccountView]:
        """Every ServiceAccount whose imagePullSecrets entry of that name was added by us."""
        accounts = self._values("ecr_service_accounts", ALL)
        return [sa for sa in accounts if any(entry_secret(e) == secret_name for e in sa.added)]

    def accounts_added_by(self, owner_uid: str) -> list[ServiceAccountView]:
        """Every ServiceAccount holding an imagePullSecrets entry that resource added."""
        suffix = "@" + owner_uid
        accounts = self._values("ecr_service_accounts", ALL)
        return [sa for sa in accounts if any(e.endswith(suffix) for e in sa.added)]

    def wrote(self, body: Mapping[str, Any]) -> None:
        view = secret_view(body)
        self._written[(view.namespace, view.name)] = view

    def gone(self, namespace: str, name: str, uid: str) -> None:
        """That Secret was deleted (by us or anyone): what we remember writing is void."""
        ours = self._written.get((namespace, name))
        if ours is not None and ours.uid == uid:
            del self._written[(namespace, name)]

    def _values(self, index: str, key: Any) -> Iterable[Any]:
        found = self._indexes.get(index)
        if found is None:
            return ()
        return found.get(key) or ()


def _not_older(watched: str, written: str) -> bool:
    """resourceVersions are opaque, but in practice etcd revisions; if they ever stop being
    integers, trust the watch rather than our memory."""
    try:
        return int(watched) >= int(written)
    except ValueError:
        return True
