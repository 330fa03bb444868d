"""handlers.sync.CacheSync: whom a change wakes, and a relist that repairs what a watch gap missed."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import pytest

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.sync import OWNER_READS_AT_ONCE, CacheSync, Primed, _view, stale
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.watching import Gone
from ecr_pull_secrets.model import api


def secret_body(name: str, owner: str, rv: str, uid: str | None = None) -> dict[str, Any]:
    return {
        "type": api.SECRET_TYPE,
        "metadata": {
            "namespace": "team-a",
            "name": name,
            "uid": uid or f"uid-{name}",
            "resourceVersion": rv,
            "labels": {api.MANAGED_BY_LABEL: api.MANAGED_BY},
            "ownerReferences": [{"kind": api.KIND, "name": "r", "uid": owner, "controller": True}],
        },
        "data": {},
    }


def namespace_body(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


class FakeListing:
    """The API server as kube.listing.Listing shows it: what it holds now, at a list version."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
            plural: {}
            for plural in ("namespaces", "serviceaccounts", "secrets", api.PLURAL, api.CLUSTER_PLURAL)
        }
        self.unserved: set[str] = set()
        """Kinds the API server does not serve (404), as before their CRD is installed."""
        self.version = "100"
        self.gets: list[tuple[str, str]] = []
        self.lists: list[tuple[str, str | None, str]] = []

    def put(self, plural: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        self.objects[plural][(meta.get("namespace", ""), meta["name"])] = body

    def pages(
        self,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        if plural in self.unserved:
            raise KubeError(404, "Not Found", f"list {plural}")
        self.lists.append((plural, namespace, field_selector))
        named = field_selector.removeprefix("metadata.name=") if field_selector else None
        items = [
            {"metadata": b["metadata"]} if metadata_only else b
            for (ns, name), b in sorted(self.objects[plural].items())
            if (namespace is None or ns == namespace) and named in (None, name)
        ]
        yield items[:1], self.version  # two pages, as a paginated list
        yield items[1:], self.version

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.gets.append((plural, name))
        return self.objects[plural].get((namespace or "", name))


def prime(sync: CacheSync, listed: Callable[[str], None] | None = None) -> Primed:
    """The start-up lists as the operator runs them: in a thread, their pages stored in the loop;
    then the caches are complete."""

    async def run() -> Primed:
        versions = await asyncio.wrap_future(sync.start_prime(listed))
        sync.completed()
        return versions

    return asyncio.run(run())


def resource_body(name: str, rv: str, namespace: str = "team-a") -> dict[str, Any]:
    """As a list shows it: no kind."""
    return {"metadata": {"namespace": namespace, "name": name, "uid": f"uid-{name}", "resourceVersion": rv}}


def world() -> tuple[ClusterCache, FakeListing, list[str], CacheSync]:
    cache, listing, woken = ClusterCache(), FakeListing(), []
    sync = CacheSync(cache, listing, woken.append)  # type: ignore[arg-type]
    return cache, listing, woken, sync


class Handed:
    """What CacheSync hands on: our resources' and the peering object's events."""

    def __init__(self) -> None:
        self.resources: list[tuple[str | None, str, str]] = []
        self.peering: list[tuple[str | None, str]] = []
        self.peering_listed = 0

    def resource(self, type_: str | None, body: Mapping[str, Any]) -> None:
        self.resources.append((type_, body.get("kind", "?"), body["metadata"]["name"]))

    def event(self, type_: str | None, body: Mapping[str, Any]) -> None:
        """As the peering gate."""
        self.peering.append((type_, body["metadata"]["name"]))

    def listed(self) -> None:
        self.peering_listed += 1


def handing_world(
    watched: tuple[str, ...] = (),
) -> tuple[ClusterCache, FakeListing, Handed, CacheSync]:
    cache, listing, handed = ClusterCache(), FakeListing(), Handed()
    listing.objects["clusterkopfpeerings"] = {}
    listing.objects["kopfpeerings"] = {}
    sync = CacheSync(
        cache,
        listing,  # type: ignore[arg-type]
        lambda uid: None,
        watched,
        on_resource=handed.resource,
        peering=("kopfpeerings" if watched else "clusterkopfpeerings", handed),
    )
    return cache, listing, handed, sync


def test_prime_fills_every_cache_from_paged_lists() -> None:
    cache, listing, woken, sync = world()
    for name in ("team-a", "team-b"):
        listing.put("namespaces", namespace_body(name, "1"))
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    listing.put("secrets", secret_body("two", "uid-b", "6"))
    assert prime(sync) == {
        ("namespaces", None): "100",
        ("serviceaccounts", None): "100",
        ("secrets", None): "100",
        (api.PLURAL, None): "100",
        (api.CLUSTER_PLURAL, None): "100",
    }
    assert sync.counts == (2, 0, 2)
    assert [ns.name for ns in cache.namespaces()] == ["team-a", "team-b"]
    assert [s.name for s in cache.secrets_of("uid-b")] == ["two"]
    assert woken == []


def test_relist_finds_a_missed_delete_and_wakes_the_owner() -> None:
    cache, listing, woken, sync = world()
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    listing.put("secrets", secret_body("two", "uid-b", "6"))
    prime(sync)
    del listing.objects["secrets"][("team-a", "one")]  # deleted while the watch was down
    assert asyncio.run(sync.relist()) == 1
    assert cache.secret("team-a", "one") is None
    assert woken == ["uid-a"]


def test_relist_fetches_a_missed_change_and_wakes_old_and_new_owner() -> None:
    cache, listing, woken, sync = world()
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    prime(sync)
    listing.put("secrets", secret_body("one", "uid-b", "7"))
    assert asyncio.run(sync.relist()) == 1
    held = cache.secret("team-a", "one")
    assert held is not None
    assert held.controller_uid == "uid-b"
    assert sorted(woken) == ["uid-a", "uid-b"]
    assert listing.gets == [("secrets", "one")]


def test_relist_keeps_what_was_recorded_after_the_list_was_taken() -> None:
    cache, listing, woken, sync = world()
    listing.version = "100"
    prime(sync)
    sync.secret_event("ADDED", secret_body("new", "uid-a", "101"))  # our write, after the list
    woken.clear()
    assert asyncio.run(sync.relist()) == 0
    assert cache.secret("team-a", "new") is not None
    assert woken == []


def test_relist_of_namespaces_wakes_cluster_resources() -> None:
    cache, listing, woken, sync = world()
    listing.put("namespaces", namespace_body("team-a", "1"))
    listing.put(api.CLUSTER_PLURAL, {"metadata": {"uid": "c", "name": "c", "resourceVersion": "1"}})
    prime(sync)
    del listing.objects["namespaces"][("", "team-a")]
    assert asyncio.run(sync.relist()) == 1
    assert cache.namespace("team-a") is None
    assert woken == ["c"]


def test_an_unchanged_event_wakes_nobody() -> None:
    cache, _listing, woken, sync = world()
    body = secret_body("one", "uid-a", "5")
    sync.secret_event(None, body)
    sync.secret_event(None, body)  # the watch's own listing after our prime
    sync.secret_event("DELETED", secret_body("one", "uid-a", "9", uid="another-object"))
    assert woken == ["uid-a"]
    assert cache.secret("team-a", "one") is not None


def test_account_events_wake_resources_that_patch_accounts_there_and_owners_of_entries() -> None:
    cache, _listing, woken, sync = world()
    patches = {"kind": api.KIND, "metadata": {"uid": "p", "namespace": "team-a", "resourceVersion": "1"}}
    cache.put_resource({**patches, "spec": {"serviceAccounts": {"all": True}}})
    cache.put_resource(
        {"kind": api.KIND, "metadata": {"uid": "q", "namespace": "team-a", "resourceVersion": "1"}}
    )
    account = {
        "metadata": {
            "namespace": "team-a",
            "name": "builder",
            "resourceVersion": "3",
            "annotations": {f"{api.GROUP}/image-pull-secrets": "pull@uid-elsewhere"},
        }
    }
    sync.account_event("ADDED", account)
    assert sorted(woken) == ["p", "uid-elsewhere"]


def test_stale() -> None:
    held = {("a", "kept"): "5", ("a", "gone"): "5", ("a", "late"): "120", ("a", "moved"): "5"}
    listed = {("a", "kept"): "5", ("a", "moved"): "8", ("a", "new"): "9"}
    assert stale(held, listed, "100") == ([("a", "gone")], [("a", "moved"), ("a", "new")])


class FakeWatching:
    """The API server's watch: scripted answers, one per call; then it waits, as a quiet watch does."""

    def __init__(
        self, *answers: list[tuple[str, dict[str, Any]]] | type[Gone], kind: str = "secrets"
    ) -> None:
        self.answers = list(answers)
        self.kind = kind
        """Other kinds' watches stay quiet."""
        self.asked: list[str] = []
        self.quiet = threading.Event()
        self.go = threading.Event()
        """Set by the test when the watch may answer."""

    def events(
        self, plural: str, resource_version: str, *, namespace: str | None = None, label_selector: str = ""
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        if plural != self.kind:
            self.quiet.wait(5)
            return
        self.go.wait(5)
        self.asked.append(resource_version)
        if not self.answers:
            self.quiet.wait(5)
            return
        answer = self.answers.pop(0)
        if answer is Gone:
            raise Gone
        yield from answer  # type: ignore[misc]


def test_a_watch_follows_from_the_list_and_lists_again_when_its_version_is_gone() -> None:
    cache, listing = ClusterCache(), FakeListing()
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    listing.put("secrets", secret_body("two", "uid-b", "6"))
    watching = FakeWatching(
        [
            ("ADDED", secret_body("three", "uid-c", "101")),
            ("BOOKMARK", {"metadata": {"resourceVersion": "150"}}),
        ],
        Gone,
    )
    woken: list[str] = []

    async def story() -> None:
        sync = CacheSync(cache, listing, woken.append, watching=watching)  # type: ignore[arg-type]
        versions = await asyncio.wrap_future(sync.start_prime())
        sync.completed()
        del listing.objects["secrets"][("team-a", "one")]  # while the watch was gone
        listing.put("secrets", secret_body("three", "uid-c", "101"))  # as the watch said
        listing.version = "200"
        sync.follow({("secrets", None): versions[("secrets", None)]})  # started by the list already
        watching.go.set()
        for _ in range(500):
            if len(watching.asked) == 3:
                break
            await asyncio.sleep(0.01)
        sync.stop()
        watching.quiet.set()
        await asyncio.sleep(0)  # the events the thread handed over run now, in the loop

    asyncio.run(story())
    assert watching.asked == ["100", "150", "200"]  # from the list; after the bookmark; after the new list
    assert sorted(key[1] for key in cache.secret_keys()) == ["three", "two"]
    assert sorted(woken) == ["uid-a", "uid-c"]


def test_prime_records_our_resources_with_their_kind_and_hands_over_the_peering_object() -> None:
    cache, listing, handed, sync = handing_world()
    listing.put(api.PLURAL, resource_body("app", "7"))
    listing.put(api.CLUSTER_PLURAL, resource_body("everyone", "8", namespace=""))
    listing.put("clusterkopfpeerings", {"metadata": {"name": "ha"}, "status": {}})
    versions = prime(sync)
    assert versions[("clusterkopfpeerings", None)] == "100"
    assert handed.peering == [(None, "ha")]
    assert handed.peering_listed == 1
    kinds = sorted((cache.resource(uid) or {}).get("kind", "?") for uid in cache.all_resources())
    assert kinds == [api.CLUSTER_KIND, api.KIND]
    assert handed.resources == []  # a list wakes nobody; start-up queues what it found


def test_prime_leaves_a_kind_not_served_yet_to_its_watch() -> None:
    _cache, listing, _handed, sync = handing_world()
    listing.unserved = {api.PLURAL, api.CLUSTER_PLURAL}  # the CRDs are not installed yet
    versions = prime(sync)
    assert versions[(api.PLURAL, None)] is None
    assert versions[(api.CLUSTER_PLURAL, None)] is None
    listing.unserved = {"secrets"}  # but what the caches need must be listed: start-up retries
    with pytest.raises(KubeError):
        prime(sync)


def test_watched_namespaces_list_resources_and_peering_per_namespace() -> None:
    cache, listing, _handed, sync = handing_world(watched=("team-*",))
    listing.put("namespaces", namespace_body("team-a", "1"))
    listing.put("namespaces", namespace_body("other", "1"))
    listing.put(api.PLURAL, resource_body("app", "7"))
    listing.put(api.PLURAL, resource_body("elsewhere", "7", namespace="other"))
    versions = prime(sync)
    assert sorted((k, str(v)) for k, v in versions) == [
        (api.CLUSTER_PLURAL, "None"),
        (api.PLURAL, "team-a"),
        ("kopfpeerings", "team-a"),
        ("namespaces", "None"),
        ("secrets", "team-a"),
        ("serviceaccounts", "team-a"),
    ]
    assert [(cache.resource(uid) or {})["metadata"]["name"] for uid in cache.all_resources()] == ["app"]


def test_events_of_our_kinds_and_of_peering_are_handed_on() -> None:
    cache, _listing, handed, sync = handing_world()
    sync.event(api.PLURAL, "ADDED", {**resource_body("app", "7"), "kind": api.KIND})
    sync.event("clusterkopfpeerings", "MODIFIED", {"metadata": {"name": "ha"}})
    assert handed.resources == [("ADDED", api.KIND, "app")]
    assert handed.peering == [("MODIFIED", "ha")]
    assert cache.resource_count == 0  # the handler decides what the cache keeps


def test_relist_finds_a_missed_resource_delete_and_change() -> None:
    _cache, listing, handed, sync = handing_world()
    listing.put(api.PLURAL, resource_body("gone", "7"))
    listing.put(api.PLURAL, resource_body("edited", "8"))
    prime(sync)
    del listing.objects[api.PLURAL][("team-a", "gone")]  # deleted while the watch was down
    listing.put(api.PLURAL, resource_body("edited", "9"))  # edited while the watch was down
    assert asyncio.run(sync.relist()) == 2
    assert sorted(handed.resources) == [("DELETED", api.KIND, "gone"), ("MODIFIED", api.KIND, "edited")]


def listed(sync: CacheSync, body: dict[str, Any]) -> None:
    """A Secrets list's page of one, stored as the event loop stores one."""
    sync._record_page(("secrets", None), [(_view("secrets", body), body)], "100")


def test_while_listing_a_page_taken_before_a_delete_does_not_bring_the_object_back() -> None:
    cache, _listing, _woken, sync = world()
    sync.secret_event("DELETED", secret_body("one", "uid-a", "9"))  # the watch runs ahead of the list
    listed(sync, secret_body("one", "uid-a", "5"))  # the list's page, older
    assert cache.secret("team-a", "one") is None
    listed(sync, secret_body("one", "uid-b", "12", uid="new-object"))  # made again since
    assert cache.secret("team-a", "one") is not None
    sync.completed()
    sync.secret_event("DELETED", secret_body("two", "uid-a", "20"))
    listed(sync, secret_body("two", "uid-a", "15"))  # lists over: nothing is kept buried
    assert cache.secret("team-a", "two") is not None


def test_while_listing_a_secret_deleted_before_its_page_wakes_and_fetches_its_owner() -> None:
    cache, listing, handed, sync = handing_world()
    woken: list[str] = []
    sync._wake = woken.append
    listing.put(api.PLURAL, resource_body("r", "7"))
    owner = "uid-r"

    async def story() -> None:
        sync._loop = asyncio.get_running_loop()
        sync.secret_event("DELETED", secret_body("one", owner, "9"))
        for _ in range(500):  # the owner is read in a thread and handed over in the loop
            if handed.resources:
                break
            await asyncio.sleep(0.01)

    asyncio.run(story())
    assert woken == [owner]
    assert listing.gets == [(api.PLURAL, "r")]
    assert handed.resources == [("MODIFIED", api.KIND, "r")]
    assert cache.secret("team-a", "one") is None


def test_read_namespace_reads_one_namespace_once_the_watches_run_and_only_once() -> None:
    cache, listing = ClusterCache(), FakeListing()
    listing.put("namespaces", namespace_body("team-a", "1"))
    listing.put("namespaces", namespace_body("team-b", "1"))
    watching = FakeWatching(kind="none")
    sync = CacheSync(cache, listing, lambda uid: None, watching=watching)  # type: ignore[arg-type]

    async def story() -> tuple[bool, bool, bool]:
        early = await sync.read_namespace("team-a")  # no watch keeps it current yet: no read
        await asyncio.wrap_future(sync.start_prime())  # the lists' first pages start the watches
        listing.put("secrets", secret_body("late", "uid-a", "105"))  # after the lists
        listing.lists.clear()
        first = await sync.read_namespace("team-a")
        again = await sync.read_namespace("team-a")
        sync.stop()
        watching.quiet.set()
        return early, first, again

    assert asyncio.run(story()) == (False, True, True)
    assert listing.lists == [
        ("namespaces", None, "metadata.name=team-a"),
        ("serviceaccounts", "team-a", ""),
        ("secrets", "team-a", ""),
    ]
    assert cache.secret("team-a", "late") is not None


def test_the_gate_decides_once_every_watched_namespaces_peering_list_has_ended() -> None:
    _cache, listing, handed, sync = handing_world(watched=("team-*",))
    for name in ("team-a", "team-b", "other"):
        listing.put("namespaces", namespace_body(name, "1"))
    listing.put("kopfpeerings", {"metadata": {"namespace": "team-b", "name": "ha"}, "status": {}})
    prime(sync)
    assert handed.peering == [(None, "ha")]
    assert handed.peering_listed == 1  # after both lists, not after the first


# -- hostile or unlucky input while the start-up lists run -------------------------------------


def test_a_tenants_secret_too_deep_to_decode_does_not_stop_the_lists() -> None:
    """Its data is its namespace's to write; JSON 5,000 levels deep is valid for the API server."""
    cache, listing, _woken, sync = world()
    evil = secret_body("evil", "uid-x", "5")
    nested = b'{"a":' * 5000 + b"{}" + b"}" * 5000
    evil["data"] = {api.SECRET_KEY: base64.b64encode(nested).decode()}
    listing.put("secrets", evil)
    listing.put("secrets", secret_body("good", "uid-a", "6"))
    prime(sync)
    assert cache.secret("team-a", "good") is not None
    assert cache.secret("team-a", "evil") is not None  # known, covering no registry


def test_an_object_no_view_can_be_built_of_is_left_out_and_the_lists_end() -> None:
    cache, listing, _woken, sync = world()
    broken = secret_body("broken", "uid-x", "5")
    broken["metadata"]["ownerReferences"] = [None]  # no API server sends this; whatever fails
    listing.put("secrets", broken)
    listing.put("secrets", secret_body("good", "uid-a", "6"))
    prime(sync)
    assert sync.complete
    assert cache.secret("team-a", "good") is not None
    assert cache.secret("team-a", "broken") is None


def prime_watched(
    sync: CacheSync, watching: FakeWatching, followed: Callable[[tuple[str, str | None]], None] | None = None
) -> None:
    """The start-up lists with their watches, as the operator runs them; then the watches stop."""

    async def run() -> None:
        await asyncio.wrap_future(sync.start_prime(None, followed))
        sync.completed()
        sync.stop()
        watching.quiet.set()

    asyncio.run(run())


class ListingOverlappedByARelist(FakeListing):
    """The start-up list of Secrets hands its second page only after the Secrets watch, gone
    meanwhile, has listed again and the event loop has stored what that list found."""

    def __init__(self, cache: ClusterCache) -> None:
        super().__init__()
        self.cache = cache
        self.calls = 0

    def pages(self, plural: str, **kw: Any) -> Iterator[tuple[list[dict[str, Any]], str]]:
        if plural != "secrets":
            yield from super().pages(plural, **kw)
            return
        self.calls += 1
        if self.calls > 1:  # the watch's list: "two" was deleted, "three" created meanwhile
            yield from super().pages(plural, **kw)
            return
        snapshot = super().pages(plural, **kw)
        yield next(snapshot)  # page 1: "one"
        del self.objects["secrets"][("team-a", "two")]
        self.put("secrets", secret_body("three", "uid-c", "150"))
        self.version = "200"
        deadline = time.monotonic() + 5
        while self.cache.secret("team-a", "three") is None:
            if time.monotonic() > deadline:
                raise AssertionError("the watch's new list was not stored")
            time.sleep(0.01)
        yield from snapshot  # page 2 of the old snapshot: "two"


def test_a_page_older_than_its_watchs_new_list_does_not_bring_back_a_delete() -> None:
    cache = ClusterCache()
    listing = ListingOverlappedByARelist(cache)
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    listing.put("secrets", secret_body("two", "uid-b", "6"))
    watching = FakeWatching(Gone)
    watching.go.set()
    sync = CacheSync(cache, listing, lambda uid: None, watching=watching)  # type: ignore[arg-type]

    prime_watched(sync, watching)
    assert cache.secret("team-a", "three") is not None  # the relist was stored first
    assert cache.secret("team-a", "two") is None


class SlowGets(FakeListing):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = super().get(plural, namespace, name)
        self.release.wait(5)
        return found


L = TypeVar("L", bound=FakeListing)


def owner_world(listing: L) -> tuple[L, Handed, CacheSync]:
    """An EcrPullSecret `r` (uid-r) the lists have not shown yet; what CacheSync hands on of it."""
    listing.put(api.PLURAL, resource_body("r", "7"))
    handed = Handed()
    sync = CacheSync(ClusterCache(), listing, lambda uid: None, on_resource=handed.resource)  # type: ignore[arg-type]
    return listing, handed, sync


def test_an_owner_read_does_not_bring_back_an_owner_deleted_while_it_was_read() -> None:
    listing, handed, sync = owner_world(SlowGets())

    async def story() -> None:
        sync._loop = asyncio.get_running_loop()
        sync.secret_event("DELETED", secret_body("one", "uid-r", "9"))  # starts the owner read
        sync.event(api.PLURAL, "DELETED", {**resource_body("r", "10"), "kind": api.KIND})
        listing.release.set()
        await asyncio.gather(*sync._owner_reads)

    asyncio.run(story())
    assert listing.gets == [(api.PLURAL, "r")]
    assert handed.resources == [("DELETED", api.KIND, "r")]  # not MODIFIED after it


def test_forged_owner_references_cost_one_read_per_owner_name_and_a_few_at_a_time() -> None:
    _listing, handed, sync = owner_world(FakeListing())

    async def story() -> tuple[int, int]:
        sync._loop = asyncio.get_running_loop()
        for n in range(500):  # the same owner name, each with another uid
            sync.secret_event("ADDED", secret_body(f"s{n}", f"forged-{n}", "9"))
        same_name = len(sync._owner_reads)
        for n in range(500):
            body = secret_body(f"t{n}", f"uid-t{n}", "9")
            body["metadata"]["ownerReferences"][0]["name"] = f"owner-{n}"
            sync.secret_event("ADDED", body)
        at_once = len(sync._owner_reads)
        await asyncio.gather(*sync._owner_reads)
        return same_name, at_once

    same_name, at_once = asyncio.run(story())
    assert same_name == 1
    assert at_once == OWNER_READS_AT_ONCE
    assert handed.resources == []  # r's uid is not the one any Secret named; the others are not there


def test_an_owner_read_that_ends_after_the_lists_is_not_stored() -> None:
    """The lists and the watch have the owner by then, newer than the read."""
    listing, handed, sync = owner_world(SlowGets())

    async def story() -> None:
        sync._loop = asyncio.get_running_loop()
        sync.secret_event("DELETED", secret_body("one", "uid-r", "9"))
        sync.completed()
        listing.release.set()
        await asyncio.gather(*sync._owner_reads)

    asyncio.run(story())
    assert listing.gets == [(api.PLURAL, "r")]
    assert handed.resources == []


def test_each_watch_started_while_listing_is_said() -> None:
    """FirstPasses hears of each, so that a pass that waited for its namespace's watches goes."""
    cache, listing = ClusterCache(), FakeListing()
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    watching = FakeWatching(kind="none")
    sync = CacheSync(cache, listing, lambda uid: None, watching=watching)  # type: ignore[arg-type]
    followed: list[tuple[str, str | None]] = []

    prime_watched(sync, watching, followed.append)
    assert sorted(followed, key=str) == sorted(
        [
            ("namespaces", None),
            ("serviceaccounts", None),
            ("secrets", None),
            (api.PLURAL, None),
            (api.CLUSTER_PLURAL, None),
        ],
        key=str,
    )


def test_a_change_that_cannot_be_taken_in_is_left_and_the_rest_of_a_list_is_not() -> None:
    cache, _listing, _woken, sync = world()
    broken = secret_body("broken", "uid-x", "5")
    broken["metadata"]["ownerReferences"] = [None]
    sync.replace(("secrets", None), [broken, secret_body("good", "uid-a", "6")], "10")
    assert cache.secret("team-a", "good") is not None


class ListingAfterANamespaceDelete(FakeListing):
    """team-a's Secrets are listed (at the version the lists began at) only once the namespace's
    delete, reported by its watch, has reached the caches."""

    def __init__(self, cache: ClusterCache) -> None:
        super().__init__()
        self.cache = cache

    def pages(self, plural: str, **kw: Any) -> Iterator[tuple[list[dict[str, Any]], str]]:
        if plural == "secrets":
            deadline = time.monotonic() + 5
            while self.cache.namespace("team-a") is not None:
                if time.monotonic() > deadline:
                    raise AssertionError("the namespace's delete did not reach the caches")
                time.sleep(0.01)
        yield from super().pages(plural, **kw)


def test_a_page_of_a_namespace_deleted_since_starts_no_watch_and_records_nothing() -> None:
    """Its watch would follow a namespace that is gone, for good (a thread each)."""
    cache = ClusterCache()
    listing = ListingAfterANamespaceDelete(cache)
    listing.put("namespaces", namespace_body("team-a", "1"))
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    watching = FakeWatching([("DELETED", namespace_body("team-a", "150"))], kind="namespaces")
    watching.go.set()
    sync = CacheSync(cache, listing, lambda uid: None, ("team-*",), watching=watching)  # type: ignore[arg-type]

    prime_watched(sync, watching)
    assert cache.secret("team-a", "one") is None
    assert [scope for scope in sync._followers if scope[1] == "team-a"] == []
