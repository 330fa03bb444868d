"""Prometheus metrics: what the operator manages, how renewals go, and what it asks of AWS.

One `Metrics` object per process, built in the composition root and passed to whoever records
(the reconciler, the AWS sessions); it owns its registry, so tests can build as many as they like.

Cardinality is bounded by what the cluster holds: per-resource series carry `kind`, `namespace`
and `name` only, and disappear with `forget()`; everything else is labelled by small fixed sets
(results, CamelCase reasons, AWS operations). No label or value ever carries token material:
reasons that are not a plain CamelCase word are recorded as `Unknown`.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

PREFIX = "ecr_pull_secrets"
SECRET_EXPIRY = f"{PREFIX}_secret_expiry_timestamp_seconds"
RENEWAL_TIME = f"{PREFIX}_renewal_timestamp_seconds"
RENEWALS = f"{PREFIX}_renewals"
RENEWAL_DURATION = f"{PREFIX}_renewal_duration_seconds"
AWS_REQUESTS = f"{PREFIX}_aws_requests"
VERIFY_REQUESTS = f"{PREFIX}_verify_requests"
QUEUE = f"{PREFIX}_queue_resources"

RESOURCE_LABELS = ("kind", "namespace", "name")
RENEWAL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

RenewalResult = Literal["success", "failure"]
AwsResult = Literal["success", "throttled", "error"]

_REASON = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._expiry = Gauge(
            SECRET_EXPIRY,
            "When the token in the managed Secret expires (Unix time)",
            RESOURCE_LABELS,
            registry=self.registry,
        )
        self._renewal = Gauge(
            RENEWAL_TIME,
            "When the operator next renews the Secret, or retries a failed renewal (Unix time)",
            RESOURCE_LABELS,
            registry=self.registry,
        )
        self._renewals = Counter(
            RENEWALS,
            "Renewal attempts by result and reason (Issued, Renewed, or why it failed)",
            ("result", "reason"),
            registry=self.registry,
        )
        self._duration = Histogram(
            RENEWAL_DURATION,
            "How long one renewal took: getting the tokens and writing the Secrets",
            ("result",),
            buckets=RENEWAL_BUCKETS,
            registry=self.registry,
        )
        self._aws = Counter(
            AWS_REQUESTS,
            "AWS API calls (botocore's retries included in one call) by service, operation and result",
            ("service", "operation", "result"),
            registry=self.registry,
        )
        self._verify = Counter(
            VERIFY_REQUESTS,
            "Registry requests verifying that Secrets pull, by result (OK or the Verified reason)",
            ("result",),
            registry=self.registry,
        )
        self._queue = Gauge(
            QUEUE,
            "Resources in the work queue: waiting for a pass now, being worked on, or scheduled for later "
            "(a standby replica's queue holds its resources and waits)",
            ("state",),
            registry=self.registry,
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- per resource ----------------------------------------------------------------------

    def schedule(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        expires_at: datetime | None,
        renewal_at: datetime | None,
    ) -> None:
        """Record a resource's Secret expiry and next renewal; None removes that series."""
        labels = (kind, namespace, name)
        for gauge, when in ((self._expiry, expires_at), (self._renewal, renewal_at)):
            if when is None:
                _remove(gauge, labels)
            else:
                gauge.labels(*labels).set(when.timestamp())

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """The resource is gone: drop its series."""
        for gauge in (self._expiry, self._renewal):
            _remove(gauge, (kind, namespace, name))

    # -- events ----------------------------------------------------------------------------

    def renewal(self, result: RenewalResult, reason: str, seconds: float) -> None:
        self._renewals.labels(result, safe_reason(reason)).inc()
        self._duration.labels(result).observe(max(seconds, 0.0))

    def aws_request(self, service: str, operation: str, result: AwsResult) -> None:
        self._aws.labels(service, operation, result).inc()

    def verify_request(self, result: str) -> None:
        self._verify.labels(safe_reason(result)).inc()

    def follow_queue(self, **states: Callable[[], int]) -> None:
        """Read at each scrape: the number of resources in each state (waiting=, working=, ...)."""
        for state, count in states.items():
            self._queue.labels(state).set_function(count)

    # -- exposition ------------------------------------------------------------------------

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:  # noqa: S104  # scraped from outside the pod
        """Serve /metrics on a daemon thread; returns the bound port (0 picks a free one)."""
        self._server, self._thread = start_http_server(port, addr, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def exposition(self) -> str:
        """The text format, as a scrape sees it."""
        return generate_latest(self.registry).decode()

    def series_names(self) -> frozenset[str]:
        """Every series name this registry can expose (e.g. `…_renewals_total`, `…_bucket`)."""
        return frozenset(
            family.name + suffix
            for family in self.registry.collect()
            for suffix in _SERIES_SUFFIXES.get(family.type, ("",))
        )


def safe_reason(reason: str) -> str:
    """Reasons are CamelCase words (AccessDenied, Renewed); anything else becomes `Unknown`."""
    return reason if _REASON.fullmatch(reason) else "Unknown"


def _remove(gauge: Gauge, labels: tuple[str, str, str]) -> None:
    with contextlib.suppress(KeyError):  # never recorded, or already removed
        gauge.remove(*labels)
