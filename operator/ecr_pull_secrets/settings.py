"""Operator configuration, in one place: flags override environment variables override defaults."""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import yaml

from ecr_pull_secrets.model.duration import parse_duration
from ecr_pull_secrets.model.policy import DENY_ALL, Policy, parse_policy
from ecr_pull_secrets.plan.renewal import RenewalPolicy

ENV_PREFIX = "ECR_PULL_SECRETS_"


@dataclass(frozen=True)
class Settings:
    renewal: RenewalPolicy = field(default_factory=RenewalPolicy)
    namespaces: tuple[str, ...] = ()
    """Namespace globs to watch; empty means cluster-wide."""
    liveness_endpoint: str | None = None
    peering: str | None = None
    """kopf peering object for HA (one active replica); None runs standalone."""
    peering_priority: int = 0
    """Among peers the highest priority works and the others stand by; equal priorities would
    all pause, so replicas of one Deployment get distinct random ones unless told otherwise."""
    peering_lifetime: int = 60
    """Seconds a replica counts as alive after its last keep-alive in the peering object (kopf's
    lifetime): at most this long, a replica that died without stopping holds up the others."""
    workers: int = 16
    """Threads for blocking Kubernetes and AWS calls."""
    aws_rate_limit: float = 10.0
    """AWS requests per second, all identities together, retries included."""
    max_chains_per_namespace: int = 50
    """Distinct credential chains the resources of one namespace may use (QuotaExceeded beyond)."""
    policy: Policy = DENY_ALL
    log_format: str = "plain"
    verbose: bool = False
    metrics_port: int = 9090
    """Serve Prometheus metrics on this port; 0 disables."""
    metrics_address: str = "0.0.0.0"  # noqa: S104  # scraped from outside the pod
    """Listen address for metrics: all IPv4 interfaces by default; "::" for IPv6 (and IPv4)."""
    verify: bool = True
    """Check after each write, and every verify_interval, that the Secret pulls (Verified)."""
    verify_interval: timedelta = timedelta(hours=1)
    relist_interval: timedelta = timedelta(minutes=10)
    """How often the caches are checked against metadata-only lists (a watch may miss a delete)."""
    registry_endpoints: Mapping[str, str] = field(default_factory=dict)
    """Registry host -> https://ADDRESS[:PORT] to connect to instead (private endpoints, tests)."""
    registry_ca_bundle: str | None = None
    """CA certificates (PEM) to trust for registries instead of the system's."""


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ) -> None:
    def default(name: str, fallback: str) -> str:
        return env.get(ENV_PREFIX + name, fallback)

    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        dest="namespaces",
        help="watch only this namespace (glob; repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--liveness",
        dest="liveness_endpoint",
        default=default("LIVENESS", "") or None,
        help="serve kopf's liveness probe here, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument(
        "--peering",
        default=default("PEERING", "") or None,
        help="kopf peering name for HA; omitted: standalone",
    )
    parser.add_argument(
        "--peering-priority",
        type=int,
        default=int(default("PEERING_PRIORITY", "0")) or None,
        help="kopf peering priority; default: a random one per process, so one replica is active",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=_peering_lifetime,
        default=default("PEERING_LIFETIME", "60"),  # a string: parsed (and checked) as if given
        help="seconds a replica counts as alive after its last keep-alive (default 60): a replica "
        "that dies without stopping holds the others up at most this long",
    )
    parser.add_argument(
        "--min-renewal-interval",
        default=default("MIN_RENEWAL_INTERVAL", "60s"),
        help="floor between two renewals of one resource (default 60s)",
    )
    parser.add_argument(
        "--backoff-base",
        default=default("BACKOFF_BASE", "5s"),
        help="first retry delay after a failed renewal; doubles per failure (default 5s)",
    )
    parser.add_argument(
        "--backoff-cap",
        default=default("BACKOFF_CAP", "5m"),
        help="longest retry delay after failures (default 5m)",
    )
    parser.add_argument(
        "--policy",
        default=default("POLICY", "") or None,
        help="namespace policy file (YAML): who may use the operator's identity; default: nobody",
    )
    parser.add_argument(
        "--aws-rate-limit",
        type=float,
        default=float(default("AWS_RATE_LIMIT", "10")),
        help="AWS requests per second, retries included (default 10)",
    )
    parser.add_argument(
        "--max-chains-per-namespace",
        type=int,
        default=int(default("MAX_CHAINS_PER_NAMESPACE", "50")),
        help="distinct AWS credential chains one namespace's resources may use; beyond it they get "
        "Ready=False, reason QuotaExceeded (default 50)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(default("WORKERS", "16")),
        help="threads for blocking API calls (default 16)",
    )
    parser.add_argument(
        "--log-format", choices=("plain", "full", "json"), default=default("LOG_FORMAT", "plain")
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(default("METRICS_PORT", "9090")),
        help="serve Prometheus metrics at :PORT/metrics; 0 disables (default 9090)",
    )
    parser.add_argument(
        "--metrics-address",
        default=default("METRICS_ADDRESS", "0.0.0.0"),  # noqa: S104  # scraped from outside the pod
        help="address the metrics endpoint listens on, e.g. :: for IPv6 (default 0.0.0.0)",
    )
    parser.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=default("VERIFY", "true") == "true",
        help="check with each registry that the Secret's token is accepted and spec.verify.images "
        "answer (condition Verified); --no-verify switches it off (default on)",
    )
    parser.add_argument(
        "--verify-interval",
        default=default("VERIFY_INTERVAL", "1h"),
        help="how often a resource's Secret is verified again between writes (default 1h)",
    )
    parser.add_argument(
        "--relist-interval",
        default=default("RELIST_INTERVAL", "10m"),
        help="how often the caches are checked against a metadata-only list (default 10m)",
    )
    parser.add_argument(
        "--registry-endpoint",
        action="append",
        default=[e for e in default("REGISTRY_ENDPOINT", "").split(",") if e],
        dest="registry_endpoints",
        metavar="HOST=URL",
        help="verify HOST at URL (https://ADDRESS[:PORT]) instead, e.g. a private endpoint (repeatable)",
    )
    parser.add_argument(
        "--registry-ca-bundle",
        default=default("REGISTRY_CA_BUNDLE", "") or None,
        metavar="PATH",
        help="PEM CA certificates to trust when verifying with registries (default: the system's)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", default=default("VERBOSE", "") == "true")


