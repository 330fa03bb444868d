"""May this namespace use this identity? Guards against the confused deputy: whoever can create
an EcrPullSecret must not borrow the operator's AWS permissions unless an admin allowed it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache

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
            f"namespace {namespace} may not use the operator's own AWS identity: the namespace policy "
            "(operatorIdentity.namespaces) does not list it; use spec.auth.serviceAccountRef, or ask an "
            "admin to allow it"
        )
    for hop in auth.role_chain:
        if not any(
            _matches(namespace, rule.namespaces) and _arn_matches(hop.role_arn, rule.role_arns)
            for rule in policy.assume_roles
        ):
            # The policy's other rules are other tenants' business: the message names none.
            return Refusal(
                f"namespace {namespace} may not assume {hop.role_arn} with the operator's identity: "
                "no assumeRoles rule of the namespace policy allows it for this namespace; ask an admin"
            )
    return None


def _matches(value: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatchcase(value, glob) for glob in globs)


def _arn_matches(arn: str, globs: tuple[str, ...]) -> bool:
    """ARN globs as IAM admins read them, but stricter: * and ? never cross a ':' or '/', so
    arn:aws:iam::111122223333:role/team-* matches neither another account nor a role path."""
    return any(_arn_glob(glob).fullmatch(arn) for glob in globs)


@cache
def _arn_glob(glob: str) -> re.Pattern[str]:
    parts = re.split(r"([*?])", glob)
    wild = {"*": "[^:/]*", "?": "[^:/]"}
    return re.compile("".join(wild.get(part) or re.escape(part) for part in parts))
