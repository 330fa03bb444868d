"""One pass over one EcrPullSecret: decide (pure), then apply the effects."""

from __future__ import annotations

import asyncio
import base64
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
from ecr_pull_secrets.kube.serviceaccounts import ServiceAccounts
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.credential import RegistryToken
from ecr_pull_secrets.model.identity import (
    OPERATOR_CHAIN,
    Chain,
    StaticKeys,
    WebIdentity,
    session_tags,
)
from ecr_pull_secrets.model.policy import Policy
from ecr_pull_secrets.model.resource import InvalidSpec, Resource, Spec, parse_resource, parse_status
from ecr_pull_secrets.plan import content, policy, renewal, status
from ecr_pull_secrets.plan.renewal import RenewalPolicy, Trigger

log = logging.getLogger(__name__)


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


class AuthUnresolved(Exception):
    """spec.auth names a ServiceAccount or Secret that is missing or unusable (yet)."""


class Reconciler:
    def __init__(
        self,
        *,
        secrets: Secrets,
        service_accounts: ServiceAccounts,
        resources: Resources,
        broker: TokenBroker,
        renewal_policy: RenewalPolicy,
        namespace_policy: Policy,
        clock: Callable[[], datetime],
        events: EventSink,
    ) -> None:
        self._secrets = secrets
        self._service_accounts = service_accounts
        self._resources = resources
        self._broker = broker
        self._policy = renewal_policy
        self._namespace_policy = namespace_policy
        self._clock = clock
        self._events = events

    async def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        now = self._clock()
        try:
            resource = parse_resource(body)
        except InvalidSpec as error:
            await self._report_rejected(body, "InvalidSpec", str(error), now)
            return Outcome(wake_at=None)
        refusal = policy.check(self._namespace_policy, resource.namespace, resource.spec.auth)
        if refusal is not None:
            # Not retried: only a spec change (or a new policy and a restart) can change the answer.
            await self._report_rejected(body, "AuthNotAllowed", refusal.message, now)
            return Outcome(wake_at=None)
        decision = renewal.decide(resource, now, self._policy)
        if not decision.due(now):
            return Outcome(wake_at=decision.at)
        assert decision.trigger is not None
        try:
            issued = await self._issue(resource, decision.trigger, now)
        except (AwsCallFailed, KubeError, SecretConflict, AuthUnresolved) as error:
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
        chain = await self._chain(resource)
        owner = (resource.namespace, resource.name)
        valid_until = renewal.acceptable_expiry(now, spec.renew_before, self._policy)
        reusable = {} if existing is None else content.tokens_in(existing.metadata, existing.data, chain.key)
        groups = sorted(spec.token_groups)
        tokens = dict(
            zip(
                groups,
                await asyncio.gather(
                    *(
                        self._token(
                            chain,
                            spec=spec,
                            group=group,
                            reusable=reusable,
                            valid_until=valid_until,
                            owner=owner,
                            trigger=trigger,
                        )
                        for group in groups
                    )
                ),
                strict=True,
            )
        )
        identity = await self._broker.identity(chain, spec.partition, owner)
        expires_at = min(t.expires_at for t in tokens.values())
        issued_at = min(t.issued_at for t in tokens.values())
        manifest = content.desired_secret(
            name=spec.secret_name,
            namespace=resource.namespace,
            owner=content.Owner(f"{api.GROUP}/{api.VERSION}", api.KIND, resource.name, resource.uid),
            credentials={r.host: tokens[(r.region, r.public)].credential for r in spec.registries},
            issued_at=issued_at,
            expires_at=expires_at,
            chain_key=chain.key,
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

    async def _token(
        self,
        chain: Chain,
        *,
        spec: Spec,
        group: tuple[str, bool],
        reusable: dict[str, RegistryToken],
        valid_until: datetime,
        owner: tuple[str, str],
        trigger: Trigger,
    ) -> RegistryToken:
        """The broker's token, or one this resource's own Secret still holds from the same chain."""
        region, public = group
        key = TokenKey(chain.key, spec.partition, region, public)
        forced = trigger is Trigger.FORCED
        if not forced and self._broker.cached(key, valid_until) is None:
            for registry in spec.registries:
                held = reusable.get(registry.host)
                if (registry.region, registry.public) == group and held and held.expires_at > valid_until:
                    return held
        return await self._broker.token(chain, key, valid_until, owner=owner, fresh=forced)

    async def _chain(self, resource: Resource) -> Chain:
        """Resolve spec.auth's references against the cluster into a credential chain."""
        auth, namespace = resource.spec.auth, resource.namespace
        start: StaticKeys | WebIdentity | None = None
        if auth.service_account is not None:
            ref = auth.service_account
            role = ref.role_arn
            if role is None:
                try:
                    role = await asyncio.to_thread(self._service_accounts.role_arn, namespace, ref.name)
                except KubeError as error:
                    raise AuthUnresolved(f"ServiceAccount {ref.name}: {error}") from None
                if role is None:
                    raise AuthUnresolved(
                        f"ServiceAccount {ref.name} has no eks.amazonaws.com/role-arn annotation and "
                        "spec.auth.serviceAccountRef.roleArn is not set"
                    )
            start = WebIdentity(namespace, ref.name, ref.audience, role)
        elif auth.secret is not None:
            start = await self._static_keys(resource)
        if start is None and not auth.role_chain:
            return OPERATOR_CHAIN
        return Chain(
            start=start or OPERATOR_CHAIN.start,
            hops=auth.role_chain,
            tags=session_tags(namespace, resource.name) if auth.role_chain else (),
        )

    async def _static_keys(self, resource: Resource) -> StaticKeys:
        ref = resource.spec.auth.secret
        assert ref is not None
        secret = await asyncio.to_thread(self._secrets.get, resource.namespace, ref.name)
        if secret is None:
            raise AuthUnresolved(f"Secret {ref.name} named in spec.auth.secretRef does not exist")
        values = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
        access_key, secret_key = values.get(ref.access_key_id_key), values.get(ref.secret_access_key_key)
        if not access_key or not secret_key:
            raise AuthUnresolved(
                f"Secret {ref.name} lacks {ref.access_key_id_key} or {ref.secret_access_key_key}"
            )
        meta = secret.metadata
        return StaticKeys(
            namespace=resource.namespace,
            secret=ref.name,
            version=f"{meta.get('uid')}:{meta.get('resourceVersion')}",
            access_key_id=access_key,
            secret_access_key=secret_key,
            session_token=values.get(ref.session_token_key) or None,
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

    async def _report_rejected(
        self, body: Mapping[str, Any], reason: str, message: str, now: datetime
    ) -> None:
        meta = body["metadata"]
        generation = int(meta.get("generation") or 0)
        current = parse_status(body.get("status") or {})
        ready = next((c for c in current.conditions if c.get("type") == status.READY), {})
        said = (ready.get("reason"), ready.get("message"), ready.get("observedGeneration"))
        if said == (reason, message, generation):
            return  # already said; repeating it would only make noise
        patch = status.rejected(current.conditions, generation, reason, message, now)
        await asyncio.to_thread(self._resources.patch_status, meta["namespace"], meta["name"], patch)
        self._events(body, type="Warning", reason=reason, message=message)
        log.warning("%s/%s: %s: %s", meta["namespace"], meta["name"], reason, message)


def latest_attempt(body: Mapping[str, Any]) -> datetime | None:
    current = parse_status(body.get("status") or {})
    return max((t for t in (current.last_refresh_time, current.last_failure_time) if t), default=None)


def _failure(error: Exception) -> status.Failure:
    if isinstance(error, AwsCallFailed):
        return status.Failure(error.reason, error.message)
    if isinstance(error, SecretConflict):
        return status.Failure("SecretConflict", str(error))
    if isinstance(error, AuthUnresolved):
        return status.Failure("AuthUnresolved", str(error))
    return status.Failure("KubernetesError", str(error))


def _has_metadata(actual: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    labels, annotations = actual.get("labels") or {}, actual.get("annotations") or {}
    return all(labels.get(k) == v for k, v in wanted["labels"].items()) and all(
        annotations.get(k) == v for k, v in wanted["annotations"].items()
    )
