"""The baseline: a plain Python client making the writes that a run's clock holds, in the same run.

For N resources the operator makes N Secret creates, N status merge-patches and N `Issued` Events;
a run whose resources are created while its clock runs also holds their N creates. A plain client
(the Kubernetes Python client, 16 threads with a connection each, like `bulk`) makes each kind of
write on the same control plane, each kind timed on its own; a run's floor is the sum over the
writes its clock holds (`Writes`), the time the API server, etcd and this machine need for them
with no operator at all. Every operator time in a row is a ratio to it. The goals' ratio leaves
the Events out (the operator posts them in the background, and may drop Normal ones under load);
the rows give the ratio with them too.

Fair how:

* Same run, same control plane, just before the operator starts: nothing else runs (no operator,
  no watch of this process yet), as nothing but the operator runs while its clock runs.
* Same namespaces: the benchmark's own N namespaces, so the cluster is the same size.
* Its own objects: an EcrPullSecret named `baseline` per namespace (with the benchmark's spec), a
  Secret named `baseline-pull` per namespace and an Event about each EcrPullSecret. The
  EcrPullSecrets and Secrets are deleted, and the deletions seen through, before the operator
  starts: the operator never sees them, and while its clock runs the cluster holds what it would
  hold without the baseline. (Patching the benchmark's own EcrPullSecrets instead would leave a
  status on them that the operator then reads.) The Events stay; the operator never reads Events.
* The same writes, one phase per kind, in this order: N EcrPullSecret creates; N creates of a
  Secret of type kubernetes.io/dockerconfigjson shaped like a managed Secret and of about its size
  (a `.dockerconfigjson` for one registry, four annotations, one label; no ownerReference); N JSON
  merge-patches of an EcrPullSecret's `status` with the fields a Ready status has (two
  conditions); N creates of an Event shaped like the operator's `Issued` Event.
* Not in it: reads (the operator lists and watches; so does the benchmark's tracker), and writes
  the operator makes beyond those (finalizers, ServiceAccounts, a second Event): the rows list the
  operator's writes by kind from the audit log, so a difference in writes shows.

Until 2026-12-02 the goals' ratio counted only the Secret creates and status patches, whatever
else the clock held (in P3's "created while it runs", the resources' own creates); the rows still
give that ratio too (`Baseline.narrow`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from tests.harness.kube import GROUP, PLURAL, VERSION

from bench.env import EAST, Env, drain
from bench.table import TIMES, WORKERS, bulk, say

RESOURCE = "baseline"
SECRET = "baseline-pull"


@dataclass(frozen=True)
class Writes:
    """How many writes of each kind a run's clock holds (the benchmark's and the operator's)."""

    resources: int = 0  # EcrPullSecret (or ClusterEcrPullSecret) creates
    secrets: int = 0  # Secret creates
    patches: int = 0  # status merge-patches
    events: int = 0  # Event creates


@dataclass(frozen=True)
class Baseline:
    """Seconds the plain client took for `count` writes of each kind."""

    count: int
    resources: float
    secrets: float
    patches: float
    events: float

    def took(self, writes: Writes) -> float:
        """The plain client's time for `writes`."""
        return (
            self.resources * writes.resources
            + self.secrets * writes.secrets
            + self.patches * writes.patches
            + self.events * writes.events
        ) / self.count

    def ratio(self, seconds: float, writes: Writes) -> float:
        floor = self.took(writes)
        return seconds / floor if floor > 0 else float("inf")

    def describe(self, writes: Writes) -> str:
        """`baseline 25.3 s (2000 EcrPullSecret creates 6.2 s + 2000 Secret creates 7.0 s + ...,
        plain client, 16 threads)`: the floor of `writes` and its parts."""
        parts = [
            f"{n} {what}{'' if n == 1 else plural} {seconds * n / self.count:.1f} s"
            for n, what, plural, seconds in (
                (writes.resources, "EcrPullSecret create", "s", self.resources),
                (writes.secrets, "Secret create", "s", self.secrets),
                (writes.patches, "status patch", "es", self.patches),
                (writes.events, "Event create", "s", self.events),
            )
            if n
        ]
        return f"baseline {self.took(writes):.1f} s ({' + '.join(parts)}, plain client, {WORKERS} threads)"

    def narrow(self, seconds: float, writes: Writes) -> str:
        """`2.1x Secret creates and status patches alone (19.5 s)`: the ratio the goals used until
        2026-12-02, which left out every other write the clock holds."""
        only = Writes(secrets=writes.secrets, patches=writes.patches)
        return (
            f"{self.ratio(seconds, only):.1f}{TIMES} Secret creates and status patches alone "
            f"({self.took(only):.1f} s)"
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
    # The generated client re-serialises eventTime with isoformat(), which leaves the fraction
    # out when it is zero; the API server then refuses the MicroTime (one Event in 10^6).
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond or 1)
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


def measure(
    env: Env, namespaces: Sequence[str], spec: Mapping[str, Any], *, workers: int = WORKERS
) -> Baseline:
    """Times each kind of write over `namespaces` (its EcrPullSecrets get `spec`), then deletes what
    it made and waits until the deletions are through. Call it before the operator starts."""
    count = len(namespaces)

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

    resources_took = env.create_eps_bulk(namespaces, RESOURCE, spec, workers)
    secrets_took = bulk(create_secret, namespaces, workers, f"baseline: {count} Secret creates")
    patches_took = bulk(patch_status, namespaces, workers, f"baseline: {count} status patches")
    events_took = bulk(create_event, namespaces, workers, f"baseline: {count} Event creates")
    result = Baseline(count, resources_took, secrets_took, patches_took, events_took)
    say(result.describe(Writes(resources=count, secrets=count, patches=count, events=count)))
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
