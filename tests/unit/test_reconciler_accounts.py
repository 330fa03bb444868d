"""Reconciler ServiceAccount patching, driven with in-memory fakes (no cluster, no AWS).

A pass where the token is fresh and the Secret is as written touches no AWS and writes no
Secret; only the ServiceAccount changes it asks for are recorded here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any, cast

from ecr_pull_secrets.handlers.reconciler import Reconciler
from ecr_pull_secrets.handlers.view import ALL, ClusterView
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import NamespaceView, ServiceAccountView, secret_view
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.policy import Policy
from ecr_pull_secrets.model.timestamps import format_time
from ecr_pull_secrets.plan.content import Owner, desired_secret
from ecr_pull_secrets.plan.renewal import RenewalPolicy
from tests.unit.factories import GENERATION, HOST, NOW, ago, later

UID_A = "uid-resource-a"
EXPIRES_AT = later(hours=8)


class FakeIndex(dict[Any, list[Any]]):
    pass


class FakeServiceAccounts:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def add_pull_secret(self, account: ServiceAccountView, secret: str, owner_uid: str) -> None:
        self.calls.append(("add", f"{account.namespace}/{account.name}", secret))

    def remove_pull_secrets(
        self, account: ServiceAccountView, secrets: Collection[str], owner_uid: str
    ) -> None:
        self.calls += [("remove", f"{account.namespace}/{account.name}", secret) for secret in secrets]


class FakeResources:
    def __init__(self) -> None:
        self.status_patches: list[dict[str, Any]] = []

    def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.status_patches.append(patch)

    def set_finalizers(self, *args: Any) -> None:
        raise AssertionError("the finalizer is already in place")


class Untouched:
    """Secrets and the token broker: a pass with everything fresh must not call them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call: {name}")


def body_of_a(service_accounts: dict[str, Any]) -> dict[str, Any]:
    """EcrPullSecret team-a/pull-a, secretName pull, issued four hours ago and fresh."""
    return {
        "kind": api.KIND,
        "metadata": {
            "namespace": "team-a",
            "name": "pull-a",
            "uid": UID_A,
            "generation": GENERATION,
            "resourceVersion": "5",
            "finalizers": [api.FINALIZER],
        },
        "spec": {
            "registries": [HOST],
            "secretName": "pull",
            "serviceAccounts": service_accounts,
            "auth": {"serviceAccountRef": {"name": "puller"}},
        },
        "status": {
            "secretName": "pull",
            "expiresAt": format_time(EXPIRES_AT),
            "renewalTime": format_time(later(hours=4)),
            "lastRefreshTime": format_time(ago(hours=4)),
            "observedGeneration": GENERATION,
        },
    }


def secret_of_a() -> Any:
    written: dict[str, Any] = desired_secret(
        name="pull",
        namespace="team-a",
        owner=Owner(f"{api.GROUP}/{api.VERSION}", api.KIND, "pull-a", UID_A),
        credentials={HOST: Credential("AWS", "token")},
        issued_at=ago(hours=4),
        expires_at=EXPIRES_AT,
        chain_key="chain",
    )
    written["metadata"] |= {"uid": "secret-a", "resourceVersion": "7"}
    return secret_view(written)


def run_pass(
    service_accounts: dict[str, Any], accounts: list[ServiceAccountView]
) -> list[tuple[str, str, str]]:
    mine = secret_of_a()
    view = ClusterView()
    by_namespace: dict[Any, list[Any]] = {ALL: accounts}
    for account in accounts:
        by_namespace.setdefault(account.namespace, []).append(account)
    view.bind(
        {
            "ecr_namespaces": FakeIndex({ALL: [NamespaceView("team-a"), NamespaceView("team-b")]}),
            "ecr_secrets": FakeIndex({("team-a", "pull"): [mine]}),
            "ecr_secrets_by_owner": FakeIndex({UID_A: [mine]}),
            "ecr_service_accounts": FakeIndex(by_namespace),
        }
    )
    patched = FakeServiceAccounts()
    reconciler = Reconciler(
        secrets=cast(Any, Untouched()),
        service_accounts=cast(Any, patched),
        resources=cast(Any, FakeResources()),
        broker=cast(Any, Untouched()),
        view=view,
        renewal_policy=RenewalPolicy(),
        namespace_policy=Policy(),
        clock=lambda: NOW,
        events=lambda *args, **kwargs: None,
    )
    outcome = asyncio.run(reconciler.reconcile(body_of_a(service_accounts)))
    assert outcome.attempted_at is None, "nothing was due: the fakes above were not asked for tokens"
    return sorted(patched.calls)


def test_pass_adds_where_missing_and_removes_its_own_unwanted_entry() -> None:
    accounts = [
        ServiceAccountView("team-a", "builder"),
        ServiceAccountView("team-a", "default", image_pull_secrets=("pull",), added=(f"pull@{UID_A}",)),
        ServiceAccountView("team-a", "legacy", image_pull_secrets=("pull",)),
    ]

    calls = run_pass({"names": ["builder"]}, accounts)

    assert calls == [("add", "team-a/builder", "pull"), ("remove", "team-a/default", "pull")]


def test_pass_leaves_entries_another_resource_added_in_another_namespace() -> None:
    accounts = [
        ServiceAccountView("team-a", "default", image_pull_secrets=("pull",), added=(f"pull@{UID_A}",)),
        # Added by EcrPullSecret team-b/pull-b, which also names its Secret "pull".
        ServiceAccountView("team-b", "default", image_pull_secrets=("pull",), added=("pull@uid-resource-b",)),
    ]

    calls = run_pass({"all": True}, accounts)

    assert calls == []
