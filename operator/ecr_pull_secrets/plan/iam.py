"""Least-privilege IAM policies for pulling from ECR registries: pure, no AWS calls.

The identity policy lets a principal get registry tokens and read the named repositories (and,
given pull-through cache prefixes, create and fill the cache repositories a first pull needs);
the optional trust policy lets one Kubernetes ServiceAccount assume the role through IRSA.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ecr_pull_secrets.model import rules
from ecr_pull_secrets.model.registry import RegistryHost

POLICY_VERSION = "2012-10-17"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
"""The audience EKS's pod identity webhook puts into projected ServiceAccount tokens."""

PRIVATE_TOKEN_ACTIONS = ("ecr:GetAuthorizationToken",)
PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
# ECR Public mints its token through an STS service bearer token; pulling needs nothing else.
PUBLIC_TOKEN_ACTIONS = ("ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken")
# The first pull of an image through a pull-through cache rule creates its repository and imports it.
PULL_THROUGH_CACHE_ACTIONS = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")
ROOT_CACHE_PREFIX = "ROOT"
"""The cache prefix of a rule whose repositories carry no prefix (ECR-to-ECR caches)."""

# ECR's repository name grammar, where IAM's `*` and `?` wildcards may stand for any character.
_REPOSITORY = re.compile(r"(?:[a-z0-9*?]+(?:[._-][a-z0-9*?]+)*/)*[a-z0-9*?]+(?:[._-][a-z0-9*?]+)*")
_REPOSITORY_MAX = 256
# A pull-through cache rule's ecrRepositoryPrefix: the same grammar without wildcards, 2 to 30 long.
_CACHE_PREFIX = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_CACHE_PREFIX_LENGTH = range(2, 31)
_OIDC_PROVIDER = re.compile(
    rf"arn:(?P<partition>{'|'.join(map(re.escape, rules.PARTITIONS))}):iam::(?P<account>[0-9]{{12}})"
    r":oidc-provider/(?P<issuer>[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~-]+)*)"
)
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


class InvalidPolicyRequest(ValueError):
    """The inputs cannot make a valid policy; the message says what to change."""


class MixedPartitions(InvalidPolicyRequest):
    """The registries (or the OIDC provider) are in different AWS partitions."""


@dataclass(frozen=True)
class ServiceAccount:
    namespace: str
    name: str

    @classmethod
    def parse(cls, raw: str) -> ServiceAccount:
        namespace, slash, name = raw.strip().partition("/")
        if not slash or not _DNS_LABEL.fullmatch(namespace) or not _is_subdomain(name):
            raise InvalidPolicyRequest(
                f"{raw!r} is not a ServiceAccount as NAMESPACE/NAME, e.g. kube-system/ecr-pull-secrets"
            )
        return cls(namespace, name)

    @property
    def subject(self) -> str:
        """The `sub` claim of this ServiceAccount's projected tokens."""
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass(frozen=True)
class OidcProvider:
    arn: str
    partition: str
    account: str
    issuer: str
    """Issuer URL without its scheme, as IAM's condition keys name it."""

    @classmethod
    def parse(cls, raw: str) -> OidcProvider:
        arn = raw.strip()
        match = _OIDC_PROVIDER.fullmatch(arn)
        if match is None:
            raise InvalidPolicyRequest(
                f"{raw!r} is not an IAM OIDC provider ARN; expected a form such as "
                "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
            )
        return cls(arn, match["partition"], match["account"], match["issuer"])


def identity_policy(
    registries: Iterable[RegistryHost],
    repositories: Iterable[str] = (),
    *,
    pull_through_cache: Iterable[str] = (),
) -> dict[str, Any]:
    """Token permissions for every registry kind given, and read access to `repositories` (all
    repositories when empty) in every private registry. With `pull_through_cache` prefixes, also
    read, create and import access to the repositories under each prefix, which the first pull
    through a pull-through cache rule needs. All registries must share a partition."""
    hosts = sorted(set(registries))
    if not hosts:
        raise InvalidPolicyRequest("name at least one registry")
    partition = _partition_of(hosts)
    names = _repository_names(repositories)
    cached = _cache_repositories(pull_through_cache)
    private = [host for host in hosts if not host.public]
    if names and not private:
        raise InvalidPolicyRequest(
            "repositories apply to private registries only; pulling from public.ecr.aws needs no "
            "repository permission"
        )
    if cached and not private:
        raise InvalidPolicyRequest(
            "pull-through cache prefixes apply to private registries only; name the registry that "
            "holds the pull-through cache rule"
        )
    if names and cached:
        names = _repository_names((*names, *cached))  # the cached repositories are pulled too
    statements: list[dict[str, Any]] = []
    if private:
        statements.append(_allow("GetEcrAuthorizationToken", PRIVATE_TOKEN_ACTIONS, ["*"]))
        statements.append(_allow("PullFromEcrRepositories", PULL_ACTIONS, _arns(partition, private, names)))
        if cached:
            statements.append(
                _allow(
                    "ImportIntoPullThroughCache",
                    PULL_THROUGH_CACHE_ACTIONS,
                    _arns(partition, private, cached),
                )
            )
    if any(host.public for host in hosts):
        statements.append(_allow("GetEcrPublicAuthorizationToken", PUBLIC_TOKEN_ACTIONS, ["*"]))
    return {"Version": POLICY_VERSION, "Statement": statements}


