"""plan.status.fanout: namespace counts, the bounded failure list, and Ready as the namespaces imply."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ecr_pull_secrets.model.resource import Resource, Status
from ecr_pull_secrets.model.scope import NamespaceScope
from ecr_pull_secrets.model.timestamps import format_time
from ecr_pull_secrets.plan.renewal import Trigger
from ecr_pull_secrets.plan.status import (
    MAX_LISTED_FAILURES,
    NAMESPACE_REASONS,
    Failure,
    Issued,
    NamespaceFailure,
    failure,
    fanout,
    success,
)
from tests.unit.factories import GENERATION, NOW, ago, condition, issued, later, resource

Z_NOW = format_time(NOW)
T0 = ago(hours=4)  # when issued() became Ready
T1 = ago(hours=1)
CONFLICT = "Secret pull already exists and is not managed by this ClusterEcrPullSecret"
DENIED = Failure("AccessDenied", "ecr:GetAuthorizationToken in us-east-1 failed: AccessDeniedException")
ISSUED = Issued("pull", 1, later(hours=12), later(hours=8), None)


def namespaced(status: Status | None = None) -> Resource:
    return resource(status if status is not None else issued())


def cluster(status: Status | None = None) -> Resource:
    return resource(status if status is not None else issued(), scope=NamespaceScope())


def failures(count: int, reason: str = "SecretConflict") -> list[NamespaceFailure]:
    return [NamespaceFailure(f"ns-{i:02d}", reason, f"message {i}") for i in range(count)]


def ready_of(patch: dict[str, Any]) -> dict[str, Any]:
    (ready,) = [c for c in patch["conditions"] if c["type"] == "Ready"]
    return ready


def test_namespace_reasons() -> None:
    assert frozenset({"SecretConflict", "KubernetesError"}) == NAMESPACE_REASONS
    assert MAX_LISTED_FAILURES == 10


@pytest.mark.parametrize(
    ("targets", "failed", "ready", "listed"),
    [
        pytest.param(0, 0, 0, None, id="no-targets"),
        pytest.param(1, 0, 1, None, id="one-ready"),
        pytest.param(7, 0, 7, None, id="all-ready"),
        pytest.param(1, 1, 0, ["ns-00"], id="one-failed"),
        pytest.param(5, 2, 3, ["ns-00", "ns-01"], id="some-failed"),
        pytest.param(10, 10, 0, [f"ns-{i:02d}" for i in range(10)], id="ten-listed"),
        pytest.param(11, 11, 0, [f"ns-{i:02d}" for i in range(10)], id="eleventh-not-listed"),
        pytest.param(50, 13, 37, [f"ns-{i:02d}" for i in range(10)], id="bounded"),
    ],
)
def test_fanout_counts_and_bounded_list(
    targets: int, failed: int, ready: int, listed: list[str] | None
) -> None:
    patch = fanout(cluster(), targets=targets, failures=failures(failed), base=None, now=NOW)

    assert patch["targetNamespaces"] == targets
    assert patch["readyNamespaces"] == ready
    if listed is None:
        assert patch["failedNamespaces"] is None, "null clears the list in a merge patch"
    else:
        assert [f["namespace"] for f in patch["failedNamespaces"]] == listed


def test_fanout_lists_each_failure_in_full() -> None:
    found = [
        NamespaceFailure("team-b", "SecretConflict", CONFLICT),
        NamespaceFailure("team-c", "KubernetesError", "create Secret team-c/pull: 403 Forbidden"),
    ]

    patch = fanout(cluster(), targets=4, failures=found, base=None, now=NOW)

    assert patch["failedNamespaces"] == [
        {"namespace": "team-b", "reason": "SecretConflict", "message": CONFLICT},
        {
            "namespace": "team-c",
            "reason": "KubernetesError",
            "message": "create Secret team-c/pull: 403 Forbidden",
        },
    ]


@pytest.mark.parametrize("target", [namespaced(), cluster()], ids=["namespaced", "cluster"])
def test_fanout_all_ready_without_base_changes_no_condition(target: Resource) -> None:
    assert fanout(target, targets=3, failures=[], base=None, now=NOW) == {
        "targetNamespaces": 3,
        "readyNamespaces": 3,
        "failedNamespaces": None,
    }


def test_fanout_namespaced_failure_reports_its_message() -> None:
    found = [NamespaceFailure("team-a", "SecretConflict", CONFLICT)]

    patch = fanout(namespaced(), targets=1, failures=found, base=None, now=NOW)

    assert patch == {
        "targetNamespaces": 1,
        "readyNamespaces": 0,
        "failedNamespaces": [{"namespace": "team-a", "reason": "SecretConflict", "message": CONFLICT}],
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "SecretConflict",
                "message": CONFLICT,
                "observedGeneration": GENERATION,
                "lastTransitionTime": Z_NOW,
            }
        ],
    }


@pytest.mark.parametrize(
    ("targets", "found", "message"),
    [
        pytest.param(5, failures(1), "4 of 5 namespaces ready; ns-00: message 0", id="one"),
        pytest.param(5, failures(2), "3 of 5 namespaces ready; ns-00: message 0; ns-01: message 1", id="two"),
        pytest.param(
            3,
            failures(3),
            "0 of 3 namespaces ready; ns-00: message 0; ns-01: message 1; ns-02: message 2",
            id="three-all-listed",
        ),
        pytest.param(
            5,
            failures(4),
            "1 of 5 namespaces ready; ns-00: message 0; ns-01: message 1; ns-02: message 2; and 1 more",
            id="four-one-more",
        ),
        pytest.param(
            20,
            failures(13),
            "7 of 20 namespaces ready; ns-00: message 0; ns-01: message 1; ns-02: message 2; and 10 more",
            id="thirteen-ten-more",
        ),
    ],
)
def test_fanout_cluster_failure_message(targets: int, found: list[NamespaceFailure], message: str) -> None:
    ready = ready_of(fanout(cluster(), targets=targets, failures=found, base=None, now=NOW))

    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "SecretConflict", message)


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        pytest.param(
            [NamespaceFailure("a", "KubernetesError", "x"), NamespaceFailure("b", "SecretConflict", "y")],
            "KubernetesError",
            id="kubernetes-error-first",
        ),
        pytest.param(
            [NamespaceFailure("a", "SecretConflict", "x"), NamespaceFailure("b", "KubernetesError", "y")],
            "SecretConflict",
            id="conflict-first",
        ),
    ],
)
def test_fanout_ready_reason_is_the_first_failures(found: list[NamespaceFailure], reason: str) -> None:
    assert ready_of(fanout(cluster(), targets=2, failures=found, base=None, now=NOW))["reason"] == reason


def test_fanout_failure_keeps_transition_time_and_other_conditions() -> None:
    before = (
        condition("Ready", "False", reason="SecretConflict", since=T1),
        condition("Degraded", "False", reason="Renewed", since=T0),
    )
    target = cluster(issued(conditions=before))

    patch = fanout(target, targets=2, failures=failures(1, "KubernetesError"), base=None, now=NOW)

    assert patch["conditions"] == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "KubernetesError",
            "message": "1 of 2 namespaces ready; ns-00: message 0",
            "observedGeneration": GENERATION,
            "lastTransitionTime": format_time(T1),
        },
        condition("Degraded", "False", reason="Renewed", since=T0),
    ]


# -- recovery without a new token ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param(
            namespaced(issued(conditions=(condition("Ready", "False", reason="SecretConflict", since=T1),))),
            "Secret pull is valid until 2025-03-01T20:00:00Z",
            id="namespaced-after-conflict",
        ),
        pytest.param(
            namespaced(issued(conditions=(condition("Ready", "False", reason="KubernetesError", since=T1),))),
            "Secret pull is valid until 2025-03-01T20:00:00Z",
            id="namespaced-after-kubernetes-error",
        ),
        pytest.param(
            cluster(issued(conditions=(condition("Ready", "False", reason="SecretConflict", since=T1),))),
            "Secret pull is ready in 4 namespace(s)",
            id="cluster-after-conflict",
        ),
        pytest.param(
            cluster(issued(conditions=(condition("Ready", "False", reason="KubernetesError", since=T1),))),
            "Secret pull is ready in 4 namespace(s)",
            id="cluster-after-kubernetes-error",
        ),
    ],
)
def test_fanout_recovers_ready_after_a_namespace_failure(target: Resource, message: str) -> None:
    patch = fanout(target, targets=4, failures=[], base=None, now=NOW)

    assert patch == {
        "targetNamespaces": 4,
        "readyNamespaces": 4,
        "failedNamespaces": None,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reconciled",
                "message": message,
                "observedGeneration": GENERATION,
                "lastTransitionTime": Z_NOW,
            }
        ],
    }


def ready_false(reason: str) -> tuple[dict[str, Any], ...]:
    return (condition("Ready", "False", reason=reason, since=T1),)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(cluster(issued(conditions=ready_false("AccessDenied"))), id="aws-failure"),
        pytest.param(namespaced(issued(conditions=ready_false("AccessDenied"))), id="aws-failure-namespaced"),
        pytest.param(cluster(issued(conditions=ready_false("AuthUnresolved"))), id="auth-unresolved"),
        pytest.param(cluster(issued(conditions=ready_false("InvalidSpec"))), id="invalid-spec"),
        pytest.param(cluster(issued(conditions=ready_false("AuthNotAllowed"))), id="auth-not-allowed"),
        pytest.param(
            cluster(issued(conditions=ready_false("SecretConflict"), expires_at=NOW)),
            id="conflict-token-expired-now",
        ),
        pytest.param(
            cluster(issued(conditions=ready_false("SecretConflict"), expires_at=ago(seconds=1))),
            id="conflict-token-expired",
        ),
        pytest.param(cluster(Status(conditions=ready_false("SecretConflict"))), id="conflict-never-issued"),
        pytest.param(cluster(issued(conditions=())), id="no-ready-condition"),
        pytest.param(
            cluster(issued(conditions=(condition("Degraded", "True", reason="SecretConflict"),))),
            id="only-degraded-has-the-reason",
        ),
    ],
)
def test_fanout_does_not_recover_ready_otherwise(target: Resource) -> None:
    patch = fanout(target, targets=4, failures=[], base=None, now=NOW)

    assert "conditions" not in patch


# -- with this pass's success or failure patch ---------------------------------------------------


def test_fanout_with_success_base_and_no_failures_adds_only_counts() -> None:
    target = cluster(issued(conditions=ready_false("SecretConflict")))
    base = success(target, ISSUED, Trigger.RENEW, NOW)
    before = copy.deepcopy(base)

    patch = fanout(target, targets=2, failures=[], base=base, now=NOW)

    assert patch == {**before, "targetNamespaces": 2, "readyNamespaces": 2, "failedNamespaces": None}
    assert ready_of(patch)["reason"] == "Renewed", "the success speaks, not 'Reconciled'"
    assert base == before, "the base patch is not modified"


def test_fanout_with_success_base_and_failures_clears_ready() -> None:
    target = cluster()
    base = success(target, ISSUED, Trigger.RENEW, NOW)

    patch = fanout(target, targets=3, failures=failures(1), base=base, now=NOW)

    assert patch["expiresAt"] == "2025-03-02T00:00:00Z", "the rest of the success stays"
    assert [(c["type"], c["status"], c["reason"]) for c in patch["conditions"]] == [
        ("Ready", "False", "SecretConflict"),
        ("Degraded", "False", "Renewed"),
    ]
    assert ready_of(patch)["message"] == "2 of 3 namespaces ready; ns-00: message 0"
    assert ready_of(patch)["lastTransitionTime"] == Z_NOW, "Ready went True -> False"


@pytest.mark.parametrize("target", [namespaced(Status()), cluster(Status())], ids=["namespaced", "cluster"])
def test_fanout_keeps_an_aws_failure_not_ready(target: Resource) -> None:
    base = failure(target, DENIED, later(seconds=5), NOW)

    patch = fanout(target, targets=2, failures=[], base=base, now=NOW)

    ready = ready_of(patch)
    assert (ready["status"], ready["reason"]) == ("False", "AccessDenied")
    assert patch["conditions"] == base["conditions"]


def test_fanout_aws_failure_then_quiet_pass_stays_not_ready() -> None:
    """The next pass (no base) after an AWS failure while the old token is still valid on paper."""
    target = cluster(issued(conditions=ready_false("AccessDenied")))

    assert "conditions" not in fanout(target, targets=2, failures=[], base=None, now=NOW)
