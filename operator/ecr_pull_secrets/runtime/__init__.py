"""The composition root: `run` builds the operator's parts from Settings (in `assembly`) and hands
them to kopf; here, the small parts it is built with.

The start-up lists start in kopf's start-up handler, after kopf, aiohttp and botocore are
imported. Started before those imports (in a thread), they had the imports wait for the GIL: at
10,000 resources the operator was live 2.2-4.5 s after its spawn instead of 1.4-1.9 s.
"""

from __future__ import annotations

import getpass
import os
import random
import socket
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ecr_pull_secrets.handlers.first_passes import FirstPasses
from ecr_pull_secrets.settings import Settings

if TYPE_CHECKING:
    from ecr_pull_secrets.handlers.reconciler import Reconciler


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Passes:
    """The queue's work: a reconciler's pass over one resource. Both parts are set once built (the
    queue is built first: they need it); passes start once kopf runs, the start-up lists perhaps
    still running (handlers/first_passes.py says which may go)."""

    first: FirstPasses | None = None
    reconciler: Reconciler | None = None

    async def work(self, uid: str) -> datetime | None:
        if self.first is None or self.reconciler is None:
            return None
        body = await self.first.body(uid)
        return None if body is None else (await self.reconciler.reconcile(body)).wake_at

    def forget(self, uid: str) -> None:
        if self.reconciler is not None:
            self.reconciler.forget(uid)


def run(config: Settings) -> int:
    from ecr_pull_secrets.runtime import assembly  # noqa: PLC0415 (it imports utcnow from here)

    return assembly.serve(config)


def own_identity() -> str:
    """This replica's name in kopf's peering object, as kopf would make it: POD_ID, or who and
    where plus the start time. Given to kopf, so that the peering gate knows its own entry."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=3))  # noqa: S311
    return f"{getpass.getuser()}@{socket.gethostname()}/{started}/{suffix}"


def describe(body: Mapping[str, Any], uid: str) -> str:
    meta = body.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{body.get('kind', 'resource')} {where}{meta.get('name', uid)}"
