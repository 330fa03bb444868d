"""Typed view of an EcrPullSecret body: what the user asked for and what we last recorded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ecr_pull_secrets.model import api, rules
from ecr_pull_secrets.model.duration import InvalidDuration, parse_duration
from ecr_pull_secrets.model.fields import Fields, InvalidSpec, check_string
from ecr_pull_secrets.model.identity import Auth, parse_auth
from ecr_pull_secrets.model.output import Output
from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost, TokenGroup
from ecr_pull_secrets.model.scope import (
    NamespaceScope,
    ServiceAccountScope,
    parse_namespace_scope,
    parse_service_account_scope,
)
from ecr_pull_secrets.model.timestamps import parse_time


@dataclass(frozen=True)
class Spec:
    registries: tuple[RegistryHost, ...]
    secret_name: str
    renew_before: timedelta
    auth: Auth = field(default_factory=Auth)
    service_accounts: ServiceAccountScope | None = None
    secret_policy: str = "Fail"
    """Fail: never touch a Secret this resource does not own. Adopt: take over an unowned one."""
    scope: NamespaceScope | None = None
    """Cluster-scoped resources only: the namespaces to serve."""
    verify_images: tuple[str, ...] = ()
    """`repository:tag` or `repository@sha256:…`: manifests the Secret must be able to pull."""
    output: Output = field(default_factory=Output)
    """The Secret's shape (spec.output) and its extra labels and annotations (spec.secretTemplate)."""

    @property
    def partition(self) -> str:
        return self.registries[0].partition

    @property
    def regions(self) -> frozenset[tuple[str, str]]:
        """(partition, region) pairs of private registries: one token request each."""
        return frozenset((r.partition, r.region) for r in self.registries if not r.public)

    @property
    def token_groups(self) -> frozenset[TokenGroup]:
        """One token each, shared by every host of the group."""
        return frozenset(r.token_group for r in self.registries)


