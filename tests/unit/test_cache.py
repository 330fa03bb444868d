"""handlers.cache.ClusterCache: newer versions only, our own writes win over late events, indexes follow."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ecr_pull_secrets.handlers.cache import ClusterCache, compact_body, newer
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import NamespaceView, SecretView, ServiceAccountView


def secret(
    name: str = "pull", *, owner: str | None = "uid-a", rv: str = "10", uid: str = "s-1"
) -> SecretView:
    return SecretView("team-a", name, uid, api.SECRET_TYPE, owner, resource_version=rv)


@pytest.mark.parametrize(
    ("incoming", "held", "is_newer"),
    [("11", "10", True), ("10", "10", False), ("9", "10", False), ("100", "99", True), ("x", "10", True)],
)
def test_newer(incoming: str, held: str, is_newer: bool) -> None:
    assert newer(incoming, held) is is_newer


def test_a_late_watch_event_does_not_undo_our_own_write() -> None:
    cache = ClusterCache()
    assert cache.put_secret(secret(rv="10"))
    ours = replace(secret(rv="12"), annotations={api.EXPIRES_AT_ANNOTATION: "2025-03-01T20:00:00Z"})
    assert cache.put_secret(ours)  # the answer to our write
    assert not cache.put_secret(secret(rv="11"))  # an event from before it, late
    assert not cache.put_secret(ours)  # the echo of our write: nothing new
    assert cache.secret("team-a", "pull") == ours


def test_a_version_change_alone_is_not_a_change() -> None:
    cache = ClusterCache()
    cache.put_namespace(NamespaceView("team-a", resource_version="1"))
    assert not cache.put_namespace(NamespaceView("team-a", resource_version="2"))
    assert cache.put_namespace(NamespaceView("team-a", labels={"tier": "x"}, resource_version="3"))


def test_a_delete_of_an_older_object_leaves_its_successor() -> None:
    cache = ClusterCache()
    cache.put_secret(secret(uid="old", rv="10"))
    cache.put_secret(secret(uid="new", rv="5"))  # recreated: another object, whatever its version
    assert cache.drop_secret("team-a", "pull", "old") is None
    gone = cache.drop_secret("team-a", "pull", "new")
    assert gone is not None
    assert gone.uid == "new"
    assert cache.secret("team-a", "pull") is None
    assert cache.secrets_of("uid-a") == []


def test_secrets_by_owner_follow_the_controller() -> None:
    cache = ClusterCache()
    cache.put_secret(secret("one"))
    cache.put_secret(secret("two", uid="s-2"))
    cache.put_secret(secret("one", owner="uid-b", rv="11"))
    assert [s.name for s in cache.secrets_of("uid-a")] == ["two"]
    assert [s.name for s in cache.secrets_of("uid-b")] == ["one"]


def test_accounts_added_by_follow_the_annotation() -> None:
    cache = ClusterCache()
    builder = ServiceAccountView(
        "team-a", "builder", added=("pull@uid-a", "other@uid-b"), resource_version="1"
    )
    cache.put_account(builder)
    cache.put_account(ServiceAccountView("team-b", "default", added=("pull@uid-a",), resource_version="2"))
    assert [(sa.namespace, sa.name) for sa in cache.accounts_added_by("uid-a")] == [
        ("team-a", "builder"),
        ("team-b", "default"),
    ]
    cache.put_account(replace(builder, added=("other@uid-b",), resource_version="3"))
    assert [sa.namespace for sa in cache.accounts_added_by("uid-a")] == ["team-b"]
    cache.drop_account("team-b", "default")
    assert cache.accounts_added_by("uid-a") == []
    assert [sa.name for sa in cache.service_accounts("team-a")] == ["builder"]
    assert list(cache.service_accounts("team-b")) == []


def resource(kind: str, uid: str, rv: str, namespace: str | None = "team-a") -> dict[str, object]:
    meta = {"uid": uid, "name": "r", "resourceVersion": rv, "managedFields": [{"manager": "kubectl"}]}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": {"registries": []}}


def test_resources_by_home_and_cluster_resources() -> None:
    cache = ClusterCache()
    assert cache.put_resource(resource(api.KIND, "a", "1"))
    assert cache.put_resource(resource(api.CLUSTER_KIND, "c", "2", namespace=None))
    assert not cache.put_resource(resource(api.KIND, "a", "1"))
    assert cache.put_resource(resource(api.KIND, "a", "3"))
    assert (list(cache.resources_in("team-a")), list(cache.cluster_resources())) == (["a"], ["c"])
    cache.drop_resource("a")
    cache.drop_resource("c")
    assert (list(cache.resources_in("team-a")), list(cache.cluster_resources()), cache.resource_count) == (
        [],
        [],
        0,
    )


def test_compact_body_drops_managed_fields_only() -> None:
    body = resource(api.KIND, "a", "1")
    compact = compact_body(body)
    assert "managedFields" not in compact["metadata"]
    assert compact["metadata"]["resourceVersion"] == "1"
    assert compact["spec"] == {"registries": []}
    assert compact["status"] == {}


def test_compact_bodies_share_their_keys_and_short_strings() -> None:
    first, second = (
        compact_body(json.loads(json.dumps({**resource(api.KIND, uid, "1"), "status": {"phase": "Ready"}})))
        for uid in ("a", "b")
    )
    key_of = {id(k) for k in first["status"]}
    assert {id(k) for k in second["status"]} == key_of
    assert first["status"]["phase"] is second["status"]["phase"]
    assert first["metadata"]["uid"] == "a"
