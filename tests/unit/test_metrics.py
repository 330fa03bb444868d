"""Metrics: the registry, per-resource series and their removal, the botocore hooks, the
exposition, and the example alerts (they may only name series that metrics.py defines)."""

from __future__ import annotations

import re
import socket
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.config import Config
from botocore.stub import Stubber

from ecr_pull_secrets import metrics as names
from ecr_pull_secrets.aws.ratelimit import RateLimiter
from ecr_pull_secrets.aws.sessions import ChainSession
from ecr_pull_secrets.metrics import Metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "ecr-pull-secrets.rules.yaml"
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
RENEWS = EXPIRES - timedelta(hours=4)
KIND = "EcrPullSecret"


def value(metrics: Metrics, series: str, /, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(series, labels)


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.renewal("success", "Issued", 0.2)
    assert value(first, "ecr_pull_secrets_renewals_total", result="success", reason="Issued") == 1
    assert value(second, "ecr_pull_secrets_renewals_total", result="success", reason="Issued") is None


def test_schedule_exports_unix_times_per_resource() -> None:
    metrics = Metrics()
    metrics.schedule(KIND, "team-a", "app", expires_at=EXPIRES, renewal_at=RENEWS)
    labels = {"kind": KIND, "namespace": "team-a", "name": "app"}

    assert value(metrics, names.SECRET_EXPIRY, **labels) == EXPIRES.timestamp()
    assert value(metrics, names.RENEWAL_TIME, **labels) == RENEWS.timestamp()

    retry = RENEWS + timedelta(seconds=5)
    metrics.schedule(KIND, "team-a", "app", expires_at=EXPIRES, renewal_at=retry)
    assert value(metrics, names.RENEWAL_TIME, **labels) == retry.timestamp()


def test_none_removes_a_series_and_forget_removes_both() -> None:
    metrics = Metrics()
    metrics.schedule(KIND, "team-a", "app", expires_at=EXPIRES, renewal_at=RENEWS)
    metrics.schedule(KIND, "team-a", "other", expires_at=EXPIRES, renewal_at=RENEWS)
    app = {"kind": KIND, "namespace": "team-a", "name": "app"}

    metrics.schedule(KIND, "team-a", "app", expires_at=EXPIRES, renewal_at=None)  # e.g. refused
    assert value(metrics, names.RENEWAL_TIME, **app) is None
    assert value(metrics, names.SECRET_EXPIRY, **app) == EXPIRES.timestamp()

    metrics.forget(KIND, "team-a", "app")
    metrics.forget(KIND, "team-a", "app")  # twice, or never seen: no error
    metrics.forget("ClusterEcrPullSecret", "team-a", "app")
    text = metrics.exposition()
    assert 'name="app"' not in text
    assert 'name="other"' in text


def test_renewals_count_by_result_and_reason_with_durations() -> None:
    metrics = Metrics()
    metrics.renewal("success", "Issued", 0.3)
    metrics.renewal("success", "Renewed", 0.2)
    metrics.renewal("failure", "AccessDenied", 1.5)
    metrics.renewal("failure", "AccessDenied", 2.0)

    assert value(metrics, "ecr_pull_secrets_renewals_total", result="failure", reason="AccessDenied") == 2
    assert value(metrics, "ecr_pull_secrets_renewals_total", result="success", reason="Renewed") == 1
    assert value(metrics, "ecr_pull_secrets_renewal_duration_seconds_count", result="failure") == 2
    assert value(metrics, "ecr_pull_secrets_renewal_duration_seconds_sum", result="failure") == 3.5
    fast = value(metrics, "ecr_pull_secrets_renewal_duration_seconds_bucket", result="success", le="0.25")
    assert fast == 1


@pytest.mark.parametrize(
    "reason",
    [
        "AWS:ecr-token-000001-0123456789ab",  # token-shaped
        "QVdTOnNlY3JldA==",  # base64
        "access denied for arn:aws:iam::123456789012:role/x",  # free text
        "",
        "A" * 65,
    ],
)
def test_reasons_that_are_not_camelcase_words_are_recorded_as_unknown(reason: str) -> None:
    metrics = Metrics()
    metrics.renewal("failure", reason, 1.0)
    assert value(metrics, "ecr_pull_secrets_renewals_total", result="failure", reason="Unknown") == 1
    if reason:
        assert reason not in metrics.exposition()


def test_exposition_names_every_metric_and_no_token_material() -> None:
    metrics = Metrics()
    metrics.schedule(KIND, "team-a", "app", expires_at=EXPIRES, renewal_at=RENEWS)
    metrics.renewal("success", "Issued", 0.3)
    metrics.aws_request("ecr", "GetAuthorizationToken", "success")

    text = metrics.exposition()
    for name in (
        "ecr_pull_secrets_secret_expiry_timestamp_seconds",
        "ecr_pull_secrets_renewal_timestamp_seconds",
        "ecr_pull_secrets_renewals_total",
        "ecr_pull_secrets_renewal_duration_seconds_bucket",
        "ecr_pull_secrets_aws_requests_total",
    ):
        assert f"\n{name}{{" in text
    label_values = set(re.findall(r'="([^"]*)"', text))
    assert label_values <= {
        KIND,
        "team-a",
        "app",
        "success",
        "Issued",
        "ecr",
        "GetAuthorizationToken",
        *(str(b) for b in names.RENEWAL_BUCKETS),
        "+Inf",
    }


def _session(metrics: Metrics | None, config: Config | None = None) -> ChainSession:
    boto = botocore.session.Session()
    boto.set_credentials("AKIDEXAMPLE", "not-a-secret")
    config = config or Config(retries={"mode": "standard", "max_attempts": 1})
    return ChainSession(boto, "aws", None, RateLimiter(1000.0), config, metrics)


def test_aws_calls_are_counted_by_service_operation_and_result() -> None:
    metrics = Metrics()
    ecr = _session(metrics).client("ecr", "us-east-1")
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    with Stubber(ecr) as stub:
        stub.add_response(
            "get_authorization_token",
            {"authorizationData": [{"authorizationToken": "QVdTOnRva2Vu", "expiresAt": expires}]},
        )
        stub.add_client_error("get_authorization_token", "ThrottlingException", http_status_code=400)
        stub.add_client_error("get_authorization_token", "AccessDeniedException", http_status_code=400)
        stub.add_client_error("get_authorization_token", "Whatever", http_status_code=429)
        ecr.get_authorization_token()
        for _ in range(3):
            with pytest.raises(ecr.exceptions.ClientError):
                ecr.get_authorization_token()

    def count(result: str) -> float | None:
        return value(
            metrics,
            "ecr_pull_secrets_aws_requests_total",
            service="ecr",
            operation="GetAuthorizationToken",
            result=result,
        )

    assert (count("success"), count("throttled"), count("error")) == (1, 2, 1)
    assert "QVdTOnRva2Vu" not in metrics.exposition()


def test_aws_calls_without_a_response_count_as_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:  # a port nobody listens on: connection refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    metrics = Metrics()
    sts = _session(metrics, Config(retries={"max_attempts": 1}, connect_timeout=1)).sts()

    with pytest.raises(Exception, match="Could not connect"):
        sts.get_caller_identity()

    assert (
        value(
            metrics,
            "ecr_pull_secrets_aws_requests_total",
            service="sts",
            operation="GetCallerIdentity",
            result="error",
        )
        == 1
    )


def test_sessions_without_metrics_record_nothing() -> None:
    ecr = _session(None).client("ecr", "us-east-1")
    with Stubber(ecr) as stub:
        stub.add_client_error("get_authorization_token", "ThrottlingException", http_status_code=400)
        with pytest.raises(ecr.exceptions.ClientError):
            ecr.get_authorization_token()


def test_serves_the_exposition_over_http() -> None:
    metrics = Metrics()
    metrics.renewal("success", "Issued", 0.1)
    port = metrics.serve(0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        metrics.close()
    assert 'ecr_pull_secrets_renewals_total{reason="Issued",result="success"} 1.0' in body


# -- the example PrometheusRule ------------------------------------------------------------------


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    assert document["metadata"]["name"]
    rules: list[dict[str, Any]] = [r for group in document["spec"]["groups"] for r in group["rules"]]
    return rules


def test_example_alerts_parse_and_name_only_defined_series() -> None:
    rules = _rules()
    defined = Metrics().series_names()
    assert {r["alert"] for r in rules} == {"EcrPullSecretExpiringSoon", "EcrPullSecretRenewalsFailing"}
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        used = set(re.findall(r"\becr_pull_secrets_[a-z_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= defined, f"{rule['alert']} names undefined series {sorted(used - defined)}"


def test_example_alerts_say_what_was_asked() -> None:
    by_name = {r["alert"]: " ".join(r["expr"].split()) for r in _rules()}
    assert (
        "ecr_pull_secrets_secret_expiry_timestamp_seconds) - time() < 3600"
        in by_name["EcrPullSecretExpiringSoon"]
    )
    failing = by_name["EcrPullSecretRenewalsFailing"]
    assert 'ecr_pull_secrets_renewals_total{result="failure"}[15m]' in failing
    assert 'unless on () sum(increase(ecr_pull_secrets_renewals_total{result="success"}[15m])) > 0' in failing
