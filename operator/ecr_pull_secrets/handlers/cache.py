"""The operator's own caches: compact records of namespaces, ServiceAccounts, managed Secrets and our
resources, with the secondary indexes that let an event touch only the resources it concerns.

Fed by watch events, by our own writes (the API server's answer is the newest state there is) and
primed by lists at start. A record is replaced only by a newer resourceVersion, so a late watch
event never undoes what our own write already recorded. Plain dicts: the event loop is the only
writer and reader, so no locks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import NamespaceView, SecretView, ServiceAccountView, entry_owners

Key = tuple[str, str]
"""(namespace, name)"""
SHORT = 128
"""Strings up to this long are interned in cached bodies."""


def newer(incoming: str, held: str) -> bool:
    """resourceVersions are opaque, but in practice etcd revisions: compared as integers when both
    are; otherwise any different version counts as newer (trusting the watch over our memory)."""
    try:
        return int(incoming) > int(held)
    except ValueError:
        return incoming != held


def compact_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A resource as the reconciler reads it: without managedFields (often most of its size), and
    with its keys and short strings interned: a JSON document has its own copy of every key, and
    thousands of resources repeat the same keys, condition types, reasons and times (5.5 KB per
    body before, measured)."""
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    return {
        "apiVersion": _interned(body.get("apiVersion")),
        "kind": _interned(body.get("kind")),
        "metadata": _interned(meta),
        "spec": _interned(body.get("spec") or {}),
        "status": _interned(body.get("status") or {}),
    }


def _interned(value: Any) -> Any:
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= SHORT else value
    if isinstance(value, Mapping):
        return {sys.intern(str(k)): _interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interned(v) for v in value]
    return value


