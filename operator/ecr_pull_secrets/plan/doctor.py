"""`doctor`'s verdicts, pure: what each finding means, the one-line fix, and the report.

The command (cli/doctor.py) asks the cluster and AWS; everything it learns comes here as plain
values, so every message and fix can be tested without either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from ecr_pull_secrets.model.identity import Auth
from ecr_pull_secrets.model.timestamps import format_time


class Verdict(Enum):
    PASS = "✓"
    FAIL = "✗"
    SKIP = "-"


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    summary: str
    fix: str = ""


def passed(summary: str) -> Check:
    return Check(Verdict.PASS, summary)


def failed(summary: str, fix: str) -> Check:
    return Check(Verdict.FAIL, summary, fix)


def skipped(summary: str) -> Check:
    return Check(Verdict.SKIP, summary)


# -- fixes by reason (the reasons of conditions, Events and AwsCallFailed) ---------------------

_FIXES = {
    "AccessDenied": "allow ecr:GetAuthorizationToken on * and pulls from the repositories: "
    "`ecr-pull-secrets iam-policy --registry {host}` prints the policy",
    "NoCredentials": "no AWS credentials: the operator needs IRSA or EKS Pod Identity; on your machine "
    "`aws configure`, AWS_PROFILE or `aws sso login`",
    "InvalidCredentials": "the AWS credentials are expired or not accepted: refresh them, or check the "
    "role's trust policy (`ecr-pull-secrets iam-policy --trust-service-account NS/NAME --oidc-provider ARN`)",
    "Throttled": "AWS is throttling: retry later, or lower the operator's --aws-rate-limit",
    "AwsUnreachable": "AWS is unreachable: check egress, proxies and VPC endpoints for sts and api.ecr",
    "AwsError": "AWS refused the call: see the message, then retry",
    "AuthNotAllowed": "allow the namespace in the operator's --policy (operatorIdentity or assumeRoles), "
    "or use spec.auth.serviceAccountRef",
    "AuthUnresolved": "create the ServiceAccount or Secret spec.auth names (a ServiceAccount needs the "
    "eks.amazonaws.com/role-arn annotation or spec.auth.serviceAccountRef.roleArn)",
    "SecretConflict": "rename spec.secretName, delete the Secret in the way, or set spec.secretPolicy: Adopt",
    "KubernetesError": "check the operator's RBAC (see above) and its logs",
    "InvalidSpec": "fix the spec as the message says",
}


def fix_for(reason: str, host: str = "HOST") -> str:
    template = _FIXES.get(reason, "see `kubectl describe` and the operator's logs")
    return template.format(host=host)


# -- the checks ------------------------------------------------------------------------------------


def aws_identity(arn: str | None, *, reason: str = "", message: str = "") -> Check:
    if arn is not None:
        return passed(f"AWS identity: {arn}")
    return failed(f"AWS identity: {message}", fix_for(reason))


def crd(name: str, established: bool | None) -> Check:
    install = "install the chart, or `kubectl apply --server-side -f deploy/crds/`"
    if established is None:
        return failed(f"CRD {name} is not installed", install)
    if not established:
        return failed(
            f"CRD {name} exists but is not Established", f"`kubectl describe crd {name}`; {install}"
        )
    return passed(f"CRD {name} is installed")


def service_account(namespace: str, name: str, exists: bool) -> Check:
    if exists:
        return passed(f"ServiceAccount {namespace}/{name} exists")
    return failed(
        f"ServiceAccount {namespace}/{name} does not exist",
        "install the operator, or name its ServiceAccount with --operator-service-account NS/NAME",
    )


def rbac(user: str, results: Sequence[tuple[str, bool]]) -> Check:
    """`results`: (permission as `verb resource[/sub]`, allowed) for every permission needed."""
    missing = [permission for permission, allowed in results if not allowed]
    if not missing:
        return passed(f"RBAC: {user} has all {len(results)} permissions the operator needs")
    return failed(
        f"RBAC: {user} lacks {len(missing)} of {len(results)} permissions: {', '.join(missing)}",
        "bind a ClusterRole granting them (the chart's rbac.create does; "
        "`kubectl auth can-i --list --as USER` shows what it has)",
    )


def rbac_unknown(user: str, message: str) -> Check:
    return failed(
        f"RBAC of {user} could not be checked: {message}",
        "run doctor as a user who may create subjectaccessreviews.authorization.k8s.io",
    )


def resource_missing(kind: str, namespace: str, name: str) -> Check:
    return failed(
        f"{kind} {namespace}/{name} not found",
        "check the name and -n NAMESPACE (`kubectl get ecrpullsecrets -A`)",
    )


def resource_found(kind: str, namespace: str, name: str, hosts: Sequence[str], auth: Auth) -> Check:
    plural = "registry" if len(hosts) == 1 else "registries"
    return passed(f"{kind} {namespace}/{name}: {len(hosts)} {plural}, auth: {describe_auth(auth)}")


def resource_invalid(kind: str, namespace: str, name: str, message: str) -> Check:
    return failed(f"{kind} {namespace}/{name} has an invalid spec: {message}", fix_for("InvalidSpec"))


def conditions(kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> Check:
    """Ready and Degraded, as the operator last wrote them."""
    by_type = {c.get("type"): c for c in status.get("conditions") or ()}
    ready, degraded = by_type.get("Ready"), by_type.get("Degraded")
    what = f"{kind} {namespace}/{name}"
    if ready is None:
        return failed(
            f"{what} has no Ready condition: the operator has not reconciled it",
            "is the operator running and watching this namespace? see its logs",
        )
    if ready.get("status") != "True":
        reason = str(ready.get("reason") or "")
        return failed(f"{what} is not Ready ({reason}): {ready.get('message')}", fix_for(reason))
    if degraded is not None and degraded.get("status") == "True":
        reason = str(degraded.get("reason") or "")
        return failed(f"{what} is Degraded ({reason}): {degraded.get('message')}", fix_for(reason))
    return passed(f"{what} is Ready ({ready.get('reason')}): {ready.get('message')}")


def describe_auth(auth: Auth) -> str:
    start = "the operator's identity"
    if auth.service_account is not None:
        start = f"ServiceAccount {auth.service_account.name}"
    elif auth.secret is not None:
        start = f"static keys from Secret {auth.secret.name}"
    return " → ".join([start, *(hop.role_arn for hop in auth.role_chain)])


def checks_tokens(auth: Auth) -> bool:
    """doctor can stand in only for the operator's own identity, with no roles assumed."""
    return auth == Auth()


def tokens_not_checked(auth: Auth) -> Check:
    return skipped(
        f"tokens not checked: spec.auth uses {describe_auth(auth)}; "
        "doctor checks only the operator-identity path"
    )


def token(host: str, arn: str, expires_at: datetime) -> Check:
    return passed(f"token for {host} with {arn} (valid until {format_time(expires_at)})")


def token_failed(host: str, reason: str, message: str) -> Check:
    return failed(f"token for {host}: {message}", fix_for(reason, host))


def tokens_skipped(why: str) -> Check:
    return skipped(f"tokens not checked: {why}")


# -- the report ------------------------------------------------------------------------------------


def render(checks: Sequence[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"{check.verdict.value} {check.summary}")
        if check.verdict is Verdict.FAIL and check.fix:
            lines.append(f"  fix: {check.fix}")
    counts = {v: sum(1 for c in checks if c.verdict is v) for v in Verdict}
    summary = f"{counts[Verdict.PASS]} passed, {counts[Verdict.FAIL]} failed"
    if counts[Verdict.SKIP]:
        summary += f", {counts[Verdict.SKIP]} skipped"
    return "\n".join([*lines, summary])


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.verdict is Verdict.FAIL for c in checks) else 0
