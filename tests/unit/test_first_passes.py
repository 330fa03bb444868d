"""handlers.first_passes.FirstPasses: which passes go while the start-up lists run, and the sweep after."""

from __future__ import annotations

import asyncio
from typing import Any

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.first_passes import FirstPasses
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import secret_view


class FakeSync:
    """CacheSync as FirstPasses sees it: whether the lists have ended, and the direct reads."""

    def __init__(self, *, readable: bool = True) -> None:
        self.complete = False
        self.readable = readable
        self.read: list[str] = []

    async def read_namespace(self, namespace: str) -> bool:
        if self.readable:
            self.read.append(namespace)
        return self.readable


class FakeQueue:
    def __init__(self) -> None:
        self.added: list[tuple[str, bool]] = []

    def add(self, uid: str, *, urgent: bool = True) -> None:
        self.added.append((uid, urgent))


def resource(name: str, *, settled: bool = True, kind: str = api.KIND) -> dict[str, Any]:
    meta: dict[str, Any] = {"uid": f"uid-{name}", "name": name, "resourceVersion": "1", "generation": 2}
    if kind == api.KIND:
        meta["namespace"] = f"ns-{name}"
    return {
        "kind": kind,
        "metadata": meta,
        "spec": {},
        "status": {"observedGeneration": 2 if settled else 1},
    }


def its_secret(name: str) -> Any:
    return secret_view(
        {
            "type": api.SECRET_TYPE,
            "metadata": {
                "namespace": f"ns-{name}",
                "name": name,
                "uid": f"secret-{name}",
                "resourceVersion": "1",
                "ownerReferences": [
                    {"kind": api.KIND, "name": name, "uid": f"uid-{name}", "controller": True}
                ],
            },
        }
    )


def world(*, readable: bool = True) -> tuple[ClusterCache, FakeSync, FakeQueue, FirstPasses]:
    cache, sync, queue = ClusterCache(), FakeSync(readable=readable), FakeQueue()
    return cache, sync, queue, FirstPasses(cache, sync, queue)  # type: ignore[arg-type]


def test_while_listing_a_namespaced_resource_goes_once_its_namespace_is_read() -> None:
    cache, sync, queue, first = world()
    cache.put_resource(resource("app"))
    body = asyncio.run(first.body("uid-app"))
    assert body is not None
    assert body["metadata"]["name"] == "app"
    assert sync.read == ["ns-app"]
    sync.complete = True
    first.completed()
    assert queue.added == []  # served already: the sweep leaves it out


def test_a_resource_no_list_has_shown_waits_and_goes_when_one_does() -> None:
    cache, _sync, queue, first = world()
    assert asyncio.run(first.body("uid-app")) is None  # woken by its Secret's delete, say
    first.listed("uid-other")
    assert queue.added == []
    cache.put_resource(resource("app"))
    first.listed("uid-app")
    assert queue.added == [("uid-app", True)]


def test_a_cluster_resource_waits_for_the_lists_and_goes_first_then() -> None:
    cache, sync, queue, first = world()
    cache.put_resource(resource("everyone", kind=api.CLUSTER_KIND))
    assert asyncio.run(first.body("uid-everyone")) is None
    assert sync.read == []
    sync.complete = True
    first.completed()
    assert queue.added == [("uid-everyone", True)]


def test_a_namespace_not_readable_yet_waits_for_the_lists() -> None:
    cache, sync, queue, first = world(readable=False)
    cache.put_resource(resource("app"))
    cache.put_secret(its_secret("app"))
    assert asyncio.run(first.body("uid-app")) is None
    sync.complete = True
    first.completed()
    assert queue.added == [("uid-app", True)]


def test_the_sweep_puts_what_changed_while_away_first() -> None:
    cache, sync, queue, first = world()
    for name, settled in (("fresh", True), ("edited", False), ("bereft", True)):
        cache.put_resource(resource(name, settled=settled))
    cache.put_secret(its_secret("fresh"))
    cache.put_secret(its_secret("edited"))
    sync.complete = True
    first.completed()
    assert sorted(queue.added) == [("uid-bereft", True), ("uid-edited", True), ("uid-fresh", False)]


def test_once_the_lists_have_ended_a_pass_reads_nothing_more() -> None:
    cache, sync, _queue, first = world()
    cache.put_resource(resource("app"))
    sync.complete = True
    assert asyncio.run(first.body("uid-app")) is not None
    assert asyncio.run(first.body("uid-gone")) is None
    assert sync.read == []


def test_a_pass_that_waited_for_its_namespaces_watches_goes_again_when_one_starts() -> None:
    """A resource created while the lists run is in no list page: only a watch starting in its
    namespace says that it may try again."""
    cache, _sync, queue, first = world(readable=False)
    cache.put_resource(resource("app"))
    cache.put_resource(resource("other"))
    assert asyncio.run(first.body("uid-app")) is None
    assert asyncio.run(first.body("uid-other")) is None
    first.followed((api.PLURAL, "ns-app"))  # not a kind read_namespace waits for
    first.followed(("secrets", "ns-app"))
    assert queue.added == [("uid-app", True)]
    first.followed(("serviceaccounts", None))  # the whole cluster's
    assert queue.added == [("uid-app", True), ("uid-other", True)]
