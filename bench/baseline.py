"""The baseline: a plain Python client making the writes the operator makes, in the same run.

For N resources the operator makes (at least) N Secret creates and N status merge-patches. A plain
client (the Kubernetes Python client, 16 threads with a connection each, like `bulk`) makes the
same writes on the same control plane, and its time is the floor that API server, etcd and this
machine put under any operator; every operator time in a row is also a ratio to it.

Fair how:

* Same run, same control plane, just before the operator starts: nothing else runs (no operator,
  no watch of this process yet), as nothing but the operator runs while its clock runs.
* Same namespaces: the benchmark's own N namespaces, so the cluster is the same size.
* Its own objects: an EcrPullSecret named `baseline` per namespace, created before its clock
  starts (their creation is not timed), and a Secret named `baseline-pull` per namespace. All of
  them are deleted, and the deletions seen through, before the operator starts: the operator
  never sees them, and while its clock runs the cluster holds what it would hold without the
  baseline. (Patching the benchmark's own EcrPullSecrets instead would leave a status on them
  that the operator then reads.)
* The same writes: per resource, one create of a Secret of type kubernetes.io/dockerconfigjson
  shaped like a managed Secret and of about its size (a `.dockerconfigjson` for one registry,
  four annotations, one label; no ownerReference), then one JSON merge-patch of an
  EcrPullSecret's `status` with the fields a Ready status has (two conditions). The Secrets
  first, all N, then the N patches: each phase is timed, so a row whose writes differ (one
  ClusterEcrPullSecret: N Secrets, 1 status) gets the baseline of its own writes
  (`Baseline.for_writes`).
* Events, apart: then N creates of an Event about the baseline's EcrPullSecret, shaped like the
  operator's `Issued` Event, also timed. The goals' ratio leaves them out (as it always has); a
  row also gives the ratio against the same writes with the Events the audit log shows the
  operator made (`events=`).
* Not in it: reads (the operator lists and watches), and writes the operator makes beyond those
  (finalizers, ServiceAccounts): the rows list the operator's writes by kind from the audit log,
  so a difference in writes shows.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from tests.harness.kube import GROUP, PLURAL, VERSION

from bench.env import EAST, Env, drain
from bench.table import WORKERS, bulk, say

RESOURCE = "baseline"
SECRET = "baseline-pull"


@dataclass(frozen=True)
class Baseline:
    count: int
    secrets: float  # seconds for `count` Secret creates
    patches: float  # seconds for `count` status merge-patches
    events: float = 0.0  # seconds for `count` Event creates

    @property
    def seconds(self) -> float:
        return self.secrets + self.patches

    def for_writes(self, *, secrets: int, patches: int, events: int = 0) -> float:
        """The baseline's time for `secrets` Secret creates, `patches` status patches and `events`
        Event creates."""
        return (self.secrets * secrets + self.patches * patches + self.events * events) / self.count

    def ratio(
        self, seconds: float, *, secrets: int | None = None, patches: int | None = None, events: int = 0
    ) -> float:
        """`seconds` over the baseline of the same writes (by default: count of each, no Event)."""
        floor = self.for_writes(
            secrets=self.count if secrets is None else secrets,
            patches=self.count if patches is None else patches,
            events=events,
        )
        return seconds / floor if floor > 0 else float("inf")

    def events_took(self, events: int) -> float:
        return self.events * events / self.count

    def summary(self, *, secrets: int | None = None, patches: int | None = None) -> str:
        """`baseline 9.6 s (2000 Secret creates 4.1 s + 2000 status patches 5.5 s, plain client, 16
        threads)`, for `secrets` creates and `patches` patches (by default: count of each)."""
        n_secrets = self.count if secrets is None else secrets
        n_patches = self.count if patches is None else patches
        secrets_took = self.secrets * n_secrets / self.count
        patches_took = self.patches * n_patches / self.count
        return (
            f"baseline {secrets_took + patches_took:.1f} s ({n_secrets} Secret creates {secrets_took:.1f} s"
            f" + {n_patches} status patch{'es' if n_patches != 1 else ''} {patches_took:.1f} s, "
            f"plain client, {WORKERS} threads)"
        )


def secret_body(namespace: str) -> dict[str, Any]:
    """A Secret shaped like a managed one and of about its size, without the operator's label."""
    password = f"{secrets.token_urlsafe(16)}-{secrets.token_hex(6)}"
    auth = base64.b64encode(f"AWS:{password}".encode()).decode()
    config = {"auths": {EAST: {"auth": auth, "password": password, "username": "AWS"}}}
    data = {
        ".dockerconfigjson": base64.b64encode(json.dumps(config, separators=(",", ":")).encode()).decode()
    }
    now = datetime.now(UTC)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": SECRET,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "ecr-pull-secret-baseline"},
            "annotations": {
                f"{GROUP}/expires-at": (now + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                f"{GROUP}/issued-at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                f"{GROUP}/chain": hashlib.sha256(b"operator").hexdigest()[:16],
                f"{GROUP}/content-sha256": hashlib.sha256(data[".dockerconfigjson"].encode()).hexdigest(),
            },
        },
        "data": data,
    }


