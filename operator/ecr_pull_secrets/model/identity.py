"""Which AWS identity a resource asks for (`spec.auth`), and the credential chain it resolves to.

A chain starts at the operator's own identity, a tenant ServiceAccount (web identity through a
TokenRequest token) or static keys from a Secret, then assumes zero or more roles. Its `key`
names it completely, so different chains never share credentials or tokens.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
SESSION_TAG_NAMESPACE = "ecr-pull-secrets:namespace"
SESSION_TAG_NAME = "ecr-pull-secrets:name"
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


class InvalidAuth(ValueError):
    """An auth block that cannot be used as written."""


@dataclass(frozen=True)
class RoleHop:
    role_arn: str
    external_id: str | None = None
    session_name: str | None = None


@dataclass(frozen=True)
class ServiceAccountRef:
    name: str
    namespace: str | None = None
    """Only for cluster-scoped resources; others use their own namespace."""
    audience: str = DEFAULT_AUDIENCE
    role_arn: str | None = None
    """None: take the role from the ServiceAccount's eks.amazonaws.com/role-arn annotation."""


@dataclass(frozen=True)
class SecretRef:
    name: str
    namespace: str | None = None
    access_key_id_key: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_key: str = "AWS_SECRET_ACCESS_KEY"
    session_token_key: str = "AWS_SESSION_TOKEN"


@dataclass(frozen=True)
class Auth:
    """`spec.auth` as written; refs are resolved against the cluster later."""

    role_chain: tuple[RoleHop, ...] = ()
    service_account: ServiceAccountRef | None = None
    secret: SecretRef | None = None

    @property
    def uses_operator_identity(self) -> bool:
        return self.service_account is None and self.secret is None


# -- resolved chains ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorIdentity:
    def describe(self) -> str:
        return "operator"


@dataclass(frozen=True)
class WebIdentity:
    namespace: str
    service_account: str
    audience: str
    role_arn: str

    def describe(self) -> str:
        return f"web:{self.namespace}/{self.service_account}:{self.audience}:{self.role_arn}"


@dataclass(frozen=True)
class StaticKeys:
    namespace: str
    secret: str
    version: str
    """The Secret's uid and resourceVersion: rotated keys make a new chain."""
    access_key_id: str = field(repr=False, compare=False)
    secret_access_key: str = field(repr=False, compare=False)
    session_token: str | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        return f"keys:{self.namespace}/{self.secret}@{self.version}"


Start = OperatorIdentity | WebIdentity | StaticKeys


@dataclass(frozen=True)
class Chain:
    start: Start
    hops: tuple[RoleHop, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    """Session tags on every AssumeRole, so IAM policies can condition on the requester."""

    @property
    def key(self) -> str:
        """A short stable name for caches and annotations; never contains key material."""
        parts = [self.start.describe()]
        parts += [f"assume:{h.role_arn}:{h.external_id or ''}:{h.session_name or ''}" for h in self.hops]
        if self.hops:
            parts.append("tags:" + ",".join(f"{k}={v}" for k, v in self.tags))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]

    def describe(self) -> str:
        hops = "".join(f" -> {h.role_arn}" for h in self.hops)
        return f"{self.start.describe()}{hops}"


OPERATOR_CHAIN = Chain(OperatorIdentity())


def parse_auth(raw: Mapping[str, Any] | None) -> Auth:
    """Raises InvalidAuth for shapes the CRD schema would have refused."""
    try:
        return _parse_auth(raw)
    except (KeyError, TypeError, AttributeError) as error:
        raise InvalidAuth(f"spec.auth is malformed ({type(error).__name__}: {error})") from None


def _parse_auth(raw: Mapping[str, Any] | None) -> Auth:
    if not raw:
        return Auth()
    hops = tuple(
        RoleHop(
            role_arn=str(hop["roleArn"]),
            external_id=hop.get("externalId") or None,
            session_name=hop.get("sessionName") or None,
        )
        for hop in raw.get("roleChain") or ()
    )
    sa_raw, secret_raw = raw.get("serviceAccountRef"), raw.get("secretRef")
    if sa_raw and secret_raw:
        raise InvalidAuth("spec.auth may name a serviceAccountRef or a secretRef, not both")
    service_account = (
        ServiceAccountRef(
            name=str(sa_raw["name"]),
            namespace=sa_raw.get("namespace") or None,
            audience=str(sa_raw.get("audience") or DEFAULT_AUDIENCE),
            role_arn=sa_raw.get("roleArn") or None,
        )
        if sa_raw
        else None
    )
    secret = (
        SecretRef(
            name=str(secret_raw["name"]),
            namespace=secret_raw.get("namespace") or None,
            access_key_id_key=str(secret_raw.get("accessKeyIdKey") or "AWS_ACCESS_KEY_ID"),
            secret_access_key_key=str(secret_raw.get("secretAccessKeyKey") or "AWS_SECRET_ACCESS_KEY"),
            session_token_key=str(secret_raw.get("sessionTokenKey") or "AWS_SESSION_TOKEN"),
        )
        if secret_raw
        else None
    )
    return Auth(role_chain=hops, service_account=service_account, secret=secret)


def without_namespaces(auth: Auth) -> Auth:
    return replace(
        auth,
        service_account=replace(auth.service_account, namespace=None) if auth.service_account else None,
        secret=replace(auth.secret, namespace=None) if auth.secret else None,
    )


def session_tags(namespace: str, name: str) -> tuple[tuple[str, str], ...]:
    return ((SESSION_TAG_NAMESPACE, namespace or "-"), (SESSION_TAG_NAME, name))


def session_name(hop: RoleHop, namespace: str, name: str) -> str:
    """AWS allows 2-64 characters of [\\w+=,.@-]; the default names the requester."""
    if hop.session_name:
        return hop.session_name
    raw = f"ecr-pull-secrets.{namespace}.{name}" if namespace else f"ecr-pull-secrets.{name}"
    return _SESSION_NAME_UNSAFE.sub("-", raw)[:64]
