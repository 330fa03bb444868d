"""Reconciler ServiceAccount patching, driven with in-memory fakes (no cluster, no AWS).

A pass where the token is fresh and the Secret is as written touches no AWS and writes no
Secret; only the ServiceAccount changes it asks for are recorded here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any, cast

from ecr_pull_secrets.handlers.apply import Apply
from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.issuing import Issuer
from ecr_pull_secrets.handlers.reconciler import Reconciler
from ecr_pull_secrets.kube.secrets import ExistingSecret
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import NamespaceView, SecretView, ServiceAccountView, secret_view
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.policy import Policy
from ecr_pull_secrets.model.timestamps import format_time
from ecr_pull_secrets.plan.content import Owner, desired_secret
from ecr_pull_secrets.plan.renewal import RenewalPolicy
from tests.unit.factories import GENERATION, HOST, NOW, ago, later

UID_A = "uid-resource-a"
EXPIRES_AT = later(hours=8)


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
    """Answers a status patch as the API server does: the object with the patch merged in."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.status_patches: list[dict[str, Any]] = []
        self._body = body

    def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.status_patches.append(patch)
        meta = self._body["metadata"]
        version = str(int(meta["resourceVersion"]) + 1)
        self._body = {
            **self._body,
            "metadata": {**meta, "resourceVersion": version},
            "status": {**self._body["status"], **patch},
        }
        return self._body


class FakeSecrets:
    """Reads of the resource's own Secret (verification reads its data); no writes."""

    def __init__(self, *secrets: dict[str, Any]) -> None:
        self._secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in secrets}

    def get(self, namespace: str, name: str) -> ExistingSecret | None:
        found = self._secrets.get((namespace, name))
        return None if found is None else ExistingSecret(found["metadata"], found["type"], found["data"])

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


def secret_body_of_a() -> dict[str, Any]:
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
    return written


def secret_of_a() -> SecretView:
    return secret_view(secret_body_of_a())


def build(  # each fake named at its call site
    cache: ClusterCache,
    *,
    secrets: Any,
    service_accounts: Any,
    resources: Any,
    events: Any = lambda *args, **kwargs: None,
    verification: Any = None,
) -> Reconciler:
    """A Reconciler over fakes; `Untouched()` for the token broker: a fresh pass asks it nothing."""
    apply = Apply(
        secrets=secrets, service_accounts=service_accounts, resources=resources, cache=cache, events=events
    )
    issuer = Issuer(
        broker=cast(Any, Untouched()),
        secrets=secrets,
        service_accounts=service_accounts,
        cache=cache,
        policy=RenewalPolicy(),
        clock=lambda: NOW,
    )
    return Reconciler(
        issuer=issuer,
        apply=apply,
        cache=cache,
        renewal_policy=RenewalPolicy(),
        namespace_policy=Policy(),
        clock=lambda: NOW,
        verification=verification,
    )


def run_pass(
    service_accounts: dict[str, Any], accounts: list[ServiceAccountView]
) -> list[tuple[str, str, str]]:
    mine = secret_of_a()
    cache = ClusterCache()
    for namespace in ("team-a", "team-b"):
        cache.put_namespace(NamespaceView(namespace))
    cache.put_secret(mine)
    for account in accounts:
        cache.put_account(account)
    patched = FakeServiceAccounts()
    reconciler = build(
        cache,
        secrets=Untouched(),
        service_accounts=patched,
        resources=FakeResources(body_of_a(service_accounts)),
    )
    asyncio.run(reconciler.reconcile(body_of_a(service_accounts)))
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
