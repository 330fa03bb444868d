"""plan.fanout: is a namespace's managed Secret as it should be, and which ServiceAccounts change."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import SecretView, ServiceAccountView, secret_view
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.plan.content import Owner, desired_secret, dockerconfigjson
from ecr_pull_secrets.plan.fanout import SecretState, account_changes, examine, releases
from tests.unit.factories import ago, later

US = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
EU = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
US_2 = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
UID = "uid-cluster-1"
OTHER_UID = "uid-other-2"
EXPIRES_AT = later(hours=8)
TOKEN = Credential("AWS", "token-1")


def written_body(hosts: tuple[str, ...] = (US, EU), uid: str = UID) -> dict[str, Any]:
    """What the operator wrote into team-b for a ClusterEcrPullSecret, as the watch reports it."""
    body: dict[str, Any] = desired_secret(
        name="pull",
        namespace="team-b",
        owner=Owner(f"{api.GROUP}/{api.VERSION}", api.CLUSTER_KIND, "shared", uid),
        credentials=dict.fromkeys(hosts, TOKEN),
        issued_at=ago(hours=4),
        expires_at=EXPIRES_AT,
        chain_key="chain-1",
    )
    body["metadata"] |= {"uid": "secret-uid-1", "resourceVersion": "41"}
    return body


def written(hosts: tuple[str, ...] = (US, EU), uid: str = UID) -> SecretView:
    return secret_view(written_body(hosts, uid))


FRESH = written()


def edited(part: str, key: str, value: str | None) -> SecretView:
    """FRESH as the watch reports it after someone set (or removed) one label, annotation or data key."""
    body = written_body()
    holder = body["metadata"].setdefault(part, {}) if part != "data" else body["data"]
    holder.pop(key, None)
    if value is not None:
        holder[key] = value
    return secret_view(body)


def with_annotation(key: str, value: str | None) -> SecretView:
    return edited("annotations", key, value)


def with_label(key: str, value: str | None) -> SecretView:
    return edited("labels", key, value)


EDITED_DATA = base64.b64encode(dockerconfigjson({US: Credential("AWS", "planted")}).encode()).decode()


@pytest.mark.parametrize(
    ("secret", "hosts", "expires_at", "state"),
    [
        pytest.param(None, (US, EU), EXPIRES_AT, SecretState.MISSING, id="absent"),
        pytest.param(FRESH, (US, EU), EXPIRES_AT, SecretState.OK, id="fresh"),
        pytest.param(FRESH, (EU, US), EXPIRES_AT, SecretState.OK, id="fresh-hosts-in-other-order"),
        pytest.param(FRESH, [US, EU, US], EXPIRES_AT, SecretState.OK, id="fresh-hosts-as-list"),
        # -- someone else's
        pytest.param(
            written(uid=OTHER_UID), (US, EU), EXPIRES_AT, SecretState.FOREIGN, id="other-controller"
        ),
        pytest.param(
            replace(written(uid=OTHER_UID), type="Opaque"),
            (US, EU),
            EXPIRES_AT,
            SecretState.FOREIGN,
            id="other-controller-stale-content",
        ),
        pytest.param(
            replace(FRESH, controller_uid=None), (US, EU), EXPIRES_AT, SecretState.MISSING, id="no-controller"
        ),
        pytest.param(
            replace(FRESH, controller_uid=""),
            (US, EU),
            EXPIRES_AT,
            SecretState.MISSING,
            id="empty-controller",
        ),
        # -- ours, but not as it should be
        pytest.param(replace(FRESH, type="Opaque"), (US, EU), EXPIRES_AT, SecretState.STALE, id="wrong-type"),
        pytest.param(
            with_label(api.MANAGED_BY_LABEL, None),
            (US, EU),
            EXPIRES_AT,
            SecretState.STALE,
            id="no-managed-by",
        ),
        pytest.param(
            with_label(api.MANAGED_BY_LABEL, "helm"),
            (US, EU),
            EXPIRES_AT,
            SecretState.STALE,
            id="managed-by-other",
        ),
        pytest.param(
            edited("data", api.SECRET_KEY, EDITED_DATA),
            (US, EU),
            EXPIRES_AT,
            SecretState.STALE,
            id="data-edited",
        ),
        pytest.param(
            edited("data", api.SECRET_KEY, None), (US, EU), EXPIRES_AT, SecretState.STALE, id="data-emptied"
        ),
        pytest.param(
            with_annotation(api.CONTENT_DIGEST_ANNOTATION, None),
            (US, EU),
            EXPIRES_AT,
            SecretState.STALE,
            id="no-digest",
        ),
        pytest.param(
            with_annotation(api.CONTENT_DIGEST_ANNOTATION, "0" * 64),
            (US, EU),
            EXPIRES_AT,
            SecretState.STALE,
            id="digest-edited",
        ),
        pytest.param(
            with_annotation(api.EXPIRES_AT_ANNOTATION, "2025-03-01T19:00:00Z"),
            (US, EU),
            EXPIRES_AT,
            SecretState.STALE,
            id="expires-at-older",
        ),
        pytest.param(
            with_annotation(api.EXPIRES_AT_ANNOTATION, None),
            (US, EU),
            EXPIRES_AT,
            SecretState.STALE,
            id="no-expires-at",
        ),
        pytest.param(FRESH, (US, EU), later(hours=20), SecretState.STALE, id="status-has-newer-expiry"),
        pytest.param(FRESH, (US, EU), None, SecretState.STALE, id="status-has-no-expiry"),
        pytest.param(FRESH, (US,), EXPIRES_AT, SecretState.STALE, id="registry-removed"),
        pytest.param(FRESH, (US, EU, US_2), EXPIRES_AT, SecretState.STALE, id="registry-added"),
        pytest.param(FRESH, (US, US_2), EXPIRES_AT, SecretState.STALE, id="registry-replaced"),
        pytest.param(FRESH, (), EXPIRES_AT, SecretState.STALE, id="no-registries"),
    ],
)
def test_examine(
    secret: SecretView | None, hosts: tuple[str, ...], expires_at: Any, state: SecretState
) -> None:
    assert examine(secret, UID, hosts, expires_at) is state


def test_fresh_secret_fixture_is_what_the_operator_writes() -> None:
    """Guards the table above: FRESH really carries every mark examine looks at."""
    assert FRESH.controller_uid == UID
    assert FRESH.type == "kubernetes.io/dockerconfigjson"
    assert FRESH.managed
    assert FRESH.annotations["ecr.pullsecrets.dev/expires-at"] == "2025-03-01T20:00:00Z"
    assert FRESH.content_ok
    assert FRESH.hosts == {US, EU}


# -- account_changes ---------------------------------------------------------------------------


def sa(
    name: str, *, listed: tuple[str, ...] = (), added: tuple[str, ...] = (), namespace: str = "team-a"
) -> ServiceAccountView:
    return ServiceAccountView(namespace, name, image_pull_secrets=listed, added=added)


def keys(accounts: tuple[ServiceAccountView, ...]) -> list[str]:
    return [f"{a.namespace}/{a.name}" for a in accounts]


@pytest.mark.parametrize(
    ("wanted", "present", "add", "remove"),
    [
        pytest.param([], [], [], [], id="nothing"),
        # -- adding
        pytest.param([sa("builder")], [], ["team-a/builder"], [], id="add-where-missing"),
        pytest.param(
            [sa("builder", listed=("docker-hub",))], [], ["team-a/builder"], [], id="add-beside-others"
        ),
        pytest.param(
            [sa("builder", listed=("pull-old",))], [], ["team-a/builder"], [], id="add-similar-name-is-not-it"
        ),
        pytest.param(
            [sa("builder", listed=("pull",))], [], [], [], id="listed-by-someone-else-not-added-twice"
        ),
        pytest.param(
            [sa("builder", listed=("pull",), added=("pull",))],
            [sa("builder", listed=("pull",), added=("pull",))],
            [],
            [],
            id="ours-already-listed",
        ),
        pytest.param(
            [sa("builder"), sa("deployer", listed=("pull",)), sa("default", namespace="team-b")],
            [],
            ["team-a/builder", "team-b/default"],
            [],
            id="add-only-the-missing",
        ),
        # -- removing
        pytest.param(
            [], [sa("builder", listed=("pull",), added=("pull",))], [], ["team-a/builder"], id="remove-ours"
        ),
        pytest.param(
            [],
            [sa("builder", listed=("docker-hub", "pull"), added=("pull", "other"))],
            [],
            ["team-a/builder"],
            id="remove-ours-among-others",
        ),
        pytest.param([], [sa("builder", listed=("pull",))], [], [], id="keep-entry-someone-else-added"),
        pytest.param(
            [],
            [sa("builder", listed=("pull",), added=("other",))],
            [],
            [],
            id="keep-entry-we-added-for-another-secret",
        ),
        pytest.param(
            [], [sa("builder", listed=("pull-old",), added=("pull-old",))], [], [], id="keep-similar-name"
        ),
        pytest.param(
            [], [sa("builder", added=("pull",))], [], ["team-a/builder"], id="forget-entry-already-gone"
        ),
        pytest.param(
            [sa("builder", listed=("pull",), added=("pull",))],
            [
                sa("builder", listed=("pull",), added=("pull",)),
                sa("deployer", listed=("pull",), added=("pull",)),
            ],
            [],
            ["team-a/deployer"],
            id="remove-only-no-longer-wanted",
        ),
        pytest.param(
            [sa("builder")],
            [sa("builder", namespace="team-b", listed=("pull",), added=("pull",))],
            ["team-a/builder"],
            ["team-b/builder"],
            id="same-name-other-namespace",
        ),
        pytest.param(
            [sa("builder"), sa("default", listed=("pull",))],
            [
                sa("default", listed=("pull",)),
                sa("monitor", listed=("pull",), added=("pull",)),
                sa("legacy", listed=("pull",)),
            ],
            ["team-a/builder"],
            ["team-a/monitor"],
            id="mixed",
        ),
    ],
)
def test_account_changes(
    wanted: list[ServiceAccountView], present: list[ServiceAccountView], add: list[str], remove: list[str]
) -> None:
    changes = account_changes(wanted, present, "pull")

    assert keys(changes.add) == add
    assert keys(changes.remove) == remove


def test_account_changes_returns_the_views_themselves() -> None:
    """The caller patches with each view's resourceVersion, so the very view must come back."""
    builder = replace(sa("builder"), resource_version="17")
    stale = replace(sa("monitor", listed=("pull",), added=("pull",)), resource_version="23")

    changes = account_changes([builder], [stale], "pull")

    assert changes.add == (builder,)
    assert changes.remove == (stale,)
    assert (changes.add[0].resource_version, changes.remove[0].resource_version) == ("17", "23")


