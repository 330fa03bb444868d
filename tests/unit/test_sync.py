"""handlers.sync.CacheSync: whom a change wakes, and a relist that repairs what a watch gap missed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.sync import CacheSync, stale
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
            "namespaces": {},
            "serviceaccounts": {},
            "secrets": {},
        }
        self.version = "100"
        self.gets: list[tuple[str, str]] = []

    def put(self, plural: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        self.objects[plural][(meta.get("namespace", ""), meta["name"])] = body

    def pages(
        self,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        metadata_only: bool = False,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        items = [
            {"metadata": b["metadata"]} if metadata_only else b
            for (ns, _), b in sorted(self.objects[plural].items())
            if namespace is None or ns == namespace
        ]
        yield items[:1], self.version  # two pages, as a paginated list
        yield items[1:], self.version

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.gets.append((plural, name))
        return self.objects[plural].get((namespace or "", name))


def world() -> tuple[ClusterCache, FakeListing, list[str], CacheSync]:
    cache, listing, woken = ClusterCache(), FakeListing(), []
    sync = CacheSync(cache, listing, woken.append)  # type: ignore[arg-type]
    return cache, listing, woken, sync


def test_prime_fills_every_cache_from_paged_lists() -> None:
    cache, listing, woken, sync = world()
    for name in ("team-a", "team-b"):
        listing.put("namespaces", namespace_body(name, "1"))
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    listing.put("secrets", secret_body("two", "uid-b", "6"))
    assert sync.prime() == {
        ("namespaces", None): "100",
        ("serviceaccounts", None): "100",
        ("secrets", None): "100",
    }
    assert sync.counts == (2, 0, 2)
    assert [ns.name for ns in cache.namespaces()] == ["team-a", "team-b"]
    assert [s.name for s in cache.secrets_of("uid-b")] == ["two"]
    assert woken == []


def test_relist_finds_a_missed_delete_and_wakes_the_owner() -> None:
    cache, listing, woken, sync = world()
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    listing.put("secrets", secret_body("two", "uid-b", "6"))
    sync.prime()
    del listing.objects["secrets"][("team-a", "one")]  # deleted while the watch was down
    assert asyncio.run(sync.relist()) == 1
    assert cache.secret("team-a", "one") is None
    assert woken == ["uid-a"]


def test_relist_fetches_a_missed_change_and_wakes_old_and_new_owner() -> None:
    cache, listing, woken, sync = world()
    listing.put("secrets", secret_body("one", "uid-a", "5"))
    sync.prime()
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
    sync.prime()
    sync.secret_event("ADDED", secret_body("new", "uid-a", "101"))  # our write, after the list
    woken.clear()
    assert asyncio.run(sync.relist()) == 0
    assert cache.secret("team-a", "new") is not None
    assert woken == []


def test_relist_of_namespaces_wakes_cluster_resources() -> None:
    cache, listing, woken, sync = world()
    listing.put("namespaces", namespace_body("team-a", "1"))
    sync.prime()
    cache.put_resource(
        {"kind": api.CLUSTER_KIND, "metadata": {"uid": "c", "name": "c", "resourceVersion": "1"}}
    )
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

    def __init__(self, *answers: list[tuple[str, dict[str, Any]]] | type[Gone]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []
        self.quiet = threading.Event()

    def events(
        self, plural: str, resource_version: str, *, namespace: str | None = None, label_selector: str = ""
    ) -> Iterator[tuple[str, dict[str, Any]]]:
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
        versions = sync.prime()
        del listing.objects["secrets"][("team-a", "one")]  # while the watch was gone
        listing.put("secrets", secret_body("three", "uid-c", "101"))  # as the watch said
        listing.version = "200"
        sync.follow({("secrets", None): versions[("secrets", None)]})
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
