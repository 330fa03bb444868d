"""ECR registry hosts: every documented form, parsed into what a token request needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ecr_pull_secrets.model import rules

PUBLIC_HOST = "public.ecr.aws"
# ECR Public issues its tokens only from us-east-1, whatever the region of the caller.
PUBLIC_TOKEN_REGION = "us-east-1"

_SUFFIXES = sorted(
    {suffix for forms in rules.REGISTRY_SUFFIXES.values() for suffix in forms if suffix is not None},
    key=len,
    reverse=True,
)
_PRIVATE = re.compile(
    r"^(?P<account>[0-9]{12})"
    r"\.(?P<service>dkr\.ecr|dkr\.ecr-fips|dkr-ecr|dkr-ecr-fips)"
    r"\.(?P<region>[a-z0-9-]+)"  # which regions exist is partition_of's to say
    rf"\.(?P<suffix>{'|'.join(map(re.escape, _SUFFIXES))})"
)


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
            raise InvalidRegistryHost(f"{raw!r}: {region} is not a region of the {_known()} partition")
        service = match["service"]
        dualstack = service.startswith("dkr-ecr")
        fips = service.endswith("-fips")
        standard_suffix, dualstack_suffix = rules.REGISTRY_SUFFIXES[partition]
        if fips and partition not in rules.FIPS_PARTITIONS:
            raise InvalidRegistryHost(
                f"{raw!r}: region {region} is in partition {partition}, which has no FIPS registry "
                f"hosts; write {match['account']}.dkr.ecr.{region}.{standard_suffix}"
            )
        if dualstack and dualstack_suffix is None:
            raise InvalidRegistryHost(
                f"{raw!r}: region {region} is in partition {partition}, which has no dual-stack "
                f"registry hosts; write {match['account']}.dkr.ecr.{region}.{standard_suffix}"
            )
        expected_suffix = dualstack_suffix if dualstack else standard_suffix
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
            fips=fips,
            dualstack=dualstack,
        )


def partition_of(region: str) -> str | None:
    """The partition whose region pattern (botocore's) the region fits; None for none of ours."""
    return next((p for p, pattern in rules.REGION_PATTERNS.items() if rules.matches(pattern, region)), None)


def _known() -> str:
    """aws, aws-cn, ... or aws-iso-f: the partitions parse knows, for messages."""
    *others, last = rules.PARTITIONS
    return f"{', '.join(others)} or {last}"


def _explain(raw: str, host: str) -> str:
    account = host.split(".", 1)[0]
    if account.isdigit() and len(account) != 12:
        return f"{raw!r}: the AWS account id must be exactly 12 digits, not {len(account)}"
    return (
        f"{raw!r} is not an Amazon ECR registry host; expected a form such as "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    )
