"""RegistryHost.parse: every documented ECR host form, and helpful errors for everything else."""

from __future__ import annotations

import pytest

from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost, partition_of
from tests.unit.hosts import ACCOUNT, INVALID, TWELVE_DIGITS, VALID, Invalid, Valid


@pytest.mark.parametrize("case", VALID, ids=[v.id for v in VALID])
def test_parse_valid_host(case: Valid) -> None:
    parsed = RegistryHost.parse(case.raw)

    assert parsed == RegistryHost(
        host=case.host,
        partition=case.partition,
        region=case.region,
        account=case.account,
        fips=case.fips,
        dualstack=case.dualstack,
    )
    assert parsed.public is (case.account is None)


@pytest.mark.parametrize("case", VALID, ids=[v.id for v in VALID])
def test_parse_is_idempotent(case: Valid) -> None:
    parsed = RegistryHost.parse(case.raw)

    assert RegistryHost.parse(parsed.host) == parsed


@pytest.mark.parametrize("case", INVALID, ids=[c.id for c in INVALID])
def test_parse_rejects_malformed_host(case: Invalid) -> None:
    with pytest.raises(InvalidRegistryHost) as caught:
        RegistryHost.parse(case.raw)

    message = str(caught.value)
    assert repr(case.raw) in message, "the message must quote what the user wrote"
    for fragment in case.fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("https://12345678901.dkr.ecr.us-east-1.amazonaws.com", id="https-prefix"),
        pytest.param("  12345678901.dkr.ecr.us-east-1.amazonaws.com", id="leading-spaces"),
        pytest.param("HTTPS://1234567890123.DKR.ECR.US-EAST-1.AMAZONAWS.COM", id="upper-case-https"),
    ],
)
def test_account_length_message_survives_normalisation(raw: str) -> None:
    with pytest.raises(InvalidRegistryHost, match=TWELVE_DIGITS):
        RegistryHost.parse(raw)


def test_newline_inside_host_is_rejected() -> None:
    with pytest.raises(InvalidRegistryHost):
        RegistryHost.parse(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com\n/")


def test_invalid_registry_host_is_a_value_error() -> None:
    assert issubclass(InvalidRegistryHost, ValueError)


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        pytest.param("us-east-1", "aws", id="us"),
        pytest.param("eu-west-3", "aws", id="eu"),
        pytest.param("cn-north-1", "aws-cn", id="china"),
        pytest.param("cn-northwest-1", "aws-cn", id="china-nw"),
        pytest.param("us-gov-west-1", "aws-us-gov", id="govcloud-west"),
        pytest.param("us-gov-east-1", "aws-us-gov", id="govcloud-east"),
        pytest.param("us-govx-1", "aws", id="gov-lookalike"),
        pytest.param("eusc-de-east-1", "aws-eusc", id="eu-sovereign"),
        pytest.param("eusc-de-west-2", "aws-eusc", id="eu-sovereign-future"),
        pytest.param("eusc-fr-east-1", None, id="eu-sovereign-unknown-country"),
        pytest.param("us-iso-east-1", "aws-iso", id="iso"),
        pytest.param("us-isob-east-1", "aws-iso-b", id="iso-b"),
        pytest.param("eu-isoe-west-1", "aws-iso-e", id="iso-e"),
        pytest.param("us-isof-south-1", "aws-iso-f", id="iso-f"),
        pytest.param("us-isoz-east-1", None, id="iso-unknown-letter"),
    ],
)
def test_partition_of(region: str, partition: str | None) -> None:
    assert partition_of(region) == partition
