"""The token calls: ECR and ECR Public GetAuthorizationToken, and the caller's identity."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Protocol

from ecr_pull_secrets.aws.errors import classify
from ecr_pull_secrets.aws.ratelimit import RateLimiter
from ecr_pull_secrets.aws.services import ECR, ECR_PUBLIC
from ecr_pull_secrets.aws.sessions import ChainSession, SessionResolver
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.identity import Chain
from ecr_pull_secrets.model.registry import PUBLIC_TOKEN_REGION


class TokenSource(Protocol):
    def authorization_token(
        self,
        chain: Chain,
        partition: str,
        region: str,
        public: bool,
        owner: tuple[str, str],
        *,
        fips: bool = False,
    ) -> tuple[Credential, datetime]: ...

    def caller_arn(self, chain: Chain, partition: str, owner: tuple[str, str]) -> str: ...

    def session_requests(self, chain: Chain, partition: str) -> int | None:
        """The AWS requests resolving the chain's session would make; None while a resolved one
        is good (the calls above then make only their own)."""
        ...

    def resolve_session(self, chain: Chain, partition: str, owner: tuple[str, str]) -> None:
        """Resolves the chain's session ahead of the calls that need it; blocking."""
        ...


class BotoTokenSource:
    """Blocking; the broker runs it in a thread."""

    def __init__(self, resolver: SessionResolver) -> None:
        self._resolver = resolver

    def authorization_token(
        self,
        chain: Chain,
        partition: str,
        region: str,
        public: bool,
        owner: tuple[str, str],
        *,
        fips: bool = False,
    ) -> tuple[Credential, datetime]:
        """`fips`: from ECR's FIPS endpoint in `region` (ECR Public has none)."""
        session = self._resolver.resolve(chain, partition, owner)
        if public:
            return public_token(session)
        where = f"{region} (FIPS endpoint)" if fips else region
        try:
            ecr = session.client(ECR, region, fips=fips)
            data = ecr.get_authorization_token()["authorizationData"][0]
        except Exception as error:
            raise classify(error, f"ecr:GetAuthorizationToken in {where}") from None
        return _decode(data["authorizationToken"]), data["expiresAt"].astimezone(UTC)

    def caller_arn(self, chain: Chain, partition: str, owner: tuple[str, str]) -> str:
        session = self._resolver.resolve(chain, partition, owner)
        try:
            return str(session.sts().get_caller_identity()["Arn"])
        except Exception as error:
            raise classify(error, "sts:GetCallerIdentity") from None

    def session_requests(self, chain: Chain, partition: str) -> int | None:
        return self._resolver.requests_to_resolve(chain, partition)

    def resolve_session(self, chain: Chain, partition: str, owner: tuple[str, str]) -> None:
        self._resolver.resolve(chain, partition, owner)


def public_token(session: ChainSession) -> tuple[Credential, datetime]:
    """ECR Public issues tokens only in us-east-1 (and needs sts:GetServiceBearerToken)."""
    try:
        data = session.client(ECR_PUBLIC, PUBLIC_TOKEN_REGION).get_authorization_token()["authorizationData"]
    except Exception as error:
        raise classify(error, "ecr-public:GetAuthorizationToken") from None
    return _decode(data["authorizationToken"]), data["expiresAt"].astimezone(UTC)


def _decode(token: str) -> Credential:
    username, _, password = base64.b64decode(token).decode().partition(":")
    return Credential(username, password)


def default_source(rate_limit: float = 10.0) -> BotoTokenSource:
    """For callers outside the operator (the CLI): the default chain only, no TokenRequest."""

    def no_tokens(namespace: str, name: str, audience: str) -> str:
        raise RuntimeError("ServiceAccount tokens are only available inside the operator")

    return BotoTokenSource(SessionResolver(no_tokens, RateLimiter(rate_limit), lambda: datetime.now(UTC)))
