"""spec.output end to end (real apiserver, the AWS emulator, the operator): each shape's Secret, its
repair after tampering, a forced renewal, and a change of shape."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from tests.harness import dockerconfig
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, wait_for
from tests.harness.operator_process import OperatorProcess
from tests.harness.registry import Registry
from tests.hostile_specs import CEPS, EPS
from tests.integration.conftest import StartOperator
from tests.integration.test_admission import dry_run
from tests.integration.test_verified import APP, doctor_image, pushed, verifying, wait_verified

EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
"""The host the harness registry answers for (tests/integration/conftest.py REGISTRY_HOST)."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "ecr-pull-secret-operator"}
TEMPLATE = {
    "metadata": {
        "labels": {"team": "payments", "app.kubernetes.io/part-of": "shop"},
        "annotations": {"example.com/owner": "payments team"},
    }
}
ARGOCD_LABEL = "argocd.argoproj.io/secret-type"

# shape -> (Secret type, its data decoded with the token as TOKEN, the labels the shape adds)
SHAPES: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "dockerconfigjson": ("kubernetes.io/dockerconfigjson", {}, {}),
    "argocd": (
        "Opaque",
        {"url": EAST, "username": "AWS", "password": "TOKEN", "type": "helm", "enableOCI": "true"},
        {ARGOCD_LABEL: "repo-creds"},
    ),
    "basicAuth": ("kubernetes.io/basic-auth", {"username": "AWS", "password": "TOKEN"}, {}),
}


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def password(secret: dict[str, Any]) -> str:
    if secret["type"] == "kubernetes.io/dockerconfigjson":
        [found] = dockerconfig.passwords(secret)
        return found
    return decoded(secret)["password"]


def create(kube: Kube, namespace: str, shape: str) -> None:
    kube.create_eps(
        namespace, "app", {"registries": [EAST], "output": {"type": shape}, "secretTemplate": TEMPLATE}
    )
    kube.wait_ready(namespace, "app")


def wrong(secret: dict[str, Any] | None, shape: str, aws: AwsEmulator) -> list[str]:
    """What is wrong with the Secret for its shape: type, keys, labels, annotations, token."""
    if secret is None:
        return ["missing"]
    secret_type, data, labels = SHAPES[shape]
    meta = secret["metadata"]
    found = []
    if secret["type"] != secret_type:
        found.append(f"type {secret['type']}")
    if not {**labels, **MANAGED_BY, **TEMPLATE["metadata"]["labels"]}.items() <= meta["labels"].items():
        found.append(f"labels {meta['labels']}")
    if not TEMPLATE["metadata"]["annotations"].items() <= meta["annotations"].items():
        found.append("template annotations")
    try:
        token = password(secret)
    except (KeyError, ValueError):
        return [*found, "no password"]
    if token not in aws.issued_tokens():
        found.append("a password the emulator never issued")
    if shape == "dockerconfigjson" and set(dockerconfig.auths(secret)) != {EAST}:
        found.append("auths")
    if shape != "dockerconfigjson" and decoded(secret) != {
        k: token if v == "TOKEN" else v for k, v in data.items()
    }:
        found.append(f"keys {sorted(decoded(secret))}")
    return found


def is_whole(secret: dict[str, Any] | None, shape: str, aws: AwsEmulator) -> bool:
    return not wrong(secret, shape, aws)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_shape_becomes_ready_with_its_secret(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator, shape: str
) -> None:
    started = time.monotonic()
    create(kube, namespace, shape)
    print(f"{shape}: create -> Ready {time.monotonic() - started:.2f}s")

    secret = kube.get_secret(namespace, "app")
    assert secret is not None
    assert wrong(secret, shape, aws) == []
    if shape != "dockerconfigjson":
        assert secret["metadata"]["annotations"]["ecr.pullsecrets.dev/registry"] == EAST
    if shape != "argocd":
        assert ARGOCD_LABEL not in secret["metadata"]["labels"]


TAMPERING: list[tuple[str, str, dict[str, Any]]] = [
    ("argocd", "key-removed", {"data": {"enableOCI": None}}),
    ("argocd", "label-changed", {"metadata": {"labels": {ARGOCD_LABEL: "repository"}}}),
    ("argocd", "url-changed", {"data": {"url": base64.b64encode(b"evil.example.com").decode()}}),
    ("basicAuth", "key-removed", {"data": {"username": None}}),
    ("basicAuth", "template-label-removed", {"metadata": {"labels": {"team": None}}}),
    ("dockerconfigjson", "template-label-changed", {"metadata": {"labels": {"team": "other"}}}),
    (
        "dockerconfigjson",
        "template-annotation-removed",
        {"metadata": {"annotations": {"example.com/owner": None}}},
    ),
]


