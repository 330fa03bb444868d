"""AWS failures turned into stable reasons and messages that carry no secret material."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
)

_REASONS = {
    "AccessDenied": "AccessDenied",
    "AccessDeniedException": "AccessDenied",
    "UnauthorizedOperation": "AccessDenied",
    "Throttling": "Throttled",
    "ThrottlingException": "Throttled",
    "TooManyRequestsException": "Throttled",
    "RequestLimitExceeded": "Throttled",
    "ExpiredToken": "InvalidCredentials",
    "ExpiredTokenException": "InvalidCredentials",
    "InvalidClientTokenId": "InvalidCredentials",
    "UnrecognizedClientException": "InvalidCredentials",
    "SignatureDoesNotMatch": "InvalidCredentials",
    "InvalidIdentityToken": "InvalidCredentials",
}


def is_throttling(code: str) -> bool:
    """Whether an AWS error code means "slow down"."""
    return _REASONS.get(code) == "Throttled"


class AwsCallFailed(Exception):
    """An AWS call failed; `reason` is a stable CamelCase word, `message` is safe to show."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def classify(error: Exception, what: str) -> AwsCallFailed:
    kind = type(error).__name__
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Unknown"))
        text = str(details.get("Message", "")).strip()
        detail = f"{code}: {text}" if text else code
        return AwsCallFailed(_REASONS.get(code, "AwsError"), f"{what} failed: {detail}")
    if isinstance(error, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return AwsCallFailed("NoCredentials", f"{what} failed: no usable AWS credentials ({kind})")
    if isinstance(error, ConnectionError):
        return AwsCallFailed("AwsUnreachable", f"{what} failed: AWS endpoint unreachable ({kind})")
    if isinstance(error, BotoCoreError):
        return AwsCallFailed("AwsError", f"{what} failed: {kind}")
    raise error


MAX_CHAINS_FLAG = "--max-chains-per-namespace"


class QuotaExceeded(AwsCallFailed):
    """A namespace would use more distinct credential chains than the operator allows."""

    def __init__(self, namespace: str, cap: int) -> None:
        super().__init__(
            "QuotaExceeded",
            f"namespace {namespace} already uses {cap} distinct AWS credential chains, the most the "
            f"operator allows per namespace (each roleChain resource is a chain of its own: its "
            f"sessions are tagged with its name); delete unused ones, or ask the operator's "
            f"administrator to raise {MAX_CHAINS_FLAG}",
        )
