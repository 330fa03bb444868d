"""ECR token and caller-identity calls through boto3 (sync; callers run them in a thread)."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import boto3
from botocore.config import Config

from ecr_pull_secrets import __version__
from ecr_pull_secrets.aws.errors import classify
from ecr_pull_secrets.model.credential import Credential

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_sts import STSClient

# botocore's "standard" retry mode already retries throttling and transient errors with backoff.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=15,
    user_agent_extra=f"ecr-pull-secret-operator/{__version__}",
)


class TokenSource(Protocol):
    def authorization_token(self, region: str) -> tuple[Credential, datetime]: ...

    def caller_arn(self, region: str) -> str: ...


class BotoTokenSource:
    """One boto3 session (one credential chain); clients are made once per region and reused."""

    def __init__(self, session: boto3.session.Session, config: Config = CLIENT_CONFIG) -> None:
        self._session = session
        self._config = config
        self._clients: dict[tuple[str, str], Any] = {}
        # boto3 sessions are not thread-safe for client creation; clients themselves are.
        self._lock = threading.Lock()

    def authorization_token(self, region: str) -> tuple[Credential, datetime]:
        client: ECRClient = self._client("ecr", region)
        try:
            data = client.get_authorization_token()["authorizationData"][0]
        except Exception as error:
            raise classify(error, f"ecr:GetAuthorizationToken in {region}") from None
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        return Credential(username, password), data["expiresAt"].astimezone(UTC)

    def caller_arn(self, region: str) -> str:
        client: STSClient = self._client("sts", region)
        try:
            return client.get_caller_identity()["Arn"]
        except Exception as error:
            raise classify(error, "sts:GetCallerIdentity") from None

    def _client(self, service: Literal["ecr", "sts"], region: str) -> Any:
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service,
                    region_name=region,
                    config=self._config,
                )
            return self._clients[key]


def default_chain() -> BotoTokenSource:
    """boto3's default chain: IRSA web identity, EKS Pod Identity, env keys, instance profile."""
    return BotoTokenSource(boto3.session.Session())
