"""Wait, before kopf looks, until the API server lists the kinds the operator watches.

kopf reads discovery once at start and afterwards re-reads it only when a CRD changes. An operator
that starts while kube-apiserver restarts can read it before the CRDs' groups are listed again and
would then never watch EcrPullSecrets (the fault soak found this). Unreachable or failing: wait as
long as it takes. Reachable but not listing them for GRACE: carry on with a warning, as kopf
would; it starts the watches when the CRDs are created."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import kopf

from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.discovery import Discovery, GroupVersion
from ecr_pull_secrets.model import api

GRACE = datetime.timedelta(seconds=60)
RETRY_SECONDS = 2.0


def watched_kinds(peering: str | None, clusterwide: bool) -> dict[GroupVersion, frozenset[str]]:
    kinds = {(api.GROUP, api.VERSION): frozenset({api.PLURAL, api.CLUSTER_PLURAL})}
    if peering is not None:
        kinds[("kopf.dev", "v1")] = frozenset({"clusterkopfpeerings" if clusterwide else "kopfpeerings"})
    return kinds


def register(
    registry: kopf.OperatorRegistry, discovery: Discovery, wanted: dict[GroupVersion, frozenset[str]]
) -> None:
    @kopf.on.startup(id="await-discovery", registry=registry, errors=kopf.ErrorsMode.TEMPORARY)
    async def await_discovery(runtime: datetime.timedelta, logger: kopf.Logger, **_: Any) -> None:
        try:
            missing = await asyncio.to_thread(discovery.unlisted, wanted)
        except KubeError as error:
            why = f"unreachable ({error.reason})" if error.status == 0 else str(error)
            raise kopf.TemporaryError(f"waiting for the API server: {why}", delay=RETRY_SECONDS) from None
        if not missing:
            return
        if runtime < GRACE:
            listed = ", ".join(missing)
            raise kopf.TemporaryError(f"waiting for the API server to list {listed}", delay=RETRY_SECONDS)
        logger.warning(
            "The API server does not list %s after %ds: are the CRDs installed? Watching them once "
            "they are created.",
            ", ".join(missing),
            GRACE.total_seconds(),
        )
