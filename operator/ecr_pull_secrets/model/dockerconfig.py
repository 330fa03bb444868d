"""What a `.dockerconfigjson` value says: its digest and the registry hosts it covers."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ecr_pull_secrets.model import api


def digest(data: Mapping[str, str]) -> str:
    """Of the Secret's data as written: any later edit shows as a mismatch."""
    return hashlib.sha256(data.get(api.SECRET_KEY, "").encode()).hexdigest()


def auths(secret_data: Mapping[str, str]) -> dict[str, Any]:
    """The `auths` map of a pull Secret's data; empty when absent or not decodable. The data is
    its namespace's to write: JSON nested deeper than Python's recursion limit (the API server
    takes 10,000 levels) is not decodable here either."""
    encoded = secret_data.get(api.SECRET_KEY)
    if not encoded:
        return {}
    try:
        found = json.loads(base64.b64decode(encoded)).get("auths", {})
    except (ValueError, AttributeError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


def registries_in(secret_data: Mapping[str, str]) -> frozenset[str]:
    """The registry hosts a pull Secret's data covers."""
    return frozenset(auths(secret_data))
