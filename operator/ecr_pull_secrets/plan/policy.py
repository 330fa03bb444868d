"""May this namespace use this identity? Guards against the confused deputy: whoever can create
an EcrPullSecret must not borrow the operator's AWS permissions unless an admin allowed it."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from ecr_pull_secrets.model.identity import Auth
from ecr_pull_secrets.model.policy import Policy

CLUSTER_SCOPED = ""


@dataclass(frozen=True)
class Refusal:
    message: str


def check(policy: Policy, namespace: str, auth: Auth) -> Refusal | None:
    """Tenants' own identities (ServiceAccount, keys) need no permission; the operator's does.
    Cluster-scoped resources are written by cluster admins and may use it freely."""
    if namespace == CLUSTER_SCOPED or not auth.uses_operator_identity:
        return None
    if not auth.role_chain:
        if _matches(namespace, policy.operator_identity_namespaces):
            return None
        return Refusal(
            f"namespace {namespace} may not use the operator's own AWS identity: it matches no glob in "
            f"operatorIdentity.namespaces {list(policy.operator_identity_namespaces)}; use spec.auth."
            "serviceAccountRef, or ask an admin to allow it"
        )
    for hop in auth.role_chain:
        if not any(
            _matches(namespace, rule.namespaces) and _matches(hop.role_arn, rule.role_arns)
            for rule in policy.assume_roles
        ):
            return Refusal(
                f"namespace {namespace} may not assume {hop.role_arn} with the operator's identity: "
                f"no assumeRoles rule allows it ({_describe(policy)})"
            )
    return None


def _matches(value: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatchcase(value, glob) for glob in globs)


def _describe(policy: Policy) -> str:
    if not policy.assume_roles:
        return "the policy has no assumeRoles rules"
    return "; ".join(
        f"rule {i}: namespaces {list(r.namespaces)} roleArns {list(r.role_arns)}"
        for i, r in enumerate(policy.assume_roles, 1)
    )
