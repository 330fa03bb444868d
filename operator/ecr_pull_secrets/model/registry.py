"""ECR registry hosts: every documented form, parsed into what a token request needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ecr_pull_secrets.model import rules

PUBLIC_HOST = "public.ecr.aws"
# ECR Public issues its tokens only from us-east-1, whatever the region of the caller.
PUBLIC_TOKEN_REGION = "us-east-1"

_PRIVATE = re.compile(
    r"^(?P<account>[0-9]{12})"
    r"\.(?P<service>dkr\.ecr|dkr\.ecr-fips|dkr-ecr|dkr-ecr-fips)"
    r"\.(?P<region>[a-z0-9-]+)"  # which regions exist is partition_of's to say
    r"\.(?P<suffix>amazonaws\.com|amazonaws\.com\.cn|on\.aws|on\.amazonwebservices\.com\.cn)"
)
_DUALSTACK_SUFFIX = {"aws": "on.aws", "aws-cn": "on.amazonwebservices.com.cn", "aws-us-gov": "on.aws"}
_STANDARD_SUFFIX = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}


TokenGroup = tuple[str, bool, bool]
"""(region, public, fips): the hosts one ECR token serves, asked from one endpoint."""


class InvalidRegistryHost(ValueError):
    """A registry host that is not an Amazon ECR registry."""


@dataclass(frozen=True, order=True)
class RegistryHost:
    host: str
    partition: str
    region: str
    account: str | None  # None for ECR Public
    fips: bool = False
    dualstack: bool = False

    @property
    def public(self) -> bool:
        return self.account is None

    @property
    def token_group(self) -> TokenGroup:
        return (self.region, self.public, self.fips)

    @classmethod
    def parse(cls, raw: str) -> RegistryHost:
        host = raw.strip().lower().removeprefix("https://").rstrip("/")
        if host == PUBLIC_HOST:
            return cls(host=host, partition="aws", region=PUBLIC_TOKEN_REGION, account=None)
        match = _PRIVATE.fullmatch(host)
        if match is None:
            raise InvalidRegistryHost(_explain(raw, host))
        region = match["region"]
        partition = partition_of(region)
        if partition is None:
            raise InvalidRegistryHost(
                f"{raw!r}: {region} is not a region of the aws, aws-cn or aws-us-gov partition"
            )
        service = match["service"]
        dualstack = service.startswith("dkr-ecr")
        expected_suffix = (_DUALSTACK_SUFFIX if dualstack else _STANDARD_SUFFIX)[partition]
        if match["suffix"] != expected_suffix:
            raise InvalidRegistryHost(
                f"{raw!r}: region {region} is in partition {partition}, whose "
                f"{'dual-stack ' if dualstack else ''}registry hosts end in .{expected_suffix}"
            )
        return cls(
            host=host,
            partition=partition,
            region=region,
            account=match["account"],
            fips=service.endswith("-fips"),
            dualstack=dualstack,
        )


def partition_of(region: str) -> str | None:
    """The partition whose region pattern (botocore's) the region fits; None for none of ours."""
    return next((p for p, pattern in rules.REGION_PATTERNS.items() if rules.matches(pattern, region)), None)


def _explain(raw: str, host: str) -> str:
    account = host.split(".", 1)[0]
    if account.isdigit() and len(account) != 12:
        return f"{raw!r}: the AWS account id must be exactly 12 digits, not {len(account)}"
    return (
        f"{raw!r} is not an Amazon ECR registry host; expected a form such as "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    )
