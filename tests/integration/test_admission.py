"""Bad input is refused at `kubectl apply`, with a message that says what is wrong."""

from __future__ import annotations

import pytest
import yaml

from tests.harness.kube import Kube

GOOD = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def manifest(namespace: str, spec: dict[str, object]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "ecr.pullsecrets.dev/v1alpha1",
            "kind": "EcrPullSecret",
            "metadata": {"name": "bad", "namespace": namespace},
            "spec": spec,
        }
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, "spec.registries: Required value", id="no-registries-field"),
        pytest.param({"registries": []}, "should have at least 1 items", id="empty-registries"),
        pytest.param({"registries": ["docker.io"]}, "must be an Amazon ECR registry host", id="non-ecr-host"),
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
            "must be a duration such as 4h",
            id="bad-duration",
        ),
        pytest.param(
            {"registries": [GOOD], "renewBefore": "13h"}, "less than 12h", id="renew-before-too-long"
        ),
        pytest.param(
            {"registries": [f"{n:012d}.dkr.ecr.us-east-1.amazonaws.com" for n in range(21)]},
            "must have at most 20 items",
            id="too-many-registries",
        ),
        pytest.param(
            {"registries": [GOOD], "secretName": "Not_A_Name"}, "spec.secretName", id="bad-secret-name"
        ),
    ],
)
def test_kubectl_apply_rejects_malformed_spec(
    kube: Kube, namespace: str, spec: dict[str, object], expected: str
) -> None:
    result = kube.kubectl("apply", "-f", "-", stdin=manifest(namespace, spec), check=False)
    assert result.returncode != 0, result.stdout
    assert expected in result.stderr, result.stderr
    assert 'The EcrPullSecret "bad" is invalid' in result.stderr


@pytest.mark.parametrize(
    "host",
    [
        GOOD,
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
        "123456789012.dkr-ecr.eu-west-1.on.aws",
        "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
    ],
)
def test_kubectl_apply_accepts_ecr_host_forms(kube: Kube, namespace: str, host: str) -> None:
    result = kube.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=manifest(namespace, {"registries": [host]})
    )
    assert "created (server dry run)" in result.stdout
