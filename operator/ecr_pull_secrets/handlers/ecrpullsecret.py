"""kopf registrations for EcrPullSecret: every watch event feeds the resource's reconcile loop."""

from __future__ import annotations

from typing import Any

import kopf

from ecr_pull_secrets.handlers.scheduling import Scheduler
from ecr_pull_secrets.model import api


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
    async def observed(event: kopf.RawEvent, body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> None:
        scheduler: Scheduler = memo["scheduler"]
        scheduler.observe(uid, body, deleted=event["type"] == "DELETED")

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        scheduler: Scheduler = memo["scheduler"]
        await scheduler.stop()
