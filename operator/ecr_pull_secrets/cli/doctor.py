"""`ecr-pull-secrets doctor [-n NS] [NAME] [--operator-service-account NS/NAME]`: is the setup sound?

Runs outside the cluster with the user's kubeconfig and AWS credentials. Checks the AWS identity
in effect, the CRDs, the operator's ServiceAccount and every RBAC permission it needs, and, given
an EcrPullSecret, its conditions and whether a token can be had for each of its registries.
Prints one ✓/✗ line per check, with a one-line fix under each ✗; exits 1 if any check failed.
Never prints token material.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.aws.tokens import TokenSource, default_source
from ecr_pull_secrets.kube.access import Access, NoCluster, current_namespace, service_account_user
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.permissions import OPERATOR_PERMISSIONS
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.identity import OPERATOR_CHAIN
from ecr_pull_secrets.model.registry import TokenGroup
from ecr_pull_secrets.model.resource import Spec, parse_spec
from ecr_pull_secrets.plan import doctor
from ecr_pull_secrets.plan.doctor import Check
from ecr_pull_secrets.plan.iam import InvalidPolicyRequest, ServiceAccount

PROG = "ecr-pull-secrets doctor"
CRDS = (f"{api.PLURAL}.{api.GROUP}", f"{api.CLUSTER_PLURAL}.{api.GROUP}")
# Names the requester in role session names; the default chain assumes no role, so it is unused.
OWNER = ("", "doctor")


def run(args: argparse.Namespace) -> int:
    """`args`: name (str or None), namespace (str or None), operator_service_account ("NS/NAME")."""
    try:
        account = ServiceAccount.parse(args.operator_service_account)
    except InvalidPolicyRequest as error:
        print(f"{PROG}: error: --operator-service-account: {error}", file=sys.stderr)
        return 2
    try:
        access: Access | str = Access.connect()
    except NoCluster as error:
        access = str(error)
    checks = diagnose(access, default_source(), account, args.namespace or current_namespace(), args.name)
    print(doctor.render(checks))
    return doctor.exit_code(checks)


def diagnose(
    access: Access | str, source: TokenSource, account: ServiceAccount, namespace: str, name: str | None
) -> list[Check]:
    """`access`: the cluster, or why there is none."""
    resource = _resource(access, namespace, name) if isinstance(access, Access) and name else None
    partition = resource.spec.partition if resource and resource.spec else "aws"

    arn: str | None = None
    try:
        arn = source.caller_arn(OPERATOR_CHAIN, partition, OWNER)
        checks = [doctor.aws_identity(arn)]
    except AwsCallFailed as error:
        checks = [doctor.aws_identity(None, reason=error.reason, message=error.message)]

    if not isinstance(access, Access):
        checks.append(doctor.failed(f"Kubernetes API: {access}", "set KUBECONFIG, or pick a context"))
        return checks
    checks += [_crd(access, crd) for crd in CRDS]
    checks.append(_service_account(access, account))
    checks.append(_rbac(access, account))
    if resource is not None:
        checks.append(resource.found)
        if resource.spec is not None:
            checks.append(doctor.conditions(api.KIND, namespace, str(name), resource.status))
            checks += _tokens(source, resource.spec, arn)
    return checks


@dataclass(frozen=True)
class _Resource:
    found: Check
    spec: Spec | None = None
    status: Mapping[str, Any] = field(default_factory=dict)


def _resource(access: Access, namespace: str, name: str) -> _Resource:
    try:
        body = access.ecr_pull_secret(namespace, name)
    except KubeError as error:
        return _Resource(_kube_failed(f"{api.KIND} {namespace}/{name}", error))
    if body is None:
        return _Resource(doctor.resource_missing(api.KIND, namespace, name))
    try:
        spec = parse_spec(body.get("spec") or {}, default_name=name)
    except InvalidSpec as error:
        return _Resource(doctor.resource_invalid(api.KIND, namespace, name, str(error)))
    hosts = [r.host for r in spec.registries]
    found = doctor.resource_found(api.KIND, namespace, name, hosts, spec.auth)
    return _Resource(found, spec, body.get("status") or {})


def _crd(access: Access, name: str) -> Check:
    try:
        return doctor.crd(name, access.crd_established(name))
    except KubeError as error:
        return _kube_failed(f"CRD {name}", error)


def _service_account(access: Access, account: ServiceAccount) -> Check:
    try:
        return doctor.service_account(
            account.namespace, account.name, access.service_account_exists(account.namespace, account.name)
        )
    except KubeError as error:
        return _kube_failed(f"ServiceAccount {account.namespace}/{account.name}", error)


def _rbac(access: Access, account: ServiceAccount) -> Check:
    user, groups = service_account_user(account.namespace, account.name)
    try:
        results = [(str(p), access.allowed(user, groups, p)) for p in OPERATOR_PERMISSIONS]
    except KubeError as error:
        return doctor.rbac_unknown(user, str(error))
    return doctor.rbac(user, results)


def _tokens(source: TokenSource, spec: Spec, arn: str | None) -> Sequence[Check]:
    if not doctor.checks_tokens(spec.auth):
        return [doctor.tokens_not_checked(spec.auth)]
    if arn is None:
        return [doctor.tokens_skipped("no AWS identity (see above)")]
    results: dict[TokenGroup, datetime | AwsCallFailed] = {}
    checks = []
    for registry in spec.registries:
        group = registry.token_group
        if group not in results:  # one token per region serves all its registries: ask once
            try:
                _, results[group] = source.authorization_token(
                    OPERATOR_CHAIN,
                    spec.partition,
                    registry.region,
                    registry.public,
                    OWNER,
                    fips=registry.fips,
                )
            except AwsCallFailed as error:
                results[group] = error
        result = results[group]
        if isinstance(result, AwsCallFailed):
            checks.append(doctor.token_failed(registry.host, result.reason, result.message))
        else:
            checks.append(doctor.token(registry.host, arn, result))
    return checks


def _kube_failed(what: str, error: KubeError) -> Check:
    return doctor.failed(f"{what}: {error}", "check your kubeconfig context and that you may read it")
