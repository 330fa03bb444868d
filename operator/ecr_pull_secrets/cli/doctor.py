"""`ecr-pull-secrets doctor [-n NS] [NAME] [--operator-service-account NS/NAME]`: is the setup sound?
`ecr-pull-secrets doctor --image REF [-n NS]`: would a pod in NS pull REF?

Runs outside the cluster with the user's kubeconfig and AWS credentials. Checks the AWS identity
in effect, the CRDs, the operator's ServiceAccount and every RBAC permission it needs, and, given
an EcrPullSecret, its conditions and whether a token can be had for each of its registries.
Prints one ✓/✗ line per check, with a one-line fix under each ✗; exits 1 if any check failed.
Never prints token material.

With --image it walks what a kubelet does for a pod in NS (run as ServiceAccount `default`): which
EcrPullSecret or ClusterEcrPullSecret writes a Secret for the image's registry there, whether the
Secret holds that host and the ServiceAccount lists it, whose identity made the token, whether the
registry accepts it (GET /v2/) and whether the manifest answers (HEAD). Without such a resource (or
a cluster) it asks the registry with a token of your own AWS identity, as the operator's would be.
The registry is reached as the operator reaches it: ECR_PULL_SECRETS_REGISTRY_ENDPOINT
(HOST=URL,...) and ECR_PULL_SECRETS_REGISTRY_CA_BUNDLE, and HTTPS_PROXY, are honoured.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.aws.tokens import TokenSource, default_source
from ecr_pull_secrets.kube.access import Access, NoCluster, current_namespace, service_account_user
from ecr_pull_secrets.kube.client import KubeError, Rest, api_path, new_api_client
from ecr_pull_secrets.kube.permissions import OPERATOR_PERMISSIONS
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.identity import OPERATOR_CHAIN
from ecr_pull_secrets.model.registry import TokenGroup
from ecr_pull_secrets.model.resource import Spec, parse_spec
from ecr_pull_secrets.plan import doctor
from ecr_pull_secrets.plan.doctor import Check
from ecr_pull_secrets.plan.iam import InvalidPolicyRequest, ServiceAccount
from ecr_pull_secrets.plan.verify import authorizations
from ecr_pull_secrets.settings import ENV_PREFIX, parse_endpoints
from ecr_pull_secrets.verify.registry import RegistryClient

PROG = "ecr-pull-secrets doctor"
CRDS = (f"{api.PLURAL}.{api.GROUP}", f"{api.CLUSTER_PLURAL}.{api.GROUP}")
# Names the requester in role session names; the default chain assumes no role, so it is unused.
OWNER = ("", "doctor")


def run(args: argparse.Namespace) -> int:
    """`args`: name (str or None), namespace (str or None), operator_service_account ("NS/NAME"),
    image (str or None)."""
    if getattr(args, "image", None):
        return run_image(args.image, args.namespace)
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


# -- doctor --image ----------------------------------------------------------------------------

POD_SERVICE_ACCOUNT = "default"


def run_image(reference: str, namespace: str | None) -> int:
    try:
        endpoints = parse_endpoints(
            [e for e in os.environ.get(ENV_PREFIX + "REGISTRY_ENDPOINT", "").split(",") if e]
        )
    except ValueError as error:
        print(f"{PROG}: error: {ENV_PREFIX}REGISTRY_ENDPOINT: {error}", file=sys.stderr)
        return 2
    client = RegistryClient(endpoints=endpoints, ca_bundle=os.environ.get(ENV_PREFIX + "REGISTRY_CA_BUNDLE"))
    try:
        Access.connect()  # for its verdict on the configuration
        rest: Rest | str = Rest(new_api_client(pool_size=4))
    except NoCluster as error:
        rest = str(error)
    checks = diagnose_image(rest, default_source(), client, namespace or current_namespace(), reference)
    print(doctor.render(checks))
    return doctor.exit_code(checks)


def diagnose_image(
    rest: Rest | str, source: TokenSource, client: RegistryClient, namespace: str, reference: str
) -> list[Check]:
    """`rest`: the cluster, or why there is none."""
    parsed = doctor.parse_image(reference)
    checks = [doctor.image(reference, parsed)]
    if isinstance(parsed, str):
        return checks
    host = parsed.registry.host
    if isinstance(rest, str):
        checks.append(doctor.skipped(f"Kubernetes: {rest}; checking with your own AWS identity"))
        return checks + _with_own_identity(source, client, parsed)
    try:
        covering = _covering(rest, namespace, host)
    except KubeError as error:
        return [*checks, _kube_failed(f"{api.KIND}s in {namespace}", error)]
    checks.append(doctor.coverage(namespace, host, covering))
    if not covering:
        return checks + _with_own_identity(source, client, parsed)
    return checks + _with_secret(rest, client, namespace, parsed, covering[0])


def _with_secret(
    rest: Rest, client: RegistryClient, namespace: str, image: doctor.Image, cover: doctor.Covering
) -> list[Check]:
    host, checks = image.registry.host, []
    try:
        secret = _get(rest, api_path("/api/v1", "namespaces", namespace, "secrets", cover.secret_name))
        account = _get(
            rest, api_path("/api/v1", "namespaces", namespace, "serviceaccounts", POD_SERVICE_ACCOUNT)
        )
    except KubeError as error:
        return [_kube_failed(f"Secret and ServiceAccount in {namespace}", error)]
    auths = authorizations(((secret or {}).get("data") or {}).get(api.SECRET_KEY, ""))
    checks.append(doctor.secret(namespace, cover, host, None if secret is None else host in auths))
    listed = None if account is None else cover.secret_name in _pull_secret_names(account)
    checks.append(doctor.image_pull_secrets(namespace, POD_SERVICE_ACCOUNT, cover.secret_name, listed))
    checks.append(doctor.token_identity(cover.identity))
    if host not in auths:
        return checks
    return checks + _ask(client, image, auths[host], cover.identity)


def _with_own_identity(source: TokenSource, client: RegistryClient, image: doctor.Image) -> list[Check]:
    registry = image.registry
    try:
        arn = source.caller_arn(OPERATOR_CHAIN, registry.partition, OWNER)
        credential, _ = source.authorization_token(
            OPERATOR_CHAIN, registry.partition, registry.region, registry.public, OWNER, fips=registry.fips
        )
    except AwsCallFailed as error:
        return [doctor.token_failed(registry.host, error.reason, error.message)]
    auth = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
    return [doctor.token_identity(arn, own=True), *_ask(client, image, auth, arn)]


def _ask(client: RegistryClient, image: doctor.Image, auth: str, identity: str | None) -> list[Check]:
    answers = client.check({image.registry.host: auth}, [image.image])
    return [doctor.registry(answer, identity) for answer in answers]


def _covering(rest: Rest, namespace: str, host: str) -> list[doctor.Covering]:
    """Resources whose Secret in `namespace` is meant to hold `host`: namespaced ones of that
    namespace, and cluster ones that have a Secret there."""
    group = f"/apis/{api.GROUP}/{api.VERSION}"
    found = []
    namespaced = _get(rest, api_path(group, "namespaces", namespace, api.PLURAL)) or {}
    cluster = _get(rest, api_path(group, api.CLUSTER_PLURAL)) or {}
    for kind, items in ((api.KIND, namespaced), (api.CLUSTER_KIND, cluster)):
        for body in items.get("items") or ():
            meta, spec = body.get("metadata") or {}, body.get("spec") or {}
            if host not in (spec.get("registries") or ()):
                continue
            if (spec.get("output") or {}).get("type", "dockerconfigjson") != "dockerconfigjson":
                continue  # an Argo CD or basic-auth Secret: no pod pulls with it
            secret_name = str(spec.get("secretName") or meta.get("name"))
            if kind == api.CLUSTER_KIND and not _owns(rest, namespace, secret_name, meta.get("uid")):
                continue
            identity = (body.get("status") or {}).get("identity")
            found.append(doctor.Covering(kind, meta.get("name", ""), secret_name, identity))
    return found


def _owns(rest: Rest, namespace: str, secret_name: str, uid: str | None) -> bool:
    secret = _get(rest, api_path("/api/v1", "namespaces", namespace, "secrets", secret_name))
    owners = ((secret or {}).get("metadata") or {}).get("ownerReferences") or ()
    return any(o.get("uid") == uid and o.get("controller") for o in owners)


def _pull_secret_names(account: Mapping[str, Any]) -> set[str]:
    return {str(entry.get("name")) for entry in account.get("imagePullSecrets") or ()}


def _get(rest: Rest, path: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        return rest.request("GET", path, f"get {path}")
    except KubeError as error:
        if error.status == 404:
            return None
        raise
    except OSError as error:
        raise KubeError(0, f"API server unreachable ({type(error).__name__})", f"get {path}") from None