def from_arguments(args: argparse.Namespace) -> Settings:
    return Settings(
        renewal=RenewalPolicy(
            min_interval=parse_duration(args.min_renewal_interval),
            backoff_base=parse_duration(args.backoff_base),
            backoff_cap=parse_duration(args.backoff_cap),
        ),
        namespaces=tuple(args.namespaces),
        liveness_endpoint=args.liveness_endpoint,
        peering=args.peering,
        peering_priority=args.peering_priority or random.randint(1, 2**31 - 1),  # noqa: S311  # not crypto
        peering_lifetime=args.peering_lifetime,
        workers=args.workers,
        aws_rate_limit=args.aws_rate_limit,
        max_chains_per_namespace=args.max_chains_per_namespace,
        policy=load_policy(args.policy),
        log_format=args.log_format,
        verbose=args.verbose,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        verify=args.verify,
        verify_interval=parse_duration(args.verify_interval),
        relist_interval=parse_duration(args.relist_interval),
        registry_endpoints=parse_endpoints(args.registry_endpoints),
        registry_ca_bundle=args.registry_ca_bundle,
    )


def parse_endpoints(values: list[str]) -> dict[str, str]:
    """HOST=https://ADDRESS[:PORT] pairs; raises ValueError naming a malformed one."""
    endpoints = {}
    for value in values:
        host, _, url = value.partition("=")
        if not host or not url.startswith("https://"):
            raise ValueError(f"--registry-endpoint {value!r}: expected HOST=https://ADDRESS[:PORT]")
        endpoints[host.strip().lower()] = url
    return endpoints


def load_policy(path: str | None) -> Policy:
    if not path:
        return DENY_ALL
    with open(path, encoding="utf-8") as stream:
        return parse_policy(yaml.safe_load(stream))


def _peering_lifetime(text: str) -> int:
    """kopf renews a replica's entry 5-10 s before it expires, whatever the lifetime: 15 s keeps
    the keep-alives at least 5 s apart."""
    seconds = int(text)
    if not 15 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{seconds} is not between 15 and 3600")
    return seconds