def test_account_changes_reads_generators() -> None:
    changes = account_changes(
        (a for a in [sa("builder")]), (a for a in [sa("monitor", added=("pull",))]), "pull"
    )

    assert (keys(changes.add), keys(changes.remove)) == (["team-a/builder"], ["team-a/monitor"])


@pytest.mark.parametrize(
    ("entries", "removed"),
    [
        pytest.param(("pull@uid-a",), ["team-a/builder"], id="ours-by-owner"),
        pytest.param(("pull@uid-b",), [], id="same-name-other-owner"),
        pytest.param(("pull@uid-b", "pull@uid-a"), ["team-a/builder"], id="both-owners-listed"),
        pytest.param(("pull",), [], id="legacy-entry-without-owner"),
    ],
)
def test_account_changes_removes_only_this_owners_entries(
    entries: tuple[str, ...], removed: list[str]
) -> None:
    changes = account_changes([], [sa("builder", listed=("pull",), added=entries)], "pull", "uid-a")

    assert [f"{a.namespace}/{a.name}" for a in changes.remove] == removed


def test_releases_name_every_entry_of_that_owner_whatever_its_secret_name() -> None:
    mine = ServiceAccountView(
        "ns",
        "web",
        image_pull_secrets=("old", "new", "theirs"),
        added=("old@uid-1", "new@uid-1", "theirs@uid-2"),
    )
    theirs = ServiceAccountView("ns", "db", image_pull_secrets=("theirs",), added=("theirs@uid-2",))
    legacy = ServiceAccountView("ns", "ci", image_pull_secrets=("new",), added=("new",))

    assert releases([mine, theirs, legacy], "uid-1") == ((mine, ("new", "old")),)
    assert releases([mine], "") == ()
    assert releases([mine], "uid") == (), "a uid that is a prefix of another is not that owner"
