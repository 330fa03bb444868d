"""Keeps the caches in step with the cluster, and says whom each change concerns.

At start, paginated lists fill the caches (namespaces, ServiceAccounts, managed Secrets and our
resources) before any work starts. Then watches of our own, from the version each list was taken
at, and our own writes keep them current; a watch whose version has gone lists again. A
metadata-only relist every so often repairs what a watch gap may have missed (a delete, most of
all). kopf's peering object, when there is one, is watched the same way and handed to the gate.

Why not kopf's watches: kopf spends 1.3-2 ms of the event loop and keeps about 1 KB per object on
each event, on machinery (causes, per-object workers and loggers, diff bases) an event handler does
not need (measured); at a restart with 10,000 resources its processing of the initial list alone
was ~13 s of loop time, and a new resource waited 50 s behind it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from fnmatch import fnmatchcase
from typing import Any, Protocol

from ecr_pull_secrets.handlers.cache import ClusterCache, Key, compact_body, newer
from ecr_pull_secrets.handlers.queue import WorkQueue
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.listing import Listing
from ecr_pull_secrets.kube.watching import Gone, Watching
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import (
    SecretView,
    entry_owners,
    namespace_view,
    secret_view,
    service_account_view,
)

log = logging.getLogger(__name__)

MANAGED_SELECTOR = f"{api.MANAGED_BY_LABEL}={api.MANAGED_BY}"
CACHED = ("namespaces", "serviceaccounts", "secrets")
"""Kinds recorded in the caches here; the others (our resources, peering) are handed on."""
RESOURCES = (api.PLURAL, api.CLUSTER_PLURAL)
Wake = Callable[[str], None]
Handler = Callable[[str | None, Mapping[str, Any]], None]
"""(event type, or None for what a list showed; the object)"""
Primed = dict["Scope", str | None]
"""The version each start-up list was taken at (None: not served yet)."""
Scope = tuple[str, str | None]
"""(plural, namespace or None for the whole cluster)"""
Pages = queue.Queue[tuple[Scope, list[dict[str, Any]] | KubeError | None, str]]
"""A start-up list's pages as its fetcher hands them on: the items, or its failure, or None at its
end; and the list's version."""
RECORD_SLICE = 100
"""Objects of a start-up list recorded in the event loop at a time (a few ms of the loop)."""
GIVE_WAY_SECONDS = 0.25
"""The longest a start-up list waits between two pages while changes are being served."""
RETRY_CAP = 30.0
OWNER_READS_AT_ONCE = 4
"""Owners of deleted or changed Secrets read directly at a time while the start-up lists run."""
PRIME_THREADS = 8
PRIME_PAGES_WAITING = 8


class Peering(Protocol):
    """The peering gate as the caches feed it."""

    def event(self, type_: str | None, body: Mapping[str, Any]) -> None: ...

    def listed(self) -> None:
        """The start-up list of peering objects has ended."""


class ResourceEvents:
    """Our resources' watch events: into the cache, onto the queue (or out of both)."""

    def __init__(self, cache: ClusterCache, queue: WorkQueue, forget: Callable[[str], None]) -> None:
        self._cache = cache
        self._queue = queue
        self._forget = forget

    def __call__(self, type_: str | None, body: Mapping[str, Any]) -> None:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if not uid:
            return
        if type_ == "DELETED":
            self._cache.drop_resource(uid)
            self._queue.forget(uid)
            self._forget(uid)
        elif self._cache.put_resource(body):
            self._queue.add(uid)


