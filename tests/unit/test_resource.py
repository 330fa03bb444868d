"""parse_spec / parse_status / parse_resource: defaults, limits and the errors users see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.identity import Auth, RoleHop, SecretRef, ServiceAccountRef
from ecr_pull_secrets.model.registry import RegistryHost
from ecr_pull_secrets.model.resource import (
    InvalidSpec,
    Spec,
    Status,
    parse_resource,
    parse_spec,
    parse_status,
)
from ecr_pull_secrets.plan import status as status_plan
from ecr_pull_secrets.plan.renewal import Trigger
from tests.unit.factories import HOST, NOW, later, resource

US = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
US_OTHER_ACCOUNT = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
US_FIPS = "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"
US_DUALSTACK = "123456789012.dkr-ecr.us-east-1.on.aws"
EU = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
CN = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
CN_NW = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"
CN_DUALSTACK = "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn"
GOV = "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com"
GOV_EAST_FIPS = "123456789012.dkr.ecr-fips.us-gov-east-1.amazonaws.com"
PUBLIC = "public.ecr.aws"
ROLE = "arn:aws:iam::123456789012:role/ecr-pull"


def hosts(count: int) -> list[str]:
    return [f"{100000000000 + i}.dkr.ecr.us-east-1.amazonaws.com" for i in range(count)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {"registries": [US]},
            Spec((RegistryHost.parse(US),), secret_name="app", renew_before=timedelta(hours=4)),
            id="defaults",
        ),
        pytest.param(
            {"registries": [US], "secretName": "", "renewBefore": ""},
            Spec((RegistryHost.parse(US),), secret_name="app", renew_before=timedelta(hours=4)),
            id="empty-strings-default",
        ),
        pytest.param(
            {"registries": [US, EU], "secretName": "ecr-pull", "renewBefore": "90m"},
            Spec(
                (RegistryHost.parse(US), RegistryHost.parse(EU)),
                secret_name="ecr-pull",
                renew_before=timedelta(minutes=90),
            ),
            id="explicit",
        ),
        pytest.param(
            {"registries": hosts(api.MAX_REGISTRIES)},
            Spec(
                tuple(RegistryHost.parse(h) for h in hosts(api.MAX_REGISTRIES)),
                secret_name="app",
                renew_before=timedelta(hours=4),
            ),
            id="max-registries",
        ),
        pytest.param(
            {"registries": [US], "auth": {"serviceAccountRef": {"name": "puller"}}},
            Spec(
                (RegistryHost.parse(US),),
                secret_name="app",
                renew_before=timedelta(hours=4),
                auth=Auth(service_account=ServiceAccountRef("puller")),
            ),
            id="auth-service-account",
        ),
        pytest.param(
            {"registries": [US], "auth": {"roleChain": [{"roleArn": ROLE}]}},
            Spec(
                (RegistryHost.parse(US),),
                secret_name="app",
                renew_before=timedelta(hours=4),
                auth=Auth(role_chain=(RoleHop(ROLE),)),
            ),
            id="auth-role-chain",
        ),
        pytest.param(
            {"registries": [US], "auth": {"secretRef": {"name": "keys"}}},
            Spec(
                (RegistryHost.parse(US),),
                secret_name="app",
                renew_before=timedelta(hours=4),
                auth=Auth(secret=SecretRef("keys")),
            ),
            id="auth-secret",
        ),
        pytest.param(
            {"registries": [US], "auth": None},
            Spec((RegistryHost.parse(US),), secret_name="app", renew_before=timedelta(hours=4), auth=Auth()),
            id="auth-null",
        ),
    ],
)
def test_parse_spec(raw: dict[str, Any], expected: Spec) -> None:
    assert parse_spec(raw, default_name="app") == expected


def test_default_renew_before_is_4h() -> None:
    assert api.DEFAULT_RENEW_BEFORE == "4h"


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        pytest.param({}, ("at least one",), id="no-registries"),
        pytest.param({"registries": []}, ("at least one",), id="empty-registries"),
        pytest.param({"registries": None}, ("at least one",), id="null-registries"),
        pytest.param({"registries": hosts(api.MAX_REGISTRIES + 1)}, ("at most 20",), id="too-many"),
        pytest.param({"registries": [US, US]}, ("more than once",), id="duplicate"),
        pytest.param(
            {"registries": [US, f"https://{US.upper()}/"]},
            ("spec.registries[1]", f"must be written as '{US}'"),
            id="host-not-in-normal-form",
        ),
        pytest.param(
            {"registries": [US, "12345678901.dkr.ecr.us-east-1.amazonaws.com"]},
            ("'12345678901.dkr.ecr.us-east-1.amazonaws.com'", "exactly 12 digits"),
            id="short-account",
        ),
        pytest.param(
            {"registries": ["docker.io"]},
            ("'docker.io'", "not an Amazon ECR registry host"),
            id="not-ecr",
        ),
        pytest.param(
            {"registries": ["123456789012.dkr.ecr.cn-north-1.amazonaws.com"]},
            ("partition aws-cn", ".amazonaws.com.cn"),
            id="partition-suffix",
        ),
        pytest.param({"registries": [US], "renewBefore": "4d"}, ("'4d'", "4h"), id="bad-duration"),
        pytest.param({"registries": [US], "renewBefore": "-1h"}, ("'-1h'",), id="negative-duration"),
        pytest.param(
            {"registries": [CN, US]},
            ("mixes AWS partitions (aws, aws-cn)", "one resource per partition"),
            id="china-and-aws",
        ),
        pytest.param(
            {"registries": [GOV, PUBLIC]},
            ("mixes AWS partitions (aws, aws-us-gov)", "one resource per partition"),
            id="govcloud-and-public",
        ),
        pytest.param(
            {"registries": [US, CN, GOV]},
            ("mixes AWS partitions (aws, aws-cn, aws-us-gov)",),
            id="three-partitions",
        ),
        pytest.param(
            {"registries": [US], "auth": {"serviceAccountRef": {"name": "a"}, "secretRef": {"name": "b"}}},
            ("serviceAccountRef or a secretRef, not both",),
            id="auth-both-refs",
        ),
    ],
)
def test_parse_spec_rejects(raw: dict[str, Any], fragments: tuple[str, ...]) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(raw, default_name="app")

    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("registries", "regions"),
    [
        pytest.param([US], {("aws", "us-east-1")}, id="one"),
        pytest.param(
            [US, US_OTHER_ACCOUNT, US_FIPS, US_DUALSTACK], {("aws", "us-east-1")}, id="one-region-many-hosts"
        ),
        pytest.param([US, EU], {("aws", "us-east-1"), ("aws", "eu-west-1")}, id="two-regions"),
        pytest.param(
            [CN, CN_NW, CN_DUALSTACK], {("aws-cn", "cn-north-1"), ("aws-cn", "cn-northwest-1")}, id="china"
        ),
        pytest.param(
            [GOV, GOV_EAST_FIPS], {("aws-us-gov", "us-gov-west-1"), ("aws-us-gov", "us-gov-east-1")}, id="gov"
        ),
        pytest.param([US, PUBLIC], {("aws", "us-east-1")}, id="public-not-a-region"),
        pytest.param([PUBLIC], set(), id="public-only"),
    ],
)
def test_spec_regions_collapse_hosts_of_one_region(
    registries: list[str], regions: set[tuple[str, str]]
) -> None:
    assert parse_spec({"registries": registries}, default_name="app").regions == frozenset(regions)


@pytest.mark.parametrize(
    ("registries", "partition", "groups"),
    [
        pytest.param([US], "aws", {("us-east-1", False, False)}, id="one"),
        pytest.param(
            [US, US_OTHER_ACCOUNT, US_DUALSTACK], "aws", {("us-east-1", False, False)}, id="one-region"
        ),
        pytest.param(
            [US, US_FIPS],
            "aws",
            {("us-east-1", False, False), ("us-east-1", False, True)},
            id="fips-from-the-fips-endpoint",
        ),
        pytest.param(
            [US, EU], "aws", {("us-east-1", False, False), ("eu-west-1", False, False)}, id="two-regions"
        ),
        pytest.param([PUBLIC], "aws", {("us-east-1", True, False)}, id="public-only"),
        pytest.param(
            [US, PUBLIC, US_FIPS],
            "aws",
            {("us-east-1", False, False), ("us-east-1", True, False), ("us-east-1", False, True)},
            id="public-separate",
        ),
        pytest.param(
            [EU, PUBLIC],
            "aws",
            {("eu-west-1", False, False), ("us-east-1", True, False)},
            id="public-token-from-us-east-1",
        ),
        pytest.param(
            [CN, CN_DUALSTACK, CN_NW],
            "aws-cn",
            {("cn-north-1", False, False), ("cn-northwest-1", False, False)},
            id="china",
        ),
        pytest.param(
            [GOV_EAST_FIPS, GOV],
            "aws-us-gov",
            {("us-gov-east-1", False, True), ("us-gov-west-1", False, False)},
            id="gov",
        ),
    ],
)
def test_spec_token_groups_and_partition(
    registries: list[str], partition: str, groups: set[tuple[str, bool, bool]]
) -> None:
    spec = parse_spec({"registries": registries}, default_name="app")

    assert spec.token_groups == frozenset(groups)
    assert spec.partition == partition


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({}, Status(), id="empty"),
        pytest.param({"failedAttempts": None, "conditions": None}, Status(), id="nulls"),
        pytest.param(
            {
                "secretName": "pull",
                "expiresAt": "2025-03-01T20:00:00Z",
                "renewalTime": "2025-03-01T16:00:00Z",
                "lastRefreshTime": "2025-03-01T08:00:00Z",
                "lastFailureTime": "2025-03-01T09:30:15Z",
                "failedAttempts": 2,
                "observedGeneration": 7,
                "forceRefresh": "now",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
            Status(
                secret_name="pull",
                expires_at=datetime(2025, 3, 1, 20, tzinfo=UTC),
                renewal_time=datetime(2025, 3, 1, 16, tzinfo=UTC),
                last_refresh_time=datetime(2025, 3, 1, 8, tzinfo=UTC),
                last_failure_time=datetime(2025, 3, 1, 9, 30, 15, tzinfo=UTC),
                failed_attempts=2,
                observed_generation=7,
                force_refresh="now",
                conditions=({"type": "Ready", "status": "True"},),
            ),
            id="full",
        ),
        pytest.param(
            {"expiresAt": "2025-03-01T21:00:00+01:00"},
            Status(expires_at=datetime(2025, 3, 1, 20, tzinfo=UTC)),
            id="offset-converted-to-utc",
        ),
    ],
)
def test_parse_status(raw: dict[str, Any], expected: Status) -> None:
    assert parse_status(raw) == expected


def test_status_written_by_success_parses_back() -> None:
    target = resource(generation=5, force_refresh="r1")
    issued = status_plan.Issued(
        secret_name="pull",
        registries=1,
        expires_at=later(hours=12),
        renewal_time=later(hours=8),
        identity="arn:aws:iam::123456789012:role/operator",
    )

    written = status_plan.success(target, issued, Trigger.ISSUE, NOW)
    parsed = parse_status(written)

    assert parsed == Status(
        secret_name="pull",
        expires_at=later(hours=12),
        renewal_time=later(hours=8),
        last_refresh_time=NOW,
        last_failure_time=None,
        failed_attempts=0,
        observed_generation=5,
        force_refresh="r1",
        conditions=tuple(written["conditions"]),
    )


def test_parse_resource() -> None:
    body = {
        "metadata": {
            "namespace": "team-a",
            "name": "pull",
            "uid": "u-1",
            "generation": 4,
            "annotations": {api.FORCE_REFRESH_ANNOTATION: "2025-03-01"},
        },
        "spec": {"registries": [HOST]},
        "status": {"secretName": "pull", "failedAttempts": 1},
    }

    parsed = parse_resource(body)

    assert (parsed.namespace, parsed.name, parsed.uid, parsed.generation) == ("team-a", "pull", "u-1", 4)
    assert parsed.force_refresh == "2025-03-01"
    assert parsed.spec.secret_name == "pull", "secretName defaults to metadata.name"
    assert parsed.status == Status(secret_name="pull", failed_attempts=1)


def test_parse_resource_without_generation_annotations_or_status() -> None:
    body = {"metadata": {"namespace": "ns", "name": "n", "uid": "u"}, "spec": {"registries": [HOST]}}

    parsed = parse_resource(body)

    assert (parsed.generation, parsed.force_refresh, parsed.status) == (0, None, Status())


def test_parse_resource_without_spec_is_invalid() -> None:
    with pytest.raises(InvalidSpec, match="at least one"):
        parse_resource({"metadata": {"namespace": "ns", "name": "n", "uid": "u"}})
