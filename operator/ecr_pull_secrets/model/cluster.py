"""What the operator knows of the cluster, from its watches: plain values, no API objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecr_pull_secrets.model import api

ADDED_PULL_SECRETS_ANNOTATION = f"{api.GROUP}/image-pull-secrets"
"""On a ServiceAccount: the imagePullSecrets entries the operator added, as `secret@owner-uid`, so a
resource removes only its own, even where another resource uses the same Secret name."""


def added_entry(secret: str, owner_uid: str) -> str:
    return f"{secret}@{owner_uid}" if owner_uid else secret


def entry_secret(entry: str) -> str:
    return entry.partition("@")[0]


@dataclass(frozen=True)
class NamespaceView:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    terminating: bool = False


@dataclass(frozen=True)
class SecretView:
    namespace: str
    name: str
    uid: str
    type: str
    controller_uid: str | None
    resource_version: str = ""
    controller: str = ""
    """Kind and name of the controlling owner, for messages."""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ServiceAccountView:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    resource_version: str = ""
    """Annotation entries (`secret@owner-uid`) for the imagePullSecrets this operator added."""


def namespace_view(body: Mapping[str, Any]) -> NamespaceView:
    meta = body.get("metadata", {})
    return NamespaceView(
        name=meta.get("name", ""),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        terminating=bool(meta.get("deletionTimestamp"))
        or body.get("status", {}).get("phase") == "Terminating",
    )


def secret_view(body: Mapping[str, Any]) -> SecretView:
    meta = body.get("metadata", {})
    owner: Mapping[str, Any] = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), {})
    controller = owner.get("uid")
    return SecretView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        type=body.get("type", ""),
        controller_uid=controller,
        resource_version=meta.get("resourceVersion", ""),
        controller=f"{owner.get('kind', '')} {owner.get('name', '')}".strip(),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        data=dict(body.get("data") or {}),
    )


def service_account_view(body: Mapping[str, Any]) -> ServiceAccountView:
    meta = body.get("metadata", {})
    added = (meta.get("annotations") or {}).get(ADDED_PULL_SECRETS_ANNOTATION, "")
    return ServiceAccountView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        labels=dict(meta.get("labels") or {}),
        image_pull_secrets=tuple(ref.get("name", "") for ref in body.get("imagePullSecrets") or ()),
        added=tuple(name for name in added.split(",") if name),
        resource_version=meta.get("resourceVersion", ""),
    )
