"""One pass over one EcrPullSecret or ClusterEcrPullSecret: decide (pure), then apply the effects.

A namespaced resource serves its own namespace; a cluster one, every namespace in its scope.
Either way all its Secrets hold the same tokens, obtained once per renewal window.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ecr_pull_secrets.aws.broker import TokenBroker, TokenKey
from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.resources import Resources
from ecr_pull_secrets.kube.secrets import Secrets
from ecr_pull_secrets.kube.serviceaccounts import ServiceAccounts
from ecr_pull_secrets.metrics import Metrics
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.cluster import secret_view, service_account_view
from ecr_pull_secrets.model.credential import Credential, RegistryToken
from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.identity import OPERATOR_CHAIN, Chain, StaticKeys, WebIdentity, session_tags
from ecr_pull_secrets.model.policy import Policy
from ecr_pull_secrets.model.registry import TokenGroup
from ecr_pull_secrets.model.resource import Resource, Spec, parse_resource, parse_status
from ecr_pull_secrets.plan import content, fanout, policy, renewal, status, targets, verify
from ecr_pull_secrets.plan.fanout import SecretState
from ecr_pull_secrets.plan.renewal import RenewalPolicy, Trigger
from ecr_pull_secrets.plan.verify import Answer, Verdict

log = logging.getLogger(__name__)

# A name taken by a Secret we may not touch is looked at again after this long, not on every event.
CONFLICT_RETRY = timedelta(seconds=30)


class EventSink(Protocol):
    def __call__(self, body: Mapping[str, Any], *, type: str, reason: str, message: str) -> None: ...


class Verifier(Protocol):
    def check(self, hosts: Mapping[str, str | None], images: Sequence[str]) -> list[Answer]:
        """Blocking: host -> its `auth` value in the Secret; the answers of /v2/ and each manifest."""
        ...


# Verifications in flight at once, all resources together: a restart of thousands stays gentle.
VERIFY_CONCURRENCY = 8


@dataclass(frozen=True)
class Outcome:
    wake_at: datetime | None
    """When to look at the resource again; None waits for the next change."""


@dataclass(frozen=True)
class Held:
    """The tokens a resource's Secrets hold now: lets a deleted or edited Secret, or a new
    namespace, be served without asking AWS again. A cache only; after a restart it is empty."""

    credentials: Mapping[str, Credential]
    issued_at: datetime
    expires_at: datetime
    chain_key: str
    identity: str


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
        cache: ClusterCache,
        renewal_policy: RenewalPolicy,
        namespace_policy: Policy,
        clock: Callable[[], datetime],
        events: EventSink,
        watched: tuple[str, ...] = (),
        metrics: Metrics | None = None,
        verifier: Verifier | None = None,
        verify_interval: timedelta = timedelta(hours=1),
    ) -> None:
        self._watched = watched
        self._secrets = secrets
        self._service_accounts = service_accounts
        self._resources = resources
        self._broker = broker
        self._cache = cache
        self._policy = renewal_policy
        self._namespace_policy = namespace_policy
        self._clock = clock
        self._events = events
        self._held: dict[str, Held] = {}
        self._unwritable: dict[str, int] = {}
        """uid -> generation whose status the API server refuses (see _report_rejected)."""
        self._owners: dict[str, tuple[str, str]] = {}
        """uid -> (namespace, name) of resources holding a credential chain in the broker."""
        self._conflicts: dict[tuple[str, str], datetime] = {}
        self._metrics = metrics if metrics is not None else Metrics()
        self._series: dict[str, tuple[str, str, str]] = {}
        self._verifier = verifier
        self._verify_interval = verify_interval
        self._verify_at: dict[str, datetime] = {}
        """uid -> when its Secret is next verified (without a write before)."""
        self._verified: dict[str, tuple[int, Verdict]] = {}
        """uid -> (generation, verdict) of its last verification, until status says so."""
        self._verifying: dict[str, asyncio.Task[None]] = {}
        self._verify_slots = asyncio.Semaphore(VERIFY_CONCURRENCY)
        self.kick: Callable[[str], None] = lambda uid: None
        """Look at a resource again (the scheduler's kick): a verification has finished."""

    def forget(self, uid: str) -> None:
        self._release_chain(uid)
        self._held.pop(uid, None)
        self._unwritable.pop(uid, None)
        series = self._series.pop(uid, None)
        if series is not None:
            self._metrics.forget(*series)
        for key in [k for k in self._conflicts if k[0] == uid]:
            del self._conflicts[key]
        self._verify_at.pop(uid, None)
        self._verified.pop(uid, None)
        task = self._verifying.pop(uid, None)
        if task is not None:
            task.cancel()

    def _release_chain(self, uid: str) -> None:
        """The resource uses no credential chain any more: it leaves its namespace's quota."""
        owner = self._owners.pop(uid, None)
        if owner is not None:
            self._broker.release(owner)

    async def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        now = self._clock()
        if body["metadata"].get("deletionTimestamp"):
            # Before the spec is read: a resource whose spec cannot be parsed can still go.
            await self._finalize(body)
            return Outcome(wake_at=None)
        try:
            resource = parse_resource(body)
        except InvalidSpec as error:
            # Not retried: the next look comes with the next change of the resource.
            self._release_chain(body["metadata"]["uid"])
            await self._report_rejected(body, "InvalidSpec", str(error), now)
            return Outcome(wake_at=None)
        home = self._cache.namespace(resource.namespace) if resource.namespace else None
        if home is not None and home.terminating:
            # Its namespace is going, and the resource with it: a write there can only be refused.
            return Outcome(wake_at=None)
        refusal = policy.check(self._namespace_policy, resource.namespace, resource.spec.auth)
        if refusal is not None:
            # Not retried: only a spec change (or a new policy and a restart) can change the answer.
            self._release_chain(resource.uid)
            await self._report_rejected(body, "AuthNotAllowed", refusal.message, now)
            self._schedule(resource, resource.status.expires_at, None)  # no renewal until the spec changes
            return Outcome(wake_at=None)
        await self._keep_finalizer(body, resource)
        return await self._reconcile(body, resource, now)

    async def _reconcile(self, body: Mapping[str, Any], resource: Resource, now: datetime) -> Outcome:
        spec, uid = resource.spec, resource.uid
        # A namespaced resource serves its own namespace: the cluster's namespaces are not read.
        every = self._cache.namespaces() if resource.spec.scope is not None else ()
        namespaces = targets.target_namespaces(resource, every, self._watched)
        hosts = [r.host for r in spec.registries]
        states = {
            ns: fanout.examine(
                self._cache.secret(ns, spec.secret_name), uid, hosts, resource.status.expires_at
            )
            for ns in namespaces
        }
        drift = [ns for ns, state in states.items() if state in (SecretState.MISSING, SecretState.STALE)]
        retry_conflicts = [ns for ns in drift if self._conflicts.get((uid, ns), now) <= now]
        decision = renewal.decide(resource, now, self._policy, drift=bool(retry_conflicts))

        base: dict[str, Any] | None = None
        failures: list[status.NamespaceFailure] = []
        written = False
        if decision.due(now):
            assert decision.trigger is not None
            held = self._current(resource)
            started = time.monotonic()
            try:
                if decision.trigger is Trigger.REPAIR and held is not None:
                    write_to = retry_conflicts
                else:
                    held = await self._issue(resource, decision.trigger, now)
                    write_to = [ns for ns in namespaces if states[ns] is not SecretState.FOREIGN]
            except (AwsCallFailed, KubeError, AuthUnresolved) as error:
                failed = _failure(error)
                self._metrics.renewal("failure", failed.reason, time.monotonic() - started)
                base = await self._failed(body, resource, failed, now)
            else:
                failed_writes = await self._write_all(body, resource, held, write_to, now)
                failures += failed_writes
                written = len(failed_writes) < len(write_to)
                # A new token counts as issued once some Secret holds it (or none is wanted).
                if held.expires_at != resource.status.expires_at and (
                    len(failed_writes) < len(write_to) or not write_to
                ):
                    base = await self._issued(body, resource, held, decision.trigger, now)
                    reason = base["conditions"][0]["reason"]
                    self._metrics.renewal("success", reason, time.monotonic() - started)
        failures += [
            status.NamespaceFailure(ns, "SecretConflict", self._taken_message(resource, ns))
            for ns, state in states.items()
            if state is SecretState.FOREIGN
        ]
        failures += [
            status.NamespaceFailure(ns, "SecretConflict", self._conflict_message(resource))
            for ns in drift
            if ns not in retry_conflicts
        ]
        await self._clean_up(resource, namespaces)
        await self._patch_accounts(resource, namespaces)
        await self._write_status(
            body, resource, len(namespaces), sorted(failures, key=_by_namespace), base, now
        )
        self._maybe_verify(body, resource, namespaces, written=written, now=now)

        if base is None:  # neither renewed nor failed: the schedule in status stands
            next_at = resource.status.renewal_time if decision.due(now) else decision.at
            self._schedule(resource, resource.status.expires_at, next_at)
        return Outcome(wake_at=self._next_look(resource, decision, now))

    def _schedule(self, resource: Resource, expires_at: datetime | None, renewal_at: datetime | None) -> None:
        """Export when the resource's Secrets expire and when it is next renewed (or retried)."""
        series = (resource.kind, resource.namespace, resource.name)
        self._series[resource.uid] = series
        self._metrics.schedule(*series, expires_at=expires_at, renewal_at=renewal_at)

    # -- tokens ----------------------------------------------------------------------------

    def _current(self, resource: Resource) -> Held | None:
        held = self._held.get(resource.uid)
        if held is None or held.expires_at != resource.status.expires_at or held.expires_at <= self._clock():
            return None
        return held

    async def _issue(self, resource: Resource, trigger: Trigger, now: datetime) -> Held:
        spec = resource.spec
        chain = await self._chain(resource)
        owner = (resource.namespace, resource.name)
        self._owners[resource.uid] = owner

        def accept(token: RegistryToken) -> bool:
            return renewal.acceptable(token, now, spec.renew_before, self._policy)

        reusable = await self._reusable(resource, chain, accept, forced=trigger is Trigger.FORCED)
        groups = sorted(spec.token_groups)
        fetched = await asyncio.gather(
            *(
                self._token(
                    chain,
                    spec=spec,
                    group=g,
                    reusable=reusable,
                    accept=accept,
                    owner=owner,
                    trigger=trigger,
                )
                for g in groups
            )
        )
        tokens = dict(zip(groups, fetched, strict=True))
        held = Held(
            credentials={r.host: tokens[r.token_group].credential for r in spec.registries},
            issued_at=min(t.issued_at for t in tokens.values()),
            # Whole seconds, as status and the Secret's annotation record it.
            expires_at=min(t.expires_at for t in tokens.values()).replace(microsecond=0),
            chain_key=chain.key,
            identity=await self._broker.identity(chain, spec.partition, owner),
        )
        self._held[resource.uid] = held
        return held

    async def _reusable(
        self, resource: Resource, chain: Chain, accept: Callable[[RegistryToken], bool], *, forced: bool
    ) -> dict[str, RegistryToken]:
        """A namespaced resource may reuse what its own Secret holds (after a restart, say), read
        only when the broker holds no token it would take. The tokens serve that resource alone,
        never the broker: a Secret's content is writable by its namespace. A cluster resource never
        trusts a Secret in a tenant's namespace as a source for the others."""
        spec = resource.spec
        if spec.scope is not None or forced:
            return {}
        mine = self._cache.secret(resource.namespace, spec.secret_name)
        if (
            mine is None
            or mine.controller_uid != resource.uid
            or not mine.content_ok
            or mine.annotations.get(api.CHAIN_ANNOTATION) != chain.key
        ):
            return {}
        if all(self._broker.cached(_token_key(chain, spec, g), accept) for g in spec.token_groups):
            return {}
        secret = await asyncio.to_thread(self._secrets.get, resource.namespace, spec.secret_name)
        if secret is None or not content.is_controlled_by(secret.metadata, resource.uid):
            return {}
        return content.tokens_in(secret.metadata, secret.data, chain.key)

    async def _token(
        self,
        chain: Chain,
        *,
        spec: Spec,
        group: TokenGroup,
        reusable: dict[str, RegistryToken],
        accept: Callable[[RegistryToken], bool],
        owner: tuple[str, str],
        trigger: Trigger,
    ) -> RegistryToken:
        key = _token_key(chain, spec, group)
        forced = trigger is Trigger.FORCED
        if not forced and self._broker.cached(key, accept) is None:
            for registry in spec.registries:
                held = reusable.get(registry.host)
                if registry.token_group == group and held and accept(held):
                    return held
        return await self._broker.token(chain, key, accept, owner=owner, fresh=forced)

    async def _chain(self, resource: Resource) -> Chain:
        """Resolve spec.auth's references against the cluster into a credential chain."""
        auth = resource.spec.auth
        start: StaticKeys | WebIdentity | None = None
        if auth.service_account is not None:
            ref = auth.service_account
            namespace = ref.namespace or resource.namespace
            role = ref.role_arn
            if role is None:
                try:
                    role = await asyncio.to_thread(self._service_accounts.role_arn, namespace, ref.name)
                except KubeError as error:
                    raise AuthUnresolved(f"ServiceAccount {namespace}/{ref.name}: {error}") from None
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
            tags=session_tags(resource.namespace, resource.name) if auth.role_chain else (),
        )

    async def _static_keys(self, resource: Resource) -> StaticKeys:
        ref = resource.spec.auth.secret
        assert ref is not None
        namespace = ref.namespace or resource.namespace
        secret = await asyncio.to_thread(self._secrets.get, namespace, ref.name)
        if secret is None:
            raise AuthUnresolved(f"Secret {ref.name} named in spec.auth.secretRef does not exist")
        values = {
            key: _decoded(secret.data, key) for key in (ref.access_key_id_key, ref.secret_access_key_key)
        }
        access_key, secret_key = values[ref.access_key_id_key], values[ref.secret_access_key_key]
        if not access_key or not secret_key:
            raise AuthUnresolved(
                f"Secret {ref.name} lacks {ref.access_key_id_key} or {ref.secret_access_key_key} "
                "(base64 of UTF-8 text)"
            )
        meta = secret.metadata
        return StaticKeys(
            namespace=namespace,
            secret=ref.name,
            version=f"{meta.get('uid')}:{meta.get('resourceVersion')}",
            access_key_id=access_key,
            secret_access_key=secret_key,
            session_token=_decoded(secret.data, ref.session_token_key) or None,
        )

    # -- Secrets -----------------------------------------------------------------------------

    async def _write_all(
        self, body: Mapping[str, Any], resource: Resource, held: Held, namespaces: list[str], now: datetime
    ) -> list[status.NamespaceFailure]:
        results = await asyncio.gather(*(self._write(body, resource, held, ns, now) for ns in namespaces))
        return [failure for failure in results if failure is not None]

    async def _write(
        self, body: Mapping[str, Any], resource: Resource, held: Held, namespace: str, now: datetime
    ) -> status.NamespaceFailure | None:
        spec = resource.spec
        kind_version = f"{api.GROUP}/{api.VERSION}"
        manifest = content.desired_secret(
            name=spec.secret_name,
            namespace=namespace,
            owner=content.Owner(kind_version, resource.kind, resource.name, resource.uid),
            credentials=held.credentials,
            issued_at=held.issued_at,
            expires_at=held.expires_at,
            chain_key=held.chain_key,
        )
        cached = self._cache.secret(namespace, spec.secret_name)
        try:
            if cached is not None and cached.controller_uid == resource.uid:
                written = await asyncio.to_thread(self._secrets.update, manifest)
            else:
                written = await self._create_or_adopt(resource, manifest)
        except _Conflict as conflict:
            self._conflicts[(resource.uid, namespace)] = now + CONFLICT_RETRY
            self._warn_once(body, resource, namespace, "SecretConflict", str(conflict))
            return status.NamespaceFailure(namespace, "SecretConflict", str(conflict))
        except KubeError as error:
            self._warn_once(body, resource, namespace, "KubernetesError", str(error))
            return status.NamespaceFailure(namespace, "KubernetesError", str(error))
        self._conflicts.pop((resource.uid, namespace), None)
        self._cache.put_secret(secret_view(written))
        return None

    async def _create_or_adopt(self, resource: Resource, manifest: Mapping[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        try:
            return await asyncio.to_thread(self._secrets.create, manifest)
        except KubeError as error:
            if error.status != 409:
                raise
        existing = await asyncio.to_thread(self._secrets.get, meta["namespace"], meta["name"])
        if existing is None:  # gone again in between: the next pass creates it
            raise _Conflict(f"Secret {meta['name']} was being replaced; retrying")
        controller = next(
            (r for r in existing.metadata.get("ownerReferences") or () if r.get("controller")), None
        )
        if controller is not None and controller.get("uid") != resource.uid:
            raise _Conflict(
                f"Secret {meta['name']} is managed by {controller.get('kind')} {controller.get('name')}; "
                "two resources may not write one Secret"
            )
        if controller is None and resource.spec.secret_policy != "Adopt":
            raise _Conflict(self._conflict_message(resource))
        if existing.type != api.SECRET_TYPE:
            raise _Conflict(
                f"Secret {meta['name']} has type {existing.type}, which cannot become {api.SECRET_TYPE}"
            )
        return await asyncio.to_thread(self._secrets.update, manifest)

    def _taken_message(self, resource: Resource, namespace: str) -> str:
        secret = self._cache.secret(namespace, resource.spec.secret_name)
        holder = secret.controller if secret is not None and secret.controller else "another resource"
        name = resource.spec.secret_name
        return f"Secret {name} is managed by {holder}; two resources may not write one Secret"

    def _conflict_message(self, resource: Resource) -> str:
        return (
            f"Secret {resource.spec.secret_name} already exists and is not managed by this {resource.kind}; "
            "rename spec.secretName, delete that Secret, or set spec.secretPolicy: Adopt"
        )

    async def _clean_up(self, resource: Resource, namespaces: list[str]) -> None:
        """Secrets this resource made where it no longer should be: out of scope, or renamed."""
        wanted = {(ns, resource.spec.secret_name) for ns in namespaces}
        for secret in self._cache.secrets_of(resource.uid):
            if (secret.namespace, secret.name) not in wanted:
                try:
                    await asyncio.to_thread(self._secrets.delete, secret.namespace, secret.name, secret.uid)
                    self._cache.drop_secret(secret.namespace, secret.name, secret.uid)
                except KubeError as error:
                    log.warning(
                        "%s: could not remove %s/%s: %s", _ref(resource), secret.namespace, secret.name, error
                    )

    # -- ServiceAccounts and the finalizer -------------------------------------------------

    async def _patch_accounts(self, resource: Resource, namespaces: list[str]) -> None:
        name = resource.spec.secret_name
        wanted = [
            sa
            for ns in namespaces
            for sa in targets.target_service_accounts(
                resource.spec.service_accounts, self._cache.service_accounts(ns)
            )
        ]
        changes = fanout.account_changes(
            wanted, self._cache.accounts_added_by(resource.uid), name, resource.uid
        )
        await self._apply_accounts(resource, changes)

    async def _apply_accounts(self, resource: Resource, changes: fanout.AccountChanges) -> None:
        name = resource.spec.secret_name
        calls = [
            *(
                asyncio.to_thread(self._service_accounts.add_pull_secret, sa, name, resource.uid)
                for sa in changes.add
            ),
            *(
                asyncio.to_thread(self._service_accounts.remove_pull_secrets, sa, [name], resource.uid)
                for sa in changes.remove
            ),
        ]
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, dict):
                self._cache.put_account(service_account_view(result))
            elif isinstance(result, KubeError):
                # 409: our view was older than the account; its watch event brings us back.
                log.log(
                    logging.DEBUG if result.status == 409 else logging.WARNING,
                    "%s: %s",
                    _ref(resource),
                    result,
                )
            elif isinstance(result, BaseException):
                raise result

    async def _keep_finalizer(self, body: Mapping[str, Any], resource: Resource) -> None:
        """Only resources that patch ServiceAccounts get one; Secrets go by garbage collection."""
        finalizers = list(body["metadata"].get("finalizers") or [])
        needed = resource.spec.service_accounts is not None
        if needed == (api.FINALIZER in finalizers):
            return
        if not needed:
            await self._patch_accounts(resource, [])  # patching was switched off: take ours back
        await self._set_finalizers(
            body, [*finalizers, api.FINALIZER] if needed else _without(finalizers, api.FINALIZER)
        )

    async def _finalize(self, body: Mapping[str, Any]) -> None:
        """Reads nothing of the spec: every imagePullSecrets entry this resource added, under any
        Secret name it ever had, is removed, then the finalizer."""
        meta = body["metadata"]
        self.forget(meta["uid"])
        finalizers = list(meta.get("finalizers") or [])
        if api.FINALIZER not in finalizers:
            return
        releases = fanout.releases(self._cache.accounts_added_by(meta["uid"]), meta["uid"])
        results = await asyncio.gather(
            *(
                asyncio.to_thread(self._service_accounts.remove_pull_secrets, sa, secrets, meta["uid"])
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
        await self._set_finalizers(body, _without(finalizers, api.FINALIZER))

    async def _set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
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
            # object, finalizers included (see _report_rejected); it is going, so its spec goes first.
            log.warning("%s %s/%s: spec refused by the API server; replaced to let it go", *ref)
            await asyncio.to_thread(
                self._resources.release_unwritable, *ref, finalizers, meta["resourceVersion"]
            )

    # -- verification: does the Secret pull? ------------------------------------------------

    def _maybe_verify(
        self,
        body: Mapping[str, Any],
        resource: Resource,
        namespaces: list[str],
        *,
        written: bool,
        now: datetime,
    ) -> None:
        """In the background, never delaying a write: after one, when the spec changed, and every
        verify interval. Changes only the Verified condition (through the next pass's status)."""
        uid = resource.uid
        if self._verifier is None or uid in self._verifying:
            return
        last = self._verified.get(uid)
        due_at = self._verify_at.get(uid)
        if due_at is None:  # first sight: unverified now; verified before a restart, spread out
            current = _condition(body, status.VERIFIED)
            spread = self._verify_interval * (zlib.crc32(uid.encode()) % 1000 / 1000)
            fresh = current and current.get("observedGeneration") == resource.generation
            due_at = now + spread if fresh else now
        if not (written or due_at <= now or (last is not None and last[0] != resource.generation)):
            self._verify_at[uid] = due_at
            return
        secret = next(
            (
                s
                for ns in namespaces
                if (s := self._cache.secret(ns, resource.spec.secret_name)) and s.controller_uid == uid
            ),
            None,
        )
        if secret is None:
            return  # nothing to verify yet; the next pass looks again
        held = self._held.get(uid)
        identity = held.identity if held else (body.get("status") or {}).get("identity")
        self._verify_at[uid] = now + self._verify_interval
        self._verifying[uid] = asyncio.create_task(
            self._verify(
                uid,
                resource.generation,
                (secret.namespace, secret.name),
                [r.host for r in resource.spec.registries],
                resource.spec.verify_images,
                identity,
            ),
            name=f"verify/{uid}",
        )

    async def _verify(  # noqa: PLR0917  # one call site, every argument in order there
        self,
        uid: str,
        generation: int,
        where: tuple[str, str],
        hosts: Sequence[str],
        images: Sequence[str],
        identity: str | None,
    ) -> None:
        """The Secret's data is read here, not kept in the cache: one GET per verification."""
        assert self._verifier is not None
        verifier = self._verifier

        def check() -> list[Answer] | None:
            secret = self._secrets.get(*where)
            if secret is None or not content.is_controlled_by(secret.metadata, uid):
                return None
            auths = verify.authorizations(secret.data.get(api.SECRET_KEY, ""))
            return verifier.check({host: auths.get(host) for host in hosts}, images)

        try:
            async with self._verify_slots:
                answers = await asyncio.to_thread(check)
        finally:
            done = self._verifying.pop(uid, None) is not None
        if done and answers is not None:  # not forgotten meanwhile, and the Secret was there
            self._verified[uid] = (generation, verify.judge(answers, identity))
            self.kick(uid)

    def _with_verified(
        self, body: Mapping[str, Any], resource: Resource, patch: dict[str, Any], now: datetime
    ) -> None:
        """Adds the last verification's verdict to a status patch; a Warning Event when it turns False."""
        last = self._verified.get(resource.uid)
        if last is None:
            return
        verdict = last[1]
        conditions = patch.get("conditions", resource.status.conditions)
        patch["conditions"] = status.verified(
            conditions, verdict.ok, verdict.reason, verdict.message, resource.generation, now
        )
        before = _condition(body, status.VERIFIED) or {}
        if not verdict.ok and (before.get("status"), before.get("reason")) != ("False", verdict.reason):
            self._events(body, type="Warning", reason=verdict.reason, message=verdict.message)
            log.warning("%s: not verified: %s", _ref(resource), verdict.message)

    # -- status and Events -------------------------------------------------------------------

    async def _issued(
        self, body: Mapping[str, Any], resource: Resource, held: Held, trigger: Trigger, now: datetime
    ) -> dict[str, Any]:
        spec = resource.spec
        # Whole seconds, as status records it: the metric says the same time from the first scrape.
        renew_at = renewal.renewal_time(
            held.issued_at, held.expires_at, spec.renew_before, resource.uid, self._policy
        ).replace(microsecond=0)
        issued = status.Issued(
            secret_name=spec.secret_name,
            registries=len(spec.registries),
            expires_at=held.expires_at,
            renewal_time=renew_at,
            identity=held.identity,
        )
        patch = status.success(resource, issued, trigger, now)
        self._schedule(resource, held.expires_at, renew_at)
        ready = patch["conditions"][0]
        self._events(body, type="Normal", reason=ready["reason"], message=ready["message"])
        log.info("%s: %s (%s)", _ref(resource), ready["message"], trigger)
        return patch

    async def _failed(
        self, body: Mapping[str, Any], resource: Resource, failed: status.Failure, now: datetime
    ) -> dict[str, Any]:
        retry_at = now + renewal.backoff(resource.status.failed_attempts + 1, self._policy)
        self._schedule(resource, resource.status.expires_at, retry_at)
        patch = status.failure(resource, failed, retry_at, now)
        message = next(c["message"] for c in patch["conditions"] if c["type"] == status.DEGRADED)
        self._events(body, type="Warning", reason=failed.reason, message=message)
        log.warning("%s: %s", _ref(resource), message)
        return patch

    async def _write_status(  # noqa: PLR0917  # one call site, every argument named there
        self,
        body: Mapping[str, Any],
        resource: Resource,
        targeted: int,
        failures: list[status.NamespaceFailure],
        base: dict[str, Any] | None,
        now: datetime,
    ) -> None:
        patch = status.fanout(resource, targets=targeted, failures=failures, base=base, now=now)
        self._with_verified(body, resource, patch, now)
        current = body.get("status") or {}
        if all(current.get(key) == value for key, value in patch.items()):
            return  # nothing new: a restart with everything fresh writes nothing
        written = await asyncio.to_thread(
            self._resources.patch_status, resource.kind, resource.namespace, resource.name, patch
        )
        self._record(body, written)

    def _record(self, read: Mapping[str, Any], written: Mapping[str, Any]) -> None:
        """The API server's answer to our status write is the newest state there is: recorded, so
        its watch event (no newer) wakes nobody. A change by someone else between our read and our
        write hides behind that answer, so one is looked for and gets a pass of its own."""
        if self._cache.put_resource(written) and _input_changed(read, written):
            self.kick(written["metadata"]["uid"])

    def _warn_once(
        self, body: Mapping[str, Any], resource: Resource, namespace: str, reason: str, message: str
    ) -> None:
        said = any(
            f.get("namespace") == namespace and f.get("reason") == reason
            for f in resource.status.failed_namespaces
        )
        if not said:
            where = "" if resource.spec.scope is None else f"namespace {namespace}: "
            self._events(body, type="Warning", reason=reason, message=f"{where}{message}")
            log.warning("%s: %s%s", _ref(resource), where, message)

    async def _report_rejected(
        self, body: Mapping[str, Any], reason: str, message: str, now: datetime
    ) -> None:
        meta = body["metadata"]
        generation = int(meta.get("generation") or 0)
        current = parse_status(body.get("status") or {})
        ready = next((c for c in current.conditions if c.get("type") == status.READY), {})
        if (ready.get("reason"), ready.get("message"), ready.get("observedGeneration")) == (
            reason,
            message,
            generation,
        ):
            return  # already said; repeating it would only make noise
        if self._unwritable.get(meta["uid"]) == generation:
            return  # said in an Event; the API server refuses this generation's status
        kind = body.get("kind") or api.KIND
        self._events(body, type="Warning", reason=reason, message=message)
        log.warning("%s %s/%s: %s: %s", kind, meta.get("namespace") or "", meta["name"], reason, message)
        patch = status.rejected(current.conditions, generation, reason, message, now)
        try:
            written = await asyncio.to_thread(
                self._resources.patch_status, kind, meta.get("namespace") or "", meta["name"], patch
            )
            self._record(body, written)
        except KubeError as error:
            if error.status != 422:
                raise
            # A value stored under an older CRD that fails the CEL rules of today's: the API
            # server refuses every write to the object (ratcheting does not cover CEL type
            # errors). The Event above is all that can be said; the next generation can be written.
            self._unwritable[meta["uid"]] = generation

    def _next_look(self, resource: Resource, decision: renewal.Decision, now: datetime) -> datetime | None:
        """The plan's next time, or sooner if a conflicting namespace is due for another look."""
        retries = [at for (uid, _), at in self._conflicts.items() if uid == resource.uid and at > now]
        verify_at = self._verify_at.get(resource.uid)
        if verify_at is not None and verify_at > now:
            retries.append(verify_at)
        candidates = [t for t in (decision.at if decision.at > now else None, *retries) if t is not None]
        if decision.trigger is None or not decision.due(now):
            return min(candidates, default=None)
        # Just acted: look again when the new renewal time (in status, soon echoed) comes.
        return min(candidates, default=now + timedelta(seconds=1))


class _Conflict(Exception):
    """The Secret name is taken by an object this resource may not write."""


def _input_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Did anything a pass reads, other than status, change between the two bodies?"""
    old, new = before.get("metadata") or {}, after.get("metadata") or {}
    return before.get("spec") != after.get("spec") or any(
        old.get(key) != new.get(key)
        for key in ("generation", "annotations", "labels", "finalizers", "deletionTimestamp")
    )


def _token_key(chain: Chain, spec: Spec, group: TokenGroup) -> TokenKey:
    region, public, fips = group
    return TokenKey(chain.key, spec.partition, region, public, fips)


def _failure(error: Exception) -> status.Failure:
    if isinstance(error, AwsCallFailed):
        return status.Failure(error.reason, error.message)
    if isinstance(error, AuthUnresolved):
        return status.Failure("AuthUnresolved", str(error))
    return status.Failure("KubernetesError", str(error))


def _decoded(data: Mapping[str, str], key: str) -> str | None:
    """One value of a Secret as text; None when missing or not base64 of UTF-8 (the error would
    quote the data, so it is dropped)."""
    try:
        return base64.b64decode(data[key], validate=True).decode()
    except (KeyError, ValueError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None


def _condition(body: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    conditions = (body.get("status") or {}).get("conditions") or ()
    return next((c for c in conditions if c.get("type") == type_), None)


def _without(items: list[str], item: str) -> list[str]:
    return [i for i in items if i != item]


def _by_namespace(failure: status.NamespaceFailure) -> str:
    return failure.namespace


def _ref(resource: Resource) -> str:
    return (
        f"{resource.kind} {resource.namespace}/{resource.name}"
        if resource.namespace
        else f"{resource.kind} {resource.name}"
    )
