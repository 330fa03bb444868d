"""plan.targets: label selectors, the namespaces a resource serves, and the ServiceAccounts it patches."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ecr_pull_secrets.model.cluster import NamespaceView, ServiceAccountView
from ecr_pull_secrets.model.scope import (
    IGNORE_ANNOTATION,
    LabelSelector,
    NamespaceScope,
    Requirement,
    ServiceAccountScope,
)
from ecr_pull_secrets.plan.targets import selector_matches, target_namespaces, target_service_accounts
from tests.unit.factories import resource


def labels(**pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


def expr(key: str, operator: str, *values: str) -> Requirement:
    return Requirement(key, operator, values)


# -- selector_matches --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "target", "matches"),
    [
        pytest.param(None, {}, True, id="none-matches-no-labels"),
        pytest.param(None, {"env": "prod"}, True, id="none-matches-any-labels"),
        pytest.param(LabelSelector(), {}, True, id="empty-matches-no-labels"),
        pytest.param(LabelSelector(), {"env": "prod"}, True, id="empty-matches-any-labels"),
        # matchLabels
        pytest.param(LabelSelector(labels(env="prod")), {"env": "prod"}, True, id="labels-equal"),
        pytest.param(LabelSelector(labels(env="prod")), {"env": "dev"}, False, id="labels-other-value"),
        pytest.param(LabelSelector(labels(env="prod")), {}, False, id="labels-key-absent"),
        pytest.param(LabelSelector(labels(env="prod")), {"env": "Prod"}, False, id="labels-case-sensitive"),
        pytest.param(
            LabelSelector(labels(env="prod")), {"env": "prod", "team": "a"}, True, id="labels-extra-ignored"
        ),
        pytest.param(
            LabelSelector(labels(env="prod", team="a")), {"env": "prod"}, False, id="labels-all-must-hold"
        ),
        pytest.param(LabelSelector(labels(env="")), {"env": ""}, True, id="labels-empty-value"),
        pytest.param(LabelSelector(labels(env="")), {}, False, id="labels-empty-value-absent-key"),
        # In
        pytest.param(LabelSelector((), (expr("env", "In", "prod", "dev"),)), {"env": "dev"}, True, id="in"),
        pytest.param(
            LabelSelector((), (expr("env", "In", "prod", "dev"),)), {"env": "ci"}, False, id="in-other-value"
        ),
        pytest.param(LabelSelector((), (expr("env", "In", "prod"),)), {}, False, id="in-key-absent"),
        pytest.param(LabelSelector((), (expr("env", "In"),)), {"env": "prod"}, False, id="in-no-values"),
        # NotIn
        pytest.param(
            LabelSelector((), (expr("env", "NotIn", "prod"),)), {"env": "prod"}, False, id="notin-listed"
        ),
        pytest.param(
            LabelSelector((), (expr("env", "NotIn", "prod"),)), {"env": "dev"}, True, id="notin-other"
        ),
        pytest.param(LabelSelector((), (expr("env", "NotIn", "prod"),)), {}, True, id="notin-key-absent"),
        # Exists / DoesNotExist
        pytest.param(
            LabelSelector((), (expr("team", "Exists"),)), {"team": ""}, True, id="exists-empty-value"
        ),
        pytest.param(
            LabelSelector((), (expr("team", "Exists"),)), {"env": "prod"}, False, id="exists-absent"
        ),
        pytest.param(
            LabelSelector((), (expr("team", "DoesNotExist"),)), {"env": "prod"}, True, id="dne-absent"
        ),
        pytest.param(
            LabelSelector((), (expr("team", "DoesNotExist"),)), {"team": "a"}, False, id="dne-present"
        ),
        # unknown operators never match
        pytest.param(LabelSelector((), (expr("size", "Gt", "1"),)), {"size": "5"}, False, id="unknown-gt"),
        pytest.param(
            LabelSelector((), (expr("env", "in", "prod"),)), {"env": "prod"}, False, id="unknown-lowercase"
        ),
        pytest.param(LabelSelector((), (expr("env", ""),)), {"env": "prod"}, False, id="unknown-empty"),
        # everything must hold
        pytest.param(
            LabelSelector(labels(env="prod"), (expr("team", "Exists"),)),
            {"env": "prod", "team": "a"},
            True,
            id="labels-and-expression",
        ),
        pytest.param(
            LabelSelector(labels(env="prod"), (expr("team", "Exists"),)),
            {"env": "prod"},
            False,
            id="labels-hold-expression-fails",
        ),
        pytest.param(
            LabelSelector(labels(env="prod"), (expr("team", "Exists"),)),
            {"env": "dev", "team": "a"},
            False,
            id="expression-holds-labels-fail",
        ),
        pytest.param(
            LabelSelector((), (expr("team", "Exists"), expr("legacy", "DoesNotExist"))),
            {"team": "a", "legacy": "yes"},
            False,
            id="second-expression-fails",
        ),
        pytest.param(
            LabelSelector((), (expr("team", "Exists"), expr("size", "Gt", "1"))),
            {"team": "a", "size": "5"},
            False,
            id="one-unknown-operator-spoils-all",
        ),
    ],
)
def test_selector_matches(selector: LabelSelector | None, target: Mapping[str, str], matches: bool) -> None:
    assert selector_matches(selector, target) is matches


# -- target_namespaces -------------------------------------------------------------------------


def ns(name: str, *, ignore: str | None = None, terminating: bool = False, **pairs: str) -> NamespaceView:
    annotations = {"unrelated.example/ignore": "true"}
    if ignore is not None:
        annotations[IGNORE_ANNOTATION] = ignore
    return NamespaceView(name, labels=dict(pairs), annotations=annotations, terminating=terminating)


# Deliberately out of order: the result must come back sorted.
NAMESPACES = [
    ns("team-b", team="b", env="dev"),
    ns("default"),
    ns("team-a", team="a", env="prod"),
    ns("kube-system", **{"kubernetes.io/metadata.name": "kube-system"}),
    ns("team-c", ignore="true", team="c", env="prod"),
    ns("team-d", terminating=True, team="d", env="prod"),
    ns("team-e", ignore="True", team="e", env="dev"),
    ns("team-f", ignore="false", team="f", env="prod"),
    ns("team-ab", team="ab"),
    ns("ci-runner", env="ci"),
    ns("sandbox-1", ignore="yes", env="dev"),
    ns("legacy", ignore="TRUE"),
]
SERVED = ["ci-runner", "default", "kube-system", "sandbox-1", "team-a", "team-ab", "team-b", "team-f"]


def cluster(
    selector: LabelSelector | None = None, include: tuple[str, ...] = ("*",), exclude: tuple[str, ...] = ()
) -> NamespaceScope:
    return NamespaceScope(selector=selector, include=include, exclude=exclude)


@pytest.mark.parametrize(
    ("scope", "watched", "expected"),
    [
        # -- no restriction: everything but ignored and terminating namespaces
        pytest.param(cluster(), (), SERVED, id="everything"),
        pytest.param(cluster(LabelSelector()), (), SERVED, id="empty-selector"),
        # -- include globs
        pytest.param(
            cluster(include=("team-*",)), (), ["team-a", "team-ab", "team-b", "team-f"], id="include-star"
        ),
        pytest.param(
            cluster(include=("team-?",)), (), ["team-a", "team-b", "team-f"], id="include-question-mark"
        ),
        pytest.param(cluster(include=("team-[ab]",)), (), ["team-a", "team-b"], id="include-brackets"),
        pytest.param(cluster(include=("default",)), (), ["default"], id="include-exact-name"),
        pytest.param(cluster(include=("team",)), (), [], id="include-exact-is-not-prefix"),
        pytest.param(
            cluster(include=("default", "kube-*")), (), ["default", "kube-system"], id="include-several"
        ),
        pytest.param(cluster(include=("TEAM-*",)), (), [], id="include-case-sensitive"),
        pytest.param(cluster(include=("prod-*",)), (), [], id="include-matches-nothing"),
        # -- exclude globs win over include
        pytest.param(
            cluster(exclude=("kube-*",)),
            (),
            ["ci-runner", "default", "sandbox-1", "team-a", "team-ab", "team-b", "team-f"],
            id="exclude-star",
        ),
        pytest.param(
            cluster(include=("team-*",), exclude=("team-a",)),
            (),
            ["team-ab", "team-b", "team-f"],
            id="exclude-exact",
        ),
        pytest.param(cluster(include=("default",), exclude=("default",)), (), [], id="exclude-beats-include"),
        pytest.param(cluster(exclude=("*",)), (), [], id="exclude-everything"),
        # -- the ignore annotation (case-insensitive "true") and terminating namespaces
        pytest.param(cluster(include=("team-c",)), (), [], id="ignore-true"),
        pytest.param(cluster(include=("team-e",)), (), [], id="ignore-True"),
        pytest.param(cluster(include=("legacy",)), (), [], id="ignore-TRUE"),
        pytest.param(cluster(include=("team-f",)), (), ["team-f"], id="ignore-false-served"),
        pytest.param(cluster(include=("sandbox-1",)), (), ["sandbox-1"], id="ignore-yes-served"),
        pytest.param(cluster(include=("team-d",)), (), [], id="terminating"),
        # -- namespace selector
        pytest.param(
            cluster(LabelSelector(labels(env="prod"))), (), ["team-a", "team-f"], id="selector-labels"
        ),
        pytest.param(
            cluster(LabelSelector(labels(env="prod", team="a"))), (), ["team-a"], id="selector-two-labels"
        ),
        pytest.param(cluster(LabelSelector(labels(env="staging"))), (), [], id="selector-matches-nothing"),
        pytest.param(
            cluster(LabelSelector(labels(**{"kubernetes.io/metadata.name": "kube-system"}))),
            (),
            ["kube-system"],
            id="selector-metadata-name",
        ),
        pytest.param(
            cluster(LabelSelector((), (expr("env", "In", "dev", "ci"),))),
            (),
            ["ci-runner", "sandbox-1", "team-b"],
            id="selector-in",
        ),
        pytest.param(
            cluster(LabelSelector((), (expr("env", "NotIn", "prod"),))),
            (),
            ["ci-runner", "default", "kube-system", "sandbox-1", "team-ab", "team-b"],
            id="selector-notin-includes-unlabelled",
        ),
        pytest.param(
            cluster(LabelSelector((), (expr("team", "Exists"),))),
            (),
            ["team-a", "team-ab", "team-b", "team-f"],
            id="selector-exists",
        ),
        pytest.param(
            cluster(LabelSelector((), (expr("team", "DoesNotExist"),))),
            (),
            ["ci-runner", "default", "kube-system", "sandbox-1"],
            id="selector-does-not-exist",
        ),
        pytest.param(
            cluster(LabelSelector((), (expr("env", "Gt", "a"),))), (), [], id="selector-unknown-operator"
        ),
        # -- selector x globs
        pytest.param(
            cluster(LabelSelector((), (expr("team", "Exists"),)), include=("team-?",)),
            (),
            ["team-a", "team-b", "team-f"],
            id="selector-and-include",
        ),
        pytest.param(
            cluster(LabelSelector((), (expr("team", "Exists"),)), include=("team-?",), exclude=("team-f",)),
            (),
            ["team-a", "team-b"],
            id="selector-include-exclude",
        ),
        pytest.param(
            cluster(LabelSelector(labels(env="dev")), exclude=("sandbox-*",)),
            (),
            ["team-b"],
            id="selector-exclude-annotation",
        ),
        pytest.param(
            cluster(LabelSelector(labels(env="prod")), include=("team-c", "team-d", "team-f")),
            (),
            ["team-f"],
            id="selector-include-ignored-terminating",
        ),
        # -- an operator watching only some namespaces
        pytest.param(cluster(), ("team-*",), ["team-a", "team-ab", "team-b", "team-f"], id="watched-glob"),
        pytest.param(cluster(), ("team-a", "default"), ["default", "team-a"], id="watched-names"),
        pytest.param(
            cluster(include=("team-*",)), ("team-a", "default"), ["team-a"], id="watched-and-include"
        ),
        pytest.param(cluster(), ("nothing-*",), [], id="watched-matches-nothing"),
        pytest.param(
            cluster(include=("team-c", "team-d")), ("team-*",), [], id="watched-ignored-terminating"
        ),
        pytest.param(
            cluster(LabelSelector((), (expr("env", "In", "dev", "ci"),))),
            ("team-*", "ci-*"),
            ["ci-runner", "team-b"],
            id="watched-and-selector",
        ),
    ],
)
def test_target_namespaces_of_a_cluster_resource(
    scope: NamespaceScope, watched: tuple[str, ...], expected: list[str]
) -> None:
    assert target_namespaces(resource(scope=scope), NAMESPACES, watched) == expected


def test_target_namespaces_of_a_cluster_resource_without_namespaces() -> None:
    assert target_namespaces(resource(scope=cluster()), [], ()) == []


def test_target_namespaces_reads_any_iterable_once() -> None:
    assert target_namespaces(resource(scope=cluster(include=("team-?",))), iter(NAMESPACES)) == [
        "team-a",
        "team-b",
        "team-f",
    ]


@pytest.mark.parametrize(
    ("namespaces", "watched"),
    [
        pytest.param([], (), id="no-namespaces-known"),
        pytest.param(NAMESPACES, (), id="all-namespaces"),
        pytest.param([ns("team-a", ignore="true", terminating=True)], (), id="own-ignored-and-terminating"),
        pytest.param(NAMESPACES, ("other-*",), id="not-in-watched"),
    ],
)
def test_target_namespaces_of_a_namespaced_resource_is_its_own(
    namespaces: list[NamespaceView], watched: tuple[str, ...]
) -> None:
    assert target_namespaces(resource(), namespaces, watched) == ["team-a"]


# -- target_service_accounts -------------------------------------------------------------------


def sa(name: str, **pairs: str) -> ServiceAccountView:
    return ServiceAccountView("team-a", name, labels=dict(pairs))


ACCOUNTS = [
    sa("default"),
    sa("builder", pull="ecr"),
    sa("deployer", pull="ecr", tier="ci"),
    sa("monitor", pull="no"),
]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param(None, [], id="no-scope"),
        pytest.param(ServiceAccountScope(), [], id="nothing-chosen"),
        pytest.param(ServiceAccountScope(all=True), ["default", "builder", "deployer", "monitor"], id="all"),
        pytest.param(ServiceAccountScope(names=("builder",)), ["builder"], id="one-name"),
        pytest.param(ServiceAccountScope(names=("deployer", "default")), ["default", "deployer"], id="names"),
        pytest.param(
            ServiceAccountScope(names=("builder", "missing")), ["builder"], id="missing-name-skipped"
        ),
        pytest.param(ServiceAccountScope(names=("build",)), [], id="name-is-not-prefix"),
        pytest.param(
            ServiceAccountScope(selector=LabelSelector(labels(pull="ecr"))),
            ["builder", "deployer"],
            id="selector",
        ),
        pytest.param(
            ServiceAccountScope(selector=LabelSelector((), (expr("tier", "Exists"),))),
            ["deployer"],
            id="selector-expr",
        ),
        pytest.param(
            ServiceAccountScope(selector=LabelSelector((), (expr("pull", "NotIn", "ecr"),))),
            ["default", "monitor"],
            id="selector-notin",
        ),
        pytest.param(
            ServiceAccountScope(selector=LabelSelector()),
            ["default", "builder", "deployer", "monitor"],
            id="empty-selector-all",
        ),
        pytest.param(
            ServiceAccountScope(selector=LabelSelector(labels(pull="none"))), [], id="selector-none-match"
        ),
        pytest.param(
            ServiceAccountScope(names=("default",), selector=LabelSelector(labels(pull="ecr"))),
            ["default"],
            id="names-before-selector",
        ),
        pytest.param(
            ServiceAccountScope(names=("default",), all=True),
            ["default", "builder", "deployer", "monitor"],
            id="all-before-names",
        ),
    ],
)
def test_target_service_accounts(scope: ServiceAccountScope | None, expected: list[str]) -> None:
    chosen = target_service_accounts(scope, ACCOUNTS)

    assert [account.name for account in chosen] == expected
    assert all(account in ACCOUNTS for account in chosen)


def test_target_service_accounts_without_accounts() -> None:
    assert target_service_accounts(ServiceAccountScope(all=True), []) == []
