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

from ecr_pull_secrets.model import rules
from ecr_pull_secrets.model.identity import Auth
from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost
from ecr_pull_secrets.model.timestamps import format_time
from ecr_pull_secrets.plan import verify


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


# -- doctor --image: the path a kubelet takes to pull one image ---------------------------------


@dataclass(frozen=True)
class Image:
    registry: RegistryHost
    image: str
    """`repository:tag` or `repository@sha256:…`, as in spec.verify.images."""

    def __str__(self) -> str:
        return f"{self.registry.host}/{self.image}"


@dataclass(frozen=True)
class Covering:
    """A resource whose Secret serves the image's registry in the namespace."""

    kind: str
    name: str
    secret_name: str
    identity: str | None
    """status.identity: whose token the Secret holds."""


def parse_image(reference: str) -> Image | str:
    """HOST/REPOSITORY[:TAG|@sha256:…] (no tag: latest, as the kubelet pulls), or why not."""
    host, _, rest = reference.strip().partition("/")
    try:
        registry = RegistryHost.parse(host)
    except InvalidRegistryHost as error:
        return str(error)
    last = rest.rsplit("/", 1)[-1]
    image = rest if "@" in rest or ":" in last else f"{rest}:latest"
    if not rules.matches(rules.IMAGE_REFERENCE, image):
        return f"{rest!r} is not REPOSITORY[:TAG] or REPOSITORY@sha256:<64 hex digits>"
    return Image(registry, image)


def image(reference: str, parsed: Image | str) -> Check:
    if isinstance(parsed, str):
        return failed(
            f"image {reference}: {parsed}",
            "write it as ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG (or @sha256:DIGEST)",
        )
    where = f"account {parsed.registry.account}, " if parsed.registry.account else ""
    return passed(f"image {parsed}: {where}region {parsed.registry.region}")


def coverage(namespace: str, host: str, covering: Sequence[Covering]) -> Check:
    if not covering:
        return failed(
            f"no EcrPullSecret or ClusterEcrPullSecret writes a Secret for {host} in namespace {namespace}",
            f"create an EcrPullSecret in {namespace} with spec.registries: [{host}] (or widen a "
            "ClusterEcrPullSecret's namespaces); checked below with your own AWS identity instead",
        )
    listed = ", ".join(f"{c.kind} {c.name} (Secret {c.secret_name})" for c in covering)
    return passed(f"{host} in namespace {namespace} is covered by {listed}")


def secret(namespace: str, covering: Covering, host: str, holds: bool | None) -> Check:
    """`holds`: None when the Secret is missing, else whether it has credentials for `host`."""
    where = f"Secret {namespace}/{covering.secret_name}"
    if holds is None:
        return failed(
            f"{where} does not exist",
            f"see the {covering.kind}'s Ready condition (`kubectl describe` it) and the operator's logs",
        )
    if not holds:
        return failed(f"{where} holds no credentials for {host}", f"add {host} to spec.registries")
    return passed(f"{where} holds credentials for {host}")


def image_pull_secrets(namespace: str, account: str, secret_name: str, listed: bool | None) -> Check:
    """`listed`: None when the ServiceAccount is missing."""
    where = f"ServiceAccount {namespace}/{account}"
    if listed is None:
        return failed(
            f"{where} does not exist", "pods run as their ServiceAccount: create it or name another"
        )
    if not listed:
        return failed(
            f"{where} does not list {secret_name} in imagePullSecrets",
            "set spec.serviceAccounts (names, selector or all: true) on the resource, or list the Secret "
            "in the pod's imagePullSecrets",
        )
    return passed(f"{where} lists {secret_name} in imagePullSecrets")


def token_identity(identity: str | None, *, own: bool = False) -> Check:
    if identity is None:
        return skipped("whose token: not recorded in status.identity yet")
    return passed(f"token made by {identity}{' (your AWS identity)' if own else ''}")


def registry(answer: verify.Answer, identity: str | None) -> Check:
    """One request of the pull: GET /v2/ (the token is accepted), or the manifest HEAD."""
    reason = verify.result(answer)
    if reason == "OK":
        what = (
            f"manifest {answer.host}/{answer.image} answers"
            if answer.image
            else (f"{answer.host} accepts the token (GET /v2/)")
        )
        return passed(what)
    what, fix = verify.explain(answer, reason, identity)
    return failed(f"{what} [{reason}]", fix)


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