class CacheSync:
    def __init__(
        self,
        cache: ClusterCache,
        listing: Listing,
        wake: Wake,
        watched: tuple[str, ...] = (),
        *,
        watching: Watching | None = None,
        on_resource: Handler | None = None,
        peering: tuple[str, Peering] | None = None,
        give_way: Callable[[float], None] | None = None,
    ) -> None:
        """`on_resource`: our resources' events. `peering`: (the peering kind's plural, its gate).
        `give_way(timeout)`: called by the start-up lists between pages; returns when they may go
        on (the work queue's wait_calm: changes are served first)."""
        self._cache = cache
        self._listing = listing
        self._watching = watching
        self._wake = wake
        self._watched = watched
        self._on_resource = on_resource
        self._peering = peering
        self._give_way = give_way
        self._followers: dict[Scope, threading.Event] = {}
        self.prime_seconds = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        # While the start-up lists run (see start_prime, read_namespace):
        self.complete = False
        """The start-up lists have ended and every page is recorded."""
        self._listed: Callable[[str], None] | None = None
        self._followed: Callable[[Scope], None] | None = None
        self._peering_lists = 0
        """Peering lists not ended yet."""
        self._buried: dict[tuple[str, str, str], str] = {}
        """(plural, namespace, name) -> the version a watch saw it deleted at"""
        self._read: set[str] = set()
        """Namespaces read_namespace has read"""
        self._reading: dict[str, asyncio.Future[list[tuple[str, Any]]]] = {}
        self._fetching: set[tuple[str, str]] = set()
        """(namespace, name) of the owners _fetch_owner has read or is reading"""
        self._owner_reads: set[asyncio.Future[None]] = set()
        self._replaced: dict[Scope, str] = {}
        """Scopes a watch listed again while the start-up lists ran -> that list's version"""
        self._stopped = threading.Event()

    # -- watch events ------------------------------------------------------------------------

    def event(self, plural: str, type_: str | None, body: Mapping[str, Any]) -> None:
        """One object's change, from a watch or a list; one that cannot be taken in is said and
        left, so that the rest of a list still is (`_viewed`)."""
        try:
            self._take(plural, type_, body)
        except Exception as error:
            _left_out(plural, body, error)

    def _take(self, plural: str, type_: str | None, body: Mapping[str, Any]) -> None:
        if plural == "namespaces":
            self.namespace_event(type_, body)
        elif plural == "serviceaccounts":
            self.account_event(type_, body)
        elif plural == "secrets":
            self.secret_event(type_, body)
        elif plural in RESOURCES:
            if type_ == "DELETED":
                self._bury(plural, body)
            if self._on_resource is not None:
                self._on_resource(type_, body)
        elif self._peering is not None:
            self._peering[1].event(type_, body)

    def namespace_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        view = namespace_view(body)
        gone = type_ == "DELETED"
        if gone:
            self._bury("namespaces", body)
        if self._cache.drop_namespace(view.name) if gone else self._cache.put_namespace(view):
            self._wake_namespace(view.name)
        if self._watched and self._loop is not None and any(fnmatchcase(view.name, g) for g in self._watched):
            for plural in self._per_namespace():  # a watched namespace came or went
                if gone:
                    self._unfollow((plural, view.name))
                else:
                    self._follow((plural, view.name), None)

    def account_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        view = service_account_view(body)
        if type_ == "DELETED":
            self._bury("serviceaccounts", body)
            held = self._cache.drop_account(view.namespace, view.name)
            if held is not None:
                self._wake_accounts(view.namespace, entry_owners(held.added))
        elif self._cache.put_account(view):
            self._wake_accounts(view.namespace, entry_owners(view.added))

    def secret_event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        view = secret_view(body)
        held = self._cache.secret(view.namespace, view.name)
        if type_ == "DELETED":
            self._bury("secrets", body)
            gone = self._cache.drop_secret(view.namespace, view.name, view.uid)
            owners = {gone.controller_uid} if gone is not None else set()
            if held is None and not self.complete:  # deleted before its list page came
                owners.add(view.controller_uid)
        elif self._cache.put_secret(view):
            owners = {view.controller_uid, held.controller_uid if held is not None else None}
        else:
            owners = set()
        for uid in owners:
            if uid:
                self._wake(uid)
                if uid == view.controller_uid and not self.complete and self._cache.resource(uid) is None:
                    self._fetch_owner(view)

    def _fetch_owner(self, view: SecretView) -> None:
        """While the start-up lists run: the EcrPullSecret that controls a Secret, read directly
        when its list has not shown it yet, so that its repair need not wait for the lists. Once
        per owner name, in its own namespace only (a Secret's owner is always there), at most
        OWNER_READS_AT_ONCE at a time: ownerReferences are the tenant's to write, and an owner
        not read here comes with the lists anyway."""
        kind, _, name = view.controller.partition(" ")
        owner = (view.namespace, name)
        if (
            kind != api.KIND
            or not name
            or owner in self._fetching
            or len(self._owner_reads) >= OWNER_READS_AT_ONCE
            or self._loop is None  # the lists have not started, nor has any watch
        ):
            return
        self._fetching.add(owner)
        task = asyncio.ensure_future(self._read_owner(view.namespace, name, str(view.controller_uid or "")))
        self._owner_reads.add(task)
        task.add_done_callback(self._owner_reads.discard)

    async def _read_owner(self, namespace: str, name: str, uid: str) -> None:
        try:
            body = await asyncio.to_thread(self._listing.get, api.PLURAL, namespace, name)
        except KubeError as error:
            log.warning("reading %s %s/%s: %s", api.KIND, namespace, name, error)
            return
        if (
            body is None
            or (body.get("metadata") or {}).get("uid") != uid  # not the Secret's controller
            or self.complete  # the lists and the watch have it, newer
            or self._was_deleted(api.PLURAL, body)  # its delete came while it was read
        ):
            return
        self.event(api.PLURAL, "MODIFIED", _with_kind(api.PLURAL, body))

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

    def start_prime(
        self,
        listed: Callable[[str], None] | None = None,
        followed: Callable[[Scope], None] | None = None,
    ) -> Future[Primed]:
        """In the event loop: prime() in a thread of its own; the loop goes on, serving. Each
        resource the lists record is handed to `listed`, each scope whose watch starts meanwhile
        to `followed` (read_namespace may cover more namespaces then)."""
        self._loop = asyncio.get_running_loop()
        self._listed = listed
        self._followed = followed
        future: Future[Primed] = Future()

        def run() -> None:
            try:
                future.set_result(self.prime())
            except BaseException as error:  # handed to whoever waits for the lists
                future.set_exception(error)

        threading.Thread(target=run, name="prime", daemon=True).start()
        return future

    def prime(self) -> Primed:
        """In a thread, while the event loop serves: fills the caches (our resources included)
        from whole-object lists. Returns the version each list was taken at (None: the kind is not
        served yet; its watch lists it when it is).

        Every list at once (namespaces first when only some namespaces are watched: they say
        which): a few threads fetch pages, this one builds what the caches keep of each object
        and the event loop stores it, so the caches keep one writer and at most a few pages wait
        in memory. Each list's watch starts from its first page's version."""
        began = time.monotonic()
        versions: dict[Scope, str | None] = {}
        scopes: list[Scope] = [(api.CLUSTER_PLURAL, None)]
        if self._watched:
            versions[("namespaces", None)], names = self._list_namespaces()
            scopes += [(plural, ns) for ns in names for plural in self._per_namespace()]
        else:
            scopes += [("namespaces", None), *((plural, None) for plural in self._per_namespace())]
            if self._peering is not None:
                scopes += [(self._peering[0], None)]
        if self._peering is not None:
            plural = self._peering[0]
            self._in_loop(self._expect_peering, sum(1 for scope in scopes if scope[0] == plural))
        pages: Pages = queue.Queue(PRIME_PAGES_WAITING)

        def fetch(scope: Scope) -> None:
            plural, namespace = scope
            version = ""
            try:
                for items, version in self._listing.pages(
                    plural, namespace=namespace, label_selector=_selector(plural)
                ):
                    pages.put((scope, items, version))
                    if self._give_way is not None:
                        self._give_way(GIVE_WAY_SECONDS)
            except KubeError as error:
                pages.put((scope, error, version))
                return
            except Exception as error:  # whatever it was, the scope must end, or prime waits forever
                pages.put((scope, KubeError(0, type(error).__name__, f"list {plural}"), version))
                return
            pages.put((scope, None, version))  # this scope is done

        with ThreadPoolExecutor(PRIME_THREADS, thread_name_prefix="prime") as pool:
            for scope in scopes:
                pool.submit(fetch, scope)
            failure = self._take_pages(pages, len(scopes), versions)
        if failure is not None:
            raise failure
        self.prime_seconds = time.monotonic() - began
        return versions

    def _take_pages(self, pages: Pages, lists: int, versions: dict[Scope, str | None]) -> Exception | None:
        """Hands on every page until `lists` lists have ended; every page is taken, even after a
        failure, so that no fetcher stays blocked. Returns the first failure."""
        failure: Exception | None = None
        for _ in range(lists):
            while True:
                scope, items, version = pages.get()
                if isinstance(items, list):
                    try:
                        if failure is None:
                            self._hand_page(scope, items, version)
                    except Exception as error:  # raised once the fetchers are done
                        failure = error
                    continue
                if isinstance(items, KubeError):
                    if items.status != 404 or scope[0] in CACHED:
                        failure = failure or items
                    versions[scope] = None
                else:
                    versions[scope] = version
                self._in_loop(self._list_ended, scope, versions[scope])
                break
        return failure

    def _list_namespaces(self) -> tuple[str, list[str]]:
        """In the listing thread: the namespace list, and the watched namespaces in it."""
        version, names = "", list[str]()
        for items, version in self._listing.pages("namespaces"):
            names += (
                name
                for body in items
                if any(fnmatchcase(name := str(body["metadata"]["name"]), g) for g in self._watched)
            )
            self._hand_page(("namespaces", None), items, version)
        self._in_loop(self._list_ended, ("namespaces", None), version)
        return version, sorted(names)

    def _hand_page(self, scope: Scope, items: list[dict[str, Any]], version: str) -> None:
        """In the listing thread: what the caches keep of each object is built here, the event
        loop stores it, in slices so that none holds the loop long; this thread waits for each."""
        for start in range(0, max(len(items), 1), RECORD_SLICE):
            views = list(_viewed(scope[0], items[start : start + RECORD_SLICE]))
            self._in_loop(self._record_page, scope, views, version)

    def _in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """From a listing thread: runs fn in the event loop and waits for it (no longer than the
        operator runs)."""
        loop = self._loop
        assert loop is not None, "start_prime() sets the loop"
        done = threading.Event()

        def run() -> None:
            try:
                fn(*args)
            finally:
                done.set()

        loop.call_soon_threadsafe(run)
        while not done.wait(1.0):
            if self._stopped.is_set() or loop.is_closed():
                return

    def _record_page(self, scope: Scope, views: list[tuple[Any, dict[str, Any]]], version: str) -> None:
        """In the event loop: a page of a start-up list. None of it when that scope's watch has
        listed it again since (that list is newer and whole, and a delete it found would come
        back with this page), nor when its namespace was deleted since."""
        plural, namespace = scope
        if namespace is not None and self._was_deleted("namespaces", _stub("", namespace, version)):
            return  # that namespace, and so all in it, is gone since: no watch there, no records
        self._follow(scope, version)
        replaced = self._replaced.get(scope)
        if replaced is not None and not newer(version, replaced):
            return
        for view, body in views:
            if view is not None:
                self._put(plural, view)
            elif self._peering is not None:
                self._peering[1].event(None, body)

    def _expect_peering(self, lists: int) -> None:
        """The gate decides once every peering list (one per watched namespace) has ended."""
        self._peering_lists = lists
        if lists == 0 and self._peering is not None:
            self._peering[1].listed()

    def _list_ended(self, scope: Scope, version: str | None) -> None:
        if version is None and scope[0] not in CACHED:
            self._follow(scope, None)  # not served yet: its watch lists it once it is
        if self._peering is not None and scope[0] == self._peering[0]:
            self._peering_lists -= 1
            if self._peering_lists == 0:
                self._peering[1].listed()

    def completed(self) -> None:
        """In the event loop, once prime() has returned: the caches hold the whole cluster."""
        self.complete = True
        self._buried.clear()
        self._reading.clear()
        self._fetching.clear()
        self._replaced.clear()
        self._followed = None

    async def read_namespace(self, namespace: str) -> bool:
        """While the start-up lists run: reads one namespace's object, ServiceAccounts and managed
        Secrets directly, once, so that a pass there need not wait for the lists. Only once the
        watches that keep them current have started (their lists' first pages): False until
        then. Concurrent callers share one read."""
        if self.complete or namespace in self._read:
            return True
        if not all(scope in self._followers for scope in self._covering(namespace)):
            return False
        reading = self._reading.get(namespace)
        if reading is None:
            reading = asyncio.ensure_future(asyncio.to_thread(self._fetch_namespace, namespace))
            self._reading[namespace] = reading
        try:
            found = await asyncio.shield(reading)
        except BaseException:
            self._reading.pop(namespace, None)  # the next pass tries again
            raise
        if namespace not in self._read and not self.complete:
            for plural, view in found:
                self._put(plural, view)
            self._read.add(namespace)
        return True

    def _covering(self, namespace: str) -> list[Scope]:
        where = namespace if self._watched else None
        return [("namespaces", None), ("serviceaccounts", where), ("secrets", where)]

    def _fetch_namespace(self, namespace: str) -> list[tuple[str, Any]]:
        """In a thread: what a pass there reads of the caches, straight from the API server. The
        namespace by a list (the operator may list and watch namespaces, not get them)."""
        found: list[tuple[str, Any]] = []
        reads = [
            ("namespaces", self._listing.pages("namespaces", field_selector=f"metadata.name={namespace}")),
            *(
                (plural, self._listing.pages(plural, namespace=namespace, label_selector=_selector(plural)))
                for plural in ("serviceaccounts", "secrets")
            ),
        ]
        for plural, pages in reads:
            for items, _ in pages:
                found += ((plural, view) for view, _ in _viewed(plural, items))
        return found

    def _put(self, plural: str, view: Any) -> None:
        """Stores what _view() built, unless a watch has seen that object deleted since (a list's
        pages may come after the watch's events)."""
        if self._buried and self._was_deleted(plural, view):
            return
        if plural == "namespaces":
            self._cache.put_namespace(view)
        elif plural == "serviceaccounts":
            self._cache.put_account(view)
        elif plural == "secrets":
            self._cache.put_secret(view)
        elif self._cache.put_resource(view, compacted=True) and self._listed is not None:
            self._listed(str(view["metadata"]["uid"]))

    def _bury(self, plural: str, body: Mapping[str, Any]) -> None:
        """While the start-up lists run: a deleted object's version, so that a page listed before
        the delete cannot bring it back."""
        if self.complete:
            return
        meta = body.get("metadata") or {}
        key = (plural, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        self._buried[key] = str(meta.get("resourceVersion") or "")

    def _was_deleted(self, plural: str, view: Any) -> bool:
        if isinstance(view, Mapping):
            meta = view.get("metadata") or {}
            namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
            version = str(meta.get("resourceVersion") or "")
        else:
            namespace, name = getattr(view, "namespace", ""), view.name
            version = view.resource_version
        deleted = self._buried.get((plural, namespace, name))
        return deleted is not None and not newer(version, deleted)

    def _per_namespace(self) -> tuple[str, ...]:
        """The kinds listed and watched per namespace scope."""
        peering = (self._peering[0],) if self._peering is not None and self._watched else ()
        return ("serviceaccounts", "secrets", api.PLURAL, *peering)

    @property
    def counts(self) -> tuple[int, int, int]:
        """Namespaces, ServiceAccounts and managed Secrets in the caches."""
        namespaces = sum(1 for _ in self._cache.namespaces())
        accounts = sum(1 for _ in self._cache.all_accounts())
        return namespaces, accounts, sum(1 for _ in self._cache.secret_keys())

    # -- watches -----------------------------------------------------------------------------

    def follow(self, versions: Mapping[Scope, str | None]) -> None:
        """In the event loop: watch each listed scope from the version of its list."""
        self._loop = asyncio.get_running_loop()
        for scope, version in versions.items():
            self._follow(scope, version)

    def stop(self) -> None:
        self._stopped.set()
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
        if self._followed is not None and not self.complete:
            self._followed(scope)

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
                        self._loop.call_soon_threadsafe(self.event, plural, type_, _with_kind(plural, body))
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
        items: list[Mapping[str, Any]] = []
        version = ""
        pages = self._listing.pages(plural, namespace=namespace, label_selector=_selector(plural))
        for page, page_version in pages:
            items += (_with_kind(plural, item) for item in page)
            version = page_version
        self._loop.call_soon_threadsafe(self.replace, scope, items, version)
        return version

    def replace(self, scope: Scope, items: Sequence[Mapping[str, Any]], list_rv: str) -> None:
        """What a whole list of that scope shows is the truth: each object recorded, others dropped."""
        plural, namespace = scope
        if not self.complete:
            self._replaced[scope] = list_rv
        gone, _ = stale(self._held(plural, namespace), _versions(items), list_rv)
        for key in gone:
            self._drop(plural, key)
        for body in items:
            self.event(plural, "MODIFIED", body)

    def _held(self, plural: str, namespace: str | None) -> dict[Key, str]:
        if plural in RESOURCES:
            metas = (self._resource_meta(uid) for uid in self._resource_uids(plural, namespace))
            return {
                (str(meta.get("namespace") or ""), str(meta.get("name") or "")): str(
                    meta.get("resourceVersion")
                )
                for meta in metas
                if meta is not None
            }
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

    def _resource_uids(self, plural: str, namespace: str | None) -> Iterable[str]:
        if plural == api.CLUSTER_PLURAL:
            return self._cache.cluster_resources()
        if namespace is not None:
            return self._cache.resources_in(namespace)
        return self._cache.namespaced_resources()

    def _resource_meta(self, uid: str) -> Mapping[str, Any] | None:
        body = self._cache.resource(uid)
        return None if body is None else body.get("metadata") or {}

    def _drop(self, plural: str, key: Key) -> None:
        namespace, name = key
        if plural in RESOURCES:
            for uid in self._resource_uids(plural, namespace or None):
                meta = self._resource_meta(uid)
                if meta is not None and (meta.get("namespace") or "", meta.get("name")) == key:
                    self.event(plural, "DELETED", self._cache.resource(uid) or {})
            return
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
        scopes: list[Scope] = [("namespaces", None), (api.CLUSTER_PLURAL, None)]
        per_namespace = ("serviceaccounts", "secrets", api.PLURAL)
        scopes += [(plural, ns) for ns in self._scopes() for plural in per_namespace]
        repairs = 0
        for plural, namespace in scopes:
            listed, list_rv = await asyncio.to_thread(self._versions, plural, namespace, _selector(plural))
            gone, changed = stale(self._held(plural, namespace), listed, list_rv)
            for key in gone:
                self._drop(plural, key)
            for ns, name in changed:
                body = await asyncio.to_thread(self._listing.get, plural, ns or None, name)
                if body is not None:
                    self.event(plural, "MODIFIED", _with_kind(plural, body))
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


def _view(plural: str, body: Mapping[str, Any]) -> Any:
    """What the caches keep of an object (None: a kind they do not hold). Pure, so that a listing
    thread can build it and the event loop only store it."""
    if plural == "namespaces":
        return namespace_view(body)
    if plural == "serviceaccounts":
        return service_account_view(body)
    if plural == "secrets":
        return secret_view(body)
    if plural in RESOURCES:
        return compact_body(_with_kind(plural, body))
    return None


def _viewed(plural: str, items: Iterable[dict[str, Any]]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(view, body) of each object. One that no view can be built of is left out, and said: one
    tenant's object must not keep the lists from ever ending for everyone. The error's type only:
    its text could quote a Secret's data."""
    for body in items:
        try:
            yield _view(plural, body), body
        except Exception as error:
            _left_out(plural, body, error)


def _left_out(plural: str, body: Mapping[str, Any], error: Exception) -> None:
    meta = body.get("metadata") or {}
    where = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
    log.error("%s %s left out of the caches: %s", plural, where, type(error).__name__)


def _with_kind(plural: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
    """List items carry no kind; the cache and the reconciler tell our two kinds apart by it."""
    if plural in RESOURCES and "kind" not in body:
        kind = api.KIND if plural == api.PLURAL else api.CLUSTER_KIND
        return {**body, "kind": kind, "apiVersion": f"{api.GROUP}/{api.VERSION}"}
    return body


def _selector(plural: str) -> str:
    """Only Secrets we manage: no other Secret's data is ever read."""
    return MANAGED_SELECTOR if plural == "secrets" else ""