def trust_policy(
    provider: OidcProvider, service_account: ServiceAccount, audience: str = DEFAULT_AUDIENCE
) -> dict[str, Any]:
    """A role trust policy that only `service_account`'s tokens from `provider` can assume."""
    if not audience.strip():
        raise InvalidPolicyRequest("the token audience must not be empty")
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AssumeFromServiceAccount",
                "Effect": "Allow",
                "Principal": {"Federated": provider.arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{provider.issuer}:sub": service_account.subject,
                        f"{provider.issuer}:aud": audience.strip(),
                    }
                },
            }
        ],
    }


def policies(
    registries: Sequence[RegistryHost],
    repositories: Sequence[str] = (),
    *,
    pull_through_cache: Sequence[str] = (),
    trust: tuple[OidcProvider, ServiceAccount] | None = None,
    audience: str = DEFAULT_AUDIENCE,
) -> dict[str, Any]:
    """The document `iam-policy` prints: the identity policy alone, or with `trust` both policies
    as `{"identityPolicy": ..., "trustPolicy": ...}`."""
    identity = identity_policy(registries, repositories, pull_through_cache=pull_through_cache)
    if trust is None:
        return identity
    provider, service_account = trust
    partition = _partition_of(registries)
    if provider.partition != partition:
        raise MixedPartitions(
            f"the OIDC provider is in partition {provider.partition} but the registries are in "
            f"{partition}; a role can only read registries of its own partition"
        )
    return {"identityPolicy": identity, "trustPolicy": trust_policy(provider, service_account, audience)}


def _allow(sid: str, actions: Sequence[str], resources: Sequence[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": list(resources)}


def _arns(partition: str, private: Iterable[RegistryHost], names: Sequence[str]) -> list[str]:
    return sorted(
        {
            f"arn:{partition}:ecr:{host.region}:{host.account}:repository/{name}"
            for host in private
            for name in names or ("*",)
        }
    )


def _partition_of(hosts: Iterable[RegistryHost]) -> str:
    by_partition: dict[str, list[str]] = {}
    for host in sorted(set(hosts)):
        by_partition.setdefault(host.partition, []).append(host.host)
    if len(by_partition) != 1:
        spans = "; ".join(f"{name}: {', '.join(members)}" for name, members in sorted(by_partition.items()))
        raise MixedPartitions(
            f"the registries span several AWS partitions ({spans}); an IAM policy belongs to one "
            "partition, so make one policy per partition"
        )
    return next(iter(by_partition))


def _repository_names(repositories: Iterable[str]) -> tuple[str, ...]:
    names: set[str] = set()
    for raw in repositories:
        name = raw.strip()
        if len(name) > _REPOSITORY_MAX or not _REPOSITORY.fullmatch(name):
            raise InvalidPolicyRequest(
                f"{raw!r} is not an ECR repository name: lowercase letters, digits and . _ - / "
                "(IAM wildcards * and ? allowed), e.g. team-a/app"
            )
        names.add(name)
    # `*` already covers every repository; listing others beside it would only add noise.
    return ("*",) if "*" in names else tuple(sorted(names))


def _cache_repositories(prefixes: Iterable[str]) -> tuple[str, ...]:
    """The repository patterns a pull-through cache rule fills: `PREFIX/*`, or `*` for ROOT."""
    patterns: set[str] = set()
    for raw in prefixes:
        prefix = raw.strip().removesuffix("/")  # ECR reads `docker-hub` and `docker-hub/` alike
        if prefix == ROOT_CACHE_PREFIX:
            patterns.add("*")
        elif len(prefix) in _CACHE_PREFIX_LENGTH and _CACHE_PREFIX.fullmatch(prefix):
            patterns.add(f"{prefix}/*")
        else:
            raise InvalidPolicyRequest(
                f"{raw!r} is not a pull-through cache prefix: 2 to 30 lowercase letters, digits and "
                ". _ - / (no wildcards), e.g. docker-hub, or ROOT"
            )
    return ("*",) if "*" in patterns else tuple(sorted(patterns))


def _is_subdomain(name: str) -> bool:
    return len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name) is not None
