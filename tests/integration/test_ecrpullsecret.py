"""EcrPullSecret end to end: real apiserver + controller-manager, the AWS emulator, the operator."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from typing import Any

from tests.harness import dockerconfig
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
WEST = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
EAST_OTHER_ACCOUNT = "111122223333.dkr.ecr.us-east-1.amazonaws.com"


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_create_writes_secret_for_every_registry_within_5s(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    started = time.monotonic()
    eps = kube.create_eps(namespace, "app", {"registries": [EAST, WEST], "secretName": "app-ecr"})

    secret = wait_for("the pull Secret", lambda: kube.get_secret(namespace, "app-ecr"), timeout=5)
    to_secret = time.monotonic() - started
    body = kube.wait_ready(namespace, "app", timeout=5)
    print(f"create -> Secret {to_secret:.2f}s, -> Ready {time.monotonic() - started:.2f}s")

    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    auths = dockerconfig.auths(secret)
    assert set(auths) == {EAST, WEST}
    for entry in auths.values():
        assert entry["username"] == "AWS"
        assert base64.b64decode(entry["auth"]).decode() == f"AWS:{entry['password']}"
        assert entry["password"] in aws.issued_tokens()
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ecr-pull-secret-operator"
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "EcrPullSecret",
        "app",
        eps["metadata"]["uid"],
        True,
    )
    status = body["status"]
    assert status["secretName"] == "app-ecr"
    assert status["identity"] == "arn:aws:sts::123456789012:user/moto"
    assert status["observedGeneration"] == body["metadata"]["generation"]
    # Two regions, two tokens: one GetAuthorizationToken each; renewal 4h ahead of the 12h expiry.
    assert aws.calls("GetAuthorizationToken", service="ecr") == 2
    lead = _epoch(status["expiresAt"]) - _epoch(status["renewalTime"])
    assert 4 * 3600 <= lead <= 4 * 3600 * 1.1 + 1


def test_registries_sharing_a_region_share_one_token(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    kube.create_eps(namespace, "app", {"registries": [EAST, EAST_OTHER_ACCOUNT]})
    kube.wait_ready(namespace, "app")
    assert aws.calls("GetAuthorizationToken", service="ecr") == 1


def test_changing_registries_updates_the_same_secret(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    kube.wait_ready(namespace, "app")
    before = kube.get_secret(namespace, "app")
    assert before is not None

    kube.patch_eps(namespace, "app", {"spec": {"registries": [EAST, WEST]}})

    def updated() -> dict[str, object] | None:
        secret = kube.get_secret(namespace, "app")
        return secret if secret and set(dockerconfig.auths(secret)) == {EAST, WEST} else None

    after = wait_for("the Secret to list both registries", updated, timeout=5)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # type: ignore[index]
    assert after["metadata"]["creationTimestamp"] == before["metadata"]["creationTimestamp"]  # type: ignore[index]
    kube.wait_ready(namespace, "app")


def test_deleting_the_resource_garbage_collects_the_secret(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    kube.wait_ready(namespace, "app")
    assert kube.get_secret(namespace, "app") is not None

    kube.delete_eps(namespace, "app")

    wait_for(
        "the Secret to be garbage-collected", lambda: kube.get_secret(namespace, "app") is None, timeout=30
    )


def test_renews_before_every_expiry(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    """24s tokens renewed a third of their life (8s) ahead, as renewBefore (at least 5m) exceeds
    that life: over several cycles the Secret never holds an expired token."""
    aws.token_lifetime = 24
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    kube.wait_ready(namespace, "app")

    seen: list[tuple[str, float]] = []  # (password, real expiry per the emulator)
    deadline = time.monotonic() + 55
    while time.monotonic() < deadline and len(seen) < 4:
        secret = kube.get_secret(namespace, "app")
        assert secret is not None
        [password] = dockerconfig.passwords(secret)
        expiry = aws.issued_tokens()[password]
        now = time.time()
        assert expiry > now, f"the Secret holds a token that expired {now - expiry:.1f}s ago"
        if not seen or seen[-1][0] != password:
            seen.append((password, expiry))
        time.sleep(0.25)

    assert len(seen) >= 4, f"only {len(seen) - 1} renewals in 55s"
    expiries = [expiry for _, expiry in seen]
    assert expiries == sorted(expiries)
    assert len(set(expiries)) == len(expiries)
    status = kube.get_eps(namespace, "app")["status"]
    assert _epoch(status["expiresAt"]) > time.time()


def test_restart_with_fresh_secrets_makes_no_aws_calls_and_no_writes(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    names = [f"app-{i}" for i in range(5)]
    for name in names:
        kube.create_eps(namespace, name, {"registries": [EAST, WEST]})
    for name in names:
        kube.wait_ready(namespace, name)
    operator.stop()
    calls_before = aws.call_counts()
    versions = {n: kube.get_secret(namespace, n)["metadata"]["resourceVersion"] for n in names}  # type: ignore[index]
    resources = {n: kube.get_eps(namespace, n)["metadata"]["resourceVersion"] for n in names}

    operator.start()
    time.sleep(5)  # several watch round-trips: enough for any write the operator would make

    assert aws.call_counts() == calls_before
    assert {n: kube.get_secret(namespace, n)["metadata"]["resourceVersion"] for n in names} == versions  # type: ignore[index]
    assert {n: kube.get_eps(namespace, n)["metadata"]["resourceVersion"] for n in names} == resources


def test_aws_failure_keeps_the_secret_and_reports_why(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    aws.token_lifetime = 30  # renewed a third of its life (10s) ahead
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    kube.wait_ready(namespace, "app")
    original = kube.get_secret(namespace, "app")
    assert original is not None
    aws.fail("GetAuthorizationToken", "AccessDeniedException", status=400, service="ecr")

    degraded = wait_for(
        "a Degraded condition",
        lambda: (c := kube.condition(namespace, "app", "Degraded")).get("status") == "True" and c,
        timeout=30,
    )
    assert degraded["reason"] == "AccessDenied"
    assert "ecr:GetAuthorizationToken in us-east-1 failed: AccessDeniedException" in degraded["message"]
    assert "stays valid until" in degraded["message"]
    assert kube.condition(namespace, "app")["status"] == "True"  # the old Secret still works
    assert kube.get_secret(namespace, "app")["data"] == original["data"]  # type: ignore[index]
    reasons = {e["reason"] for e in kube.events(namespace) if e["type"] == "Warning"}
    assert "AccessDenied" in reasons

    # Once the token has expired for good, Ready turns False, and the Secret is still not touched.
    ready = wait_for(
        "Ready=False after expiry",
        lambda: (c := kube.condition(namespace, "app")).get("status") == "False" and c,
        timeout=30,
    )
    assert ready["reason"] == "AccessDenied"
    assert kube.get_secret(namespace, "app")["data"] == original["data"]  # type: ignore[index]
    failures = kube.get_eps(namespace, "app")["status"]["failedAttempts"]
    assert 2 <= failures <= 20, f"{failures} attempts: backoff is not holding"

    aws.clear_faults()
    wait_for("recovery", lambda: kube.condition(namespace, "app").get("reason") == "Renewed", timeout=15)
    assert kube.get_secret(namespace, "app")["data"] != original["data"]  # type: ignore[index]


def test_force_refresh_annotation_renews_at_once(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    kube.create_eps(namespace, "app", {"registries": [EAST]})
    kube.wait_ready(namespace, "app")
    [first] = dockerconfig.passwords(kube.get_secret(namespace, "app"))  # type: ignore[arg-type]
    time.sleep(1.1)  # the test operator's floor between renewals is 1s

    kube.patch_eps(
        namespace, "app", {"metadata": {"annotations": {"ecr.pullsecrets.dev/force-refresh": "1"}}}
    )

    def renewed() -> str | None:
        [password] = dockerconfig.passwords(kube.get_secret(namespace, "app"))  # type: ignore[arg-type]
        return password if password != first else None

    wait_for("a new token", renewed, timeout=5)
    assert kube.get_eps(namespace, "app")["status"]["forceRefresh"] == "1"
    assert aws.calls("GetAuthorizationToken", service="ecr") == 2


def test_existing_foreign_secret_is_never_overwritten(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "taken"}, "type": "Opaque", "data": {"k": "dmFsdWU="}}
    )
    kube.create_eps(namespace, "app", {"registries": [EAST], "secretName": "taken"})

    ready = wait_for(
        "Ready=False",
        lambda: (c := kube.condition(namespace, "app")).get("status") == "False" and c,
        timeout=5,
    )
    assert ready["reason"] == "SecretConflict"
    secret = kube.get_secret(namespace, "taken")
    assert secret is not None
    assert secret["data"] == {"k": "dmFsdWU="}
    assert "ownerReferences" not in secret["metadata"]


def test_token_never_appears_in_logs_events_or_status(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    aws.token_lifetime = 12  # renewed a third of its life (4s) ahead
    kube.create_eps(namespace, "app", {"registries": [EAST, WEST]})
    kube.wait_ready(namespace, "app")
    first = dockerconfig.passwords(kube.get_secret(namespace, "app"))  # type: ignore[arg-type]
    wait_for(  # at least one renewal, logged at DEBUG
        "a renewal",
        lambda: dockerconfig.passwords(kube.get_secret(namespace, "app")) != first,  # type: ignore[arg-type]
        timeout=20,
    )
    aws.fail("GetAuthorizationToken", "ThrottlingException", status=400, service="ecr", times=2)
    time.sleep(3)

    tokens = set(aws.issued_tokens())
    assert len(tokens) >= 3
    forms = {t for token in tokens for t in (token, base64.b64encode(f"AWS:{token}".encode()).decode())}
    haystacks = {
        "operator log": operator.log(),
        "events": json.dumps(kube.events(namespace)),
        "status": json.dumps(kube.get_eps(namespace, "app")),
    }
    # The queue logs each pass at DEBUG: the grep covers the most verbose output there is.
    assert f"working on EcrPullSecret {namespace}/app" in haystacks["operator log"]
    for where, text in haystacks.items():
        leaked = [t for t in forms if t in text]
        assert not leaked, f"{len(leaked)} forms of issued tokens found in the {where}"


def test_a_tenants_pull_secret_nested_too_deep_to_decode_does_not_stall_the_start(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    """A namespace writes its own Secrets, our label included. JSON 5,000 levels deep is valid for
    the API server (it takes 10,000); the start-up lists must end anyway, or no
    ClusterEcrPullSecret is ever served (it waits for them)."""
    nested = b'{"auths":' + b'{"a":' * 5000 + b"{}" + b"}" * 5000 + b"}"
    body: Any = {
        "metadata": {"name": "deep", "labels": {"app.kubernetes.io/managed-by": "ecr-pull-secret-operator"}},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(nested).decode()},
    }
    kube.core.create_namespaced_secret(namespace, body)
    operator.stop()
    operator.start()
    name = f"deep-{namespace}"
    kube.create_ceps(name, {"registries": [EAST], "namespaces": {"include": [namespace]}})
    try:
        wait_for("the ClusterEcrPullSecret's namespace ready", lambda: _ready_namespaces(kube, name) == 1, 30)
        assert kube.get_secret(namespace, "deep") is not None  # nobody's to remove
    finally:
        kube.delete_ceps(name)


def _ready_namespaces(kube: Kube, name: str) -> int:
    return int((kube.get_ceps(name).get("status") or {}).get("readyNamespaces") or 0)
