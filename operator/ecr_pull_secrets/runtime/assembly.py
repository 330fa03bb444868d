"""The composition root: the Kubernetes client, the caches, the work queue and the watches, the
issuer, the reconciler and its effects, kopf's registrations, and kopf.run."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf

from ecr_pull_secrets.aws.broker import TokenBroker
from ecr_pull_secrets.aws.ratelimit import AsyncLimiter, RateLimiter
from ecr_pull_secrets.aws.sessions import SessionResolver
from ecr_pull_secrets.aws.tokens import BotoTokenSource
from ecr_pull_secrets.handlers import startup, watch
from ecr_pull_secrets.handlers.apply import Apply
from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.first_passes import FirstPasses
from ecr_pull_secrets.handlers.issuing import Issuer
from ecr_pull_secrets.handlers.peering import PeeringGate
from ecr_pull_secrets.handlers.queue import WorkQueue, step_aside
from ecr_pull_secrets.handlers.reconciler import Reconciler
from ecr_pull_secrets.handlers.sync import CacheSync, ResourceEvents
from ecr_pull_secrets.handlers.verification import Verification
from ecr_pull_secrets.kube.client import REQUEST_TIMEOUT, Rest, new_api_client
from ecr_pull_secrets.kube.discovery import Discovery
from ecr_pull_secrets.kube.events import EventPoster
from ecr_pull_secrets.kube.listing import Listing
from ecr_pull_secrets.kube.resources import Resources
from ecr_pull_secrets.kube.secrets import Secrets
from ecr_pull_secrets.kube.serviceaccounts import ServiceAccounts
from ecr_pull_secrets.kube.watching import Watching
from ecr_pull_secrets.metrics import Metrics
from ecr_pull_secrets.runtime import Passes, describe, own_identity, utcnow
from ecr_pull_secrets.settings import Settings
from ecr_pull_secrets.verify.registry import RegistryClient

WATCH_CONNECTIONS = 64
"""Each watch holds a connection for minutes: a pool of their own, so that they never take the
connections the workers' short requests reuse."""
# Their DEBUG output includes request and response bodies, i.e. tokens and Secret data.
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "kubernetes", "s3transfer")


def serve(config: Settings) -> int:
    _configure_logging(config)
    api_client = new_api_client(pool_size=config.workers)
    cache = ClusterCache()
    passes = Passes()
    queue = WorkQueue(
        passes.work,
        clock=utcnow,
        consumers=config.workers,
        describe=lambda uid: describe(cache.resource(uid) or {}, uid),
        group=lambda uid: ((cache.resource(uid) or {}).get("metadata") or {}).get("namespace", ""),
    )
    identity = own_identity()
    gate = (
        PeeringGate(
            name=config.peering,
            identity=identity,
            priority=config.peering_priority,
            clock=utcnow,
            pause=queue.pause,
            resume=queue.resume,
        )
        if config.peering is not None
        else None
    )
    sync = CacheSync(
        cache,
        Listing(api_client),
        queue.add,
        config.namespaces,
        watching=Watching(new_api_client(pool_size=WATCH_CONNECTIONS)),
        on_resource=ResourceEvents(cache, queue, passes.forget),
        peering=None
        if gate is None
        else ("kopfpeerings" if config.namespaces else "clusterkopfpeerings", gate),
        give_way=queue.wait_calm,
    )
    passes.first = first_passes = FirstPasses(cache, sync, queue)
    if gate is not None:
        queue.pause()  # until the peering objects are listed: the gate says whether to work
    registry = kopf.OperatorRegistry()

    # kopf authenticates the same way as our own client: in-cluster first, then kubeconfig.
    kopf.on.login(registry=registry)(kopf.login_via_client)

    @kopf.on.startup(registry=registry)
    async def tune(settings: kopf.OperatorSettings, **_: Any) -> None:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="blocking")
        )
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # kopf's own short requests (patches, Events) give up as ours do: no call waits forever.
        settings.watching.connect_timeout = REQUEST_TIMEOUT[0]
        settings.networking.connect_timeout, settings.networking.request_timeout = REQUEST_TIMEOUT
        settings.peering.lifetime = config.peering_lifetime

    metrics = Metrics()
    metrics.follow_queue(
        waiting=lambda: queue.depth, working=lambda: queue.working, scheduled=lambda: queue.scheduled
    )
    if config.metrics_port:
        metrics.serve(config.metrics_port, config.metrics_address)
    startup.register(
        registry, Discovery(api_client), startup.watched_kinds(config.peering, not config.namespaces)
    )
    service_accounts = ServiceAccounts(api_client)
    pace = RateLimiter(config.aws_rate_limit)  # every AWS request, retries included
    resolver = SessionResolver(service_accounts.mint_token, pace, utcnow, metrics=metrics)
    broker = TokenBroker(
        BotoTokenSource(resolver),
        clock=utcnow,
        limiter=AsyncLimiter(pace),
        chains_per_namespace=config.max_chains_per_namespace,
        forget_chain=resolver.forget,
    )
    secrets = Secrets(api_client)

    events = EventPoster(Rest(api_client), clock=utcnow)
    apply = Apply(
        secrets=secrets,
        service_accounts=service_accounts,
        resources=Resources(api_client),
        cache=cache,
        events=events.post,
    )
    apply.kick = queue.add
    verifier = RegistryClient(
        endpoints=config.registry_endpoints,
        ca_bundle=config.registry_ca_bundle,
        record=metrics.verify_request,
    )
    reconciler = Reconciler(
        issuer=Issuer(
            broker=broker,
            secrets=secrets,
            service_accounts=service_accounts,
            cache=cache,
            policy=config.renewal,
            clock=utcnow,
            waiting_for_aws=step_aside,
        ),
        apply=apply,
        cache=cache,
        renewal_policy=config.renewal,
        namespace_policy=config.policy,
        clock=utcnow,
        metrics=metrics,
        watched=config.namespaces,
        verification=Verification(
            verifier, secrets=secrets, cache=cache, interval=config.verify_interval, kick=queue.add
        )
        if config.verify
        else None,
    )
    passes.reconciler = reconciler
    watch.register(
        registry,
        cache=cache,
        sync=sync,
        first_passes=first_passes,
        queue=queue,
        events=events,
        gate=gate,
        relist_interval=config.relist_interval,
        warm=resolver.warm,
    )
    kopf.run(
        registry=registry,
        # The handlers are closures over the parts above; kopf copies the memo for every object.
        memo=kopf.Memo(),
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        liveness_endpoint=config.liveness_endpoint,
        standalone=config.peering is None,
        peering_name=config.peering,
        priority=config.peering_priority,
        identity=cast(Any, identity),  # kopf's Identity is a NewType of str
    )
    return 0


def _configure_logging(config: Settings) -> None:
    log_format = {"plain": kopf.LogFormat.PLAIN, "full": kopf.LogFormat.FULL, "json": kopf.LogFormat.JSON}
    kopf.configure(verbose=config.verbose, log_format=log_format[config.log_format])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not config.verbose:
        # kopf says "Handler ... succeeded." at INFO for every watch event of every object (every
        # namespace and ServiceAccount too); what the operator does it logs itself.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
