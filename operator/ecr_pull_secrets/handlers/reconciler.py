"""One pass over one EcrPullSecret or ClusterEcrPullSecret: gather, plan (pure, plan/reconcile.py),
apply. The guards come first (deletion, a spec that does not parse, a terminating namespace, the
namespace policy, the finalizer); then the tokens, the Secrets, the ServiceAccounts and the status.

A namespaced resource serves its own namespace; a cluster one, every namespace in its scope.
Either way all its Secrets hold the same tokens, obtained once per renewal window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.handlers.apply import Apply
from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.issuing import AuthUnresolved, Held, Issuer
from ecr_pull_secrets.handlers.verification import Verification
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.metrics import Metrics
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.policy import Policy
from ecr_pull_secrets.model.resource import Resource, parse_resource, parse_status
from ecr_pull_secrets.plan import content, fanout, policy, status, targets
from ecr_pull_secrets.plan.reconcile import (
    CONFLICT_RETRY,
    Event,
    Input,
    Obtained,
    Work,
    next_look,
    plan_report,
    plan_work,
)
from ecr_pull_secrets.plan.renewal import RenewalPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    wake_at: datetime | None
    """When to look at the resource again; None waits for the next change."""


class Reconciler:
    def __init__(
        self,
        *,
        issuer: Issuer,
        apply: Apply,
        cache: ClusterCache,
        renewal_policy: RenewalPolicy,
        namespace_policy: Policy,
        clock: Callable[[], datetime],
        watched: tuple[str, ...] = (),
        metrics: Metrics | None = None,
        verification: Verification | None = None,
    ) -> None:
        self._issuer = issuer
        self._apply = apply
        self._cache = cache
        self._policy = renewal_policy
        self._namespace_policy = namespace_policy
        self._clock = clock
        self._watched = watched
        self._metrics = metrics if metrics is not None else Metrics()
        self._verification = verification
        self._unwritable: dict[str, int] = {}
        """uid -> generation whose status the API server refuses (see _report_rejected)."""
        self._conflicts: dict[str, dict[str, datetime]] = {}
        """uid -> namespace -> when a name found taken there is looked at again."""
        self._series: dict[str, tuple[str, str, str]] = {}

    def forget(self, uid: str) -> None:
        self._issuer.forget(uid)
        self._unwritable.pop(uid, None)
        self._conflicts.pop(uid, None)
        series = self._series.pop(uid, None)
        if series is not None:
            self._metrics.forget(*series)
        if self._verification is not None:
            self._verification.forget(uid)

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
            self._issuer.release(body["metadata"]["uid"])
            await self._report_rejected(body, "InvalidSpec", str(error), now)
            return Outcome(wake_at=None)
        home = self._cache.namespace(resource.namespace) if resource.namespace else None
        if home is not None and home.terminating:
            # Its namespace is going, and the resource with it: a write there can only be refused.
            return Outcome(wake_at=None)
        refusal = policy.check(self._namespace_policy, resource.namespace, resource.spec.auth)
        if refusal is not None:
            # Not retried: only a spec change (or a new policy and a restart) can change the answer.
            self._issuer.release(resource.uid)
            await self._report_rejected(body, "AuthNotAllowed", refusal.message, now)
            self._schedule(resource, resource.status.expires_at, None)  # no renewal until the spec changes
            return Outcome(wake_at=None)
        await self._keep_finalizer(body, resource)
        return await self._pass(body, resource, now)

    def _gather(self, resource: Resource, now: datetime) -> Input:
        # A namespaced resource serves its own namespace: the cluster's namespaces are not read.
        every = self._cache.namespaces() if resource.spec.scope is not None else ()
        namespaces = targets.target_namespaces(resource, every, self._watched)
        name = resource.spec.secret_name
        return Input(
            resource=resource,
            now=now,
            namespaces=namespaces,
            secrets={ns: self._cache.secret(ns, name) for ns in namespaces},
            owned=self._cache.secrets_of(resource.uid),
            conflicts=dict(self._conflicts.get(resource.uid, {})),
            holds_tokens=self._issuer.current(resource) is not None,
        )

    async def _pass(self, body: Mapping[str, Any], resource: Resource, now: datetime) -> Outcome:
        inp = self._gather(resource, now)
        work = plan_work(inp, self._policy)
        ref = _ref(resource)

        held, failed, write_failures = self._issuer.current(resource), None, []
        written, started = False, time.monotonic()
        if work.due(now):
            try:
                if work.issue:
                    assert work.decision.trigger is not None
                    held = await self._issuer.issue(resource, work.decision.trigger, now)
            except (AwsCallFailed, KubeError, AuthUnresolved) as error:
                failed = _failure(error)
            else:
                assert held is not None
                write_failures = await self._write(resource, held, work, now)
                written = len(write_failures) < len(work.write_to)
        took = time.monotonic() - started
        await self._apply.delete_secrets(work.delete, ref=ref)
        await self._patch_accounts(resource, inp.namespaces)

        verdict = self._verification.verdict(resource.uid) if self._verification is not None else None
        report = plan_report(
            inp,
            work,
            self._policy,
            obtained=_obtained(held) if held is not None and work.due(now) and failed is None else None,
            failed=failed,
            write_failures=write_failures,
            verdict=verdict,
            current=body.get("status") or {},
        )
        # The renewal and its schedule are recorded together: no scrape sees one without the other.
        if failed is not None:
            self._metrics.renewal("failure", failed.reason, took)
        elif report.renewed is not None:
            self._metrics.renewal("success", report.renewed, took)
        self._schedule(resource, *report.renewal)
        self._apply.post(body, report.events, ref=ref)
        if report.status is not None:
            await self._apply.patch_status(body, report.status)
        if self._verification is not None:
            self._verification.start_if_due(
                body,
                resource,
                inp.namespaces,
                written=written,
                identity=held.identity if held is not None else None,
                now=now,
            )
        later: list[datetime | None] = [*self._conflicts.get(resource.uid, {}).values()]
        if self._verification is not None:
            later.append(self._verification.next_at(resource.uid))
        return Outcome(wake_at=next_look(work.decision, now, also=later))

    async def _write(
        self, resource: Resource, held: Held, work: Work, now: datetime
    ) -> list[status.NamespaceFailure]:
        kind_version = f"{api.GROUP}/{api.VERSION}"
        owner = content.Owner(kind_version, resource.kind, resource.name, resource.uid)
        manifests = [
            content.desired_secret(
                name=resource.spec.secret_name,
                namespace=ns,
                owner=owner,
                credentials=held.credentials,
                issued_at=held.issued_at,
                expires_at=held.expires_at,
                chain_key=held.chain_key,
                output=resource.spec.output,
            )
            for ns in work.write_to
        ]
        results = await self._apply.write_secrets(
            manifests, owner_uid=resource.uid, policy=resource.spec.secret_policy, kind=resource.kind
        )
        conflicts = self._conflicts.setdefault(resource.uid, {})
        for result in results:
            if result.failure == "SecretConflict":
                conflicts[result.namespace] = now + CONFLICT_RETRY
            elif result.failure is None:
                conflicts.pop(result.namespace, None)
        if not conflicts:
            del self._conflicts[resource.uid]
        return [
            status.NamespaceFailure(r.namespace, r.failure, r.message)
            for r in results
            if r.failure is not None
        ]

    def _schedule(self, resource: Resource, expires_at: datetime | None, renewal_at: datetime | None) -> None:
        """Export when the resource's Secrets expire and when it is next renewed (or retried)."""
        series = (resource.kind, resource.namespace, resource.name)
        self._series[resource.uid] = series
        self._metrics.schedule(*series, expires_at=expires_at, renewal_at=renewal_at)

    # -- ServiceAccounts and the finalizer -------------------------------------------------

    async def _patch_accounts(self, resource: Resource, namespaces: Sequence[str]) -> None:
        name = resource.spec.secret_name
        present = self._cache.accounts_added_by(resource.uid)
        if resource.spec.service_accounts is None and not present:
            return
        wanted = [
            sa
            for ns in namespaces
            for sa in targets.target_service_accounts(
                resource.spec.service_accounts, self._cache.service_accounts(ns)
            )
        ]
        changes = fanout.account_changes(wanted, present, name, resource.uid)
        if changes.add or changes.remove:
            await self._apply.patch_accounts(changes, name, resource.uid, ref=_ref(resource))

    async def _keep_finalizer(self, body: Mapping[str, Any], resource: Resource) -> None:
        """Only resources that patch ServiceAccounts get one; Secrets go by garbage collection."""
        finalizers = list(body["metadata"].get("finalizers") or [])
        needed = resource.spec.service_accounts is not None
        if needed == (api.FINALIZER in finalizers):
            return
        if not needed:
            await self._patch_accounts(resource, [])  # patching was switched off: take ours back
        await self._apply.set_finalizers(
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
        await self._apply.release_accounts(meta["uid"])
        await self._apply.set_finalizers(body, _without(finalizers, api.FINALIZER))

    # -- a spec that cannot be honoured --------------------------------------------------------

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
        ref = f"{kind} {meta.get('namespace') or ''}/{meta['name']}"
        self._apply.post(body, [Event("Warning", reason, message)], ref=ref)
        try:
            await self._apply.patch_status(
                body, status.rejected(current.conditions, generation, reason, message, now)
            )
        except KubeError as error:
            if error.status != 422:
                raise
            # A value stored under an older CRD that fails the CEL rules of today's: the API
            # server refuses every write to the object (ratcheting does not cover CEL type
            # errors). The Event above is all that can be said; the next generation can be written.
            self._unwritable[meta["uid"]] = generation


def _obtained(held: Held) -> Obtained:
    return Obtained(issued_at=held.issued_at, expires_at=held.expires_at, identity=held.identity)


def _failure(error: Exception) -> status.Failure:
    if isinstance(error, AwsCallFailed):
        return status.Failure(error.reason, error.message)
    if isinstance(error, AuthUnresolved):
        return status.Failure("AuthUnresolved", str(error))
    return status.Failure("KubernetesError", str(error))


def _without(items: list[str], item: str) -> list[str]:
    return [i for i in items if i != item]


def _ref(resource: Resource) -> str:
    return (
        f"{resource.kind} {resource.namespace}/{resource.name}"
        if resource.namespace
        else f"{resource.kind} {resource.name}"
    )
