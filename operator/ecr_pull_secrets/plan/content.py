"""What a managed Secret must contain, in each shape spec.output may ask for (model/output.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.credential import Credential, RegistryToken
from ecr_pull_secrets.model.output import (
    ARGOCD,
    BASIC_AUTH,
    DEFAULT,
    REGISTRY_ANNOTATION,
    TEMPLATE_ANNOTATION,
    Output,
    content_digest,
    credentials_in,
    dropped,
)
from ecr_pull_secrets.model.timestamps import format_time, parse_time


@dataclass(frozen=True)
class Owner:
    api_version: str
    kind: str
    name: str
    uid: str


def dockerconfigjson(credentials: Mapping[str, Credential]) -> str:
    auths = {
        host: {
            "username": cred.username,
            "password": cred.password,
            "auth": base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode(),
        }
        for host, cred in sorted(credentials.items())
    }
    return json.dumps({"auths": auths}, separators=(",", ":"), sort_keys=True)


def secret_data(output: Output, credentials: Mapping[str, Credential]) -> dict[str, str]:
    """The Secret's data (base64 values) in the output's shape. The single-registry shapes are only
    ever asked for one registry (the parser and the CRD refuse more)."""
    if output.type == DEFAULT.type:
        return {api.SECRET_KEY: _b64(dockerconfigjson(credentials))}
    ((host, cred),) = credentials.items()
    if output.type == BASIC_AUTH:
        return {"password": _b64(cred.password), "username": _b64(cred.username)}
    assert output.type == ARGOCD
    # Argo CD's Helm repositories on OCI registries: type helm, enableOCI, and a URL without oci://.
    return {
        "enableOCI": _b64("true"),
        "password": _b64(cred.password),
        "type": _b64("helm"),
        "url": _b64(host),
        "username": _b64(cred.username),
    }


def desired_secret(
    *,
    name: str,
    namespace: str,
    owner: Owner,
    credentials: Mapping[str, Credential],
    issued_at: datetime,
    expires_at: datetime,
    chain_key: str,
    output: Output = DEFAULT,
) -> dict[str, Any]:
    """The whole Secret. The operator's own labels and annotations are written after the template's,
    which may not name them anyway (model/rules.reserved_key)."""
    shape = output.shape
    data = secret_data(output, credentials)
    ours = {
        api.EXPIRES_AT_ANNOTATION: format_time(expires_at),
        api.ISSUED_AT_ANNOTATION: format_time(issued_at),
        api.CHAIN_ANNOTATION: chain_key,
    }
    if shape.single_registry:
        ours[REGISTRY_ANNOTATION] = next(iter(credentials))
    if output.template_keys:
        ours[TEMPLATE_ANNOTATION] = output.template_keys
    ours[api.CONTENT_DIGEST_ANNOTATION] = content_digest(shape.secret_type, data, ours)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": shape.secret_type,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**dict(output.labels), **dict(shape.labels), api.MANAGED_BY_LABEL: api.MANAGED_BY},
            "annotations": {**dict(output.annotations), **ours},
            "ownerReferences": [
                {
                    "apiVersion": owner.api_version,
                    "kind": owner.kind,
                    "name": owner.name,
                    "uid": owner.uid,
                    "controller": True,
                }
            ],
        },
        "data": data,
    }


def without_dropped(manifest: Mapping[str, Any], recorded: str) -> dict[str, Any]:
    """The manifest, as a patch of our own Secret, also removing what its template dropped since the
    last write: `recorded` is the Secret's TEMPLATE_ANNOTATION (its template's keys then)."""
    current = manifest["metadata"].get("annotations", {}).get(TEMPLATE_ANNOTATION, "")
    labels, annotations = dropped(recorded, current)
    if recorded and not current:
        annotations.append(TEMPLATE_ANNOTATION)
    if not labels and not annotations:
        return dict(manifest)
    meta = manifest["metadata"]
    return {
        **manifest,
        "metadata": {
            **meta,
            "labels": {**dict.fromkeys(labels), **meta.get("labels", {})},
            "annotations": {**dict.fromkeys(annotations), **meta.get("annotations", {})},
        },
    }


def tokens_in(
    metadata: Mapping[str, Any], data: Mapping[str, str], chain_key: str, secret_type: str = api.SECRET_TYPE
) -> dict[str, RegistryToken]:
    """Tokens a managed Secret (of any shape) already holds, by host, if the same chain obtained them.

    Lets a restarted operator reuse what it wrote instead of asking AWS again. Only a
    resource's own Secret is read this way, so a forged Secret can mislead nobody else.
    """
    annotations = metadata.get("annotations") or {}
    if annotations.get(api.CHAIN_ANNOTATION) != chain_key:
        return {}
    if annotations.get(api.CONTENT_DIGEST_ANNOTATION) not in (
        None,
        content_digest(secret_type, data, annotations),
    ):
        return {}  # edited since we wrote it
    try:
        expires_at = parse_time(annotations.get(api.EXPIRES_AT_ANNOTATION))
        issued_at = parse_time(annotations.get(api.ISSUED_AT_ANNOTATION))
    except ValueError:
        return {}  # edited by hand: not worth trusting, the caller fetches fresh tokens
    if expires_at is None or issued_at is None:
        return {}
    return {
        host: RegistryToken(credential, issued_at, expires_at)
        for host, credential in credentials_in(secret_type, data, annotations).items()
    }


def authorizations(secret_type: str, metadata: Mapping[str, Any], data: Mapping[str, str]) -> dict[str, str]:
    """host -> base64 of `username:password`, as a registry client sends it after `Basic `, from a
    Secret of any shape (what verification checks against the registry)."""
    annotations = metadata.get("annotations") or {}
    return {
        host: _b64(f"{cred.username}:{cred.password}")
        for host, cred in credentials_in(secret_type, data, annotations).items()
    }


def is_controlled_by(secret_meta: Mapping[str, Any], uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller") for ref in secret_meta.get("ownerReferences") or ()
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
