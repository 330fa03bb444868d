"""Keeps the caches in step with the cluster, and says whom each change concerns.

At start, paginated lists fill the caches before kopf starts its watches (it does so only after
the start-up handlers): the first resource event already finds every namespace, ServiceAccount and
managed Secret. Then watch events and our own writes keep them current, and a metadata-only relist
every so often repairs what a watch gap may have missed (a delete, most of all).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from ecr_pull_secrets.handlers.cache import ClusterCache, Key, newer
from ecr_pull_secrets.kube.listing import Listing
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import namespace_view, secret_view, service_account_view

log = logging.getLogger(__name__)

MANAGED_SELECTOR = f"{api.MANAGED_BY_LABEL}={api.MANAGED_BY}"
Wake = Callable[[str], None]


class CacheSync:
    def __init__(
        self, cache: ClusterCache, listing: Listing, wake: Wake, watched: tuple[str, ...] = ()
    ) -> None:
        self._cache = cache
        self._listing = listing
        self._wake = wake
        self._watched = watched

    # -- watch events ------------------------------------------------------------------------

    def namespace_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        view = namespace_view(body)
        changed = (
            self._cache.drop_namespace(view.name) if type_ == "DELETED" else self._cache.put_namespace(view)
        )
        if changed:
            self._wake_namespace(view.name)

    def account_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        view = service_account_view(body)
        if type_ == "DELETED":
            held = self._cache.drop_account(view.namespace, view.name)
            if held is not None:
                self._wake_accounts(view.namespace, _owners(held.added))
        elif self._cache.put_account(view):
            self._wake_accounts(view.namespace, _owners(view.added))

    def secret_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        view = secret_view(body)
        held = self._cache.secret(view.namespace, view.name)
        if type_ == "DELETED":
            gone = self._cache.drop_secret(view.namespace, view.name, view.uid)
            owners = {gone.controller_uid} if gone is not None else set()
        elif self._cache.put_secret(view):
            owners = {view.controller_uid, held.controller_uid if held is not None else None}
        else:
            owners = set()
        for uid in owners:
            if uid:
                self._wake(uid)

    def _wake_namespace(self, name: str) -> None:
        for uid in (*self._cache.cluster_resources(), *self._cache.resources_in(name)):
            self._wake(uid)

    def _wake_accounts(self, namespace: str, owners: Iterable[str]) -> None:
        """Resources that patch ServiceAccounts there, and those that added entries to this one."""
        for uid in (*self._cache.cluster_resources(), *self._cache.resources_in(namespace)):
            body = self._cache.resource(uid)
            if body is not None and body.get("spec", {}).get("serviceAccounts"):
                self._wake(uid)
        for uid in owners:
            self._wake(uid)

    # -- lists -------------------------------------------------------------------------------

    def prime(self) -> tuple[int, int, int]:
        """Blocking: fills the caches from whole-object lists; the counts of each kind."""
        counts = [0, 0, 0]
        for items, _ in self._listing.pages("namespaces"):
            for body in items:
                self._cache.put_namespace(namespace_view(body))
                counts[0] += 1
        for namespace in self._scopes():
            for items, _ in self._listing.pages("serviceaccounts", namespace=namespace):
                for body in items:
                    self._cache.put_account(service_account_view(body))
                    counts[1] += 1
            for items, _ in self._listing.pages(
                "secrets", namespace=namespace, label_selector=MANAGED_SELECTOR
            ):
                for body in items:
                    self._cache.put_secret(secret_view(body))
                    counts[2] += 1
        return counts[0], counts[1], counts[2]

    def relist(self) -> int:
        """Blocking: compares metadata-only lists with the caches; fetches what changed unseen,
        drops what was deleted unseen, and wakes whom that concerns. Returns the repairs made."""
        repairs = 0
        listed_ns, list_rv = self._versions("namespaces", None)
        held_ns = {("", ns.name): ns.resource_version for ns in self._cache.namespaces()}
        gone, changed = stale(held_ns, listed_ns, list_rv)
        for _, name in gone:
            repairs += self._cache.drop_namespace(name)
            self._wake_namespace(name)
        for _, name in changed:
            body = self._listing.get("namespaces", None, name)
            self.namespace_event(
                "DELETED" if body is None else "MODIFIED", body or {"metadata": {"name": name}}
            )
            repairs += 1
        for namespace in self._scopes():
            repairs += self._relist_accounts(namespace)
            repairs += self._relist_secrets(namespace)
        return repairs

    def _relist_accounts(self, namespace: str | None) -> int:
        listed, list_rv = self._versions("serviceaccounts", namespace)
        accounts = self._cache.service_accounts(namespace) if namespace else self._cache.all_accounts()
        held = {(sa.namespace, sa.name): sa.resource_version for sa in accounts}
        gone, changed = stale(held, listed, list_rv)
        for ns, name in gone:
            account = self._cache.service_account(ns, name)
            if account is not None:
                self.account_event("DELETED", _stub(ns, name, account.resource_version))
        for ns, name in changed:
            body = self._listing.get("serviceaccounts", ns, name)
            if body is not None:
                self.account_event("MODIFIED", body)
        return len(gone) + len(changed)

    def _relist_secrets(self, namespace: str | None) -> int:
        listed, list_rv = self._versions("secrets", namespace, MANAGED_SELECTOR)
        held = {
            key: secret.resource_version
            for key in self._cache.secret_keys()
            if (secret := self._cache.secret(*key)) is not None and (namespace is None or key[0] == namespace)
        }
        gone, changed = stale(held, listed, list_rv)
        for ns, name in gone:
            secret = self._cache.secret(ns, name)
            if secret is not None:
                self.secret_event("DELETED", {"metadata": {"namespace": ns, "name": name, "uid": secret.uid}})
        for ns, name in changed:
            body = self._listing.get("secrets", ns, name)
            if body is not None:
                self.secret_event("MODIFIED", body)
        return len(gone) + len(changed)

    def _versions(
        self, plural: str, namespace: str | None, label_selector: str = ""
    ) -> tuple[dict[Key, str], str]:
        """(namespace, name) -> resourceVersion of what a metadata-only list shows, and its version."""
        listed: dict[Key, str] = {}
        list_rv = ""
        pages = self._listing.pages(
            plural, namespace=namespace, label_selector=label_selector, metadata_only=True
        )
        for items, page_rv in pages:
            listed.update(_versions(items))
            list_rv = page_rv
        return listed, list_rv

    def _scopes(self) -> Sequence[str | None]:
        """None (the whole cluster), or each watched namespace the operator can see."""
        if not self._watched:
            return [None]
        return sorted(
            ns.name for ns in self._cache.namespaces() if any(fnmatchcase(ns.name, g) for g in self._watched)
        )

    async def relist_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                repairs = await asyncio.to_thread(self.relist)
            except Exception:
                log.exception("relisting failed; trying again in %.0fs", seconds)
                continue
            if repairs:
                log.warning("relist: %d objects had changed without a watch event; repaired", repairs)


def stale(held: Mapping[Key, str], listed: Mapping[Key, str], list_rv: str) -> tuple[list[Key], list[Key]]:
    """What the cache holds but the list lacks (gone, unless recorded after the list was taken),
    and what the list has at a newer version than the cache (or the cache lacks)."""
    gone = sorted(key for key, rv in held.items() if key not in listed and not newer(rv, list_rv))
    changed = sorted(key for key, rv in listed.items() if key not in held or newer(rv, held[key]))
    return gone, changed


def _versions(items: Iterable[Mapping[str, Any]]) -> dict[Key, str]:
    found = {}
    for item in items:
        meta = item.get("metadata") or {}
        found[(meta.get("namespace") or "", meta.get("name") or "")] = str(meta.get("resourceVersion") or "")
    return found


def _stub(namespace: str, name: str, resource_version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": resource_version}}


def _owners(entries: Iterable[str]) -> set[str]:
    return {entry.partition("@")[2] for entry in entries if "@" in entry}
