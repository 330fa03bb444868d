"""The operator's /metrics, scraped while it works: per-resource schedule series that follow the
resource, renewals by result and reason, AWS calls by operation and result, and no tokens."""

from __future__ import annotations

import base64
import time
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from tests.harness.aws_emulator import AwsEmulator
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(operator: OperatorProcess) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
    }


def sample(samples: Samples, series: str, /, **labels: str) -> float | None:
    return samples.get((series, frozenset(labels.items())))


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_metrics_follow_the_resource(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    resource = {"kind": "EcrPullSecret", "namespace": namespace, "name": "app"}
    aws.token_lifetime = 15  # renewed a third of its life ahead: after about 10s
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    status = kube.wait_ready(namespace, "app")["status"]

    samples = wait_for(
        "the expiry series",
        lambda: (
            (s := scrape(operator))
            and sample(s, "ecr_pull_secrets_secret_expiry_timestamp_seconds", **resource)
            and s
        ),
    )
    expiry = sample(samples, "ecr_pull_secrets_secret_expiry_timestamp_seconds", **resource)
    assert expiry == epoch(status["expiresAt"])
    assert sample(samples, "ecr_pull_secrets_renewal_timestamp_seconds", **resource) == epoch(
        status["renewalTime"]
    )
    assert sample(samples, "ecr_pull_secrets_renewals_total", result="success", reason="Issued") == 1
    assert sample(samples, "ecr_pull_secrets_renewal_duration_seconds_count", result="success") == 1
    ecr_ok = {"service": "ecr", "operation": "GetAuthorizationToken", "result": "success"}
    assert sample(samples, "ecr_pull_secrets_aws_requests_total", **ecr_ok) == 1
    sts_ok = {"service": "sts", "operation": "GetCallerIdentity", "result": "success"}
    assert sample(samples, "ecr_pull_secrets_aws_requests_total", **sts_ok) == 1

    # A throttled renewal: counted as a failure with its reason, and as a throttled AWS call
    # (botocore retried it within the one call); the next renewal is the retry.
    aws.fail("GetAuthorizationToken", "ThrottlingException", status=400, service="ecr")
    throttled = {"service": "ecr", "operation": "GetAuthorizationToken", "result": "throttled"}
    samples = wait_for(
        "a failed renewal",
        lambda: (
            (s := scrape(operator))
            and sample(s, "ecr_pull_secrets_renewals_total", result="failure", reason="Throttled")
            and s
        ),
        timeout=30,
    )
    assert (sample(samples, "ecr_pull_secrets_aws_requests_total", **throttled) or 0) >= 1
    assert aws.calls("GetAuthorizationToken", service="ecr") > 2, "botocore retried within the call"
    retry_at = sample(samples, "ecr_pull_secrets_renewal_timestamp_seconds", **resource)
    assert retry_at is not None
    # Not the renewal time that has passed, but the retry after the backoff (at most 4s here).
    assert epoch(status["renewalTime"]) < retry_at < time.time() + 5
    assert sample(samples, "ecr_pull_secrets_secret_expiry_timestamp_seconds", **resource) == expiry

    text = operator.metrics()
    for token in aws.issued_tokens():
        assert token not in text
        assert base64.b64encode(f"AWS:{token}".encode()).decode() not in text

    kube.delete_eps(namespace, "app")
    wait_for(
        "the resource's series to go",
        lambda: all(dict(labels).get("name") != "app" for _, labels in scrape(operator)),
    )