def status_patch() -> dict[str, Any]:
    """A status like the one a Ready EcrPullSecret shows."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = (now + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"Secret {SECRET} holds tokens for 1 registry, valid until {expires}"
    return {
        "status": {
            "secretName": SECRET,
            "expiresAt": expires,
            "renewalTime": (now + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastRefreshTime": stamp,
            "lastFailureTime": None,
            "failedAttempts": 0,
            "identity": "arn:aws:sts::123456789012:assumed-role/ecr-pull-secret-operator/session",
            "observedGeneration": 1,
            "forceRefresh": None,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Issued",
                    "message": message,
                    "lastTransitionTime": stamp,
                    "observedGeneration": 1,
                },
                {
                    "type": "Degraded",
                    "status": "False",
                    "reason": "Issued",
                    "message": "Last renewal succeeded",
                    "lastTransitionTime": stamp,
                    "observedGeneration": 1,
                },
            ],
        }
    }


def event_body(namespace: str, uid: str) -> dict[str, Any]:
    """An Event like the operator's `Issued` one, about the baseline's EcrPullSecret."""
    now = datetime.now(UTC)
    expires = (now + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"namespace": namespace, "generateName": f"{RESOURCE}."},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "EcrPullSecret",
            "name": RESOURCE,
            "uid": uid,
            "namespace": namespace,
        },
        "type": "Normal",
        "reason": "Issued",
        "message": f"Secret {SECRET} holds tokens for 1 registry, valid until {expires}",
        "action": "Issued",
        "source": {"component": "ecr-pull-secret-baseline"},
        "reportingComponent": "ecr-pull-secret-baseline",
        "reportingInstance": "ecr-pull-secret-baseline",
        "firstTimestamp": now.isoformat(),
        "lastTimestamp": now.isoformat(),
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "count": 1,
    }


def measure(env: Env, namespaces: Sequence[str], *, workers: int = WORKERS) -> Baseline:
    """Creates its EcrPullSecrets (untimed), times the Secret creates and the status patches, then
    deletes everything it made and waits until the deletions are through. Call it before the
    operator starts."""
    count = len(namespaces)
    env.create_eps_bulk(namespaces, RESOURCE, {"registries": [EAST]}, workers)

    def create_secret(namespace: str) -> None:
        body: Any = secret_body(namespace)
        drain(env.core.create_namespaced_secret(namespace, body, _preload_content=False))

    def patch_status(namespace: str) -> None:
        response = env.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            RESOURCE,
            status_patch(),
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
        drain(response)

    def create_event(namespace: str) -> None:
        body: Any = event_body(namespace, f"baseline-{namespace}")
        drain(env.core.create_namespaced_event(namespace, body, _preload_content=False))

    secrets_took = bulk(create_secret, namespaces, workers, f"baseline: {count} Secret creates")
    patches_took = bulk(patch_status, namespaces, workers, f"baseline: {count} status patches")
    events_took = bulk(create_event, namespaces, workers, f"baseline: {count} Event creates")
    result = Baseline(count, secrets_took, patches_took, events_took)
    say(f"{result.summary()}; {count} Event creates {events_took:.1f} s")
    _clean_up(env, namespaces, workers)
    return result


def _clean_up(env: Env, namespaces: Sequence[str], workers: int) -> None:
    started = time.monotonic()

    def delete(namespace: str) -> None:
        with _absent_is_fine():
            drain(env.core.delete_namespaced_secret(SECRET, namespace, _preload_content=False))
        with _absent_is_fine():
            drain(
                env.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, RESOURCE, _preload_content=False
                )
            )

    bulk(delete, namespaces, workers)  # its Events stay: the operator never reads Events
    deadline = time.monotonic() + 300
    while _left(env):
        if time.monotonic() > deadline:
            raise TimeoutError("the baseline's objects were not deleted within 300 s")
        time.sleep(0.5)
    say(f"baseline: its {2 * len(namespaces)} objects deleted in {time.monotonic() - started:.1f}s")


@contextlib.contextmanager
def _absent_is_fine() -> Iterator[None]:
    try:
        yield
    except ApiException as error:
        if error.status != 404:
            raise


def _left(env: Env) -> int:
    """How many of the baseline's objects still exist (one list each, metadata only)."""
    secrets_left: Any = env.core.list_secret_for_all_namespaces(
        field_selector=f"metadata.name={SECRET}", _preload_content=False
    )
    resources: Any = env.custom.list_cluster_custom_object(
        GROUP, VERSION, PLURAL, field_selector=f"metadata.name={RESOURCE}", _preload_content=False
    )
    return len(json.loads(secrets_left.data)["items"]) + len(json.loads(resources.data)["items"])
