"""Which AWS identity a resource asks for (`spec.auth`), and the credential chain it resolves to.

A chain starts at the operator's own identity, a tenant ServiceAccount (web identity through a
TokenRequest token) or static keys from a Secret, then assumes zero or more roles. Its `key`
names it completely, so different chains never share credentials or tokens.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecr_pull_secrets.model import rules
from ecr_pull_secrets.model.fields import Fields, InvalidSpec

IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
SESSION_TAG_NAMESPACE = "ecr-pull-secrets:namespace"
SESSION_TAG_NAME = "ecr-pull-secrets:name"
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


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


def parse_auth(raw: Mapping[str, Any] | None, *, cluster: bool = False) -> Auth:
    """`spec.auth`; raises InvalidSpec naming the field for anything the CRD schema refuses."""
    if raw is None:
        return Auth()
    fields = Fields(raw, "spec.auth", {"roleChain", "serviceAccountRef", "secretRef"})
    hops = tuple(
        _role_hop(Fields(item, path, {"roleArn", "externalId", "sessionName"}))
        for path, item in fields.items("roleChain", max_items=rules.MAX_ROLE_CHAIN)
    )
    if fields.has("serviceAccountRef") and fields.has("secretRef"):
        raise InvalidSpec(fields.path, "may name a serviceAccountRef or a secretRef, not both")
    service_account = None
    sa = fields.object("serviceAccountRef", {"name", "namespace", "audience", "roleArn"})
    if sa is not None:
        service_account = ServiceAccountRef(
            name=_object_name(sa, "ServiceAccount"),
            namespace=_namespace(sa, cluster),
            audience=sa.string(
                "audience",
                pattern=rules.AUDIENCE,
                max_length=rules.AUDIENCE_MAX,
                default=DEFAULT_AUDIENCE,
                rule="printable ASCII without spaces",
            )
            or DEFAULT_AUDIENCE,
            role_arn=_role_arn(sa, required=False),
        )
    secret = None
    keys = fields.object(
        "secretRef", {"name", "namespace", "accessKeyIdKey", "secretAccessKeyKey", "sessionTokenKey"}
    )
    if keys is not None:
        secret = SecretRef(
            name=_object_name(keys, "Secret"),
            namespace=_namespace(keys, cluster),
            access_key_id_key=_data_key(keys, "accessKeyIdKey", "AWS_ACCESS_KEY_ID"),
            secret_access_key_key=_data_key(keys, "secretAccessKeyKey", "AWS_SECRET_ACCESS_KEY"),
            session_token_key=_data_key(keys, "sessionTokenKey", "AWS_SESSION_TOKEN"),
        )
    return Auth(role_chain=hops, service_account=service_account, secret=secret)


def _role_hop(hop: Fields) -> RoleHop:
    return RoleHop(
        role_arn=_role_arn(hop, required=True) or "",
        external_id=hop.string(
            "externalId",
            pattern=rules.EXTERNAL_ID,
            max_length=rules.EXTERNAL_ID_MAX,
            min_length=rules.EXTERNAL_ID_MIN,
            rule="2-1224 characters of [\\w+=,.@:/-] (sts:AssumeRole ExternalId)",
        ),
        session_name=hop.string(
            "sessionName",
            pattern=rules.SESSION_NAME,
            max_length=rules.SESSION_NAME_MAX,
            rule="2-64 characters of [\\w+=,.@-] (sts:AssumeRole RoleSessionName)",
        ),
    )


def _role_arn(fields: Fields, *, required: bool) -> str | None:
    value = fields.string(
        "roleArn",
        pattern=rules.ROLE_ARN,
        max_length=rules.ROLE_ARN_MAX,
        rule="an IAM role ARN such as arn:aws:iam::123456789012:role/name",
    )
    if value is None and required:
        raise InvalidSpec(fields.at("roleArn"), "is required")
    return value


def _object_name(fields: Fields, kind: str) -> str:
    return fields.required_string(
        "name",
        pattern=rules.DNS1123_SUBDOMAIN,
        max_length=rules.DNS1123_SUBDOMAIN_MAX,
        rule=f"a {kind} name (DNS-1123 subdomain: lower case letters, digits, '-' and '.')",
    )


def _namespace(fields: Fields, cluster: bool) -> str | None:
    namespace = fields.string(
        "namespace",
        pattern=rules.DNS1123_LABEL,
        max_length=rules.DNS1123_LABEL_MAX,
        rule="a namespace name (DNS-1123 label)",
    )
    if cluster and namespace is None:
        raise InvalidSpec(fields.at("namespace"), "is required in a ClusterEcrPullSecret")
    if not cluster and namespace is not None:
        raise InvalidSpec(
            fields.at("namespace"),
            "may not be set: an EcrPullSecret uses only its own namespace's ServiceAccounts and Secrets",
        )
    return namespace


def _data_key(fields: Fields, key: str, default: str) -> str:
    return (
        fields.string(
            key,
            pattern=rules.SECRET_KEY,
            max_length=rules.SECRET_KEY_MAX,
            default=default,
            rule="a Secret data key ([-._a-zA-Z0-9]+)",
        )
        or default
    )


def session_tags(namespace: str, name: str) -> tuple[tuple[str, str], ...]:
    return ((SESSION_TAG_NAMESPACE, namespace or "-"), (SESSION_TAG_NAME, name))


def session_name(hop: RoleHop, namespace: str, name: str) -> str:
    """Always derived, so CloudTrail shows the true requester: `<namespace>.<sessionName or name>`,
    or `cluster@<...>` for a cluster-scoped resource. Namespace names hold neither '.' nor '@', so
    no tenant's sessionName can make its sessions pass for another namespace's. AWS allows 2-64
    characters of [\\w+=,.@-]; the namespace (at most 63) always survives the cut."""
    prefix = f"{namespace}." if namespace else "cluster@"
    return _SESSION_NAME_UNSAFE.sub("-", prefix + (hop.session_name or name))[:64]
