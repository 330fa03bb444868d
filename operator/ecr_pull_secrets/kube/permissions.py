"""Every Kubernetes permission the operator needs, in one place: `doctor` checks exactly these,
and the chart's RBAC rules can be compared with `rbac_rules()`.

Pure data (no API calls), so anything may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecr_pull_secrets.model import api

CORE = ""
APIEXTENSIONS = "apiextensions.k8s.io"


@dataclass(frozen=True, order=True)
class Permission:
    verb: str
    group: str
    resource: str
    subresource: str = ""

    @property
    def resource_path(self) -> str:
        """`secrets`, `serviceaccounts/token`, `ecrpullsecrets.ecr.pullsecrets.dev/status`."""
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{qualified}/{self.subresource}" if self.subresource else qualified

    def __str__(self) -> str:
        """As `kubectl auth can-i` takes it: `create serviceaccounts/token`."""
        return f"{self.verb} {self.resource_path}"


def _grant(group: str, resource: str, *verbs: str, subresource: str = "") -> tuple[Permission, ...]:
    return tuple(Permission(verb, group, resource, subresource) for verb in verbs)


OPERATOR_PERMISSIONS: tuple[Permission, ...] = (
    # Our resources: the operator lists and watches them, and patches finalizers and status.
    *_grant(api.GROUP, api.PLURAL, "get", "list", "watch", "patch"),
    *_grant(api.GROUP, api.PLURAL, "patch", subresource="status"),
    *_grant(api.GROUP, api.CLUSTER_PLURAL, "get", "list", "watch", "patch"),
    *_grant(api.GROUP, api.CLUSTER_PLURAL, "patch", subresource="status"),
    # Managed pull Secrets (listed and watched by label), and spec.auth.secretRef keys.
    *_grant(CORE, "secrets", "get", "list", "watch", "create", "patch", "delete"),
    # imagePullSecrets patching, spec.auth.serviceAccountRef's role annotation and TokenRequest.
    *_grant(CORE, "serviceaccounts", "get", "list", "watch", "patch"),
    *_grant(CORE, "serviceaccounts", "create", subresource="token"),
    # ClusterEcrPullSecret fan-out and kopf's namespace observer.
    *_grant(CORE, "namespaces", "list", "watch"),
    # Events about our resources (kube/events.py posts them).
    *_grant(CORE, "events", "create"),
    # kopf's resource observer notices CRDs being added or changed.
    *_grant(APIEXTENSIONS, "customresourcedefinitions", "list", "watch"),
)


def rbac_rules(permissions: tuple[Permission, ...] = OPERATOR_PERMISSIONS) -> list[dict[str, Any]]:
    """The permissions as ClusterRole `rules`, one per (group, resource[/subresource])."""
    verbs: dict[tuple[str, str], list[str]] = {}
    for permission in permissions:
        resource = permission.resource
        if permission.subresource:
            resource = f"{resource}/{permission.subresource}"
        verbs.setdefault((permission.group, resource), []).append(permission.verb)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": granted}
        for (group, resource), granted in verbs.items()
    ]
