"""Issuer.issue with a real TokenBroker over a fake TokenSource (the AWS protocol boundary)."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import Any, cast

import pytest

from ecr_pull_secrets.aws.broker import TokenBroker
from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.handlers.issuing import Issuer
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.identity import Chain
from ecr_pull_secrets.plan.renewal import RenewalPolicy, Trigger
from tests.unit.factories import NOW, later, resource

WAIT = 10.0  # seconds a blocked call waits for the other before it gives up, so nothing hangs


class Overlapping:
    """A TokenSource whose token call answers only once the identity call has begun: an issue
    that asks the two one after the other fails (after WAIT). With `failing`, both calls fail
    (bad credentials), the identity call first."""

    def __init__(self, *, failing: bool = False) -> None:
        self.identity_asked = threading.Event()
        self.failing = failing

    def authorization_token(
        self, chain: Chain, partition: str, region: str, public: bool, owner: tuple[str, str], *, fips: bool
    ) -> tuple[Credential, datetime]:
        if not self.identity_asked.wait(WAIT):
            raise TimeoutError("the identity was asked only after the token")
        if self.failing:
            raise AwsCallFailed("UnrecognizedClientException", "ecr:GetAuthorizationToken failed")
        return Credential("AWS", "token"), later(hours=12)

    def caller_arn(self, chain: Chain, partition: str, owner: tuple[str, str]) -> str:
        self.identity_asked.set()
        if self.failing:
            raise AwsCallFailed("InvalidClientTokenId", "sts:GetCallerIdentity failed")
        return "arn:aws:sts::123456789012:assumed-role/operator/session"

    def session_requests(self, chain: Chain, partition: str) -> int | None:
        return None

    def resolve_session(self, chain: Chain, partition: str, owner: tuple[str, str]) -> None:
        return None


class Untouched:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call: {name}")


def issuer(source: Overlapping) -> Issuer:
    return Issuer(
        broker=TokenBroker(cast(Any, source), clock=lambda: NOW),
        secrets=cast(Any, Untouched()),
        service_accounts=cast(Any, Untouched()),
        cache=ClusterCache(),
        policy=RenewalPolicy(),
        clock=lambda: NOW,
    )


def test_the_identity_is_asked_alongside_the_token_not_after_it() -> None:
    """After a restart every chain needs both: asked one after the other, each AWS round trip
    (and each retry of it) came on top of the time a due Secret waits."""
    held = asyncio.run(issuer(Overlapping()).issue(resource(), Trigger.ISSUE, NOW))

    assert held.identity == "arn:aws:sts::123456789012:assumed-role/operator/session"
    assert [c.password for c in held.credentials.values()] == ["token"]


def test_when_both_fail_the_token_s_error_is_the_one_raised() -> None:
    """What the condition says of a failing chain does not depend on which call AWS answered first."""
    with pytest.raises(AwsCallFailed, match="ecr:GetAuthorizationToken"):
        asyncio.run(issuer(Overlapping(failing=True)).issue(resource(), Trigger.ISSUE, NOW))
