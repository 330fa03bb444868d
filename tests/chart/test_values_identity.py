"""Values for an AWS identity outside EKS (web identity from a projected ServiceAccount token,
region, STS endpoints) and the conventional extras: commonLabels, podLabels, podAnnotations,
extraEnv, extraVolumes, extraVolumeMounts, extraObjects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import Render, find, only
from tests.harness import helm

OUTSIDE_EKS = "outside-eks-values.yaml"
ROLE = "arn:aws:iam::123456789012:role/ecr-pull-secret-operator"


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = only(docs, "Deployment")["spec"]["template"]
    return pod


def _env(docs: list[dict[str, Any]]) -> dict[str, str]:
    (container,) = _pod(docs)["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_web_identity_mounts_a_projected_token_and_sets_the_variables(render: Render) -> None:
    docs = render(OUTSIDE_EKS)
    spec = _pod(docs)["spec"]
    env = _env(docs)
    assert env["AWS_ROLE_ARN"] == ROLE
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == "/var/run/secrets/sts.amazonaws.com/serviceaccount/token"
    volume = next(v for v in spec["volumes"] if v["name"] == "aws-web-identity-token")
    assert volume["projected"]["sources"] == [
        {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 3600, "path": "token"}}
    ]
    (container,) = spec["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "aws-web-identity-token")
    assert mount == {
        "name": "aws-web-identity-token",
        "mountPath": "/var/run/secrets/sts.amazonaws.com/serviceaccount",
        "readOnly": True,
    }
    # No IRSA annotation: nothing on EKS's webhook side is asked for.
    assert "eks.amazonaws.com/role-arn" not in (
        only(docs, "ServiceAccount")["metadata"].get("annotations") or {}
    )


def test_web_identity_audience_expiry_and_path(render: Render) -> None:
    docs = render(
        sets=(
            "aws.webIdentity.enabled=true",
            f"aws.webIdentity.roleArn={ROLE}",
            "aws.webIdentity.audience=https://oidc.example.com",
            "aws.webIdentity.expirationSeconds=7200",
            "aws.webIdentity.mountPath=/var/run/aws/",
        )
    )
    spec = _pod(docs)["spec"]
    (volume,) = [v for v in spec["volumes"] if "projected" in v]
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"audience": "https://oidc.example.com", "expirationSeconds": 7200, "path": "token"}
    assert _env(docs)["AWS_WEB_IDENTITY_TOKEN_FILE"] == "/var/run/aws/token"


def test_region_and_sts_endpoints(render: Render) -> None:
    env = _env(render(sets=("aws.region=eusc-de-east-1", "aws.stsRegionalEndpoints=legacy")))
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eusc-de-east-1"
    assert env["AWS_STS_REGIONAL_ENDPOINTS"] == "legacy"


def test_defaults_set_no_aws_variable_and_no_extras(render: Render) -> None:
    docs = render("default-values.yaml")
    assert not [name for name in _env(docs) if name.startswith("AWS_")]
    spec = _pod(docs)["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["policy", "tmp"]
    assert [m["name"] for m in spec["containers"][0]["volumeMounts"]] == ["policy", "tmp"]
    assert not find(docs, "ConfigMap", "corporate-ca")


def test_extra_env_volumes_and_mounts(render: Render) -> None:
    docs = render(OUTSIDE_EKS)
    spec = _pod(docs)["spec"]
    assert _env(docs)["AWS_CA_BUNDLE"] == "/etc/ca-bundle/ca.crt"
    assert {"name": "ca-bundle", "configMap": {"name": "corporate-ca"}} in spec["volumes"]
    assert {"name": "ca-bundle", "mountPath": "/etc/ca-bundle", "readOnly": True} in spec["containers"][0][
        "volumeMounts"
    ]


def test_pod_labels_and_annotations(render: Render) -> None:
    docs = render(OUTSIDE_EKS)
    meta = _pod(docs)["metadata"]
    assert meta["labels"]["sidecar.istio.io/inject"] == "false"
    assert meta["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "true"
    assert "checksum/policy" in meta["annotations"]
    # Pod labels stay out of the selector (immutable on a Deployment).
    selector = only(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert "sidecar.istio.io/inject" not in selector


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ("ha.enabled=true", "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"),
        ("networkPolicy.enabled=true", "watchNamespaces[0]=team-a", "ha.enabled=true"),
    ],
    ids=["outside-eks", "ha-monitoring", "namespaced-netpol"],
)
def test_common_labels_on_every_object(render: Render, sets: tuple[str, ...]) -> None:
    docs = render(OUTSIDE_EKS, sets=sets)
    extra = {("ConfigMap", "corporate-ca"), ("ConfigMap", "ecr-pull-secret-operator-extra")}
    ours = [d for d in docs if (d["kind"], d["metadata"]["name"]) not in extra]
    assert len(ours) > 10
    missing = [
        f"{d['kind']}/{d['metadata']['name']}"
        for d in ours
        if d["metadata"]["labels"].get("team") != "platform"
    ]
    assert not missing, f"without commonLabels: {missing}"
    assert _pod(docs)["metadata"]["labels"]["team"] == "platform"
    for selector in [only(docs, "Deployment")["spec"]["selector"]["matchLabels"]] + [
        s["spec"]["selector"] for s in find(docs, "Service")
    ]:
        assert "team" not in selector


def test_extra_objects_are_rendered_with_tpl(render: Render) -> None:
    docs = render(OUTSIDE_EKS)
    from_map = only([d for d in docs if d["metadata"]["name"].endswith("-extra")], "ConfigMap")
    assert from_map["metadata"] == {
        "name": "ecr-pull-secret-operator-extra",
        "namespace": "ecr-pull-secret-operator",
    }
    assert from_map["data"] == {"release": "ecr-pull-secret-operator"}
    from_string = find(docs, "ConfigMap", "corporate-ca")[0]
    assert from_string["metadata"]["namespace"] == "ecr-pull-secret-operator"


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (("aws.webIdentity.enabled=true",), "aws.webIdentity.roleArn is required"),
        (
            (
                "aws.webIdentity.enabled=true",
                f"aws.webIdentity.roleArn={ROLE}",
                f"serviceAccount.irsaRoleArn={ROLE}",
            ),
            "not both",
        ),
        (("aws.webIdentity.roleArn=my-role",), "roleArn"),
        (("aws.webIdentity.expirationSeconds=60",), "expirationSeconds"),
        (("aws.webIdentity.mountPath=relative",), "mountPath"),
        (("aws.webIdentity.audience=",), "audience"),
        (("aws.stsRegionalEndpoints=global",), "stsRegionalEndpoints"),
        (("aws.region=Europe",), "region"),
        (("aws.unknown=1",), "additional properties"),
        (("commonLabels.team=1",), "commonLabels"),
        (("extraVolumeMounts[0].name=x",), "mountPath"),
        (("extraObjects[0]=1",), "extraObjects"),
    ],
)
def test_identity_values_are_checked(helm4: Path, sets: tuple[str, ...], complaint: str) -> None:
    args = ["template", "x", str(helm.CHART)] + [a for s in sets for a in ("--set", s)]
    output = helm.helm(helm4, *args, check=False)
    assert "Error" in output, output
    assert complaint in output, output
