"""Bad input is refused at `kubectl apply`, with a message that names the field and says what is
wrong; the hostile-spec corpus (tests/hostile_specs.py) is refused field by field."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.harness.kube import Kube
from tests.hostile_specs import CASES, CEPS, EPS, HostileSpec

GOOD = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ROLE = "arn:aws:iam::123456789012:role/ecr-pull"


def manifest(kind: str, namespace: str, spec: dict[str, Any], name: str = "bad") -> str:
    metadata = {"name": name} if kind == CEPS else {"name": name, "namespace": namespace}
    return yaml.safe_dump(
        {"apiVersion": "ecr.pullsecrets.dev/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}
    )


def dry_run(kube: Kube, kind: str, namespace: str, spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`kubectl apply` through the whole admission chain, storing nothing (the cluster-scoped kind
    would otherwise outlive the test)."""
    return kube.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=manifest(kind, namespace, spec), check=False
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, "spec.registries: Required value", id="no-registries-field"),
        pytest.param({"registries": []}, "should have at least 1 items", id="empty-registries"),
        pytest.param({"registries": ["docker.io"]}, "an Amazon ECR registry host such as", id="non-ecr-host"),
        pytest.param(
            {"registries": ["12345678901.dkr.ecr.us-east-1.amazonaws.com"]},
            "account id of an ECR registry host must be exactly 12 digits",
            id="account-11-digits",
        ),
        pytest.param(
            {"registries": ["1234567890123.dkr.ecr.us-east-1.amazonaws.com"]},
            "must be exactly 12 digits",
            id="account-13-digits",
        ),
        pytest.param({"registries": [GOOD, GOOD]}, "Duplicate value", id="duplicate-hosts"),
        pytest.param(
            {"registries": [GOOD], "renewBefore": "4 hours"},
            "spec.renewBefore must be a duration such as 4h",
            id="bad-duration",
        ),
        pytest.param(
            {"registries": [GOOD], "renewBefore": "13h"},
            "spec.renewBefore must be between 5m and 8h",
            id="renew-before-too-long",
        ),
        pytest.param(
            {"registries": [f"{n:012d}.dkr.ecr.us-east-1.amazonaws.com" for n in range(21)]},
            "must have at most 20 items",
            id="too-many-registries",
        ),
        pytest.param(
            {"registries": [GOOD], "secretName": "Not_A_Name"}, "spec.secretName", id="bad-secret-name"
        ),
        pytest.param(
            {"registries": [GOOD], "auth": {"serviceAccountRef": {"name": "a"}, "secretRef": {"name": "b"}}},
            "spec.auth may name serviceAccountRef or secretRef, not both",
            id="both-refs",
        ),
        pytest.param(
            {"registries": [GOOD], "serviceAccounts": {"names": ["web"], "all": True}},
            "spec.serviceAccounts must set exactly one of names, selector or all",
            id="names-and-all",
        ),
        pytest.param(
            {"registries": ["123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", GOOD]},
            "spec.registries must all be in one AWS partition",
            id="eu-sovereign-and-aws",
        ),
        pytest.param(
            {
                "registries": [
                    "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                    "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                ]
            },
            "spec.registries must all be in one AWS partition",
            id="iso-and-iso-b",
        ),
        pytest.param(
            {"registries": ["123456789012.dkr-ecr.eusc-de-east-1.amazonaws.eu"]},
            "an Amazon ECR registry host such as",
            id="eu-sovereign-has-no-dualstack-host",
        ),
        pytest.param(
            {"registries": ["123456789012.dkr.ecr.us-iso-east-1.amazonaws.com"]},
            "an Amazon ECR registry host such as",
            id="iso-region-global-suffix",
        ),
        pytest.param(
            {"registries": [GOOD], "auth": {"serviceAccountRef": {"name": "sa", "namespace": "other"}}},
            'unknown field "spec.auth.serviceAccountRef.namespace"',
            id="namespaced-resource-names-another-namespace",
        ),
    ],
)
def test_kubectl_apply_rejects_malformed_spec(
    kube: Kube, namespace: str, spec: dict[str, object], expected: str
) -> None:
    result = kube.kubectl("apply", "-f", "-", stdin=manifest(EPS, namespace, spec), check=False)
    assert result.returncode != 0, result.stdout
    assert expected in result.stderr, result.stderr
    assert 'EcrPullSecret "bad" is invalid' in result.stderr or "unknown field" in result.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.kind}-{c.id}")