class ClusterCache:
    def __init__(self) -> None:
        self._namespaces: dict[str, NamespaceView] = {}
        self._accounts: dict[str, dict[str, ServiceAccountView]] = {}
        self._added_by: dict[str, set[Key]] = {}
        """owner uid -> ServiceAccounts holding an imagePullSecrets entry it added"""
        self._secrets: dict[Key, SecretView] = {}
        self._secrets_by_owner: dict[str, set[Key]] = {}
        self._bodies: dict[str, dict[str, Any]] = {}
        self._homes: dict[str, set[str]] = {}
        """namespace -> uids of the EcrPullSecrets in it"""
        self._cluster: set[str] = set()
        """uids of ClusterEcrPullSecrets"""

    # -- namespaces --------------------------------------------------------------------------

    def namespaces(self) -> Iterable[NamespaceView]:
        return self._namespaces.values()

    def namespace(self, name: str) -> NamespaceView | None:
        return self._namespaces.get(name)

    def put_namespace(self, view: NamespaceView) -> bool:
        """True when what decisions read of it changed (or it is new)."""
        held = self._namespaces.get(view.name)
        if held is not None and not newer(view.resource_version, held.resource_version):
            return False
        self._namespaces[view.name] = view
        return held is None or replace(held, resource_version=view.resource_version) != view

    def drop_namespace(self, name: str) -> bool:
        return self._namespaces.pop(name, None) is not None

    # -- ServiceAccounts ---------------------------------------------------------------------

    def service_accounts(self, namespace: str) -> Iterable[ServiceAccountView]:
        return (self._accounts.get(namespace) or {}).values()

    def service_account(self, namespace: str, name: str) -> ServiceAccountView | None:
        return (self._accounts.get(namespace) or {}).get(name)

    def all_accounts(self) -> Iterator[ServiceAccountView]:
        for accounts in self._accounts.values():
            yield from accounts.values()

    def accounts_added_by(self, owner_uid: str) -> list[ServiceAccountView]:
        """Every ServiceAccount holding an imagePullSecrets entry that resource added."""
        found = (self.service_account(*key) for key in sorted(self._added_by.get(owner_uid, ())))
        return [sa for sa in found if sa is not None]

    def put_account(self, view: ServiceAccountView) -> bool:
        held = self.service_account(view.namespace, view.name)
        if held is not None and not newer(view.resource_version, held.resource_version):
            return False
        self._unindex_account(held)
        self._accounts.setdefault(view.namespace, {})[view.name] = view
        for owner in entry_owners(view.added):
            self._added_by.setdefault(owner, set()).add((view.namespace, view.name))
        return held is None or replace(held, resource_version=view.resource_version) != view

    def drop_account(self, namespace: str, name: str) -> ServiceAccountView | None:
        accounts = self._accounts.get(namespace) or {}
        held = accounts.pop(name, None)
        if not accounts:
            self._accounts.pop(namespace, None)
        self._unindex_account(held)
        return held

    def _unindex_account(self, held: ServiceAccountView | None) -> None:
        if held is None:
            return
        for owner in entry_owners(held.added):
            _discard(self._added_by, owner, (held.namespace, held.name))

    # -- managed Secrets ---------------------------------------------------------------------

    def secret(self, namespace: str, name: str) -> SecretView | None:
        return self._secrets.get((namespace, name))

    def secrets_of(self, owner_uid: str) -> list[SecretView]:
        return [self._secrets[key] for key in sorted(self._secrets_by_owner.get(owner_uid, ()))]

    def secret_keys(self) -> Iterable[Key]:
        return self._secrets.keys()

    def put_secret(self, view: SecretView) -> bool:
        """Records it unless what is held is that object at the same or a newer version; True
        when what decisions read of it changed (or it is new)."""
        key = (view.namespace, view.name)
        held = self._secrets.get(key)
        if (
            held is not None
            and held.uid == view.uid
            and not newer(view.resource_version, held.resource_version)
        ):
            return False
        self._unindex_secret(held)
        self._secrets[key] = view
        if view.controller_uid:
            self._secrets_by_owner.setdefault(view.controller_uid, set()).add(key)
        return held is None or replace(held, resource_version=view.resource_version) != view

    def drop_secret(self, namespace: str, name: str, uid: str) -> SecretView | None:
        """Only that very object: a delete event of an older Secret leaves its successor alone."""
        held = self._secrets.get((namespace, name))
        if held is None or held.uid != uid:
            return None
        del self._secrets[(namespace, name)]
        self._unindex_secret(held)
        return held

    def _unindex_secret(self, held: SecretView | None) -> None:
        if held is not None and held.controller_uid:
            _discard(self._secrets_by_owner, held.controller_uid, (held.namespace, held.name))

    # -- our resources -----------------------------------------------------------------------

    def resource(self, uid: str) -> Mapping[str, Any] | None:
        return self._bodies.get(uid)

    def resources_in(self, namespace: str) -> Iterable[str]:
        """uids of the EcrPullSecrets in that namespace."""
        return tuple(self._homes.get(namespace, ()))

    def cluster_resources(self) -> Iterable[str]:
        return tuple(self._cluster)

    def namespaced_resources(self) -> Iterable[str]:
        return tuple(uid for uids in self._homes.values() for uid in uids)

    def all_resources(self) -> Iterable[str]:
        return tuple(self._bodies)

    @property
    def resource_count(self) -> int:
        return len(self._bodies)

    def put_resource(self, body: Mapping[str, Any], *, compacted: bool = False) -> bool:
        """True when the body is newer than the one held (or new). `compacted`: compact_body()'s
        already (a listing thread made it)."""
        meta = body.get("metadata") or {}
        uid = meta.get("uid", "")
        held = self._bodies.get(uid)
        if held is not None and not newer(
            str(meta.get("resourceVersion", "")), str(held["metadata"].get("resourceVersion", ""))
        ):
            return False
        self._bodies[uid] = dict(body) if compacted else compact_body(body)
        if body.get("kind") == api.CLUSTER_KIND:
            self._cluster.add(uid)
        else:
            self._homes.setdefault(meta.get("namespace", ""), set()).add(uid)
        return True

    def drop_resource(self, uid: str) -> None:
        held = self._bodies.pop(uid, None)
        if held is None:
            return
        self._cluster.discard(uid)
        _discard(self._homes, held["metadata"].get("namespace", ""), uid)


def _discard(index: dict[Any, set[Any]], key: Any, item: Any) -> None:
    members = index.get(key)
    if members is None:
        return
    members.discard(item)
    if not members:
        del index[key]
