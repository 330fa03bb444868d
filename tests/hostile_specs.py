"""Hostile specs: what a tenant with nothing but the right to create EcrPullSecrets in one namespace
might write to reach another namespace, stall the operator or break its parser.

Each case breaks exactly one field of an otherwise valid spec. Both lines of defence must refuse it
and name that field: admission (tests/integration/test_admission.py, on the real API server) and the
operator's parser (tests/unit). `field` is the path as the API server prints it: dots between
fields, `[i]` for list items, e.g. `spec.auth.roleChain[0].roleArn`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EPS = "EcrPullSecret"
CEPS = "ClusterEcrPullSecret"
ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-pull"


@dataclass(frozen=True)
class HostileSpec:
    id: str
    kind: str
    """EcrPullSecret or ClusterEcrPullSecret."""
    spec: dict[str, Any]
    field: str
    """The field the rejection must name."""


# Payloads for every field that ends up in a request path or a Secret/ServiceAccount lookup.
PATH_ATTACKS = {
    "dotdot": "../x",
    "other-namespace": "a/../../other/serviceaccounts/victim",
    "watch-query": "x?watch=true&timeoutSeconds=86400",
    "percent-encoded": "%2e%2e",
}


def eps(id_: str, field: str, **spec: Any) -> HostileSpec:
    return HostileSpec(id_, EPS, {"registries": [HOST], **spec}, field)


def ceps(id_: str, field: str, **spec: Any) -> HostileSpec:
    return HostileSpec(id_, CEPS, {"registries": [HOST], **spec}, field)


def _names() -> list[HostileSpec]:
    cases = []
    for attack, name in {**PATH_ATTACKS, "empty": ""}.items():
        cases += [
            eps(
                f"sa-name-{attack}",
                "spec.auth.serviceAccountRef.name",
                auth={"serviceAccountRef": {"name": name}},
            ),
            eps(f"secret-name-{attack}", "spec.auth.secretRef.name", auth={"secretRef": {"name": name}}),
            eps(
                f"service-accounts-names-{attack}",
                "spec.serviceAccounts.names[0]",
                serviceAccounts={"names": [name]},
            ),
        ]
        if name:  # an empty secretName means "the resource's name"
            cases.append(eps(f"secret-name-field-{attack}", "spec.secretName", secretName=name))
    return cases


def _cluster_refs() -> list[HostileSpec]:
    sa = {"name": "puller", "namespace": "team-a"}
    keys = {"name": "aws-keys", "namespace": "team-a"}
    return [
        ceps(
            "cluster-sa-namespace-dotdot",
            "spec.auth.serviceAccountRef.namespace",
            auth={"serviceAccountRef": {**sa, "namespace": "../kube-system"}},
        ),
        ceps(
            "cluster-sa-namespace-watch-query",
            "spec.auth.serviceAccountRef.namespace",
            auth={"serviceAccountRef": {**sa, "namespace": "x?watch=true&timeoutSeconds=86400"}},
        ),
        ceps(
            "cluster-sa-namespace-empty",
            "spec.auth.serviceAccountRef.namespace",
            auth={"serviceAccountRef": {**sa, "namespace": ""}},
        ),
        ceps(
            "cluster-sa-name-other-namespace",
            "spec.auth.serviceAccountRef.name",
            auth={"serviceAccountRef": {**sa, "name": PATH_ATTACKS["other-namespace"]}},
        ),
        ceps(
            "cluster-secret-namespace-slash",
            "spec.auth.secretRef.namespace",
            auth={"secretRef": {**keys, "namespace": "kube-system/secrets"}},
        ),
        ceps(
            "cluster-secret-name-percent-encoded",
            "spec.auth.secretRef.name",
            auth={"secretRef": {**keys, "name": "%2e%2e"}},
        ),
        ceps("cluster-secret-name-field-dotdot", "spec.secretName", secretName="../x"),
    ]


def _secret_keys() -> list[HostileSpec]:
    return [
        eps(
            "secret-key-slash",
            "spec.auth.secretRef.accessKeyIdKey",
            auth={"secretRef": {"name": "aws-keys", "accessKeyIdKey": "../x"}},
        ),
        eps(
            "secret-key-query",
            "spec.auth.secretRef.sessionTokenKey",
            auth={"secretRef": {"name": "aws-keys", "sessionTokenKey": "a?b"}},
        ),
    ]


def _sizes() -> list[HostileSpec]:
    selector_of = "spec.serviceAccounts.selector"
    return [
        eps(
            "sa-name-254-characters",
            "spec.auth.serviceAccountRef.name",
            auth={"serviceAccountRef": {"name": "a" * 254}},
        ),
        eps("secret-name-field-254-characters", "spec.secretName", secretName="a" * 254),
        eps("service-accounts-names-empty-list", "spec.serviceAccounts.names", serviceAccounts={"names": []}),
        eps(
            "service-accounts-names-51",
            "spec.serviceAccounts.names",
            serviceAccounts={"names": [f"sa-{i}" for i in range(51)]},
        ),
        eps(
            "registries-21",
            "spec.registries",
            registries=[f"{n:012d}.dkr.ecr.us-east-1.amazonaws.com" for n in range(21)],
        ),
        eps("role-chain-6", "spec.auth.roleChain", auth={"roleChain": [{"roleArn": ROLE}] * 6}),
        eps(
            "match-labels-33",
            f"{selector_of}.matchLabels",
            serviceAccounts={"selector": {"matchLabels": {f"k{i}": "v" for i in range(33)}}},
        ),
        eps(
            "match-expressions-17",
            f"{selector_of}.matchExpressions",
            serviceAccounts={"selector": {"matchExpressions": [{"key": "k", "operator": "Exists"}] * 17}},
        ),
        eps(
            "expression-values-65",
            f"{selector_of}.matchExpressions[0].values",
            serviceAccounts={
                "selector": {
                    "matchExpressions": [
                        {"key": "k", "operator": "In", "values": [f"v{i}" for i in range(65)]}
                    ]
                }
            },
        ),
        eps(
            "audience-254-characters",
            "spec.auth.serviceAccountRef.audience",
            auth={"serviceAccountRef": {"name": "puller", "audience": "a" * 254}},
        ),
        ceps(
            "namespace-globs-65",
            "spec.namespaces.include",
            namespaces={"include": [f"team-{i}-*" for i in range(65)]},
        ),
        ceps(
            "namespace-glob-64-characters", "spec.namespaces.exclude[0]", namespaces={"exclude": ["a" * 64]}
        ),
        ceps(
            "namespace-glob-slash", "spec.namespaces.include[0]", namespaces={"include": ["team-*/secrets"]}
        ),
    ]


def _selectors() -> list[HostileSpec]:
    def sa_selector(id_: str, field: str, selector: Any) -> HostileSpec:
        return eps(id_, f"spec.serviceAccounts.selector{field}", serviceAccounts={"selector": selector})

    return [
        sa_selector("selector-a-string", "", "app=web"),
        sa_selector("match-labels-a-string", ".matchLabels", {"matchLabels": "app=web"}),
        sa_selector("match-labels-bad-key", ".matchLabels", {"matchLabels": {"app name": "web"}}),
        sa_selector("match-labels-key-name-64", ".matchLabels", {"matchLabels": {"x" * 64: "web"}}),
        sa_selector("match-labels-bad-value", ".matchLabels.app", {"matchLabels": {"app": "web/../x"}}),
        sa_selector(
            "expression-without-key",
            ".matchExpressions[0].key",
            {"matchExpressions": [{"operator": "Exists"}]},
        ),
        sa_selector(
            "expression-key-name-64",
            ".matchExpressions[0].key",
            {"matchExpressions": [{"key": "example.com/" + "x" * 64, "operator": "Exists"}]},
        ),
        sa_selector(
            "expression-operator-lower-case",
            ".matchExpressions[0].operator",
            {"matchExpressions": [{"key": "app", "operator": "in", "values": ["web"]}]},
        ),
        sa_selector(
            "expression-in-without-values",
            ".matchExpressions[0].values",
            {"matchExpressions": [{"key": "app", "operator": "In"}]},
        ),
        sa_selector(
            "expression-notin-empty-values",
            ".matchExpressions[0].values",
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": []}]},
        ),
        sa_selector(
            "expression-exists-with-values",
            ".matchExpressions[0].values",
            {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["web"]}]},
        ),
        eps(
            "service-accounts-names-a-string", "spec.serviceAccounts.names", serviceAccounts={"names": "web"}
        ),
        ceps(
            "namespace-selector-match-labels-a-string",
            "spec.namespaceSelector.matchLabels",
            namespaceSelector={"matchLabels": "team=a"},
        ),
        ceps(
            "namespace-selector-operator-lower-case",
            "spec.namespaceSelector.matchExpressions[0].operator",
            namespaceSelector={"matchExpressions": [{"key": "team", "operator": "in", "values": ["a"]}]},
        ),
    ]


def _durations() -> list[HostileSpec]:
    return [
        eps(f"renew-before-{text}", "spec.renewBefore", renewBefore=text)
        for text in ("4m59s", "8h1m", "11h59m", "0s", "-5m", "1d")
    ]


def _identities() -> list[HostileSpec]:
    def chain(id_: str, field: str, **hop: str) -> HostileSpec:
        return eps(id_, f"spec.auth.roleChain[0].{field}", auth={"roleChain": [{"roleArn": ROLE, **hop}]})

    def sa_role(id_: str, arn: str) -> HostileSpec:
        return eps(
            id_,
            "spec.auth.serviceAccountRef.roleArn",
            auth={"serviceAccountRef": {"name": "puller", "roleArn": arn}},
        )

    return [
        sa_role("sa-role-arn-unknown-partition", f"arn:aws-iso-z:iam::{ACCOUNT}:role/ecr-pull"),
        sa_role("sa-role-arn-wildcard", f"arn:aws:iam::{ACCOUNT}:role/ecr-*"),
        chain("role-arn-11-digit-account", "roleArn", roleArn="arn:aws:iam::12345678901:role/ecr-pull"),
        chain("role-arn-user", "roleArn", roleArn=f"arn:aws:iam::{ACCOUNT}:user/ecr-pull"),
        chain("role-arn-wildcard-name", "roleArn", roleArn=f"arn:aws:iam::{ACCOUNT}:role/*"),
        chain("role-arn-assumed-role", "roleArn", roleArn=f"arn:aws:sts::{ACCOUNT}:assumed-role/ecr-pull/s"),
        chain("role-arn-name-65", "roleArn", roleArn=f"arn:aws:iam::{ACCOUNT}:role/{'r' * 65}"),
        chain("session-name-1-character", "sessionName", sessionName="a"),
        chain("session-name-65-characters", "sessionName", sessionName="s" * 65),
        chain("session-name-space", "sessionName", sessionName="team a"),
        chain("session-name-slash", "sessionName", sessionName="ecr-pull-secrets/other-ns"),
        chain("external-id-1-character", "externalId", externalId="x"),
        chain("external-id-1225-characters", "externalId", externalId="x" * 1225),
        chain("external-id-space", "externalId", externalId="tenant a"),
        eps(
            "audience-space",
            "spec.auth.serviceAccountRef.audience",
            auth={"serviceAccountRef": {"name": "puller", "audience": "sts amazonaws com"}},
        ),
    ]


def _registries() -> list[HostileSpec]:
    def host(id_: str, region: str, suffix: str = "amazonaws.com") -> HostileSpec:
        return eps(id_, "spec.registries[0]", registries=[f"{ACCOUNT}.dkr.ecr.{region}.{suffix}"])

    return [
        host("region-unknown-prefix", "xx-east-1"),
        host("region-iso-partition", "us-iso-east-1"),
        host("region-eusc-partition", "eusc-de-east-1"),
        host("region-two-words", "us-east-west-1"),
        host("region-china-global-suffix", "cn-north-1"),
        host("region-query", "us-east-1?x=1"),
        eps(
            "registries-mix-aws-and-china",
            "spec.registries",
            registries=[HOST, f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn"],
        ),
        eps(
            "registries-mix-govcloud-and-aws",
            "spec.registries",
            registries=[f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com", HOST],
        ),
    ]


def _verify_images() -> list[HostileSpec]:
    def images(id_: str, field: str, value: Any) -> HostileSpec:
        return eps(id_, field, verify={"images": value})

    return [
        images("verify-image-without-tag", "spec.verify.images[0]", ["team/app"]),
        images("verify-image-path-escape", "spec.verify.images[0]", ["../../v2/_catalog:v1"]),
        images("verify-image-short-digest", "spec.verify.images[0]", ["team/app@sha256:abc"]),
        images("verify-images-too-many", "spec.verify.images", [f"team/app:v{i}" for i in range(11)]),
    ]


def _outputs() -> list[HostileSpec]:
    """spec.output and spec.secretTemplate: a tenant may not make its Secret look like another
    tool's, take over the operator's bookkeeping, or grow a Secret's metadata without bound."""

    def template(id_: str, part: str, pairs: dict[str, Any], *, key: str | None = None) -> HostileSpec:
        field = f"spec.secretTemplate.metadata.{part}" + (f".{key}" if key else "")
        return eps(id_, field, secretTemplate={"metadata": {part: pairs}})

    east, west = HOST, f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com"
    return [
        eps("output-unknown-type", "spec.output.type", output={"type": "helm"}),
        eps(
            "output-argocd-two-registries",
            "spec.registries",
            registries=[east, west],
            output={"type": "argocd"},
        ),
        HostileSpec(
            "output-basic-auth-two-registries",
            CEPS,
            {"registries": [east, west], "output": {"type": "basicAuth"}},
            "spec.registries",
        ),
        eps(
            "output-argocd-with-service-accounts",
            "spec.serviceAccounts",
            output={"type": "argocd"},
            serviceAccounts={"all": True},
        ),
        template(
            "template-managed-by", "labels", {"app.kubernetes.io/managed-by": "ecr-pull-secret-operator"}
        ),
        template("template-argocd-secret-type", "labels", {"argocd.argoproj.io/secret-type": "cluster"}),
        template("template-our-annotation", "annotations", {"ecr.pullsecrets.dev/expires-at": "2099-01-01"}),
        template("template-kubectl-annotation", "annotations", {"kubectl.kubernetes.io/restartedAt": "x"}),
        template("template-k8s-io-label", "labels", {"k8s.io/role": "x"}),
        template("template-label-key", "labels", {"a b": "x"}),
        template("template-too-many-labels", "labels", {f"k{i}": "v" for i in range(17)}),
        template("template-too-many-annotations", "annotations", {f"k{i}": "v" for i in range(17)}),
        template("template-label-value", "labels", {"team": "a b"}, key="team"),
        template("template-annotation-too-long", "annotations", {"note": "x" * 1025}, key="note"),
    ]


CASES: list[HostileSpec] = [
    *_names(),
    *_cluster_refs(),
    *_secret_keys(),
    *_sizes(),
    *_selectors(),
    *_durations(),
    *_identities(),
    *_registries(),
    *_verify_images(),
    *_outputs(),
]
