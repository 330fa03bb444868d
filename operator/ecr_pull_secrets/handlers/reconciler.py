"""One pass over one EcrPullSecret: decide (pure), then apply the effects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ecr_pull_secrets.aws.broker import TokenBroker, TokenKey
from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.resources import Resources
from ecr_pull_secrets.kube.secrets import ExistingSecret, Secrets
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.resource import InvalidSpec, Resource, parse_resource, parse_status
from ecr_pull_secrets.plan import content, renewal, status
from ecr_pull_secrets.plan.renewal import RenewalPolicy, Trigger

log = logging.getLogger(__name__)

DEFAULT_CHAIN = "default"


class EventSink(Protocol):
    def __call__(self, body: Mapping[str, Any], *, type: str, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class Outcome:
    wake_at: datetime | None
    """When to look at the resource again; None waits for the next change."""
    attempted_at: datetime | None = None
    """Set when this pass wrote an attempt into status, so the caller can wait for its echo."""


class SecretConflict(Exception):
    """The Secret name is taken by an object this resource does not own."""


class Reconciler:
    def __init__(
        self,
        *,
        secrets: Secrets,
        resources: Resources,
        broker: TokenBroker,
        policy: RenewalPolicy,
        clock: Callable[[], datetime],
        events: EventSink,
    ) -> None:
        self._secrets = secrets
        self._resources = resources
        self._broker = broker
        self._policy = policy
        self._clock = clock
        self._events = events

    async def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        now = self._clock()
        try:
            resource = parse_resource(body)
        except InvalidSpec as error:
            await self._report_invalid(body, str(error), now)
            return Outcome(wake_at=None)
        decision = renewal.decide(resource, now, self._policy)
        if not decision.due(now):
            return Outcome(wake_at=decision.at)
        assert decision.trigger is not None
        try:
            issued = await self._issue(resource, decision.trigger, now)
        except (AwsCallFailed, KubeError, SecretConflict) as error:
            return await self._fail(body, resource, _failure(error), now)
        patch = status.success(resource, issued, decision.trigger, now)
        await asyncio.to_thread(self._resources.patch_status, resource.namespace, resource.name, patch)
        reason = patch["conditions"][0]["reason"]
        message = patch["conditions"][0]["message"]
        self._events(body, type="Normal", reason=reason, message=message)
        log.info("%s/%s: %s (%s)", resource.namespace, resource.name, message, decision.trigger)
        return Outcome(wake_at=issued.renewal_time, attempted_at=now.replace(microsecond=0))

    async def _issue(self, resource: Resource, trigger: Trigger, now: datetime) -> status.Issued:
        spec = resource.spec
        existing = await asyncio.to_thread(self._secrets.get, resource.namespace, spec.secret_name)
        if existing is not None and not content.is_controlled_by(existing.metadata, resource.uid):
            raise SecretConflict(
                f"Secret {spec.secret_name} already exists and is not managed by this {api.KIND}; "
                "rename spec.secretName or delete that Secret"
            )
        valid_until = renewal.acceptable_expiry(now, spec.renew_before, self._policy)
        regions = sorted(spec.regions)
        tokens = dict(
            zip(
                regions,
                await asyncio.gather(
                    *(
                        self._broker.token(
                            TokenKey(DEFAULT_CHAIN, partition, region),
                            valid_until,
                            fresh=trigger is Trigger.FORCED,
                        )
                        for partition, region in regions
                    )
                ),
                strict=True,
            )
        )
        identity = await self._broker.identity(DEFAULT_CHAIN, spec.registries[0].region)
        expires_at = min(t.expires_at for t in tokens.values())
        issued_at = min(t.issued_at for t in tokens.values())
        manifest = content.desired_secret(
            name=spec.secret_name,
            namespace=resource.namespace,
            owner=content.Owner(f"{api.GROUP}/{api.VERSION}", api.KIND, resource.name, resource.uid),
            credentials={r.host: tokens[(r.partition, r.region)].credential for r in spec.registries},
            expires_at=expires_at,
        )
        await self._write(existing, manifest)
        await self._drop_renamed(resource)
        return status.Issued(
            secret_name=spec.secret_name,
            registries=len(spec.registries),
            expires_at=expires_at,
            renewal_time=renewal.renewal_time(
                issued_at, expires_at, spec.renew_before, resource.uid, self._policy
            ),
            identity=identity,
        )

    async def _write(self, existing: ExistingSecret | None, manifest: Mapping[str, Any]) -> None:
        if existing is None:
            await asyncio.to_thread(self._secrets.create, manifest)
        elif existing.data != manifest["data"] or not _has_metadata(existing.metadata, manifest["metadata"]):
            await asyncio.to_thread(self._secrets.update, manifest)

    async def _drop_renamed(self, resource: Resource) -> None:
        """After spec.secretName changes, the Secret this resource made under the old name goes."""
        old = resource.status.secret_name
        if not old or old == resource.spec.secret_name:
            return
        previous = await asyncio.to_thread(self._secrets.get, resource.namespace, old)
        if previous is not None and content.is_controlled_by(previous.metadata, resource.uid):
            await asyncio.to_thread(self._secrets.delete, resource.namespace, old, previous.metadata["uid"])

    async def _fail(
        self, body: Mapping[str, Any], resource: Resource, failed: status.Failure, now: datetime
    ) -> Outcome:
        retry_at = now + renewal.backoff(resource.status.failed_attempts + 1, self._policy)
        patch = status.failure(resource, failed, retry_at, now)
        await asyncio.to_thread(self._resources.patch_status, resource.namespace, resource.name, patch)
        message = next(c["message"] for c in patch["conditions"] if c["type"] == status.DEGRADED)
        self._events(body, type="Warning", reason=failed.reason, message=message)
        log.warning("%s/%s: %s", resource.namespace, resource.name, message)
        return Outcome(wake_at=retry_at, attempted_at=now.replace(microsecond=0))

    async def _report_invalid(self, body: Mapping[str, Any], message: str, now: datetime) -> None:
        meta = body["metadata"]
        generation = int(meta.get("generation") or 0)
        current = parse_status(body.get("status") or {})
        ready = next((c for c in current.conditions if c.get("type") == status.READY), {})
        if ready.get("reason") == "InvalidSpec" and ready.get("observedGeneration") == generation:
            return  # already said; repeating it would only make noise
        patch = status.invalid_spec(current.conditions, generation, message, now)
        await asyncio.to_thread(self._resources.patch_status, meta["namespace"], meta["name"], patch)
        self._events(body, type="Warning", reason="InvalidSpec", message=message)
        log.warning("%s/%s: invalid spec: %s", meta["namespace"], meta["name"], message)


def latest_attempt(body: Mapping[str, Any]) -> datetime | None:
    current = parse_status(body.get("status") or {})
    return max((t for t in (current.last_refresh_time, current.last_failure_time) if t), default=None)


def _failure(error: Exception) -> status.Failure:
    if isinstance(error, AwsCallFailed):
        return status.Failure(error.reason, error.message)
    if isinstance(error, SecretConflict):
        return status.Failure("SecretConflict", str(error))
    return status.Failure("KubernetesError", str(error))


def _has_metadata(actual: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    labels, annotations = actual.get("labels") or {}, actual.get("annotations") or {}
    return all(labels.get(k) == v for k, v in wanted["labels"].items()) and all(
        annotations.get(k) == v for k, v in wanted["annotations"].items()
    )
