"""What a managed pull Secret must contain."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.timestamps import format_time


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
    *, name: str, namespace: str, owner: Owner, credentials: Mapping[str, Credential], expires_at: datetime
) -> dict[str, Any]:
    payload = dockerconfigjson(credentials)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": api.SECRET_TYPE,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {api.MANAGED_BY_LABEL: api.MANAGED_BY},
            "annotations": {api.EXPIRES_AT_ANNOTATION: format_time(expires_at)},
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
        "data": {api.SECRET_KEY: base64.b64encode(payload.encode()).decode()},
    }


def registries_in(secret_data: Mapping[str, str]) -> frozenset[str]:
    """The registry hosts a pull Secret's data covers (for drift checks; never reads passwords out)."""
    encoded = secret_data.get(api.SECRET_KEY)
    if not encoded:
        return frozenset()
    try:
        auths = json.loads(base64.b64decode(encoded)).get("auths", {})
    except (ValueError, AttributeError):
        return frozenset()
    return frozenset(auths) if isinstance(auths, dict) else frozenset()


def is_controlled_by(secret_meta: Mapping[str, Any], uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller") for ref in secret_meta.get("ownerReferences") or ()
    )