@pytest.mark.parametrize(("shape", "change", "patch"), TAMPERING, ids=[f"{s}-{c}" for s, c, _ in TAMPERING])
def test_a_tampered_secret_is_repaired(  # noqa: PLR0917  # fixtures and parameters, named by pytest
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    aws: AwsEmulator,
    shape: str,
    change: str,
    patch: dict[str, Any],
) -> None:
    create(kube, namespace, shape)
    before = kube.get_secret(namespace, "app")
    assert before is not None
    calls = aws.calls("GetAuthorizationToken", service="ecr")

    started = time.monotonic()
    tampered = kube.core.api_client.sanitize_for_serialization(
        kube.core.patch_namespaced_secret("app", namespace, patch)
    )
    assert wrong(tampered, shape, aws), "the patch changed nothing"

    repaired = wait_for(
        f"the {change} Secret repaired",
        lambda: (
            (s := kube.get_secret(namespace, "app")) is not None
            and s["metadata"]["resourceVersion"] != tampered["metadata"]["resourceVersion"]
            and is_whole(s, shape, aws)
            and s
        ),
        timeout=10,
    )
    print(f"{shape} {change}: repaired in {time.monotonic() - started:.2f}s")
    assert repaired["metadata"]["uid"] == before["metadata"]["uid"]  # in place
    assert password(repaired) == password(before)  # the held token, not a new one
    assert aws.calls("GetAuthorizationToken", service="ecr") == calls


@pytest.mark.parametrize("shape", list(SHAPES))
def test_force_refresh_rewrites_every_shape(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator, shape: str
) -> None:
    create(kube, namespace, shape)
    secret = kube.get_secret(namespace, "app")
    assert secret is not None
    first = password(secret)
    time.sleep(1.1)  # the test operator's floor between renewals is 1s

    kube.patch_eps(
        namespace, "app", {"metadata": {"annotations": {"ecr.pullsecrets.dev/force-refresh": "1"}}}
    )

    renewed = wait_for(
        "a new token",
        lambda: (s := kube.get_secret(namespace, "app")) is not None and password(s) != first and s,
        timeout=10,
    )
    assert is_whole(renewed, shape, aws)
    assert renewed["metadata"]["uid"] == secret["metadata"]["uid"]
    # The Secret is written before the status that records the renewal.
    status = wait_for(
        "status to record the forced renewal",
        lambda: (st := kube.get_eps(namespace, "app")["status"]).get("forceRefresh") == "1" and st,
        timeout=10,
    )
    renewed = kube.get_secret(namespace, "app")
    assert renewed is not None
    assert renewed["metadata"]["annotations"]["ecr.pullsecrets.dev/expires-at"] == status["expiresAt"]
    assert password(renewed) != first


