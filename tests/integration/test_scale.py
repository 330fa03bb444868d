"""Counted at the AWS endpoint: many resources sharing one identity cost one token call per
region per renewal window, and a restart costs none."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ecr_pull_secrets.metrics import RENEWAL_TIME
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.integration.conftest import StartOperator

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
COUNT = 200


@pytest.fixture
def namespaces(kube: Kube) -> Iterator[list[str]]:
    prefix = f"scale-{uuid.uuid4().hex[:5]}"
    names = [f"{prefix}-{i:03d}" for i in range(COUNT)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(kube.create_namespace, names))
    yield names
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(kube.delete_namespace, names))


def test_200_resources_share_one_token_per_renewal_window(
    kube: Kube, namespaces: list[str], start_operator: StartOperator, aws: AwsEmulator
) -> None:
    aws.token_lifetime = 60  # renewed a third of its life (20s) ahead: 40s after it was issued
    prefix = namespaces[0].rsplit("-", 1)[0]
    operator = start_operator(namespaces=[f"{prefix}-*"])
    spec = {"registries": [EAST]}

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda ns: kube.create_eps(ns, "app", spec), namespaces))

    def refreshed() -> dict[str, str]:
        return {
            item["metadata"]["namespace"]: item.get("status", {}).get("lastRefreshTime", "")
            for item in kube.list_eps()
            if item["metadata"]["namespace"].startswith(prefix)
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in item.get("status", {}).get("conditions", [])
            )
        }

    def all_ready() -> dict[str, str] | None:
        current = refreshed()
        return current if len(current) == COUNT else None

    first = wait_for(f"{COUNT} Ready", all_ready, timeout=60, interval=0.5)
    print(f"{COUNT} resources Ready {time.monotonic() - started:.1f}s after the first create")
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1
    assert aws.calls("GetCallerIdentity", service="sts") == 1

    # One renewal window later every resource holds a new token, still from one call.
    wait_for(
        "every resource renewed",
        lambda: all(t != first[ns] for ns, t in refreshed().items()),
        timeout=45,
        interval=0.5,
    )
    assert aws.calls("GetAuthorizationToken", service="ecr") == 2

    operator.stop()
    before = aws.call_counts()
    operator.start()
    # The restarted operator has worked on every resource once it has scheduled each renewal.
    schedule = wait_for(
        f"the restarted operator to schedule {COUNT} renewals",
        lambda: (times := renewal_times(operator, prefix)) and len(times) == COUNT and times,
        timeout=30,
        interval=0.5,
    )
    assert aws.call_counts() == before
    # Meaningful only if no renewal came due while it started: otherwise a call would be right.
    assert min(schedule) > time.time(), "the restart took longer than the renewal window allows"


def renewal_times(operator: OperatorProcess, prefix: str) -> list[float]:
    """The renewal time the operator has scheduled for each resource in these namespaces."""
    try:
        families = list(text_string_to_metric_families(operator.metrics()))
    except OSError:  # not serving yet
        return []
    return [
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == RENEWAL_TIME and sample.labels.get("namespace", "").startswith(prefix)
    ]
