"""spec.output and spec.secretTemplate: the shape of a managed Secret, and what a Secret of each shape
says of itself when it is seen (its content digest, its registry hosts, its labels and annotations)
without the operator keeping its data.

One token, several shapes: every shape holds the same credentials, renewed together.

    dockerconfigjson  kubernetes.io/dockerconfigjson  .dockerconfigjson (every registry)
    argocd            Opaque, label argocd.argoproj.io/secret-type: repo-creds
                      url (the registry host, as Argo CD wants OCI Helm repositories), username,
                      password, type: helm, enableOCI: "true"  (one registry)
    basicAuth         kubernetes.io/basic-auth  username, password  (one registry)

The single-registry shapes name their registry in the annotation ecr.pullsecrets.dev/registry, which
their content digest covers, so a Secret says which registry it serves whatever its keys hold.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from ecr_pull_secrets.model import api, rules
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.dockerconfig import auths, digest

DOCKERCONFIGJSON, ARGOCD, BASIC_AUTH = rules.OUTPUT_TYPES
REGISTRY_ANNOTATION = f"{api.GROUP}/registry"
"""On the single-registry shapes: the registry host the Secret's credentials are for."""
TEMPLATE_ANNOTATION = f"{api.GROUP}/template"
"""On a Secret written with a secretTemplate: the template's keys (`l:KEY`, `a:KEY`, comma-separated;
label and annotation keys hold no comma), so a key later dropped from the template is removed from
the Secret, and the drop is seen as drift."""
ARGOCD_SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
ARGOCD_REPO_CREDS = "repo-creds"


@dataclass(frozen=True, slots=True)
class Shape:
    secret_type: str
    keys: tuple[str, ...]
    """The data keys the operator writes (and the content digest covers)."""
    labels: tuple[tuple[str, str], ...] = ()
    """Labels the shape itself sets, besides the managed-by label."""
    single_registry: bool = False


SHAPES: Mapping[str, Shape] = {
    DOCKERCONFIGJSON: Shape(api.SECRET_TYPE, (api.SECRET_KEY,)),
    ARGOCD: Shape(
        "Opaque",
        ("enableOCI", "password", "type", "url", "username"),
        ((ARGOCD_SECRET_TYPE_LABEL, ARGOCD_REPO_CREDS),),
        single_registry=True,
    ),
    BASIC_AUTH: Shape("kubernetes.io/basic-auth", ("password", "username"), single_registry=True),
}
BY_SECRET_TYPE: Mapping[str, Shape] = {shape.secret_type: shape for shape in SHAPES.values()}
"""Each shape has a Secret type of its own, so a Secret's type says how to read it."""


@dataclass(frozen=True)
class Output:
    """What spec.output and spec.secretTemplate ask for. Hashable: pairs, not dicts."""

    type: str = DOCKERCONFIGJSON
    labels: tuple[tuple[str, str], ...] = ()
    """spec.secretTemplate.metadata.labels, sorted."""
    annotations: tuple[tuple[str, str], ...] = ()
    """spec.secretTemplate.metadata.annotations, sorted."""

    @property
    def shape(self) -> Shape:
        return SHAPES[self.type]

    @cached_property
    def template_keys(self) -> str:
        """The TEMPLATE_ANNOTATION value of a Secret of this output; empty without a template."""
        return ",".join(sorted([f"l:{k}" for k, _ in self.labels] + [f"a:{k}" for k, _ in self.annotations]))

    @cached_property
    def marks(self) -> frozenset[str]:
        """What a Secret of this output must carry besides our own labels and annotations, in the
        form SecretView.marks records (a Secret may carry more: other tools' labels stay)."""
        return marks(dict(self.shape.labels + self.labels), dict(self.annotations))


DEFAULT = Output()
NO_MARKS: frozenset[str] = frozenset()
"""Shared by every Secret that carries no marks (an empty frozenset is no singleton since 3.11)."""


# -- what a Secret says of itself, computed once when it is seen -------------------------------------


def content_digest(secret_type: str, data: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """Of the data as written (and, for the single-registry shapes, of the registry it names): any
    later edit of those shows as a mismatch with the content-digest annotation. A pull Secret's is
    the digest of its .dockerconfigjson, as it always was."""
    shape = BY_SECRET_TYPE.get(secret_type)
    if shape is None or not shape.single_registry:
        return digest(data)
    covered = [annotations.get(REGISTRY_ANNOTATION), [data.get(key) for key in shape.keys]]
    return hashlib.sha256(json.dumps(covered, separators=(",", ":")).encode()).hexdigest()


def hosts_in(secret_type: str, data: Mapping[str, str], annotations: Mapping[str, str]) -> frozenset[str]:
    """The registry hosts a Secret's credentials are for."""
    shape = BY_SECRET_TYPE.get(secret_type)
    if shape is None or not shape.single_registry:
        return frozenset(auths(data))
    host = annotations.get(REGISTRY_ANNOTATION)
    return frozenset((host,)) if host else frozenset()


def credentials_in(
    secret_type: str, data: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Credential]:
    """host -> the username and password a Secret holds for it; entries that are not usable are
    left out (nothing here raises on hostile data)."""
    shape = BY_SECRET_TYPE.get(secret_type)
    if shape is None or not shape.single_registry:
        return {
            str(host): Credential(str(entry["username"]), str(entry["password"]))
            for host, entry in auths(data).items()
            if isinstance(entry, dict) and entry.get("username") and entry.get("password")
        }
    host = annotations.get(REGISTRY_ANNOTATION)
    username, password = _decoded(data.get("username")), _decoded(data.get("password"))
    return {host: Credential(username, password)} if host and username and password else {}


def marks(labels: Mapping[str, str], annotations: Mapping[str, str]) -> frozenset[str]:
    """A Secret's labels and annotations as `l:key=value` and `a:key=value`, but for those no output
    or secretTemplate can ask for: the operator's own (the managed-by label, its domain's annotations,
    which SecretView keeps apart), Kubernetes' (kubectl's last-applied-configuration, say) and values
    too long for a template. Interned: a cluster resource writes the same ones in every namespace.
    NO_MARKS, shared, for a pull Secret without a template: it costs the cache nothing."""
    found = [
        f"l:{key}={value}"
        for key, value in labels.items()
        if _markable(key) and len(value) <= rules.LABEL_VALUE_MAX
    ]
    found += [
        f"a:{key}={value}"
        for key, value in annotations.items()
        if _markable(key) and len(value) <= rules.TEMPLATE_ANNOTATION_VALUE_MAX
    ]
    return frozenset(sys.intern(mark) for mark in found) if found else NO_MARKS


def _markable(key: str) -> bool:
    return key == ARGOCD_SECRET_TYPE_LABEL or not rules.reserved_key(key)


def _decoded(value: str | None) -> str:
    try:
        return base64.b64decode(value or "", validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return ""


def dropped(recorded: str, current: str) -> tuple[list[str], list[str]]:
    """The label and annotation keys that TEMPLATE_ANNOTATION value `recorded` (on the Secret) lists
    and `current` (of the Secret now written) does not: to be removed. Reserved keys never are,
    whatever the annotation says (anyone who may edit the Secret may edit the annotation)."""
    wanted = set(current.split(","))
    keys = [k for k in recorded.split(",") if len(k) > 2 and k not in wanted]
    labels = [k[2:] for k in keys if k.startswith("l:") and not rules.reserved_key(k[2:])]
    annotations = [k[2:] for k in keys if k.startswith("a:") and not rules.reserved_key(k[2:])]
    return labels, annotations
