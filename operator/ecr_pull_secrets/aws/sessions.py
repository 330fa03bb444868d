"""Credential chains → botocore sessions with live credentials.

The operator's own identity is botocore's default chain (IRSA web identity, EKS Pod Identity, env
keys, instance profile), which refreshes itself. Assumed roles and web identities are cached
until shortly before their credentials expire.

In the operator the broker resolves a chain's session as a step of its own, once for all the
token calls of the chain (`requests_to_resolve` tells it whether, and what that costs at the rate
limit), so those calls find it cached; the per-chain lock in `resolve` only guards the rare call
that finds it expired meanwhile, and the CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import botocore.loaders
import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from ecr_pull_secrets import __version__
from ecr_pull_secrets.aws.errors import classify, is_throttling
from ecr_pull_secrets.aws.ratelimit import RateLimiter
from ecr_pull_secrets.aws.services import ECR, STS
from ecr_pull_secrets.metrics import AwsResult, Metrics
from ecr_pull_secrets.model.identity import Chain, OperatorIdentity, StaticKeys, WebIdentity, session_name

# Every AWS request: connect timeout 5 s, read timeout 15 s, at most 4 attempts (botocore's
# "standard" mode retries throttling and transient errors with backoff), each attempt paced by the
# rate limit (aws/ratelimit.py).
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=15,
    user_agent_extra=f"ecr-pull-secret-operator/{__version__}",
)
# Assumed-role credentials live an hour; replace them well before that.
REFRESH_MARGIN = timedelta(minutes=10)
ROLE_DURATION_SECONDS = 3600
# Where each partition's STS calls go: a region of that partition (botocore's partitions.json
# names one as implicitGlobalRegion; tests/unit checks each region is listed in its partition).
_STS_REGION = {
    "aws": "us-east-1",
    "aws-cn": "cn-north-1",
    "aws-us-gov": "us-gov-west-1",
    "aws-eusc": "eusc-de-east-1",
    "aws-iso": "us-iso-east-1",
    "aws-iso-b": "us-isob-east-1",
    "aws-iso-e": "eu-isoe-west-1",
    "aws-iso-f": "us-isof-south-1",
}

MintToken = Callable[[str, str, str], str]
"""(namespace, service account, audience) -> a ServiceAccount token from the TokenRequest API."""


@dataclass
class ChainSession:
    """A resolved chain in one partition: a session, its clients, and when to re-resolve it."""

    session: botocore.session.Session
    partition: str
    expires_at: datetime | None
    limiter: RateLimiter
    config: Config
    metrics: Metrics | None = None
    _clients: dict[tuple[str, str, bool], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str, region: str, fips: bool = False) -> Any:
        """`fips`: the service's FIPS endpoint (e.g. api.ecr-fips.us-east-1.amazonaws.com)."""
        with self._lock:
            key = (service, region, fips)
            if key not in self._clients:
                config = self.config.merge(Config(use_fips_endpoint=True)) if fips else self.config
                client = self.session.create_client(service, region_name=region, config=config)
                # Every HTTP attempt, retries included, counts against the shared rate limit.
                client.meta.events.register("before-send", self._throttle)
                if self.metrics is not None:
                    counted = _CallCounter(self.metrics, service)
                    client.meta.events.register("after-call", counted.after_call)
                    client.meta.events.register("after-call-error", counted.after_call_error)
                self._clients[key] = client
            return self._clients[key]

    def _throttle(self, **_: Any) -> None:
        """A before-send hook must return None: botocore takes any other value as the response."""
        self.limiter.spend()

    def sts(self) -> Any:
        return self.client(STS, self.sts_region(self.partition))

    @staticmethod
    def sts_region(partition: str) -> str:
        return _STS_REGION[partition]


