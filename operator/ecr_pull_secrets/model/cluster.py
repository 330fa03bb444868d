"""What the operator knows of the cluster, from its watches: compact plain values, no API objects.

Each view keeps only what decisions need: no managedFields, no Secret data (a Secret's content is
summarised when it is seen, whatever its shape: does it match its digest annotation, which hosts does
it cover, which labels and annotations does it carry), and of the labels and annotations only those
the operator reads, except the labels selectors match on."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.output import TEMPLATE_ANNOTATION, content_digest, hosts_in, marks
from ecr_pull_secrets.model.scope import IGNORE_ANNOTATION

ADDED_PULL_SECRETS_ANNOTATION = f"{api.GROUP}/image-pull-secrets"
"""On a ServiceAccount: the imagePullSecrets entries the operator added, as `secret@owner-uid`, so a
resource removes only its own, even where another resource uses the same Secret name."""


def added_entry(secret: str, owner_uid: str) -> str:
    return f"{secret}@{owner_uid}" if owner_uid else secret


def entry_secret(entry: str) -> str:
    return entry.partition("@")[0]


def entry_owners(entries: Iterable[str]) -> set[str]:
    """The uids of the resources that added these entries."""
    return {entry.partition("@")[2] for entry in entries if "@" in entry}


NO_LABELS: Mapping[str, str] = {}
SECRET_ANNOTATIONS = (
    api.EXPIRES_AT_ANNOTATION,
    api.ISSUED_AT_ANNOTATION,
    api.CHAIN_ANNOTATION,
    TEMPLATE_ANNOTATION,
)
"""The annotations of a managed Secret the operator reads (its digest is checked on sight)."""


@dataclass(frozen=True, slots=True)
class NamespaceView:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    """Only the ignore annotation."""
    terminating: bool = False
    resource_version: str = ""


@dataclass(frozen=True, slots=True)
class SecretView:
    namespace: str
    name: str
    uid: str
    type: str
    controller_uid: str | None
    resource_version: str = ""
    controller: str = ""
    """Kind and name of the controlling owner, for messages."""
    managed: bool = False
    """Carries the operator's managed-by label."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """Only SECRET_ANNOTATIONS."""
    content_ok: bool = False
    """The data is what the content-digest annotation says was written."""
    hosts: frozenset[str] = frozenset()
    """The registry hosts its credentials are for (its `.dockerconfigjson`'s, or the one registry
    of an argocd or basicAuth Secret)."""
    marks: frozenset[str] = frozenset()
    """Its labels and annotations other than the operator's own, as `l:key=value`/`a:key=value`
    (model.output.marks): enough to tell a secretTemplate's or Argo CD's label was changed."""


@dataclass(frozen=True, slots=True)
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
        name=sys.intern(meta.get("name", "")),
        labels={sys.intern(k): sys.intern(v) for k, v in (meta.get("labels") or NO_LABELS).items()},
        annotations={k: v for k, v in (meta.get("annotations") or {}).items() if k == IGNORE_ANNOTATION},
        terminating=bool(meta.get("deletionTimestamp"))
        or (body.get("status") or {}).get("phase") == "Terminating",
        resource_version=meta.get("resourceVersion", ""),
    )


def secret_view(body: Mapping[str, Any]) -> SecretView:
    meta = body.get("metadata", {})
    owner: Mapping[str, Any] = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), {})
    controller = owner.get("uid")
    annotations = meta.get("annotations") or {}
    data = body.get("data") or {}
    secret_type = body.get("type", "")
    # Interned: every namespace's name, Secret type, time and host recurs across the caches.
    return SecretView(
        namespace=sys.intern(meta.get("namespace", "")),
        name=sys.intern(meta.get("name", "")),
        uid=meta.get("uid", ""),
        type=sys.intern(secret_type),
        controller_uid=controller,
        resource_version=meta.get("resourceVersion", ""),
        controller=sys.intern(f"{owner.get('kind', '')} {owner.get('name', '')}".strip()),
        managed=(meta.get("labels") or {}).get(api.MANAGED_BY_LABEL) == api.MANAGED_BY,
        annotations={k: sys.intern(annotations[k]) for k in SECRET_ANNOTATIONS if k in annotations},
        content_ok=annotations.get(api.CONTENT_DIGEST_ANNOTATION)
        == content_digest(secret_type, data, annotations),
        hosts=frozenset(sys.intern(host) for host in hosts_in(secret_type, data, annotations)),
        marks=marks(meta.get("labels") or NO_LABELS, annotations),
    )


def service_account_view(body: Mapping[str, Any]) -> ServiceAccountView:
    meta = body.get("metadata", {})
    added = (meta.get("annotations") or {}).get(ADDED_PULL_SECRETS_ANNOTATION, "")
    return ServiceAccountView(
        namespace=sys.intern(meta.get("namespace", "")),
        name=sys.intern(meta.get("name", "")),
        labels=dict(meta.get("labels") or NO_LABELS),
        image_pull_secrets=tuple(ref.get("name", "") for ref in body.get("imagePullSecrets") or ()),
        added=tuple(name for name in added.split(",") if name),
        resource_version=meta.get("resourceVersion", ""),
    )
