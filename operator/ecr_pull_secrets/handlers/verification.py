"""Does the Secret pull? Verification in the background, never delaying a write: after one, when the
spec changed, and every verify interval. Its verdict reaches status through the next pass."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.kube.secrets import Secrets
from ecr_pull_secrets.model.resource import Resource
from ecr_pull_secrets.plan import content, status, verify
from ecr_pull_secrets.plan.verify import Answer, Verdict

# Verifications in flight at once, all resources together: a restart of thousands stays gentle.
VERIFY_CONCURRENCY = 8


class Verifier(Protocol):
    def check(self, hosts: Mapping[str, str | None], images: Sequence[str]) -> list[Answer]:
        """Blocking: host -> its `auth` value in the Secret; the answers of /v2/ and each manifest."""
        ...


class Verification:
    def __init__(
        self,
        verifier: Verifier,
        *,
        secrets: Secrets,
        cache: ClusterCache,
        interval: timedelta,
        kick: Callable[[str], None],
    ) -> None:
        self._verifier = verifier
        self._secrets = secrets
        self._cache = cache
        self._verify_interval = interval
        self.kick = kick
        self._verify_at: dict[str, datetime] = {}
        """uid -> when its Secret is next verified (without a write before)."""
        self._verified: dict[str, tuple[int, Verdict]] = {}
        """uid -> (generation, verdict) of its last verification, until status says so."""
        self._verifying: dict[str, asyncio.Task[None]] = {}
        self._verify_slots = asyncio.Semaphore(VERIFY_CONCURRENCY)

    def verdict(self, uid: str) -> Verdict | None:
        last = self._verified.get(uid)
        return None if last is None else last[1]

    def next_at(self, uid: str) -> datetime | None:
        return self._verify_at.get(uid)

    def forget(self, uid: str) -> None:
        self._verify_at.pop(uid, None)
        self._verified.pop(uid, None)
        task = self._verifying.pop(uid, None)
        if task is not None:
            task.cancel()

    def start_if_due(
        self,
        body: Mapping[str, Any],
        resource: Resource,
        namespaces: Sequence[str],
        *,
        written: bool,
        identity: str | None,
        now: datetime,
    ) -> None:
        """In the background, never delaying a write: after one, when the spec changed, and every
        verify interval. Changes only the Verified condition (through the next pass's status)."""
        uid = resource.uid
        if uid in self._verifying:
            return
        last = self._verified.get(uid)
        due_at = self._verify_at.get(uid)
        if due_at is None:  # first sight: unverified now; verified before a restart, spread out
            current = status.condition_in(body.get("status") or {}, status.VERIFIED)
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
        identity = identity or (body.get("status") or {}).get("identity")
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
        verifier = self._verifier

        def check() -> list[Answer] | None:
            secret = self._secrets.get(*where)
            if secret is None or not content.is_controlled_by(secret.metadata, uid):
                return None
            auths = content.authorizations(secret.type, secret.metadata, secret.data)
            return verifier.check({host: auths.get(host) for host in hosts}, images)

        try:
            async with self._verify_slots:
                answers = await asyncio.to_thread(check)
        finally:
            done = self._verifying.pop(uid, None) is not None
        if done and answers is not None:  # not forgotten meanwhile, and the Secret was there
            self._verified[uid] = (generation, verify.judge(answers, identity))
            self.kick(uid)