class SessionResolver:
    def __init__(
        self,
        mint_token: MintToken,
        limiter: RateLimiter,
        clock: Callable[[], datetime],
        *,
        config: Config = CLIENT_CONFIG,
        metrics: Metrics | None = None,
        loader: botocore.loaders.Loader | None = None,
    ) -> None:
        """`loader`: where botocore's data comes from (tests hand in the image's pruned copy)."""
        self._mint_token = mint_token
        self._limiter = limiter
        self._clock = clock
        self._config = config
        self._metrics = metrics
        self._sessions: dict[tuple[str, str], ChainSession] = {}
        # One loader for every session: each would otherwise parse and keep its own copy of the
        # service models and endpoint rules, about 9.5 MB per chain (0.45 MB shared, measured).
        self._loader = loader or botocore.loaders.create_loader()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.credential_calls = 0

    def warm(self) -> None:
        """Loads into the shared loader what every first STS and ECR call needs (service models,
        endpoint rules: about 11 MB, measured), once, at start: else the first resource's pass
        waits for it. Blocking: run it in a thread. No call is made, no credential looked up."""
        session, region = self._session("unused", "unused"), ChainSession.sts_region("aws")
        session.create_client(STS, region_name=region, config=self._config)
        session.create_client(ECR, region_name=region, config=self._config)

    def resolve(self, chain: Chain, partition: str, owner: tuple[str, str]) -> ChainSession:
        """`owner` (namespace, name) names default role sessions; blocking, run it in a thread."""
        key = (chain.key, partition)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._sessions.get(key)
            if cached is not None and self._good(cached):
                return cached
            resolved = self._resolve(chain, partition, owner)
            with self._guard:
                if self._locks.get(key) is lock:  # not forgotten meanwhile
                    self._sessions[key] = resolved
            return resolved

    def requests_to_resolve(self, chain: Chain, partition: str) -> int | None:
        """None while a resolved session is good; else the STS requests resolving makes (one
        per role assumed, web identity included; the operator's own identity refreshes itself)."""
        cached = self._sessions.get((chain.key, partition))
        if cached is not None and self._good(cached):
            return None
        return len(chain.hops) + isinstance(chain.start, WebIdentity)

    def _good(self, session: ChainSession) -> bool:
        return session.expires_at is None or session.expires_at - self._clock() > REFRESH_MARGIN

    def forget(self, chain_key: str) -> None:
        """No resource uses this chain any more: drop its sessions (every partition)."""
        with self._guard:
            for key in [k for k in self._locks if k[0] == chain_key]:
                del self._locks[key]
            for key in [k for k in self._sessions if k[0] == chain_key]:
                del self._sessions[key]

    def _resolve(self, chain: Chain, partition: str, owner: tuple[str, str]) -> ChainSession:
        try:
            return self._assume(chain, partition, owner)
        except BotoCoreError as error:  # e.g. ProfileNotFound from a broken AWS config
            raise classify(error, "loading the AWS configuration") from None

    def _assume(self, chain: Chain, partition: str, owner: tuple[str, str]) -> ChainSession:
        start = chain.start
        expires_at: datetime | None = None
        if isinstance(start, OperatorIdentity):
            session = self._session()
        elif isinstance(start, StaticKeys):
            session = self._session(start.access_key_id, start.secret_access_key, start.session_token)
        else:
            session, expires_at = self._web_identity(start, partition, owner)
        current = self._wrap(session, partition, expires_at)
        for hop in chain.hops:
            request: dict[str, Any] = {
                "RoleArn": hop.role_arn,
                "RoleSessionName": session_name(hop, *owner),
                "DurationSeconds": ROLE_DURATION_SECONDS,
                "Tags": [{"Key": k, "Value": v} for k, v in chain.tags],
            }
            if hop.external_id:
                request["ExternalId"] = hop.external_id
            self.credential_calls += 1
            try:
                credentials = current.sts().assume_role(**request)["Credentials"]
            except Exception as error:
                raise classify(error, f"sts:AssumeRole {hop.role_arn}") from None
            session = self._session_from(credentials)
            expires_at = _earliest(expires_at, credentials["Expiration"])
            current = self._wrap(session, partition, expires_at)
        return current

    def _web_identity(
        self, start: WebIdentity, partition: str, owner: tuple[str, str]
    ) -> tuple[botocore.session.Session, datetime]:
        token = self._mint_token(start.namespace, start.service_account, start.audience)
        # AssumeRoleWithWebIdentity is authenticated by the token itself; nothing to sign with.
        unsigned = self._wrap(self._session(), partition, None)
        unsigned.config = self._config.merge(Config(signature_version=UNSIGNED))
        self.credential_calls += 1
        try:
            credentials = unsigned.sts().assume_role_with_web_identity(
                RoleArn=start.role_arn,
                RoleSessionName=f"ecr-pull-secrets.{start.namespace}.{start.service_account}"[:64],
                WebIdentityToken=token,
                DurationSeconds=ROLE_DURATION_SECONDS,
            )["Credentials"]
        except Exception as error:
            raise classify(error, f"sts:AssumeRoleWithWebIdentity {start.role_arn}") from None
        return self._session_from(credentials), credentials["Expiration"]

    def _session(
        self, access_key_id: str | None = None, secret_key: str | None = None, token: str | None = None
    ) -> botocore.session.Session:
        """A session with these keys, or the default credential chain when none are given.

        botocore's, not boto3's: a boto3 Session appends its data path to the loader it is given,
        so the shared loader's search path would grow with every session."""
        session = botocore.session.Session()
        session.register_component("data_loader", self._loader)
        if access_key_id is not None and secret_key is not None:
            session.set_credentials(access_key_id, secret_key, token)
        return session

    def _session_from(self, credentials: Mapping[str, Any]) -> botocore.session.Session:
        """A session with the keys of an STS answer."""
        return self._session(
            credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )

    def _wrap(
        self, session: botocore.session.Session, partition: str, expires_at: datetime | None
    ) -> ChainSession:
        return ChainSession(session, partition, expires_at, self._limiter, self._config, self._metrics)


@dataclass(frozen=True)
class _CallCounter:
    """botocore hooks counting one client's API calls (after its retries) by result.

    Like every botocore hook they must return None: a value would be taken as the response."""

    metrics: Metrics
    service: str

    def after_call(self, http_response: Any, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        self.metrics.aws_request(self.service, str(model.name), _result(http_response.status_code, parsed))

    def after_call_error(self, event_name: str, **_: Any) -> None:
        """No HTTP response at all (connection refused, timeout): event `after-call-error.SERVICE.OP`."""
        self.metrics.aws_request(self.service, event_name.rsplit(".", 1)[-1], "error")


def _result(status: int, parsed: Mapping[str, Any]) -> AwsResult:
    if status < 300:
        return "success"
    code = str((parsed.get("Error") or {}).get("Code", ""))
    return "throttled" if status == 429 or is_throttling(code) else "error"


def _earliest(current: datetime | None, new: datetime) -> datetime:
    return new if current is None else min(current, new)
