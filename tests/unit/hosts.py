"""Registry host tables shared by the parser tests and the CRD schema tests."""

from __future__ import annotations

from typing import NamedTuple

ACCOUNT = "123456789012"


class Valid(NamedTuple):
    id: str
    raw: str
    host: str
    partition: str
    region: str
    account: str | None
    fips: bool = False
    dualstack: bool = False

    @property
    def canonical(self) -> bool:
        return self.raw == self.host


VALID: list[Valid] = [
    Valid("standard", f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com", "", "aws", "us-east-1", ACCOUNT),
    Valid("standard-eu", f"{ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com", "", "aws", "eu-central-1", ACCOUNT),
    Valid(
        "standard-ap", f"{ACCOUNT}.dkr.ecr.ap-southeast-2.amazonaws.com", "", "aws", "ap-southeast-2", ACCOUNT
    ),
    Valid(
        "fips", f"{ACCOUNT}.dkr.ecr-fips.us-east-1.amazonaws.com", "", "aws", "us-east-1", ACCOUNT, fips=True
    ),
    Valid("china", f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn", "", "aws-cn", "cn-north-1", ACCOUNT),
    Valid(
        "china-nw",
        f"{ACCOUNT}.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
        "",
        "aws-cn",
        "cn-northwest-1",
        ACCOUNT,
    ),
    Valid(
        "govcloud",
        f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com",
        "",
        "aws-us-gov",
        "us-gov-west-1",
        ACCOUNT,
    ),
    Valid(
        "govcloud-fips",
        f"{ACCOUNT}.dkr.ecr-fips.us-gov-east-1.amazonaws.com",
        "",
        "aws-us-gov",
        "us-gov-east-1",
        ACCOUNT,
        fips=True,
    ),
    Valid(
        "dualstack", f"{ACCOUNT}.dkr-ecr.us-west-2.on.aws", "", "aws", "us-west-2", ACCOUNT, dualstack=True
    ),
    Valid(
        "dualstack-fips",
        f"{ACCOUNT}.dkr-ecr-fips.us-east-1.on.aws",
        "",
        "aws",
        "us-east-1",
        ACCOUNT,
        fips=True,
        dualstack=True,
    ),
    Valid(
        "dualstack-gov",
        f"{ACCOUNT}.dkr-ecr.us-gov-west-1.on.aws",
        "",
        "aws-us-gov",
        "us-gov-west-1",
        ACCOUNT,
        dualstack=True,
    ),
    Valid(
        "dualstack-china",
        f"{ACCOUNT}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
        "",
        "aws-cn",
        "cn-north-1",
        ACCOUNT,
        dualstack=True,
    ),
    # The partitions without dual-stack or FIPS registry hosts (model/rules.py REGISTRY_SUFFIXES).
    Valid(
        "eusc", f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu", "", "aws-eusc", "eusc-de-east-1", ACCOUNT
    ),
    Valid("iso", f"{ACCOUNT}.dkr.ecr.us-iso-east-1.c2s.ic.gov", "", "aws-iso", "us-iso-east-1", ACCOUNT),
    Valid(
        "iso-b", f"{ACCOUNT}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "", "aws-iso-b", "us-isob-east-1", ACCOUNT
    ),
    Valid(
        "iso-e",
        f"{ACCOUNT}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
        "",
        "aws-iso-e",
        "eu-isoe-west-1",
        ACCOUNT,
    ),
    Valid(
        "iso-f",
        f"{ACCOUNT}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
        "",
        "aws-iso-f",
        "us-isof-south-1",
        ACCOUNT,
    ),
    Valid(
        "eusc-upper-https",
        f"HTTPS://{ACCOUNT}.DKR.ECR.EUSC-DE-EAST-1.AMAZONAWS.EU/",
        f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu",
        "aws-eusc",
        "eusc-de-east-1",
        ACCOUNT,
    ),
    Valid("public", "public.ecr.aws", "", "aws", "us-east-1", None),
    # Normalisation: what users paste from the console or a docker login command.
    Valid(
        "upper-case",
        f"{ACCOUNT}.DKR.ECR.US-EAST-1.AMAZONAWS.COM",
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com",
        "aws",
        "us-east-1",
        ACCOUNT,
    ),
    Valid(
        "https-prefix",
        f"https://{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com",
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com",
        "aws",
        "us-east-1",
        ACCOUNT,
    ),
    Valid(
        "trailing-slash",
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/",
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com",
        "aws",
        "us-east-1",
        ACCOUNT,
    ),
    Valid(
        "upper-https-slash-spaces",
        f"  HTTPS://{ACCOUNT}.DKR-ECR.CN-NORTH-1.ON.AMAZONWEBSERVICES.COM.CN/ ",
        f"{ACCOUNT}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
        "aws-cn",
        "cn-north-1",
        ACCOUNT,
        dualstack=True,
    ),
    Valid("public-https-slash", "https://public.ecr.aws/", "public.ecr.aws", "aws", "us-east-1", None),
]
# An empty expected host means the input is already canonical.
VALID = [v._replace(host=v.host or v.raw) for v in VALID]

TWELVE_DIGITS = "exactly 12 digits"
NOT_ECR = "is not an Amazon ECR registry host"


class Invalid(NamedTuple):
    id: str
    raw: str
    fragments: tuple[str, ...]
    """Substrings the error message must contain to tell the user what to fix."""
    partition_mismatch: bool = False
    """Matches the host grammar, but its suffix belongs to another partition or endpoint kind."""


INVALID: list[Invalid] = [
    Invalid("account-11-digits", "12345678901.dkr.ecr.us-east-1.amazonaws.com", (TWELVE_DIGITS, "not 11")),
    Invalid("account-13-digits", "1234567890123.dkr.ecr.us-east-1.amazonaws.com", (TWELVE_DIGITS, "not 13")),
    Invalid("account-5-digits", "12345.dkr.ecr.us-east-1.amazonaws.com", (TWELVE_DIGITS, "not 5")),
    Invalid("account-letters", "12345678901a.dkr.ecr.us-east-1.amazonaws.com", (NOT_ECR, ACCOUNT)),
    Invalid("no-account", "dkr.ecr.us-east-1.amazonaws.com", (NOT_ECR, f"{ACCOUNT}.dkr.ecr.us-east-1")),
    Invalid("docker-hub", "docker.io", (NOT_ECR,)),
    Invalid("ghcr", "ghcr.io", (NOT_ECR,)),
    Invalid("missing-region", f"{ACCOUNT}.dkr.ecr.amazonaws.com", (NOT_ECR,)),
    Invalid(
        "region-without-number", f"{ACCOUNT}.dkr.ecr.us-east.amazonaws.com", ("us-east is not a region",)
    ),
    Invalid("wrong-service", f"{ACCOUNT}.ecr.us-east-1.amazonaws.com", (NOT_ECR,)),
    Invalid("api-endpoint", "api.ecr.us-east-1.amazonaws.com", (NOT_ECR,)),
    Invalid("lookalike-suffix", f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.evil.example", (NOT_ECR,)),
    Invalid("with-repository-path", f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/team/app", (NOT_ECR,)),
    Invalid("with-port", f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com:443", (NOT_ECR,)),
    Invalid("http-scheme", f"http://{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com", (NOT_ECR,)),
    Invalid("public-with-path", "public.ecr.aws/docker/library", (NOT_ECR,)),
    Invalid("empty", "", (NOT_ECR,)),
    Invalid("blank", "   ", (NOT_ECR,)),
    Invalid("inner-space", f"{ACCOUNT}.dkr.ecr. us-east-1.amazonaws.com", (NOT_ECR,)),
    Invalid("space-after-account", f"{ACCOUNT} .dkr.ecr.us-east-1.amazonaws.com", (NOT_ECR,)),
    Invalid(
        "cn-region-global-suffix",
        f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com",
        ("partition aws-cn", "end in .amazonaws.com.cn"),
        partition_mismatch=True,
    ),
    Invalid(
        "gov-region-cn-suffix",
        f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com.cn",
        ("partition aws-us-gov", "end in .amazonaws.com"),
        partition_mismatch=True,
    ),
    Invalid(
        "global-region-cn-suffix",
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.cn",
        ("partition aws,", "end in .amazonaws.com"),
        partition_mismatch=True,
    ),
    Invalid(
        "dualstack-service-standard-suffix",
        f"{ACCOUNT}.dkr-ecr.us-east-1.amazonaws.com",
        ("dual-stack registry hosts end in .on.aws",),
        partition_mismatch=True,
    ),
    Invalid(
        "standard-service-dualstack-suffix",
        f"{ACCOUNT}.dkr.ecr.us-east-1.on.aws",
        ("registry hosts end in .amazonaws.com",),
        partition_mismatch=True,
    ),
    Invalid(
        "eusc-region-global-suffix",
        f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.com",
        ("partition aws-eusc", "end in .amazonaws.eu"),
        partition_mismatch=True,
    ),
    Invalid(
        "global-region-eusc-suffix",
        f"{ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.eu",
        ("partition aws,", "end in .amazonaws.com"),
        partition_mismatch=True,
    ),
    Invalid(
        "eusc-unknown-country",
        f"{ACCOUNT}.dkr.ecr.eusc-fr-east-1.amazonaws.eu",
        ("eusc-fr-east-1 is not a region", "aws-eusc"),
    ),
    Invalid(
        "iso-region-isob-suffix",
        f"{ACCOUNT}.dkr.ecr.us-iso-east-1.sc2s.sgov.gov",
        ("partition aws-iso,", "end in .c2s.ic.gov"),
        partition_mismatch=True,
    ),
    Invalid(
        "isob-region-iso-suffix",
        f"{ACCOUNT}.dkr.ecr.us-isob-east-1.c2s.ic.gov",
        ("partition aws-iso-b", "end in .sc2s.sgov.gov"),
        partition_mismatch=True,
    ),
    Invalid(
        "isof-region-isoe-suffix",
        f"{ACCOUNT}.dkr.ecr.us-isof-east-1.cloud.adc-e.uk",
        ("partition aws-iso-f", "end in .csp.hci.ic.gov"),
        partition_mismatch=True,
    ),
    Invalid(
        "isoe-region-global-suffix",
        f"{ACCOUNT}.dkr.ecr.eu-isoe-west-1.amazonaws.com",
        ("partition aws-iso-e", "end in .cloud.adc-e.uk"),
        partition_mismatch=True,
    ),
    Invalid(
        "eusc-fips",
        f"{ACCOUNT}.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu",
        ("aws-eusc, which has no FIPS registry hosts", f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu"),
        partition_mismatch=True,
    ),
    Invalid(
        "iso-dualstack",
        f"{ACCOUNT}.dkr-ecr.us-iso-east-1.c2s.ic.gov",
        ("aws-iso, which has no dual-stack registry hosts", f"{ACCOUNT}.dkr.ecr.us-iso-east-1.c2s.ic.gov"),
        partition_mismatch=True,
    ),
    Invalid(
        "eusc-dualstack-on-aws",
        f"{ACCOUNT}.dkr-ecr.eusc-de-east-1.on.aws",
        ("aws-eusc, which has no dual-stack registry hosts",),
        partition_mismatch=True,
    ),
    Invalid(
        "cn-dualstack-global-suffix",
        f"{ACCOUNT}.dkr-ecr.cn-north-1.on.aws",
        ("partition aws-cn", "end in .on.amazonwebservices.com.cn"),
        partition_mismatch=True,
    ),
]
