"""Keeps the caches in step with the cluster, and says whom each change concerns.

At start, paginated lists fill the caches before kopf starts its watches (it does so only after
the start-up handlers): the first resource event already finds every namespace, ServiceAccount and
managed Secret. Then watches of our own, from the version each list was taken at, and our own
writes keep them current; a watch whose version has gone lists again. A metadata-only relist every
so often repairs what a watch gap may have missed (a delete, most of all).

Why not kopf's watches for these three kinds: kopf spends about 1.3 ms and keeps about 1 KB per
object on machinery an event handler does not need (measured), and three of the four objects per
resource (its namespace, ServiceAccount and Secret) are not ours; at a restart with 2,000 resources
that was 10 s of the event loop before a new resource was served.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from ecr_pull_secrets.handlers.cache import ClusterCache, Key, newer
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.listing import Listing
from ecr_pull_secrets.kube.watching import Gone, Watching
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import (
    entry_owners,
    namespace_view,
    secret_view,
    service_account_view,
)

log = logging.getLogger(__name__)

MANAGED_SELECTOR = f"{api.MANAGED_BY_LABEL}={api.MANAGED_BY}"
Wake = Callable[[str], None]
Scope = tuple[str, str | None]
"""(plural, namespace or None for the whole cluster)"""
RETRY_CAP = 30.0


class CacheSync:
    def __init__(
        self,
        cache: ClusterCache,
        listing: Listing,
        wake: Wake,
        watched: tuple[str, ...] = (),
        *,
        watching: Watching | None = None,
    ) -> None:
        self._cache = cache
        self._listing = listing
        self._watching = watching
        self._wake = wake
        self._watched = watched
        self._followers: dict[Scope, threading.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- watch events ------------------------------------------------------------------------

    def event(self, plural: str, type_: str | None, body: Mapping[str, Any]) -> None:
        if plural == "namespaces":
            self.namespace_event(type_, body)
        elif plural == "serviceaccounts":
            self.account_event(type_, body)
        else:
            self.secret_event(type_, body)

    def namespace_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        view = namespace_view(body)
        gone = type_ == "DELETED"
        if self._cache.drop_namespace(view.name) if gone else self._cache.put_namespace(view):
            self._wake_namespace(view.name)
        if self._watched and self._loop is not None and any(fnmatchcase(view.name, g) for g in self._watched):
            for plural in ("serviceaccounts", "secrets"):  # a watched namespace came or went
                if gone:
                    self._unfollow((plural, view.name))
                else:
                    self._follow((plural, view.name), None)

    def account_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        view = service_account_view(body)
        if type_ == "DELETED":
            held = self._cache.drop_account(view.namespace, view.name)
            if held is not None:
                self._wake_accounts(view.namespace, entry_owners(held.added))
        elif self._cache.put_account(view):
            self._wake_accounts(view.namespace, entry_owners(view.added))

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

    def prime(self) -> dict[Scope, str]:
        """Blocking: fills the caches from whole-object lists; the version each list was taken at."""
        versions: dict[Scope, str] = {("namespaces", None): self._list("namespaces", None)}
        for namespace in self._scopes():
            for plural in ("serviceaccounts", "secrets"):
                versions[(plural, namespace)] = self._list(plural, namespace)
        return versions

    def _list(self, plural: str, namespace: str | None) -> str:
        """Blocking, in the caller's thread: records every object the list shows, wakes nobody."""
        version = ""
        pages = self._listing.pages(plural, namespace=namespace, label_selector=_selector(plural))
        for items, page_version in pages:
            for body in items:
                self._record(plural, body)
            version = page_version
        return version

    def _record(self, plural: str, body: Mapping[str, Any]) -> None:
        if plural == "namespaces":
            self._cache.put_namespace(namespace_view(body))
        elif plural == "serviceaccounts":
            self._cache.put_account(service_account_view(body))
        else:
            self._cache.put_secret(secret_view(body))

    @property
    def counts(self) -> tuple[int, int, int]:
        """Namespaces, ServiceAccounts and managed Secrets in the caches."""
        namespaces = sum(1 for _ in self._cache.namespaces())
        accounts = sum(1 for _ in self._cache.all_accounts())
        return namespaces, accounts, sum(1 for _ in self._cache.secret_keys())

    # -- watches -----------------------------------------------------------------------------

    def follow(self, versions: Mapping[Scope, str]) -> None:
        """In the event loop: watch each listed scope from the version of its list."""
        self._loop = asyncio.get_running_loop()
        for scope, version in versions.items():
            self._follow(scope, version)

    def stop(self) -> None:
        for scope in list(self._followers):
            self._unfollow(scope)

    def _follow(self, scope: Scope, version: str | None) -> None:
        """A thread per scope (the client blocks); None: list first (a namespace that came later)."""
        if scope in self._followers or self._watching is None:
            return
        stop = threading.Event()
        self._followers[scope] = stop
        name = f"watch/{scope[0]}/{scope[1] or '*'}"
        threading.Thread(target=self._run, args=(scope, version, stop), name=name, daemon=True).start()

    def _unfollow(self, scope: Scope) -> None:
        stop = self._followers.pop(scope, None)
        if stop is not None:
            stop.set()

    def _run(self, scope: Scope, version: str | None, stop: threading.Event) -> None:
        """In its own thread: watch, and list again when the watch's version is gone."""
        assert self._watching is not None
        assert self._loop is not None
        plural, namespace = scope
        delay = 0.0
        while not stop.is_set():
            try:
                if version is None:
                    version = self._list_again(scope)
                for type_, body in self._watching.events(
                    plural, version, namespace=namespace, label_selector=_selector(plural)
                ):
                    if stop.is_set():
                        return
                    version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                    if type_ != "BOOKMARK":
                        self._loop.call_soon_threadsafe(self.event, plural, type_, body)
                delay = 0.0
            except Gone:
                version = None
            except Exception as error:  # a watch must outlive any one failure
                delay = min(max(delay * 2, 1.0), RETRY_CAP)
                if isinstance(error, KubeError):
                    log.warning("watching %s: %s; again in %.0fs", plural, error, delay)
                else:
                    log.exception("watching %s failed; again in %.0fs", plural, delay)
                stop.wait(delay)

    def _list_again(self, scope: Scope) -> str:
        """In the watch's thread: a whole list, handed to the event loop to replace that scope."""
        assert self._loop is not None
        plural, namespace = scope
        items: list[dict[str, Any]] = []
        version = ""
        pages = self._listing.pages(plural, namespace=namespace, label_selector=_selector(plural))
        for page, page_version in pages:
            items += page
            version = page_version
        self._loop.call_soon_threadsafe(self.replace, scope, items, version)
        return version

    def replace(self, scope: Scope, items: Sequence[Mapping[str, Any]], list_rv: str) -> None:
        """What a whole list of that scope shows is the truth: each object recorded, others dropped."""
        plural, namespace = scope
        gone, _ = stale(self._held(plural, namespace), _versions(items), list_rv)
        for key in gone:
            self._drop(plural, key)
        for body in items:
            self.event(plural, "MODIFIED", body)

    def _held(self, plural: str, namespace: str | None) -> dict[Key, str]:
        if plural == "namespaces":
            return {("", ns.name): ns.resource_version for ns in self._cache.namespaces()}
        if plural == "serviceaccounts":
            accounts = self._cache.service_accounts(namespace) if namespace else self._cache.all_accounts()
            return {(sa.namespace, sa.name): sa.resource_version for sa in accounts}
        return {
            key: secret.resource_version
            for key in self._cache.secret_keys()
            if (secret := self._cache.secret(*key)) is not None and (namespace is None or key[0] == namespace)
        }

    def _drop(self, plural: str, key: Key) -> None:
        namespace, name = key
        if plural == "namespaces":
            self.namespace_event("DELETED", {"metadata": {"name": name}})
        elif plural == "serviceaccounts":
            account = self._cache.service_account(namespace, name)
            if account is not None:
                self.account_event("DELETED", _stub(namespace, name, account.resource_version))
        elif (secret := self._cache.secret(namespace, name)) is not None:
            self.secret_event(
                "DELETED", {"metadata": {"namespace": namespace, "name": name, "uid": secret.uid}}
            )

    async def relist(self) -> int:
        """Compares metadata-only lists with the caches; fetches what changed unseen, drops what
        was deleted unseen, and wakes whom that concerns. The requests run in threads, the cache
        is touched only here, in the event loop. Returns the repairs made."""
        scopes: list[Scope] = [("namespaces", None)]
        scopes += [(plural, ns) for ns in self._scopes() for plural in ("serviceaccounts", "secrets")]
        repairs = 0
        for plural, namespace in scopes:
            listed, list_rv = await asyncio.to_thread(self._versions, plural, namespace, _selector(plural))
            gone, changed = stale(self._held(plural, namespace), listed, list_rv)
            for key in gone:
                self._drop(plural, key)
            for ns, name in changed:
                body = await asyncio.to_thread(self._listing.get, plural, ns or None, name)
                if body is not None:
                    self.event(plural, "MODIFIED", body)
                elif (ns, name) in self._held(plural, namespace):
                    self._drop(plural, (ns, name))
            repairs += len(gone) + len(changed)
        return repairs

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
                repairs = await self.relist()
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


def _selector(plural: str) -> str:
    """Only Secrets we manage: no other Secret's data is ever read."""
    return MANAGED_SELECTOR if plural == "secrets" else ""