def test_changing_the_output_replaces_the_secret(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    """A Secret's type cannot change in place: the old one goes and the new one takes its name."""
    create(kube, namespace, "dockerconfigjson")
    before = kube.get_secret(namespace, "app")
    assert before is not None

    kube.patch_eps(namespace, "app", {"spec": {"output": {"type": "basicAuth"}}})

    after = wait_for(
        "a basic-auth Secret",
        lambda: (s := kube.get_secret(namespace, "app")) is not None and is_whole(s, "basicAuth", aws) and s,
        timeout=10,
    )
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    ready = wait_for(
        "Ready for the new generation",
        lambda: (
            (body := kube.get_eps(namespace, "app"))["status"].get("observedGeneration")
            == body["metadata"]["generation"]
            and body
        ),
        timeout=10,
    )
    assert next(c for c in ready["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"


def test_a_key_dropped_from_the_template_leaves_the_secret(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    create(kube, namespace, "argocd")
    kube.core.patch_namespaced_secret("app", namespace, {"metadata": {"labels": {"other-tool/seen": "yes"}}})

    kube.patch_eps(namespace, "app", {"spec": {"secretTemplate": {"metadata": {"labels": {"team": None}}}}})

    def dropped() -> dict[str, Any] | None:
        secret = kube.get_secret(namespace, "app")
        return secret if secret is not None and "team" not in secret["metadata"]["labels"] else None

    secret = wait_for("the dropped label gone", dropped, timeout=10)
    labels, annotations = secret["metadata"]["labels"], secret["metadata"]["annotations"]
    assert labels["app.kubernetes.io/part-of"] == "shop"  # still in the template
    assert labels[ARGOCD_LABEL] == "repo-creds"
    assert labels["other-tool/seen"] == "yes"  # someone else's stays
    assert annotations["example.com/owner"] == "payments team"
    assert annotations["ecr.pullsecrets.dev/template"] == "a:example.com/owner,l:app.kubernetes.io/part-of"

    kube.patch_eps(namespace, "app", {"spec": {"secretTemplate": None}})

    def untemplated() -> dict[str, Any] | None:
        secret = kube.get_secret(namespace, "app")
        return (
            secret
            if secret is not None and "ecr.pullsecrets.dev/template" not in secret["metadata"]["annotations"]
            else None
        )

    secret = wait_for("the whole template gone", untemplated, timeout=10)
    assert "app.kubernetes.io/part-of" not in secret["metadata"]["labels"]
    assert "example.com/owner" not in secret["metadata"]["annotations"]
    assert secret["metadata"]["labels"]["other-tool/seen"] == "yes"
    assert secret["metadata"]["labels"][ARGOCD_LABEL] == "repo-creds"


def test_token_never_appears_in_events_or_status(
    kube: Kube, namespace: str, operator: OperatorProcess, aws: AwsEmulator
) -> None:
    for shape in ("argocd", "basicAuth"):
        kube.create_eps(namespace, shape.lower(), {"registries": [EAST], "output": {"type": shape}})
    for shape in ("argocd", "basicAuth"):
        kube.wait_ready(namespace, shape.lower())
    tokens = set(aws.issued_tokens())
    forms = {t for token in tokens for t in (token, base64.b64encode(token.encode()).decode())}
    haystacks = {
        "operator log": operator.log(),
        "events": str(kube.events(namespace)),
        "status": str([kube.get_eps(namespace, s.lower()) for s in ("argocd", "basicAuth")]),
    }
    for where, text in haystacks.items():
        assert not [t for t in forms if t in text], f"a token found in the {where}"


AT_EVERY_BOUND = {
    "metadata": {
        "labels": {
            f"{'a' * 63}.example.com/{'n' * 63}": "v" * 63,
            "app.kubernetes.io/part-of": "shop",
            **{f"k{i}": "v" for i in range(14)},
        },
        "annotations": {
            "argocd.argoproj.io/sync-options": "Prune=false",
            **{f"k{i}": "é" * 1024 for i in range(15)},
        },
    }
}


@pytest.mark.parametrize("kind", [EPS, CEPS])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_admission_admits_every_shape_and_the_template_at_every_bound(
    kube: Kube, namespace: str, kind: str, shape: str
) -> None:
    spec = {"registries": [EAST], "output": {"type": shape}, "secretTemplate": AT_EVERY_BOUND}
    result = dry_run(kube, kind, namespace, spec)

    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout


def test_admission_defaults_the_output_type(kube: Kube, namespace: str) -> None:
    created = kube.create_eps(namespace, "defaulted", {"registries": [EAST], "output": {}})
    assert created["spec"]["output"] == {"type": "dockerconfigjson"}


__all__ = ["pushed"]  # the harness registry with APP pushed: a fixture of test_verified, used here


@pytest.mark.parametrize("shape", ["argocd", "basicAuth"])
def test_verification_reads_every_shape_and_doctor_skips_them(  # noqa: PLR0917  # fixtures, named by pytest
    kube: Kube,
    namespace: str,
    start_operator: StartOperator,
    pushed: Registry,  # the fixture imported above
    control_plane: ControlPlane,
    aws: AwsEmulator,
    shape: str,
) -> None:
    """Verification asks the registry with the username and password of any shape. doctor, which
    follows a pod's imagePullSecrets, counts only pull Secrets as covering a host."""
    verifying(start_operator, pushed)
    kube.create_eps(
        namespace,
        "app",
        {"registries": [EAST], "output": {"type": shape}, "verify": {"images": [f"{APP}:v1"]}},
    )

    verified = wait_verified(kube, namespace, "True", "Verified")

    assert verified["message"].startswith(f"{EAST} accepts the Secret's token")
    _, lines = doctor_image(control_plane, aws, pushed, namespace, f"{APP}:v1")
    assert any(
        f"no EcrPullSecret or ClusterEcrPullSecret writes a Secret for {EAST}" in line for line in lines
    ), lines