@dataclass(frozen=True)
class Status:
    secret_name: str | None = None
    expires_at: datetime | None = None
    renewal_time: datetime | None = None
    last_refresh_time: datetime | None = None
    last_failure_time: datetime | None = None
    failed_attempts: int = 0
    observed_generation: int | None = None
    force_refresh: str | None = None
    conditions: tuple[Mapping[str, Any], ...] = field(default=())
    failed_namespaces: tuple[Mapping[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class Resource:
    kind: str
    namespace: str
    """Empty for the cluster-scoped kind."""
    name: str
    uid: str
    generation: int
    force_refresh: str | None
    spec: Spec
    status: Status


_SPEC_FIELDS = {
    "registries",
    "secretName",
    "renewBefore",
    "auth",
    "serviceAccounts",
    "secretPolicy",
    "verify",
    "output",
    "secretTemplate",
}
_CLUSTER_SPEC_FIELDS = _SPEC_FIELDS | {"namespaceSelector", "namespaces"}
SECRET_POLICIES = ("Fail", "Adopt")


def parse_spec(raw: Mapping[str, Any], default_name: str, *, cluster: bool = False) -> Spec:
    """Raises InvalidSpec naming the first field the CRD schema would have refused."""
    fields = Fields(raw, "spec", _CLUSTER_SPEC_FIELDS if cluster else _SPEC_FIELDS)
    registries = _registries(fields)
    secret_policy = fields.string("secretPolicy", max_length=8, default="Fail") or "Fail"
    if secret_policy not in SECRET_POLICIES:
        raise InvalidSpec(fields.at("secretPolicy"), f"must be one of {', '.join(SECRET_POLICIES)}")
    service_accounts = fields.raw.get("serviceAccounts")
    return Spec(
        registries=registries,
        secret_name=fields.string(
            "secretName",
            pattern=rules.DNS1123_SUBDOMAIN,
            max_length=rules.DNS1123_SUBDOMAIN_MAX,
            default=default_name,
            rule="a Secret name (DNS-1123 subdomain)",
        )
        or default_name,
        renew_before=_renew_before(fields),
        auth=parse_auth(fields.raw.get("auth"), cluster=cluster),
        service_accounts=parse_service_account_scope(service_accounts),
        secret_policy=secret_policy,
        scope=parse_namespace_scope(fields.raw.get("namespaceSelector"), fields.raw.get("namespaces"))
        if cluster
        else None,
        verify_images=_verify_images(fields),
        output=_output(fields, registries),
    )


def _output(fields: Fields, registries: tuple[RegistryHost, ...]) -> Output:
    output = fields.object("output", {"type"})
    kind = rules.OUTPUT_TYPES[0]
    if output is not None:
        kind = output.string("type", max_length=16, default=kind) or kind
        if kind not in rules.OUTPUT_TYPES:
            raise InvalidSpec(output.at("type"), f"must be one of {', '.join(rules.OUTPUT_TYPES)}")
    if kind in rules.SINGLE_REGISTRY_OUTPUTS and len(registries) != 1:
        raise InvalidSpec(
            fields.at("registries"),
            f"must name exactly one registry when spec.output.type is {kind}: "
            "one such Secret holds one registry's credentials (use one resource per registry)",
        )
    if kind != rules.OUTPUT_TYPES[0] and fields.has("serviceAccounts"):
        raise InvalidSpec(
            fields.at("serviceAccounts"),
            "may only be set when spec.output.type is dockerconfigjson: a Pod's imagePullSecrets "
            "must be pull Secrets",
        )
    template = fields.object("secretTemplate", {"metadata"})
    metadata = template.object("metadata", {"labels", "annotations"}) if template is not None else None
    if metadata is None:
        return Output(type=kind)
    labels = _template_map(
        metadata,
        "labels",
        max_items=rules.MAX_TEMPLATE_LABELS,
        value_pattern=rules.LABEL_VALUE,
        value_max=rules.LABEL_VALUE_MAX,
        value_rule="a label value (at most 63 of [-A-Za-z0-9_.], starting and ending alphanumeric)",
    )
    annotations = _template_map(
        metadata,
        "annotations",
        max_items=rules.MAX_TEMPLATE_ANNOTATIONS,
        value_pattern=rules.TEMPLATE_ANNOTATION_VALUE,
        value_max=rules.TEMPLATE_ANNOTATION_VALUE_MAX,
        value_rule="printable text on one line",
    )
    return Output(type=kind, labels=labels, annotations=annotations)


def _template_map(
    metadata: Fields, key: str, *, max_items: int, value_pattern: str, value_max: int, value_rule: str
) -> tuple[tuple[str, str], ...]:
    raw = metadata.raw.get(key)
    if raw is None:
        return ()
    path = metadata.at(key)
    if not isinstance(raw, Mapping):
        raise InvalidSpec(path, "must be an object of key: value pairs")
    if len(raw) > max_items:
        raise InvalidSpec(path, f"may have at most {max_items} entries, not {len(raw)}")
    pairs = []
    for name, value in raw.items():
        check_string(name, path, pattern=rules.LABEL_KEY, max_length=rules.LABEL_KEY_MAX, rule=_KEY_RULE)
        prefix, _, rest = str(name).rpartition("/")
        if len(prefix) > rules.DNS1123_SUBDOMAIN_MAX or len(rest) > rules.LABEL_NAME_MAX:
            raise InvalidSpec(path, f"key {name[:80]!r} must be {_KEY_RULE}")
        if rules.reserved_key(name):
            raise InvalidSpec(path, f"key {name[:80]!r} {_RESERVED}")
        pairs.append(
            (
                name,
                check_string(
                    value,
                    f"{path}.{name[:80]}",
                    pattern=value_pattern,
                    max_length=value_max,
                    rule=value_rule,
                ),
            )
        )
    return tuple(sorted(pairs))


_KEY_RULE = (
    "a label key (an optional DNS subdomain prefix of at most 253 characters and '/', then a name "
    "of at most 63 characters of [-A-Za-z0-9_.] that starts and ends alphanumeric)"
)
_RESERVED = (
    "is reserved: app.kubernetes.io/managed-by, argocd.argoproj.io/secret-type and keys under "
    "kubernetes.io, k8s.io or ecr.pullsecrets.dev (other than app.kubernetes.io/) are set by the "
    "operator or by Kubernetes, never by secretTemplate"
)


def _verify_images(fields: Fields) -> tuple[str, ...]:
    verify = fields.object("verify", {"images"})
    if verify is None:
        return ()
    images = verify.strings(
        "images",
        pattern=rules.IMAGE_REFERENCE,
        max_length=rules.IMAGE_REFERENCE_MAX,
        max_items=rules.MAX_VERIFY_IMAGES,
        rule="repository:tag or repository@sha256:<64 hex digits>, without the registry host",
    )
    if len(set(images)) != len(images):
        raise InvalidSpec(verify.at("images"), "lists an image more than once")
    return images


def _registries(fields: Fields) -> tuple[RegistryHost, ...]:
    hosts = fields.items("registries", max_items=api.MAX_REGISTRIES)
    if not hosts:
        raise InvalidSpec(fields.at("registries"), "must name at least one ECR registry")
    registries = []
    for path, host in hosts:
        text = check_string(host, path, pattern=None, max_length=rules.DNS1123_SUBDOMAIN_MAX)
        try:
            registry = RegistryHost.parse(text)
        except InvalidRegistryHost as error:
            raise InvalidSpec(path, str(error)) from None
        if registry.host != text:
            raise InvalidSpec(path, f"{text!r} must be written as {registry.host!r}")
        registries.append(registry)
    if len({r.host for r in registries}) != len(registries):
        raise InvalidSpec(fields.at("registries"), "lists a registry more than once")
    partitions = sorted({r.partition for r in registries})
    if len(partitions) > 1:
        raise InvalidSpec(
            fields.at("registries"),
            f"mixes AWS partitions ({', '.join(partitions)}); one identity cannot hold credentials "
            "in two partitions, so use one resource per partition",
        )
    return tuple(registries)


def _renew_before(fields: Fields) -> timedelta:
    text = fields.string("renewBefore", max_length=32, default=api.DEFAULT_RENEW_BEFORE)
    try:
        renew_before = parse_duration(text or api.DEFAULT_RENEW_BEFORE)
    except InvalidDuration as error:
        raise InvalidSpec(fields.at("renewBefore"), str(error)) from None
    low, high = rules.RENEW_BEFORE_MIN, rules.RENEW_BEFORE_MAX
    if not low <= renew_before <= high:
        raise InvalidSpec(
            fields.at("renewBefore"),
            f"must be between {rules.go_duration(low)} and {rules.go_duration(high)}, not {text}",
        )
    return renew_before


def parse_status(raw: Mapping[str, Any]) -> Status:
    return Status(
        secret_name=raw.get("secretName"),
        expires_at=parse_time(raw.get("expiresAt")),
        renewal_time=parse_time(raw.get("renewalTime")),
        last_refresh_time=parse_time(raw.get("lastRefreshTime")),
        last_failure_time=parse_time(raw.get("lastFailureTime")),
        failed_attempts=int(raw.get("failedAttempts") or 0),
        observed_generation=raw.get("observedGeneration"),
        force_refresh=raw.get("forceRefresh"),
        conditions=tuple(raw.get("conditions") or ()),
        failed_namespaces=tuple(raw.get("failedNamespaces") or ()),
    )


def parse_resource(body: Mapping[str, Any]) -> Resource:
    """Raises InvalidSpec; the status and metadata always parse."""
    meta = body["metadata"]
    kind = body.get("kind") or api.KIND
    spec = body.get("spec")
    return Resource(
        kind=kind,
        namespace=meta.get("namespace") or "",
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        force_refresh=(meta.get("annotations") or {}).get(api.FORCE_REFRESH_ANNOTATION),
        spec=parse_spec(
            {} if spec is None else spec, default_name=meta["name"], cluster=kind == api.CLUSTER_KIND
        ),
        status=parse_status(body.get("status") or {}),
    )
