"""plan.iam: least-privilege identity policies and IRSA trust policies, for every partition."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest

from ecr_pull_secrets.model.registry import RegistryHost
from ecr_pull_secrets.plan.iam import (
    InvalidPolicyRequest,
    MixedPartitions,
    OidcProvider,
    ServiceAccount,
    identity_policy,
    policies,
    trust_policy,
)

A = "123456789012"
B = "210987654321"
PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
TOKEN = {"Sid": "GetEcrAuthorizationToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"]}
PUBLIC = {
    "Sid": "GetEcrPublicAuthorizationToken",
    "Effect": "Allow",
    "Action": ["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"],
    "Resource": ["*"],
}
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
PROVIDER = f"arn:aws:iam::{A}:oidc-provider/{ISSUER}"


def pull(*arns: str) -> dict[str, Any]:
    return {"Sid": "PullFromEcrRepositories", "Effect": "Allow", "Action": PULL, "Resource": list(arns)}


def cache(*arns: str) -> dict[str, Any]:
    return {
        "Sid": "ImportIntoPullThroughCache",
        "Effect": "Allow",
        "Action": ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
        "Resource": list(arns),
    }


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


TOKEN_STATEMENT = {**TOKEN, "Resource": ["*"]}


class Case(NamedTuple):
    id: str
    registries: list[str]
    repositories: list[str]
    expected: dict[str, Any]


CASES = [
    Case(
        "aws-all-repositories",
        [f"{A}.dkr.ecr.us-east-1.amazonaws.com"],
        [],
        doc(TOKEN_STATEMENT, pull(f"arn:aws:ecr:us-east-1:{A}:repository/*")),
    ),
    Case(
        "aws-one-repository",
        [f"{A}.dkr.ecr.eu-west-1.amazonaws.com"],
        ["team-a/app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws:ecr:eu-west-1:{A}:repository/team-a/app")),
    ),
    Case(
        "china",
        [f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn"],
        ["app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws-cn:ecr:cn-north-1:{A}:repository/app")),
    ),
    Case(
        "china-dualstack",
        [f"{A}.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn"],
        [],
        doc(TOKEN_STATEMENT, pull(f"arn:aws-cn:ecr:cn-northwest-1:{A}:repository/*")),
    ),
    Case(
        "govcloud",
        [f"{A}.dkr.ecr.us-gov-west-1.amazonaws.com"],
        ["app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws-us-gov:ecr:us-gov-west-1:{A}:repository/app")),
    ),
    Case(
        "govcloud-fips",
        [f"{A}.dkr.ecr-fips.us-gov-east-1.amazonaws.com"],
        [],
        doc(TOKEN_STATEMENT, pull(f"arn:aws-us-gov:ecr:us-gov-east-1:{A}:repository/*")),
    ),
    Case(
        "eu-sovereign",
        [f"{A}.dkr.ecr.eusc-de-east-1.amazonaws.eu"],
        ["app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws-eusc:ecr:eusc-de-east-1:{A}:repository/app")),
    ),
    Case(
        "iso",
        [f"{A}.dkr.ecr.us-iso-east-1.c2s.ic.gov", f"{B}.dkr.ecr.us-iso-west-1.c2s.ic.gov"],
        [],
        doc(
            TOKEN_STATEMENT,
            pull(
                f"arn:aws-iso:ecr:us-iso-east-1:{A}:repository/*",
                f"arn:aws-iso:ecr:us-iso-west-1:{B}:repository/*",
            ),
        ),
    ),
    Case(
        "iso-b",
        [f"{A}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov"],
        ["app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws-iso-b:ecr:us-isob-east-1:{A}:repository/app")),
    ),
    Case(
        "iso-e",
        [f"{A}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk"],
        ["app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws-iso-e:ecr:eu-isoe-west-1:{A}:repository/app")),
    ),
    Case(
        "iso-f",
        [f"{A}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov"],
        ["app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws-iso-f:ecr:us-isof-south-1:{A}:repository/app")),
    ),
    Case(
        "registries-times-repositories",
        [f"{A}.dkr.ecr.us-east-1.amazonaws.com", f"{B}.dkr.ecr.eu-west-1.amazonaws.com"],
        ["web", "team/api"],
        doc(
            TOKEN_STATEMENT,
            pull(
                f"arn:aws:ecr:eu-west-1:{B}:repository/team/api",
                f"arn:aws:ecr:eu-west-1:{B}:repository/web",
                f"arn:aws:ecr:us-east-1:{A}:repository/team/api",
                f"arn:aws:ecr:us-east-1:{A}:repository/web",
            ),
        ),
    ),
    Case(
        "wildcard-repository-pattern",
        [f"{A}.dkr.ecr.us-east-1.amazonaws.com"],
        ["team-a/*"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws:ecr:us-east-1:{A}:repository/team-a/*")),
    ),
    Case(
        "star-covers-the-rest",
        [f"{A}.dkr.ecr.us-east-1.amazonaws.com"],
        ["app", "*"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws:ecr:us-east-1:{A}:repository/*")),
    ),
    Case(
        "endpoint-forms-of-one-registry-share-arns",
        [
            f"{A}.dkr.ecr.us-east-1.amazonaws.com",
            f"{A}.dkr.ecr-fips.us-east-1.amazonaws.com",
            f"{A}.dkr-ecr.us-east-1.on.aws",
        ],
        ["app", "app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws:ecr:us-east-1:{A}:repository/app")),
    ),
    Case("public-only", ["public.ecr.aws"], [], doc(PUBLIC)),
    Case(
        "public-and-private",
        ["public.ecr.aws", f"{A}.dkr.ecr.us-west-2.amazonaws.com"],
        ["app"],
        doc(TOKEN_STATEMENT, pull(f"arn:aws:ecr:us-west-2:{A}:repository/app"), PUBLIC),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_identity_policy(case: Case) -> None:
    hosts = [RegistryHost.parse(raw) for raw in case.registries]

    policy = identity_policy(hosts, case.repositories)

    assert policy == case.expected
    assert json.loads(json.dumps(policy)) == policy
    # The order of the inputs does not change the document.
    assert identity_policy(reversed(hosts), reversed(case.repositories)) == policy


class CacheCase(NamedTuple):
    id: str
    registries: list[str]
    repositories: list[str]
    prefixes: list[str]
    expected: dict[str, Any]


US = f"{A}.dkr.ecr.us-east-1.amazonaws.com"
CACHE_CASES = [
    CacheCase(
        "aws-all-repositories",
        [US],
        [],
        ["docker-hub"],
        doc(
            TOKEN_STATEMENT,
            pull(f"arn:aws:ecr:us-east-1:{A}:repository/*"),
            cache(f"arn:aws:ecr:us-east-1:{A}:repository/docker-hub/*"),
        ),
    ),
    CacheCase(
        "named-repositories-gain-the-cached-ones",
        [US],
        ["team-a/app"],
        ["docker-hub", "ecr-public/"],
        doc(
            TOKEN_STATEMENT,
            pull(
                f"arn:aws:ecr:us-east-1:{A}:repository/docker-hub/*",
                f"arn:aws:ecr:us-east-1:{A}:repository/ecr-public/*",
                f"arn:aws:ecr:us-east-1:{A}:repository/team-a/app",
            ),
            cache(
                f"arn:aws:ecr:us-east-1:{A}:repository/docker-hub/*",
                f"arn:aws:ecr:us-east-1:{A}:repository/ecr-public/*",
            ),
        ),
    ),
    CacheCase(
        "china",
        [f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn"],
        ["app"],
        ["quay"],
        doc(
            TOKEN_STATEMENT,
            pull(
                f"arn:aws-cn:ecr:cn-north-1:{A}:repository/app",
                f"arn:aws-cn:ecr:cn-north-1:{A}:repository/quay/*",
            ),
            cache(f"arn:aws-cn:ecr:cn-north-1:{A}:repository/quay/*"),
        ),
    ),
    CacheCase(
        "govcloud-nested-prefix",
        [f"{A}.dkr.ecr.us-gov-west-1.amazonaws.com"],
        [],
        ["cache/k8s.io"],
        doc(
            TOKEN_STATEMENT,
            pull(f"arn:aws-us-gov:ecr:us-gov-west-1:{A}:repository/*"),
            cache(f"arn:aws-us-gov:ecr:us-gov-west-1:{A}:repository/cache/k8s.io/*"),
        ),
    ),
    CacheCase(
        "registries-times-prefixes",
        [US, f"{B}.dkr.ecr.eu-west-1.amazonaws.com"],
        ["web"],
        ["docker-hub", "ghcr"],
        doc(
            TOKEN_STATEMENT,
            pull(
                f"arn:aws:ecr:eu-west-1:{B}:repository/docker-hub/*",
                f"arn:aws:ecr:eu-west-1:{B}:repository/ghcr/*",
                f"arn:aws:ecr:eu-west-1:{B}:repository/web",
                f"arn:aws:ecr:us-east-1:{A}:repository/docker-hub/*",
                f"arn:aws:ecr:us-east-1:{A}:repository/ghcr/*",
                f"arn:aws:ecr:us-east-1:{A}:repository/web",
            ),
            cache(
                f"arn:aws:ecr:eu-west-1:{B}:repository/docker-hub/*",
                f"arn:aws:ecr:eu-west-1:{B}:repository/ghcr/*",
                f"arn:aws:ecr:us-east-1:{A}:repository/docker-hub/*",
                f"arn:aws:ecr:us-east-1:{A}:repository/ghcr/*",
            ),
        ),
    ),
    CacheCase(
        "endpoint-forms-and-repeats-collapse",
        [US, f"{A}.dkr-ecr.us-east-1.on.aws"],
        ["*"],
        [" docker-hub ", "docker-hub/", "docker-hub"],
        doc(
            TOKEN_STATEMENT,
            pull(f"arn:aws:ecr:us-east-1:{A}:repository/*"),
            cache(f"arn:aws:ecr:us-east-1:{A}:repository/docker-hub/*"),
        ),
    ),
    CacheCase(
        "root-prefix-is-every-repository",
        [US],
        ["app"],
        ["ROOT"],
        doc(
            TOKEN_STATEMENT,
            pull(f"arn:aws:ecr:us-east-1:{A}:repository/*"),
            cache(f"arn:aws:ecr:us-east-1:{A}:repository/*"),
        ),
    ),
    CacheCase(
        "public-and-private",
        ["public.ecr.aws", US],
        [],
        ["ecr-public"],
        doc(
            TOKEN_STATEMENT,
            pull(f"arn:aws:ecr:us-east-1:{A}:repository/*"),
            cache(f"arn:aws:ecr:us-east-1:{A}:repository/ecr-public/*"),
            PUBLIC,
        ),
    ),
]


@pytest.mark.parametrize("case", CACHE_CASES, ids=[c.id for c in CACHE_CASES])
def test_identity_policy_with_pull_through_cache(case: CacheCase) -> None:
    hosts = [RegistryHost.parse(raw) for raw in case.registries]

    policy = identity_policy(hosts, case.repositories, pull_through_cache=case.prefixes)

    assert policy == case.expected
    assert json.loads(json.dumps(policy)) == policy
    assert (
        identity_policy(reversed(hosts), case.repositories, pull_through_cache=reversed(case.prefixes))
        == policy
    )
    assert policies(hosts, case.repositories, pull_through_cache=case.prefixes) == policy


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_pull_through_cache_leaves_the_policy_unchanged(case: Case) -> None:
    hosts = [RegistryHost.parse(raw) for raw in case.registries]

    assert identity_policy(hosts, case.repositories, pull_through_cache=[]) == case.expected


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("Docker-Hub", id="upper-case"),
        pytest.param("Root", id="root-mixed-case"),
        pytest.param("a", id="too-short"),
        pytest.param("a" * 31, id="too-long"),
        pytest.param("", id="empty"),
        pytest.param("docker-hub/*", id="wildcard"),
        pytest.param("docker?hub", id="question-mark"),
        pytest.param("/docker-hub", id="leading-slash"),
        pytest.param("cache//hub", id="empty-segment"),
        pytest.param("-hub", id="leading-separator"),
        pytest.param("docker hub", id="space"),
        pytest.param('hub"', id="quote"),
    ],
)
def test_invalid_pull_through_cache_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidPolicyRequest) as caught:
        identity_policy([RegistryHost.parse(US)], pull_through_cache=["docker-hub", prefix])

    assert f"{prefix!r} is not a pull-through cache prefix" in str(caught.value)
    assert "2 to 30" in str(caught.value)


def test_pull_through_cache_prefix_length_bounds_are_inclusive() -> None:
    policy = identity_policy([RegistryHost.parse(US)], pull_through_cache=["ab", "a" * 30])

    assert policy["Statement"][-1]["Resource"] == [
        f"arn:aws:ecr:us-east-1:{A}:repository/{'a' * 30}/*",
        f"arn:aws:ecr:us-east-1:{A}:repository/ab/*",
    ]


def test_pull_through_cache_needs_a_private_registry() -> None:
    with pytest.raises(
        InvalidPolicyRequest, match="pull-through cache prefixes apply to private registries only"
    ):
        identity_policy([RegistryHost.parse("public.ecr.aws")], pull_through_cache=["ecr-public"])


def test_token_action_is_never_scoped_and_pulls_always_are() -> None:
    policy = identity_policy([RegistryHost.parse(f"{A}.dkr.ecr.us-east-1.amazonaws.com")], ["app"])

    for statement in policy["Statement"]:
        if "ecr:GetAuthorizationToken" in statement["Action"]:
            assert statement["Resource"] == ["*"], "GetAuthorizationToken has no resource-level scope"
        else:
            assert "*" not in statement["Resource"]


@pytest.mark.parametrize(
    ("registries", "fragments"),
    [
        pytest.param(
            [f"{A}.dkr.ecr.us-east-1.amazonaws.com", f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn"],
            ["aws: ", "aws-cn: ", f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn", "one policy per partition"],
            id="aws-and-china",
        ),
        pytest.param(
            [f"{A}.dkr.ecr.us-gov-west-1.amazonaws.com", f"{A}.dkr.ecr.us-east-1.amazonaws.com"],
            ["aws: ", "aws-us-gov: "],
            id="aws-and-govcloud",
        ),
        pytest.param(
            ["public.ecr.aws", f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn"],
            ["aws: public.ecr.aws", "aws-cn: "],
            id="public-and-china",
        ),
        pytest.param(
            [f"{A}.dkr.ecr.eu-central-1.amazonaws.com", f"{A}.dkr.ecr.eusc-de-east-1.amazonaws.eu"],
            ["aws: ", "aws-eusc: ", f"{A}.dkr.ecr.eusc-de-east-1.amazonaws.eu"],
            id="aws-and-eu-sovereign",
        ),
        pytest.param(
            [f"{A}.dkr.ecr.us-iso-east-1.c2s.ic.gov", f"{A}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov"],
            ["aws-iso: ", "aws-iso-b: "],
            id="iso-and-iso-b",
        ),
        pytest.param(
            ["public.ecr.aws", f"{A}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov"],
            ["aws: public.ecr.aws", "aws-iso-f: "],
            id="public-and-iso-f",
        ),
    ],
)
def test_mixed_partitions_are_refused(registries: list[str], fragments: list[str]) -> None:
    with pytest.raises(MixedPartitions) as caught:
        identity_policy([RegistryHost.parse(raw) for raw in registries])

    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("registries", "repositories", "fragment"),
    [
        pytest.param([], [], "at least one registry", id="no-registries"),
        pytest.param(["public.ecr.aws"], ["app"], "private registries only", id="repository-for-public"),
        pytest.param([f"{A}.dkr.ecr.us-east-1.amazonaws.com"], ["App"], "'App' is not", id="upper-case"),
        pytest.param([f"{A}.dkr.ecr.us-east-1.amazonaws.com"], ["/app"], "'/app' is not", id="leading-slash"),
        pytest.param([f"{A}.dkr.ecr.us-east-1.amazonaws.com"], ["a//b"], "'a//b' is not", id="empty-segment"),
        pytest.param([f"{A}.dkr.ecr.us-east-1.amazonaws.com"], [""], "'' is not", id="empty"),
        pytest.param(
            [f"{A}.dkr.ecr.us-east-1.amazonaws.com"], ["a" * 257], "is not an ECR repository", id="too-long"
        ),
        pytest.param(
            [f"{A}.dkr.ecr.us-east-1.amazonaws.com"], ['a"b'], "is not an ECR repository", id="quote"
        ),
    ],
)
def test_invalid_requests_are_refused(registries: list[str], repositories: list[str], fragment: str) -> None:
    with pytest.raises(InvalidPolicyRequest) as caught:
        identity_policy([RegistryHost.parse(raw) for raw in registries], repositories)

    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("provider", "issuer"),
    [
        pytest.param(PROVIDER, ISSUER, id="aws"),
        pytest.param(
            f"arn:aws-cn:iam::{A}:oidc-provider/oidc.eks.cn-north-1.amazonaws.com.cn/id/XYZ",
            "oidc.eks.cn-north-1.amazonaws.com.cn/id/XYZ",
            id="china",
        ),
        pytest.param(
            f"arn:aws-us-gov:iam::{A}:oidc-provider/oidc.eks.us-gov-west-1.amazonaws.com/id/XYZ",
            "oidc.eks.us-gov-west-1.amazonaws.com/id/XYZ",
            id="govcloud",
        ),
        pytest.param(
            f"arn:aws:iam::{A}:oidc-provider/issuer.example.com", "issuer.example.com", id="self-managed"
        ),
        pytest.param(
            f"arn:aws-eusc:iam::{A}:oidc-provider/issuer.example.eu", "issuer.example.eu", id="eu-sovereign"
        ),
        pytest.param(
            f"arn:aws-iso:iam::{A}:oidc-provider/oidc.eks.us-iso-east-1.c2s.ic.gov/id/XYZ",
            "oidc.eks.us-iso-east-1.c2s.ic.gov/id/XYZ",
            id="iso",
        ),
        pytest.param(
            f"arn:aws-iso-b:iam::{A}:oidc-provider/issuer.example.com", "issuer.example.com", id="iso-b"
        ),
        pytest.param(
            f"arn:aws-iso-e:iam::{A}:oidc-provider/issuer.example.com", "issuer.example.com", id="iso-e"
        ),
        pytest.param(
            f"arn:aws-iso-f:iam::{A}:oidc-provider/issuer.example.com", "issuer.example.com", id="iso-f"
        ),
    ],
)
def test_trust_policy(provider: str, issuer: str) -> None:
    policy = trust_policy(OidcProvider.parse(provider), ServiceAccount.parse("kube-system/ecr-pull-secrets"))

    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AssumeFromServiceAccount",
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": "system:serviceaccount:kube-system:ecr-pull-secrets",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }
    assert json.loads(json.dumps(policy)) == policy


def test_trust_policy_audience() -> None:
    policy = trust_policy(OidcProvider.parse(PROVIDER), ServiceAccount("ns", "sa"), "sts.amazonaws.com.cn")

    assert policy["Statement"][0]["Condition"]["StringEquals"][f"{ISSUER}:aud"] == "sts.amazonaws.com.cn"


@pytest.mark.parametrize(
    "raw",
    [
        "arn:aws:iam::123:oidc-provider/oidc.example.com",
        f"arn:aws:iam::{A}:role/ecr",
        f"arn:aws:iam::{A}:oidc-provider/",
        f"arn:aws:iam::{A}:oidc-provider/https://oidc.example.com",
        f"arn:aws-iso-z:iam::{A}:oidc-provider/oidc.example.com",
        f"arn:aws-eu:iam::{A}:oidc-provider/oidc.example.com",
        ISSUER,
        "",
    ],
)
def test_invalid_oidc_provider(raw: str) -> None:
    with pytest.raises(InvalidPolicyRequest, match="not an IAM OIDC provider ARN"):
        OidcProvider.parse(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "kube-system",
        "kube-system/",
        "/sa",
        "Kube-System/sa",
        "ns/Sa",
        "ns/sa/extra",
        "ns:sa",
        "a" * 64 + "/sa",
    ],
)
def test_invalid_service_account(raw: str) -> None:
    with pytest.raises(InvalidPolicyRequest, match="NAMESPACE/NAME"):
        ServiceAccount.parse(raw)


def test_service_account_names_may_be_subdomains() -> None:
    assert ServiceAccount.parse(" team-a/ecr.pull ") == ServiceAccount("team-a", "ecr.pull")


def test_policies_without_trust_is_the_identity_policy() -> None:
    hosts = [RegistryHost.parse(f"{A}.dkr.ecr.us-east-1.amazonaws.com")]

    assert policies(hosts, ["app"]) == identity_policy(hosts, ["app"])


def test_policies_with_trust_holds_both() -> None:
    hosts = [RegistryHost.parse(f"{A}.dkr.ecr.us-east-1.amazonaws.com")]
    provider, account = OidcProvider.parse(PROVIDER), ServiceAccount("ns", "sa")

    document = policies(hosts, trust=(provider, account))

    assert document == {
        "identityPolicy": identity_policy(hosts),
        "trustPolicy": trust_policy(provider, account),
    }
    assert json.loads(json.dumps(document)) == document


def test_policies_refuse_a_provider_in_another_partition() -> None:
    hosts = [RegistryHost.parse(f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn")]

    with pytest.raises(
        MixedPartitions, match="OIDC provider is in partition aws but the registries are in aws-cn"
    ):
        policies(hosts, trust=(OidcProvider.parse(PROVIDER), ServiceAccount("ns", "sa")))


def test_policies_refuse_an_iso_provider_for_iso_b_registries() -> None:
    hosts = [RegistryHost.parse(f"{A}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov")]
    provider = OidcProvider.parse(f"arn:aws-iso:iam::{A}:oidc-provider/oidc.example.com")

    with pytest.raises(
        MixedPartitions, match="OIDC provider is in partition aws-iso but the registries are in aws-iso-b"
    ):
        policies(hosts, trust=(provider, ServiceAccount("ns", "sa")))
