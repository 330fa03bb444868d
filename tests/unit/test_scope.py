"""model.scope, and the fan-out fields of parse_spec / parse_status / parse_resource."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.identity import Auth, SecretRef, ServiceAccountRef
from ecr_pull_secrets.model.registry import RegistryHost
from ecr_pull_secrets.model.resource import InvalidSpec, Spec, parse_resource, parse_spec, parse_status
from ecr_pull_secrets.model.scope import (
    IGNORE_ANNOTATION,
    LabelSelector,
    NamespaceScope,
    Requirement,
    ServiceAccountScope,
    parse_namespace_scope,
    parse_selector,
    parse_service_account_scope,
)

US = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_ignore_annotation() -> None:
    assert IGNORE_ANNOTATION == "ecr.pullsecrets.dev/ignore"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param({}, LabelSelector(), id="empty-matches-all"),
        pytest.param({"matchLabels": None, "matchExpressions": None}, LabelSelector(), id="nulls"),
        pytest.param(
            {"matchLabels": {"team": "a", "env": "prod"}},
            LabelSelector(match_labels=(("env", "prod"), ("team", "a"))),
            id="labels-sorted",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
            LabelSelector(match_expressions=(Requirement("env", "In", ("prod", "dev")),)),
            id="expression-values-in-order",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
            LabelSelector(match_expressions=(Requirement("team", "Exists", ()),)),
            id="expression-without-values",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "team", "operator": "DoesNotExist", "values": None}]},
            LabelSelector(match_expressions=(Requirement("team", "DoesNotExist", ()),)),
            id="expression-null-values",
        ),
        pytest.param(
            {
                "matchLabels": {"env": "prod"},
                "matchExpressions": [
                    {"key": "team", "operator": "NotIn", "values": ["x"]},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            },
            LabelSelector(
                match_labels=(("env", "prod"),),
                match_expressions=(
                    Requirement("team", "NotIn", ("x",)),
                    Requirement("legacy", "DoesNotExist", ()),
                ),
            ),
            id="both-expressions-in-written-order",
        ),
    ],
)
def test_parse_selector(raw: dict[str, Any] | None, expected: LabelSelector | None) -> None:
    assert parse_selector(raw) == expected


@pytest.mark.parametrize(
    ("selector", "globs", "expected"),
    [
        pytest.param(None, None, NamespaceScope(None, ("*",), ()), id="absent-everything"),
        pytest.param(None, {}, NamespaceScope(None, ("*",), ()), id="empty-globs"),
        pytest.param(
            None, {"include": [], "exclude": []}, NamespaceScope(None, ("*",), ()), id="empty-lists"
        ),
        pytest.param(
            None, {"include": None, "exclude": None}, NamespaceScope(None, ("*",), ()), id="null-lists"
        ),
        pytest.param(
            None, {"include": ["team-*", "ci"]}, NamespaceScope(None, ("team-*", "ci"), ()), id="include"
        ),
        pytest.param(None, {"exclude": ["kube-*"]}, NamespaceScope(None, ("*",), ("kube-*",)), id="exclude"),
        pytest.param({}, None, NamespaceScope(LabelSelector(), ("*",), ()), id="empty-selector"),
        pytest.param(
            {"matchLabels": {"env": "prod"}},
            {"include": ["team-*"], "exclude": ["team-x"]},
            NamespaceScope(LabelSelector((("env", "prod"),)), ("team-*",), ("team-x",)),
            id="selector-and-globs",
        ),
    ],
)
def test_parse_namespace_scope(
    selector: dict[str, Any] | None, globs: dict[str, Any] | None, expected: NamespaceScope
) -> None:
    assert parse_namespace_scope(selector, globs) == expected


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param({}, "spec.serviceAccounts", id="nothing-chosen"),
        pytest.param({"all": False}, "spec.serviceAccounts", id="all-false-nothing-chosen"),
        pytest.param({"all": True, "names": ["a"]}, "spec.serviceAccounts", id="two-chosen"),
        pytest.param({"names": []}, "spec.serviceAccounts.names", id="empty-names"),
        pytest.param({"names": ["../x"]}, "spec.serviceAccounts.names[0]", id="traversal-name"),
        pytest.param(
            {"selector": {"matchLabels": "app=web"}},
            "spec.serviceAccounts.selector.matchLabels",
            id="labels-string",
        ),
        pytest.param(
            {"selector": {"matchLabels": ""}},
            "spec.serviceAccounts.selector.matchLabels",
            id="labels-empty-string",
        ),
        pytest.param(
            {"selector": {"matchLabels": {"tier": 1}}},
            "spec.serviceAccounts.selector.matchLabels.tier",
            id="label-number",
        ),
        pytest.param(
            {"selector": {"matchExpressions": [{"operator": "Exists"}]}},
            "spec.serviceAccounts.selector.matchExpressions[0].key",
            id="expression-without-key",
        ),
        pytest.param(
            {"selector": {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}},
            "spec.serviceAccounts.selector.matchExpressions[0].operator",
            id="operator-lower-case",
        ),
        pytest.param(
            {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            "spec.serviceAccounts.selector.matchExpressions[0].values",
            id="in-without-values",
        ),
        pytest.param(
            {"selector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
            "spec.serviceAccounts.selector.matchExpressions[0].values",
            id="exists-with-values",
        ),
        pytest.param({"selector": {"matchLabel": {}}}, "spec.serviceAccounts.selector", id="unknown-field"),
    ],
)
def test_parse_service_account_scope_rejects(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_service_account_scope(raw)

    assert caught.value.field == field


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, None, id="absent-off"),
        pytest.param(
            {"names": ["builder", "default"]}, ServiceAccountScope(names=("builder", "default")), id="names"
        ),
        pytest.param({"all": True}, ServiceAccountScope(all=True), id="all"),
        pytest.param(
            {"selector": {"matchLabels": {"pull": "ecr"}}},
            ServiceAccountScope(selector=LabelSelector((("pull", "ecr"),))),
            id="selector",
        ),
        pytest.param({"selector": {}}, ServiceAccountScope(selector=LabelSelector()), id="empty-selector"),
    ],
)
def test_parse_service_account_scope(
    raw: dict[str, Any] | None, expected: ServiceAccountScope | None
) -> None:
    assert parse_service_account_scope(raw) == expected


# -- parse_spec: the fan-out fields --------------------------------------------------------------


def spec(**changes: Any) -> Spec:
    return Spec((RegistryHost.parse(US),), secret_name="app", renew_before=timedelta(hours=4), **changes)


SELECTOR = {"matchLabels": {"env": "prod"}}
GLOBS = {"include": ["team-*"], "exclude": ["team-x"]}


@pytest.mark.parametrize(
    ("raw", "cluster", "expected"),
    [
        pytest.param({"registries": [US]}, False, spec(), id="namespaced-defaults"),
        pytest.param(
            {"registries": [US]}, True, spec(scope=NamespaceScope()), id="cluster-serves-everything"
        ),
        pytest.param(
            {"registries": [US], "namespaceSelector": SELECTOR, "namespaces": GLOBS},
            True,
            spec(scope=NamespaceScope(LabelSelector((("env", "prod"),)), ("team-*",), ("team-x",))),
            id="cluster-scope",
        ),
        pytest.param(
            {"registries": [US], "serviceAccounts": {"all": True}, "secretPolicy": "Adopt"},
            False,
            spec(service_accounts=ServiceAccountScope(all=True), secret_policy="Adopt"),
            id="service-accounts-adopt",
        ),
        pytest.param(
            {"registries": [US], "serviceAccounts": {"names": ["builder"]}},
            True,
            spec(service_accounts=ServiceAccountScope(names=("builder",)), scope=NamespaceScope()),
            id="cluster-service-accounts",
        ),
        pytest.param(
            {"registries": [US], "secretPolicy": ""}, False, spec(secret_policy="Fail"), id="policy-default"
        ),
        pytest.param(
            {"registries": [US], "auth": {"serviceAccountRef": {"name": "puller", "namespace": "ci"}}},
            True,
            spec(
                auth=Auth(service_account=ServiceAccountRef("puller", namespace="ci")), scope=NamespaceScope()
            ),
            id="cluster-service-account-with-namespace",
        ),
        pytest.param(
            {"registries": [US], "auth": {"secretRef": {"name": "keys", "namespace": "vault"}}},
            True,
            spec(auth=Auth(secret=SecretRef("keys", namespace="vault")), scope=NamespaceScope()),
            id="cluster-secret-with-namespace",
        ),
        pytest.param(
            {"registries": [US], "auth": {"serviceAccountRef": {"name": "puller"}}},
            False,
            spec(auth=Auth(service_account=ServiceAccountRef("puller"))),
            id="namespaced-service-account-own-namespace",
        ),
    ],
)
def test_parse_spec_fanout_fields(raw: dict[str, Any], cluster: bool, expected: Spec) -> None:
    assert parse_spec(raw, default_name="app", cluster=cluster) == expected


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param({"serviceAccountRef": {"name": "puller"}}, id="service-account"),
        pytest.param({"serviceAccountRef": {"name": "puller", "namespace": ""}}, id="service-account-empty"),
        pytest.param({"secretRef": {"name": "keys"}}, id="secret"),
        pytest.param({"secretRef": {"name": "keys", "namespace": None}}, id="secret-null"),
    ],
)
def test_parse_spec_cluster_refs_must_name_a_namespace(auth: dict[str, Any]) -> None:
    raw = {"registries": [US], "auth": auth}

    with pytest.raises(
        InvalidSpec, match=r"spec\.auth\.(serviceAccountRef|secretRef)\.namespace is required"
    ):
        parse_spec(raw, default_name="app", cluster=True)
    assert parse_spec(raw, default_name="app").scope is None, "a namespaced resource uses its own"


# -- parse_status / parse_resource -------------------------------------------------------------


def test_parse_status_failed_namespaces() -> None:
    listed = [{"namespace": "team-b", "reason": "SecretConflict", "message": "taken"}]

    assert parse_status({"failedNamespaces": listed}).failed_namespaces == (listed[0],)
    assert parse_status({"failedNamespaces": None}).failed_namespaces == ()
    assert parse_status({}).failed_namespaces == ()


@pytest.mark.parametrize(
    ("body", "kind", "namespace", "scope"),
    [
        pytest.param(
            {"kind": "EcrPullSecret", "metadata": {"namespace": "team-a", "name": "pull", "uid": "u"}},
            "EcrPullSecret",
            "team-a",
            None,
            id="namespaced",
        ),
        pytest.param(
            {"metadata": {"namespace": "team-a", "name": "pull", "uid": "u"}},
            "EcrPullSecret",
            "team-a",
            None,
            id="kind-missing-defaults-to-namespaced",
        ),
        pytest.param(
            {"kind": "ClusterEcrPullSecret", "metadata": {"name": "pull", "uid": "u"}},
            "ClusterEcrPullSecret",
            "",
            NamespaceScope(),
            id="cluster",
        ),
        pytest.param(
            {"kind": "ClusterEcrPullSecret", "metadata": {"namespace": None, "name": "pull", "uid": "u"}},
            "ClusterEcrPullSecret",
            "",
            NamespaceScope(),
            id="cluster-null-namespace",
        ),
    ],
)
def test_parse_resource_kind(
    body: dict[str, Any], kind: str, namespace: str, scope: NamespaceScope | None
) -> None:
    parsed = parse_resource({**body, "spec": {"registries": [US]}})

    assert (parsed.kind, parsed.namespace, parsed.spec.scope) == (kind, namespace, scope)


def test_kind_names() -> None:
    assert (api.KIND, api.CLUSTER_KIND, api.CLUSTER_PLURAL) == (
        "EcrPullSecret",
        "ClusterEcrPullSecret",
        "clusterecrpullsecrets",
    )


def test_parse_resource_cluster_refs_without_namespace_are_invalid() -> None:
    body = {
        "kind": "ClusterEcrPullSecret",
        "metadata": {"name": "pull", "uid": "u"},
        "spec": {"registries": [US], "auth": {"secretRef": {"name": "keys"}}},
    }

    with pytest.raises(InvalidSpec, match=r"spec\.auth\.secretRef\.namespace is required"):
        parse_resource(body)
