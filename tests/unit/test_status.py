"""plan.status: the conditions and fields written after a success, a failure or a rejected spec."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ecr_pull_secrets.model.resource import Status
from ecr_pull_secrets.model.timestamps import format_time
from ecr_pull_secrets.plan.renewal import Trigger
from ecr_pull_secrets.plan.status import Failure, Issued, failure, rejected, success
from tests.unit.factories import GENERATION, NOW, ago, condition, issued, later, resource

T0 = ago(days=2)
T1 = ago(hours=3)
Z_NOW = format_time(NOW)
ISSUED = Issued(
    secret_name="pull",
    registries=2,
    expires_at=later(hours=12),
    renewal_time=later(hours=8),
    identity="arn:aws:sts::123456789012:assumed-role/op/pod",
)
DENIED = Failure("AccessDenied", "ecr:GetAuthorizationToken in us-east-1 failed: AccessDeniedException")


def by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conditions}


@pytest.mark.parametrize(
    ("trigger", "reason"),
    [
        pytest.param(Trigger.ISSUE, "Issued", id="issue"),
        pytest.param(Trigger.RENEW, "Renewed", id="renew"),
        pytest.param(Trigger.SPEC_CHANGED, "Renewed", id="spec-changed"),
        pytest.param(Trigger.FORCED, "Renewed", id="forced"),
        pytest.param(Trigger.REPAIR, "Renewed", id="repair-without-held-tokens"),
    ],
)
def test_success(trigger: Trigger, reason: str) -> None:
    target = resource(Status(failed_attempts=4, last_failure_time=ago(minutes=1)), force_refresh="r7")

    assert success(target, ISSUED, trigger, NOW) == {
        "secretName": "pull",
        "expiresAt": "2025-03-02T00:00:00Z",
        "renewalTime": "2025-03-01T20:00:00Z",
        "lastRefreshTime": Z_NOW,
        "lastFailureTime": None,
        "failedAttempts": 0,
        "identity": "arn:aws:sts::123456789012:assumed-role/op/pod",
        "observedGeneration": GENERATION,
        "forceRefresh": "r7",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": reason,
                "message": "Secret pull holds tokens for 2 registries, valid until 2025-03-02T00:00:00Z",
                "observedGeneration": GENERATION,
                "lastTransitionTime": Z_NOW,
            },
            {
                "type": "Degraded",
                "status": "False",
                "reason": reason,
                "message": "Last renewal succeeded",
                "observedGeneration": GENERATION,
                "lastTransitionTime": Z_NOW,
            },
        ],
    }


def test_success_message_singular() -> None:
    one = Issued("pull", 1, later(hours=12), later(hours=8), None)

    ready = success(resource(), one, Trigger.ISSUE, NOW)["conditions"][0]

    assert ready["message"] == "Secret pull holds tokens for 1 registry, valid until 2025-03-02T00:00:00Z"


def test_success_after_failure_keeps_ready_transition_and_flips_degraded() -> None:
    before = (
        condition("Ready", "True", generation=1, since=T0),
        condition("Degraded", "True", generation=1, reason="AccessDenied", since=T1),
    )

    conditions = by_type(
        success(resource(issued(conditions=before)), ISSUED, Trigger.RENEW, NOW)["conditions"]
    )

    assert conditions["Ready"]["lastTransitionTime"] == format_time(T0), "Ready stayed True"
    assert conditions["Ready"]["observedGeneration"] == GENERATION
    assert conditions["Degraded"]["status"] == "False"
    assert conditions["Degraded"]["lastTransitionTime"] == Z_NOW, "Degraded went True -> False"


@pytest.mark.parametrize(
    ("expires_at", "retry_at", "degraded_message"),
    [
        pytest.param(
            later(hours=2),
            later(seconds=10),
            f"{DENIED.message}; Secret pull stays valid until 2025-03-01T14:00:00Z; "
            "retrying at 2025-03-01T12:00:10Z",
            id="with-retry",
        ),
        pytest.param(
            later(seconds=1),
            None,
            f"{DENIED.message}; Secret pull stays valid until 2025-03-01T12:00:01Z",
            id="no-retry",
        ),
    ],
)
def test_failure_while_secret_valid_keeps_ready(
    expires_at: datetime, retry_at: datetime | None, degraded_message: str
) -> None:
    ready = condition("Ready", "True", generation=1, reason="Renewed", since=T0)
    target = resource(
        issued(expires_at=expires_at, failed_attempts=2, conditions=(ready,)), force_refresh="r2"
    )

    patch = failure(target, DENIED, retry_at, NOW)

    assert patch == {
        "lastFailureTime": Z_NOW,
        "failedAttempts": 3,
        "conditions": [
            {**ready, "observedGeneration": GENERATION},
            {
                "type": "Degraded",
                "status": "True",
                "reason": "AccessDenied",
                "message": degraded_message,
                "observedGeneration": GENERATION,
                "lastTransitionTime": Z_NOW,
            },
        ],
    }


def test_failure_while_secret_valid_without_ready_condition_reports_ready() -> None:
    patch = failure(resource(issued(conditions=())), DENIED, None, NOW)

    ready = by_type(patch["conditions"])["Ready"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("True", "SecretValid", Z_NOW)


def test_failure_after_fixed_invalid_spec_does_not_report_invalid_spec() -> None:
    stale = condition("Ready", "False", generation=GENERATION - 1, reason="InvalidSpec", since=T1)
    target = resource(issued(observed_generation=GENERATION - 2, conditions=(stale,)))

    ready = by_type(failure(target, DENIED, later(seconds=5), NOW)["conditions"])["Ready"]

    assert ready["status"] == "True", "the old Secret is still valid"
    assert ready["reason"] != "InvalidSpec", "generation 3 parsed fine"


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(Status(), id="never-issued"),
        pytest.param(issued(expires_at=NOW), id="expired-now"),
        pytest.param(issued(expires_at=ago(hours=1)), id="expired"),
        pytest.param(issued(secret_name=None), id="no-secret"),
    ],
)
def test_failure_without_valid_secret_clears_ready(status: Status) -> None:
    target = resource(status, conditions=(condition("Ready", "True", since=T0),))

    conditions = failure(target, DENIED, later(seconds=5), NOW)["conditions"]

    message = f"{DENIED.message}; retrying at 2025-03-01T12:00:05Z"
    expected = {"status": "False", "reason": "AccessDenied", "message": message, "lastTransitionTime": Z_NOW}
    assert [c["type"] for c in conditions] == ["Ready", "Degraded"]
    assert {k: conditions[0][k] for k in expected} == expected, "Ready went True -> False"
    assert {k: conditions[1][k] for k in expected} == {**expected, "status": "True"}


def test_repeated_failure_keeps_transition_times() -> None:
    before = (
        condition("Ready", "False", reason="AccessDenied", since=T0),
        condition("Degraded", "True", reason="AccessDenied", since=T1),
    )
    target = resource(Status(failed_attempts=5, conditions=before))

    patch = failure(target, Failure("Throttled", "slow down"), None, NOW)

    assert patch["failedAttempts"] == 6
    conditions = by_type(patch["conditions"])
    assert conditions["Ready"]["lastTransitionTime"] == format_time(T0)
    assert conditions["Degraded"]["lastTransitionTime"] == format_time(T1)
    assert conditions["Ready"]["reason"] == conditions["Degraded"]["reason"] == "Throttled"
    assert conditions["Degraded"]["message"] == "slow down"


NO_REGISTRY = ("InvalidSpec", "spec.registries must name at least one ECR registry")
NOT_ALLOWED = ("AuthNotAllowed", "namespace team-a may not use the operator's own AWS identity")


@pytest.mark.parametrize(
    ("verdict", "before", "transition"),
    [
        pytest.param(NO_REGISTRY, [], Z_NOW, id="invalid-no-conditions"),
        pytest.param(NO_REGISTRY, [condition("Ready", "True", since=T0)], Z_NOW, id="invalid-was-ready"),
        pytest.param(
            NO_REGISTRY,
            [condition("Ready", "False", reason="InvalidSpec", since=T0)],
            format_time(T0),
            id="invalid-was-invalid",
        ),
        pytest.param(NOT_ALLOWED, [], Z_NOW, id="refused-no-conditions"),
        pytest.param(NOT_ALLOWED, [condition("Ready", "True", since=T0)], Z_NOW, id="refused-was-ready"),
        pytest.param(
            NOT_ALLOWED,
            [condition("Ready", "False", reason="InvalidSpec", since=T0)],
            format_time(T0),
            id="refused-was-invalid",
        ),
        pytest.param(
            NO_REGISTRY,
            [condition("Ready", "False", reason="AccessDenied", since=T0)],
            format_time(T0),
            id="invalid-was-failing",
        ),
    ],
)
def test_rejected(verdict: tuple[str, str], before: list[dict[str, Any]], transition: str) -> None:
    reason, message = verdict
    degraded = condition("Degraded", "True", reason="AccessDenied", since=T1)

    patch = rejected([*before, degraded], 9, reason, message, NOW)

    assert patch == {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": reason,
                "message": message,
                "observedGeneration": 9,
                "lastTransitionTime": transition,
            },
            degraded,
        ]
    }


def test_rejected_touches_only_conditions() -> None:
    """A rejected spec leaves the Secret, expiry and failure count as they were."""
    before = [condition("Ready", "True", since=T0)]

    patch = rejected(before, 4, *NOT_ALLOWED, NOW)

    assert list(patch) == ["conditions"]
    assert before == [condition("Ready", "True", since=T0)], "the input is not modified"


def test_conditions_keep_foreign_types_ready_first_then_alphabetical() -> None:
    before = (condition("Zeta", "True"), condition("Alpha", "False"))

    conditions = success(resource(issued(conditions=before)), ISSUED, Trigger.RENEW, NOW)["conditions"]

    assert [c["type"] for c in conditions] == ["Ready", "Alpha", "Degraded", "Zeta"]
    assert conditions[1] == condition("Alpha", "False")
