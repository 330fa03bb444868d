"""Applies what a plan decided, once, and records the results in the caches: Secret writes (with the
adoption rule when a create is refused, and a replacement when our own Secret must change type),
deletes, ServiceAccount patches, finalizers, status, Events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.resources import Resources
from ecr_pull_secrets.kube.secrets import Secrets
from ecr_pull_secrets.kube.serviceaccounts import ServiceAccounts
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import SecretView, secret_view, service_account_view
from ecr_pull_secrets.model.output import TEMPLATE_ANNOTATION
from ecr_pull_secrets.plan import adoption, content, fanout
from ecr_pull_secrets.plan.reconcile import Event

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def __call__(self, body: Mapping[str, Any], *, type: str, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class Written:
    namespace: str
    failure: str | None = None
    """The failure's reason (SecretConflict, KubernetesError); None when written."""
    message: str = ""


class Apply:
    def __init__(
        self,
        *,
        secrets: Secrets,
        service_accounts: ServiceAccounts,
        resources: Resources,
        cache: ClusterCache,
        events: EventSink,
    ) -> None:
        self._secrets = secrets
        self._service_accounts = service_accounts
        self._resources = resources
        self._cache = cache
        self._events = events
        self.kick: Callable[[str], None] = lambda uid: None
        """Look at a resource again (the work queue's add)."""

    # -- Secrets -----------------------------------------------------------------------------

    async def write_secrets(
        self, manifests: Sequence[Mapping[str, Any]], *, owner_uid: str, policy: str, kind: str
    ) -> list[Written]:
        return list(
            await asyncio.gather(
                *(self._write(m, owner_uid=owner_uid, policy=policy, kind=kind) for m in manifests)
            )
        )

    async def _write(self, manifest: Mapping[str, Any], *, owner_uid: str, policy: str, kind: str) -> Written:
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        cached = self._cache.secret(namespace, name)
        try:
            if cached is not None and cached.controller_uid == owner_uid:
                if cached.type != manifest["type"]:
                    written = await self._replace(manifest, cached.uid)
                else:
                    recorded = cached.annotations.get(TEMPLATE_ANNOTATION, "")
                    patch = content.without_dropped(manifest, recorded)
                    written = await asyncio.to_thread(self._secrets.update, patch)
            else:
                written = await self._create_or_adopt(manifest, owner_uid=owner_uid, policy=policy, kind=kind)
        except _Conflict as conflict:
            return Written(namespace, "SecretConflict", str(conflict))
        except KubeError as error:
            return Written(namespace, "KubernetesError", str(error))
        self._cache.put_secret(secret_view(written))
        return Written(namespace)

    async def _create_or_adopt(
        self, manifest: Mapping[str, Any], *, owner_uid: str, policy: str, kind: str
    ) -> dict[str, Any]:
        meta = manifest["metadata"]
        try:
            return await asyncio.to_thread(self._secrets.create, manifest)
        except KubeError as error:
            if error.status != 409:
                raise
        existing = await asyncio.to_thread(self._secrets.get, meta["namespace"], meta["name"])
        if existing is None:  # gone again in between: the next pass creates it
            raise _Conflict(f"Secret {meta['name']} was being replaced; retrying")
        if content.is_controlled_by(existing.metadata, owner_uid):
            if existing.type != manifest["type"]:
                return await self._replace(manifest, existing.metadata.get("uid", ""))
            recorded = (existing.metadata.get("annotations") or {}).get(TEMPLATE_ANNOTATION, "")
            return await asyncio.to_thread(self._secrets.update, content.without_dropped(manifest, recorded))
        refused = adoption.refusal(
            existing.metadata, existing.type, owner_uid, policy, kind, wanted_type=manifest["type"]
        )
        if refused is not None:
            raise _Conflict(refused)
        return await asyncio.to_thread(self._secrets.update, manifest)

    async def _replace(self, manifest: Mapping[str, Any], uid: str) -> dict[str, Any]:
        """Our own Secret, of another type than spec.output now makes (a type cannot change in place):
        that very object goes (uid precondition) and the new one is created. Between the two, pods
        starting in that namespace find no Secret of that name; this happens only when spec.output
        changes."""
        meta = manifest["metadata"]
        await asyncio.to_thread(self._secrets.delete, meta["namespace"], meta["name"], uid)
        self._cache.drop_secret(meta["namespace"], meta["name"], uid)
        try:
            return await asyncio.to_thread(self._secrets.create, manifest)
        except KubeError as error:
            if error.status != 409:
                raise
            raise _Conflict(
                f"Secret {meta['name']} was created by someone else meanwhile; retrying"
            ) from None

    async def delete_secrets(self, secrets: Iterable[SecretView], *, ref: str) -> None:
        for secret in secrets:
            try:
                await asyncio.to_thread(self._secrets.delete, secret.namespace, secret.name, secret.uid)
                self._cache.drop_secret(secret.namespace, secret.name, secret.uid)
            except KubeError as error:
                log.warning("%s: could not remove %s/%s: %s", ref, secret.namespace, secret.name, error)

    # -- ServiceAccounts and finalizers ------------------------------------------------------

    async def patch_accounts(
        self, changes: fanout.AccountChanges, secret: str, owner_uid: str, *, ref: str
    ) -> None:
        calls = [
            *(
                asyncio.to_thread(self._service_accounts.add_pull_secret, sa, secret, owner_uid)
                for sa in changes.add
            ),
            *(
                asyncio.to_thread(self._service_accounts.remove_pull_secrets, sa, [secret], owner_uid)
                for sa in changes.remove
            ),
        ]
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, dict):
                self._cache.put_account(service_account_view(result))
            elif isinstance(result, KubeError):
                # 409: our view was older than the account; its watch event brings us back.
                log.log(logging.DEBUG if result.status == 409 else logging.WARNING, "%s: %s", ref, result)
            elif isinstance(result, BaseException):
                raise result

    async def release_accounts(self, owner_uid: str) -> None:
        """Every imagePullSecrets entry that resource added, under any Secret name it ever had."""
        releases = fanout.releases(self._cache.accounts_added_by(owner_uid), owner_uid)
        results = await asyncio.gather(
            *(
                asyncio.to_thread(self._service_accounts.remove_pull_secrets, sa, secrets, owner_uid)
                for sa, secrets in releases
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, dict):
                self._cache.put_account(service_account_view(result))
        failed = [r for r in results if isinstance(r, KubeError) and r.status != 404]
        if failed:
            raise failed[0]  # the finalizer stays; the ServiceAccount's watch event brings us back
        unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, KubeError)]
        if unexpected:
            raise unexpected[0]

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        meta = body["metadata"]
        ref = (body.get("kind") or api.KIND, meta.get("namespace") or "", meta["name"])
        try:
            await asyncio.to_thread(self._resources.set_finalizers, *ref, finalizers, meta["resourceVersion"])
        except KubeError as error:
            if error.status == 404:  # gone already: an older event was replayed
                return
            if error.status != 422 or not meta.get("deletionTimestamp"):
                raise
            # The stored spec fails today's CEL rules, so the API server refuses any update of the
            # object, finalizers included (see Reconciler._report_rejected); it is going, so its
            # spec goes first.
            log.warning("%s %s/%s: spec refused by the API server; replaced to let it go", *ref)
            await asyncio.to_thread(
                self._resources.release_unwritable, *ref, finalizers, meta["resourceVersion"]
            )

    # -- status and Events -------------------------------------------------------------------

    async def patch_status(self, body: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
        """The API server's answer is the newest state there is: recorded, so its watch event (no
        newer) wakes nobody. A change by someone else between our read and our write hides behind
        that answer, so one is looked for and gets a pass of its own."""
        meta = body["metadata"]
        kind = body.get("kind") or api.KIND
        written = await asyncio.to_thread(
            self._resources.patch_status, kind, meta.get("namespace") or "", meta["name"], patch
        )
        if self._cache.put_resource(written) and _input_changed(body, written):
            self.kick(written["metadata"]["uid"])

    def post(self, body: Mapping[str, Any], events: Iterable[Event], *, ref: str) -> None:
        for event in events:
            self._events(body, type=event.type, reason=event.reason, message=event.message)
            log.log(
                logging.WARNING if event.type == "Warning" else logging.INFO, "%s: %s", ref, event.message
            )


class _Conflict(Exception):
    """The Secret name is taken by an object this resource may not write."""


def _input_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Did anything a pass reads, other than status, change between the two bodies?"""
    old, new = before.get("metadata") or {}, after.get("metadata") or {}
    return before.get("spec") != after.get("spec") or any(
        old.get(key) != new.get(key)
        for key in ("generation", "annotations", "labels", "finalizers", "deletionTimestamp")
    )
