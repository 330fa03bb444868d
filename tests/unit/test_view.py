"""handlers.view.ClusterView: kopf's indexes, plus our own writes until the watch has caught up."""

from __future__ import annotations

from typing import Any

import pytest

from ecr_pull_secrets.handlers.view import ALL, ClusterView
from ecr_pull_secrets.model.cluster import NamespaceView, SecretView, ServiceAccountView


class FakeIndex(dict[Any, list[Any]]):
    """What kopf.Index offers the view: key -> a collection of values (dict.get does it)."""


def secret(
    resource_version: str, *, uid: str = "s-1", name: str = "pull", namespace: str = "team-b"
) -> SecretView:
    return SecretView(namespace, name, uid, "kubernetes.io/dockerconfigjson", "owner-1", resource_version)


def body(view: SecretView) -> dict[str, Any]:
    """The API server's answer to our create/update, from which the view remembers the write."""
    return {
        "type": view.type,
        "metadata": {
            "namespace": view.namespace,
            "name": view.name,
            "uid": view.uid,
            "resourceVersion": view.resource_version,
            "ownerReferences": [{"uid": view.controller_uid, "controller": True}],
        },
    }


def version(found: SecretView | None) -> str | None:
    return f"{found.uid}@{found.resource_version}" if found else None


def bound(*watched: SecretView, **indexes: Any) -> ClusterView:
    view = ClusterView()
    view.bind({"ecr_secrets": FakeIndex({(s.namespace, s.name): [s] for s in watched}), **indexes})
    return view


def test_unbound_view_is_empty() -> None:
    view = ClusterView()

    assert view.namespaces() == []
    assert view.secret("team-b", "pull") is None
    assert view.secrets_of("owner-1") == []
    assert view.service_accounts("team-b") == []
    assert view.accounts_with("pull") == []


def test_bind_keeps_only_known_indexes() -> None:
    namespaces = FakeIndex({ALL: [NamespaceView("team-a"), NamespaceView("team-b")]})
    view = ClusterView()

    view.bind({"ecr_namespaces": namespaces, "unrelated": FakeIndex({ALL: ["x"]}), "logger": object()})

    assert [n.name for n in view.namespaces()] == ["team-a", "team-b"]


def test_bind_again_replaces_an_index() -> None:
    view = ClusterView()
    view.bind({"ecr_namespaces": FakeIndex({ALL: [NamespaceView("old")]})})

    view.bind({"ecr_namespaces": FakeIndex({ALL: [NamespaceView("new")]})})

    assert [n.name for n in view.namespaces()] == ["new"]


@pytest.mark.parametrize(
    ("watched", "ours", "seen", "remembered"),
    [
        pytest.param(None, None, None, False, id="neither"),
        pytest.param("40", None, "s-1@40", False, id="watched-only"),
        pytest.param(None, "42", "s-ours@42", True, id="ours-not-yet-watched"),
        pytest.param("40", "42", "s-ours@42", True, id="watch-behind"),
        pytest.param("9", "10", "s-ours@10", True, id="watch-behind-compared-as-numbers"),
        pytest.param("42", "42", "s-1@42", False, id="watch-caught-up"),
        pytest.param("43", "42", "s-1@43", False, id="watch-ahead"),
        pytest.param("100", "99", "s-1@100", False, id="watch-ahead-compared-as-numbers"),
        pytest.param("abc", "42", "s-1@abc", False, id="opaque-version-trusts-watch"),
        pytest.param("", "42", "s-1@", False, id="empty-version-trusts-watch"),
    ],
)
def test_secret_prefers_our_write_until_the_watch_catches_up(
    watched: str | None, ours: str | None, seen: str | None, remembered: bool
) -> None:
    view = bound(*([secret(watched)] if watched is not None else []))
    if ours is not None:
        view.wrote(body(secret(ours, uid="s-ours")))

    assert version(view.secret("team-b", "pull")) == seen
    # Whether our write is still remembered shows once the watch loses the Secret.
    view.bind({"ecr_secrets": FakeIndex()})
    assert version(view.secret("team-b", "pull")) == (f"s-ours@{ours}" if remembered else None)


