"""Reconciler verification wiring, with in-memory fakes: it runs beside a pass, never in it, and
changes only the Verified condition (plus one Warning Event when it turns False)."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.verification import Verification
from ecr_pull_secrets.model.cluster import NamespaceView
from ecr_pull_secrets.plan.verify import Answer
from tests.unit.factories import HOST
from tests.unit.test_reconciler_accounts import (
    UID_A,
    FakeResources,
    FakeSecrets,
    FakeServiceAccounts,
    body_of_a,
    build,
    secret_body_of_a,
    secret_of_a,
)

HOUR = timedelta(hours=1)


class BlockedRegistry:
    """Answers 403 for the manifest once released; records what it was asked."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[tuple[dict[str, str | None], list[str]]] = []

    def check(self, hosts: Mapping[str, str | None], images: Sequence[str]) -> list[Answer]:
        self.asked.append((dict(hosts), list(images)))
        assert self.release.wait(timeout=10)
        return [Answer(HOST, None, 200), Answer(HOST, "team/app:v1", 403)]


def test_verification_runs_beside_the_pass_and_sets_only_verified() -> None:
    body = body_of_a({"all": True})
    body["spec"]["verify"] = {"images": ["team/app:v1"]}
    body["status"]["identity"] = "arn:aws:sts::123456789012:assumed-role/r/s"
    body["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "Issued", "message": "m"}]
    mine = secret_of_a()
    cache = ClusterCache()
    cache.put_namespace(NamespaceView("team-a"))
    cache.put_secret(mine)
    resources, registry = FakeResources(body), BlockedRegistry()
    events: list[tuple[str, str, str]] = []
    kicked: list[str] = []
    verification = Verification(
        registry,
        secrets=cast(Any, FakeSecrets(secret_body_of_a())),
        cache=cache,
        interval=HOUR,
        kick=kicked.append,
    )
    reconciler = build(
        cache,
        secrets=FakeSecrets(secret_body_of_a()),
        service_accounts=FakeServiceAccounts(),
        resources=resources,
        events=lambda body, *, type, reason, message: events.append((type, reason, message)),
        verification=verification,
    )

    async def story() -> None:
        # The pass returns while the registry has not answered: nothing waits for it.
        await reconciler.reconcile(body)
        assert not kicked
        assert not events
        registry.release.set()
        for _ in range(500):  # up to 5 s
            if kicked:
                break
            await asyncio.sleep(0.01)
        await reconciler.reconcile(body)

    asyncio.run(story())

    [(hosts, images)] = registry.asked
    assert hosts == {HOST: base64.b64encode(b"AWS:token").decode()}
    assert images == ["team/app:v1"]
    assert kicked == [UID_A]
    patch = resources.status_patches[-1]
    conditions = {c["type"]: c for c in patch["conditions"]}
    assert conditions["Ready"] == body["status"]["conditions"][0]
    assert conditions["Verified"]["status"] == "False"
    assert conditions["Verified"]["reason"] == "Forbidden"
    assert (
        "allow arn:aws:sts::123456789012:assumed-role/r/s ecr:BatchGetImage"
        in conditions["Verified"]["message"]
    )
    assert [(t, r) for t, r, _ in events] == [("Warning", "Forbidden")]
