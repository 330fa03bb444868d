"""Audit policy and log parsing, so tests can count API requests by user, verb and resource."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Every group the 1.36 apiserver serves itself; whatever is left is a custom resource.  A group
# missing here only makes the log noisier, it never hides a custom resource.
_BUILTIN_GROUPS = (
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
)


def policy() -> dict[str, Any]:
    """Metadata level for secrets, serviceaccounts (incl. token requests), events and custom resources."""
    watched = [
        {"group": "", "resources": ["secrets", "serviceaccounts", "serviceaccounts/token", "events"]},
        {"group": "events.k8s.io", "resources": ["events"]},
    ]
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        # One event per request instead of two.
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "Metadata", "resources": watched},
            {"level": "None", "resources": [{"group": g} for g in _BUILTIN_GROUPS]},
            {"level": "None", "nonResourceURLs": ["*"]},
            {"level": "Metadata"},
        ],
    }


@dataclass(frozen=True)
class AuditEvent:
    """The fields of an audit.k8s.io/v1 Event that tests filter on; ``raw`` has the rest."""

    stage: str
    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    raw: dict[str, Any]

    @property
    def is_write(self) -> bool:
        return self.verb in {"create", "update", "patch", "delete", "deletecollection"}


def _event(raw: dict[str, Any]) -> AuditEvent:
    ref: dict[str, Any] = raw.get("objectRef") or {}
    return AuditEvent(
        stage=raw.get("stage", ""),
        user=(raw.get("user") or {}).get("username", ""),
        verb=raw.get("verb", ""),
        group=ref.get("apiGroup", ""),
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        code=int((raw.get("responseStatus") or {}).get("code", 0)),
        raw=raw,
    )


def read_events(path: Path) -> list[AuditEvent]:
    """Parse the JSON-lines audit log; a half-written last line (apiserver mid-write) is skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            events.append(_event(json.loads(line)))
        except json.JSONDecodeError:
            continue
    return events
