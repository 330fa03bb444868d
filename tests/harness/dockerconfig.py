"""Reading a kubernetes.io/dockerconfigjson Secret back, as a container runtime would."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any


def auths(secret: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    raw = base64.b64decode(secret["data"][".dockerconfigjson"])
    result: dict[str, dict[str, str]] = json.loads(raw)["auths"]
    return result


def passwords(secret: Mapping[str, Any]) -> set[str]:
    return {entry["password"] for entry in auths(secret).values()}
