"""Events tell an EcrPullSecret's story in `kubectl describe`, with stable reasons: Issued on
create, Renewed after a refresh, a Warning naming the AWS failure, AuthNotAllowed when the
namespace policy refuses, SecretConflict when the Secret name is taken."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tests.harness.aws_emulator import AwsEmulator
from tests.harness.kube import Kube, wait_for
from tests.integration.conftest import StartOperator

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ROLE = "arn:aws:iam::111111111111:role/ecr-pull"
FORCE_REFRESH = "ecr.pullsecrets.dev/force-refresh"
# The operator's own identity for everyone; no role may be assumed.
OPERATOR_IDENTITY_ONLY = {"operatorIdentity": {"namespaces": ["*"]}}
# Every reason an Event may carry (README, "Condition reasons").
REASONS = {
    "Issued",
    "Renewed",
    "SecretValid",
    "AccessDenied",
    "Throttled",
    "InvalidCredentials",
    "NoCredentials",
    "AwsUnreachable",
    "AwsError",
    "AuthNotAllowed",
    "AuthUnresolved",
    "SecretConflict",
    "KubernetesError",
    "InvalidSpec",
}


def story(kube: Kube, namespace: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about one EcrPullSecret, oldest first."""
    events = [
        e
        for e in kube.events(namespace)
        if e["involvedObject"].get("kind") == "EcrPullSecret" and e["involvedObject"].get("name") == name
    ]
    events.sort(key=lambda e: (e.get("firstTimestamp") or e.get("eventTime") or "", e["metadata"]["name"]))
    return [(e["type"], e["reason"], e.get("message", "")) for e in events]


def reasons(kube: Kube, namespace: str, name: str) -> list[tuple[str, str]]:
    return [(type_, reason) for type_, reason, _ in story(kube, namespace, name)]


def wait_event(kube: Kube, namespace: str, name: str, type_: str, reason: str, *, count: int = 1) -> str:
    """Waits for the `count`th such Event; returns its message."""

    def seen() -> str | None:
        messages = [m for t, r, m in story(kube, namespace, name) if (t, r) == (type_, reason)]
        return messages[count - 1] if len(messages) >= count else None

    return wait_for(f"{type_} Event {reason} #{count} for {name}", seen, timeout=15)


def force_refresh(kube: Kube, namespace: str, name: str, value: str) -> None:
    kube.patch_eps(namespace, name, {"metadata": {"annotations": {FORCE_REFRESH: value}}})


def describe(kube: Kube, namespace: str, name: str) -> str:
    return kube.kubectl("describe", "ecrpullsecret", "-n", namespace, name).stdout


def described_events(kube: Kube, namespace: str, name: str) -> list[str]:
    """The `Events:` table of `kubectl describe`: one line per Event (type, reason, age, from, message)."""
    text = describe(kube, namespace, name)
    assert "Events:" in text, text
    table = text.split("Events:", 1)[1].splitlines()
    return [line.strip() for line in table if line.strip().startswith(("Normal", "Warning"))]


def assert_no_tokens(aws: AwsEmulator, events: list[dict[str, Any]]) -> None:
    text = json.dumps(events)
    for token in aws.issued_tokens():
        assert token not in text
        assert base64.b64encode(f"AWS:{token}".encode()).decode() not in text


def test_issued_renewed_failed_and_recovered(
    kube: Kube, namespace: str, start_operator: StartOperator, aws: AwsEmulator
) -> None:
    start_operator(policy=OPERATOR_IDENTITY_ONLY)
    kube.create_eps(namespace, "app", {"registries": [EAST]})

    issued = wait_event(kube, namespace, "app", "Normal", "Issued")
    assert "holds tokens for 1 registry, valid until" in issued

    time.sleep(1.1)  # the test operator's floor between two renewals is 1s
    force_refresh(kube, namespace, "app", "1")
    renewed = wait_event(kube, namespace, "app", "Normal", "Renewed")
    assert "valid until" in renewed

    aws.fail("GetAuthorizationToken", "AccessDeniedException", status=400, service="ecr")
    time.sleep(1.1)
    force_refresh(kube, namespace, "app", "2")
    denied = wait_event(kube, namespace, "app", "Warning", "AccessDenied")
    assert "ecr:GetAuthorizationToken in us-east-1 failed: AccessDeniedException" in denied
    assert "stays valid until" in denied  # the Warning says the old Secret still works

    aws.clear_faults()
    time.sleep(1.1)
    force_refresh(kube, namespace, "app", "3")
    wait_event(kube, namespace, "app", "Normal", "Renewed", count=2)

    told = reasons(kube, namespace, "app")
    issued_at, renewed_at = told.index(("Normal", "Issued")), told.index(("Normal", "Renewed"))
    assert issued_at < renewed_at < told.index(("Warning", "AccessDenied")) < len(told) - 1, told
    assert told[-1] == ("Normal", "Renewed"), told
    assert {reason for _, reason in told} <= REASONS

    # What `kubectl describe` shows: the same story, in the Events table.
    table = described_events(kube, namespace, "app")
    for type_, reason in [("Normal", "Issued"), ("Normal", "Renewed"), ("Warning", "AccessDenied")]:
        assert any(line.split()[:2] == [type_, reason] for line in table), table
    assert_no_tokens(aws, kube.events(namespace))


def test_refusals_and_conflicts_are_warnings_with_stable_reasons(
    kube: Kube, namespace: str, start_operator: StartOperator, aws: AwsEmulator
) -> None:
    start_operator(policy=OPERATOR_IDENTITY_ONLY)
    kube.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "taken"}, "type": "Opaque", "data": {"k": "dmFsdWU="}}
    )
    kube.create_eps(namespace, "chained", {"registries": [EAST], "auth": {"roleChain": [{"roleArn": ROLE}]}})
    kube.create_eps(namespace, "clash", {"registries": [EAST], "secretName": "taken"})

    refused = wait_event(kube, namespace, "chained", "Warning", "AuthNotAllowed")
    assert f"may not assume {ROLE}" in refused
    conflict = wait_event(kube, namespace, "clash", "Warning", "SecretConflict")
    assert "Secret taken already exists and is not managed by this EcrPullSecret" in conflict

    assert ("Normal", "Issued") not in reasons(kube, namespace, "chained")
    assert kube.condition(namespace, "clash")["reason"] == "SecretConflict"
    assert any(
        line.split()[:2] == ["Warning", "AuthNotAllowed"]
        for line in described_events(kube, namespace, "chained")
    )
    assert any(
        line.split()[:2] == ["Warning", "SecretConflict"]
        for line in described_events(kube, namespace, "clash")
    )
    # A refusal is said once, not on every pass.
    time.sleep(2)
    assert reasons(kube, namespace, "chained").count(("Warning", "AuthNotAllowed")) == 1
    assert_no_tokens(aws, kube.events(namespace))