def test_kubectl_apply_rejects_hostile_spec(kube: Kube, namespace: str, case: HostileSpec) -> None:
    result = dry_run(kube, case.kind, namespace, case.spec)

    assert result.returncode != 0, result.stdout
    assert f'The {case.kind} "bad" is invalid' in result.stderr, result.stderr
    assert f"{case.field}: " in result.stderr, result.stderr


LABEL_PREFIX = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
LONGEST_KEY = f"{LABEL_PREFIX}/{'n' * 63}"
SELECTOR = {
    "matchLabels": {LONGEST_KEY: "v" * 63, "app": "", **{f"k{i}": "v" for i in range(30)}},
    "matchExpressions": [
        {"key": LONGEST_KEY, "operator": "In", "values": [f"v{i}" for i in range(64)]},
        {"key": "tier", "operator": "NotIn", "values": ["x"]},
        {"key": "team", "operator": "Exists"},
        {"key": "legacy", "operator": "DoesNotExist", "values": []},
    ]
    + [{"key": f"k{i}", "operator": "Exists"} for i in range(12)],
}
ROLE_CHAIN = [{"roleArn": ROLE, "externalId": "x" * 1224, "sessionName": "s" * 64}] + [
    {"roleArn": f"arn:aws:iam::123456789012:role/path/to/{'r' * 64}", "externalId": "ab", "sessionName": "ab"}
] * 4


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        pytest.param(
            EPS,
            {
                "registries": [GOOD, "123456789012.dkr.ecr.eu-newplace-9.amazonaws.com", "public.ecr.aws"],
                "secretName": "s" * 253,
                "renewBefore": "5m",
                "serviceAccounts": {"names": [f"sa-{i}" for i in range(50)]},
                "secretPolicy": "Adopt",
                "auth": {
                    "serviceAccountRef": {"name": "n" * 253, "audience": "a" * 253, "roleArn": ROLE},
                    "roleChain": ROLE_CHAIN,
                },
            },
            id="namespaced-at-every-bound",
        ),
        pytest.param(
            EPS,
            {
                "registries": ["123456789012.dkr-ecr-fips.us-gov-west-1.on.aws"],
                "renewBefore": "8h",
                "serviceAccounts": {"selector": SELECTOR},
                "auth": {
                    "secretRef": {"name": "keys", "accessKeyIdKey": "k" * 253, "sessionTokenKey": "a.b-c_D"}
                },
            },
            id="namespaced-selector-at-every-bound",
        ),
        pytest.param(
            CEPS,
            {
                "registries": ["123456789012.dkr.ecr.cn-southwest-3.amazonaws.com.cn"],
                "renewBefore": "7h59m60s",
                "namespaceSelector": SELECTOR,
                "namespaces": {"include": [f"team-{i}-*" for i in range(64)], "exclude": ["?" * 63]},
                "auth": {"serviceAccountRef": {"name": "puller", "namespace": "n" * 63}},
            },
            id="cluster-at-every-bound",
        ),
    ],
)
def test_kubectl_apply_admits_every_bound(
    kube: Kube, namespace: str, kind: str, spec: dict[str, Any]
) -> None:
    """The other side of the corpus: the limits themselves are admitted."""
    result = dry_run(kube, kind, namespace, spec)

    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout


@pytest.mark.parametrize(
    "host",
    [
        GOOD,
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
        "123456789012.dkr-ecr.eu-west-1.on.aws",
        "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
        "123456789012.dkr.ecr.il-central-1.amazonaws.com",
        "123456789012.dkr.ecr.mx-central-1.amazonaws.com",
        "123456789012.dkr.ecr.ap-southeast-7.amazonaws.com",
        "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
        "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
        "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
        "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
        "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
    ],
)
def test_kubectl_apply_accepts_ecr_host_forms(kube: Kube, namespace: str, host: str) -> None:
    result = kube.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=manifest(EPS, namespace, {"registries": [host]})
    )
    assert "created (server dry run)" in result.stdout