def test_secret_written_view_carries_the_written_fields() -> None:
    view = bound()
    view.wrote(body(secret("42", uid="s-ours")))

    assert view.secret("team-b", "pull") == secret("42", uid="s-ours")


def test_wrote_is_per_namespace_and_name() -> None:
    view = bound()
    view.wrote(body(secret("42", namespace="team-b")))

    assert view.secret("team-c", "pull") is None
    assert view.secret("team-b", "other") is None
    assert view.secret("team-b", "pull") is not None


def test_a_later_write_replaces_the_earlier() -> None:
    view = bound(secret("40"))
    view.wrote(body(secret("42")))
    view.wrote(body(secret("45")))

    found = view.secret("team-b", "pull")

    assert found is not None
    assert found.resource_version == "45"


@pytest.mark.parametrize(
    ("gone_uid", "gone_where", "remembered"),
    [
        pytest.param("s-ours", ("team-b", "pull"), False, id="same-uid-forgotten"),
        pytest.param("s-older", ("team-b", "pull"), True, id="older-object-deleted-kept"),
        pytest.param("s-ours", ("team-c", "pull"), True, id="other-namespace-kept"),
        pytest.param("s-ours", ("team-b", "other"), True, id="other-name-kept"),
    ],
)
def test_gone_forgets_our_write_only_for_the_same_object(
    gone_uid: str, gone_where: tuple[str, str], remembered: bool
) -> None:
    view = bound()
    view.wrote(body(secret("42", uid="s-ours")))

    view.gone(*gone_where, gone_uid)

    found = view.secret("team-b", "pull")
    assert (found.uid if found else None) == ("s-ours" if remembered else None)


def test_gone_without_a_write_is_harmless() -> None:
    view = bound(secret("40"))

    view.gone("team-b", "pull", "s-1")

    assert view.secret("team-b", "pull") == secret("40"), "the watch index is kopf's to update"


def test_secrets_of_reads_the_owner_index() -> None:
    mine = [secret("1", namespace="team-a"), secret("2", namespace="team-b")]
    view = bound(ecr_secrets_by_owner=FakeIndex({"owner-1": mine, "owner-2": [secret("3")]}))

    assert view.secrets_of("owner-1") == mine
    assert view.secrets_of("owner-3") == []


def sa(namespace: str, name: str, *added: str) -> ServiceAccountView:
    return ServiceAccountView(namespace, name, image_pull_secrets=added, added=added)


A_BUILDER = sa("team-a", "builder", "pull")
A_DEFAULT = sa("team-a", "default")
B_BUILDER = sa("team-b", "builder", "pull-eu", "pull")
B_LEGACY = ServiceAccountView("team-b", "legacy", image_pull_secrets=("pull",))
C_OLD = sa("team-c", "old", "pull-old")
ACCOUNTS = FakeIndex(
    {
        "team-a": [A_BUILDER, A_DEFAULT],
        "team-b": [B_BUILDER, B_LEGACY],
        "team-c": [C_OLD],
        ALL: [A_BUILDER, A_DEFAULT, B_BUILDER, B_LEGACY, C_OLD],
    }
)


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        pytest.param("team-a", [A_BUILDER, A_DEFAULT], id="team-a"),
        pytest.param("team-b", [B_BUILDER, B_LEGACY], id="team-b"),
        pytest.param("team-z", [], id="unknown"),
    ],
)
def test_service_accounts(namespace: str, expected: list[ServiceAccountView]) -> None:
    assert bound(ecr_service_accounts=ACCOUNTS).service_accounts(namespace) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("pull", [A_BUILDER, B_BUILDER], id="added-by-us-only"),
        pytest.param("pull-eu", [B_BUILDER], id="second-entry"),
        pytest.param("pull-old", [C_OLD], id="exact-name"),
        pytest.param("pul", [], id="not-a-prefix"),
        pytest.param("docker-hub", [], id="never-added"),
    ],
)
def test_accounts_with(name: str, expected: list[ServiceAccountView]) -> None:
    assert bound(ecr_service_accounts=ACCOUNTS).accounts_with(name) == expected
