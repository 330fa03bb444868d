"""kopf registrations: what the operator watches, and whom each change wakes up.

Our resources feed their reconcile loops; managed Secrets, namespaces and ServiceAccounts are
indexed under explicit ids, which name the handlers' keyword arguments (kopf runs no handler
before every index is filled, so a restart never mistakes a
not-yet-listed Secret for a missing one) and wake the resources they concern.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from ecr_pull_secrets.handlers.scheduling import Scheduler
from ecr_pull_secrets.handlers.view import ALL, ClusterView
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import namespace_view, secret_view, service_account_view

MANAGED = {api.MANAGED_BY_LABEL: api.MANAGED_BY}
MANAGED_SELECTOR = f"{api.MANAGED_BY_LABEL}={api.MANAGED_BY}"


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.index("v1", "namespaces", id="ecr_namespaces", registry=registry)
    def ecr_namespaces(body: kopf.Body, **_: Any) -> dict[str, Any]:
        view = namespace_view(body)
        return {ALL: view, view.name: view}

    @kopf.index("v1", "secrets", labels=MANAGED, id="ecr_secrets", registry=registry)
    def ecr_secrets(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        view = secret_view(body)
        return {(view.namespace, view.name): view}

    @kopf.index("v1", "secrets", labels=MANAGED, id="ecr_secrets_by_owner", registry=registry)
    def ecr_secrets_by_owner(body: kopf.Body, **_: Any) -> dict[Any, Any] | None:
        view = secret_view(body)
        return {view.controller_uid: view} if view.controller_uid else None

    @kopf.index("v1", "serviceaccounts", id="ecr_service_accounts", registry=registry)
    def ecr_service_accounts(body: kopf.Body, **_: Any) -> dict[str, Any]:
        view = service_account_view(body)
        return {view.namespace: view, ALL: view}

    @kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
    async def namespaced_resource(
        event: kopf.RawEvent, body: kopf.Body, uid: str, memo: kopf.Memo, **indexes: Any
    ) -> None:
        _observe(memo, uid, body, event, indexes)

    @kopf.on.event(api.GROUP, api.VERSION, api.CLUSTER_PLURAL, registry=registry)
    async def cluster_resource(
        event: kopf.RawEvent, body: kopf.Body, uid: str, memo: kopf.Memo, **indexes: Any
    ) -> None:
        _observe(memo, uid, body, event, indexes)

    @kopf.on.event("v1", "secrets", labels=MANAGED, registry=registry)
    async def managed_secret(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        secret = secret_view(body)
        if event["type"] == "DELETED":
            view: ClusterView = memo["view"]
            view.gone(secret.namespace, secret.name, secret.uid)
        if secret.controller_uid:
            _scheduler(memo).kick(secret.controller_uid)

    @kopf.on.event("v1", "namespaces", registry=registry)
    async def namespace(memo: kopf.Memo, **_: Any) -> None:
        _scheduler(memo).kick_where(lambda resource: resource.get("kind") == api.CLUSTER_KIND)

    @kopf.on.event("v1", "serviceaccounts", registry=registry)
    async def service_account(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        namespace = body["metadata"].get("namespace")

        def concerned(resource: Mapping[str, Any]) -> bool:
            patches_accounts = bool((resource.get("spec") or {}).get("serviceAccounts"))
            here = (
                resource.get("kind") == api.CLUSTER_KIND or resource["metadata"].get("namespace") == namespace
            )
            return patches_accounts and here

        _scheduler(memo).kick_where(concerned)

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        await _scheduler(memo).stop()


def _observe(
    memo: kopf.Memo, uid: str, body: kopf.Body, event: kopf.RawEvent, indexes: Mapping[str, Any]
) -> None:
    view: ClusterView = memo["view"]
    view.bind(indexes)
    _scheduler(memo).observe(uid, body, deleted=event["type"] == "DELETED")


def _scheduler(memo: kopf.Memo) -> Scheduler:
    scheduler: Scheduler = memo["scheduler"]
    return scheduler
