"""What a managed pull Secret must contain."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.credential import Credential, RegistryToken
from ecr_pull_secrets.model.dockerconfig import auths, digest
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


def desired_secret(
    *,
    name: str,
    namespace: str,
    owner: Owner,
    credentials: Mapping[str, Credential],
    issued_at: datetime,
    expires_at: datetime,
    chain_key: str,
) -> dict[str, Any]:
    data = {api.SECRET_KEY: base64.b64encode(dockerconfigjson(credentials).encode()).decode()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": api.SECRET_TYPE,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {api.MANAGED_BY_LABEL: api.MANAGED_BY},
            "annotations": {
                api.EXPIRES_AT_ANNOTATION: format_time(expires_at),
                api.ISSUED_AT_ANNOTATION: format_time(issued_at),
                api.CHAIN_ANNOTATION: chain_key,
                api.CONTENT_DIGEST_ANNOTATION: digest(data),
            },
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


def tokens_in(
    metadata: Mapping[str, Any], data: Mapping[str, str], chain_key: str
) -> dict[str, RegistryToken]:
    """Tokens a managed Secret already holds, by host, if the same chain obtained them.

    Lets a restarted operator reuse what it wrote instead of asking AWS again. Only a
    resource's own Secret is read this way, so a forged Secret can mislead nobody else.
    """
    annotations = metadata.get("annotations") or {}
    if annotations.get(api.CHAIN_ANNOTATION) != chain_key:
        return {}
    if annotations.get(api.CONTENT_DIGEST_ANNOTATION) not in (None, digest(data)):
        return {}  # edited since we wrote it
    try:
        expires_at = parse_time(annotations.get(api.EXPIRES_AT_ANNOTATION))
        issued_at = parse_time(annotations.get(api.ISSUED_AT_ANNOTATION))
    except ValueError:
        return {}  # edited by hand: not worth trusting, the caller fetches fresh tokens
    if expires_at is None or issued_at is None:
        return {}
    tokens = {}
    for host, entry in auths(data).items():
        if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
            credential = Credential(str(entry["username"]), str(entry["password"]))
            tokens[host] = RegistryToken(credential, issued_at, expires_at)
    return tokens


def is_controlled_by(secret_meta: Mapping[str, Any], uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller") for ref in secret_meta.get("ownerReferences") or ()
    )
