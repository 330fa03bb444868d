"""Which namespaces and ServiceAccounts a resource covers: selector, globs and the opt-out annotation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from ecr_pull_secrets.model.cluster import NamespaceView, ServiceAccountView
from ecr_pull_secrets.model.resource import Resource
from ecr_pull_secrets.model.scope import IGNORE_ANNOTATION, LabelSelector, ServiceAccountScope


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes semantics; a missing selector matches everything, an empty one too."""
    if selector is None:
        return True
    if any(labels.get(key) != value for key, value in selector.match_labels):
        return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        value = labels.get(requirement.key)
        holds = {
            "In": present and value in requirement.values,
            "NotIn": not present or value not in requirement.values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(requirement.operator, False)
        if not holds:
            return False
    return True


def target_namespaces(
    resource: Resource, namespaces: Iterable[NamespaceView], watched: tuple[str, ...] = ()
) -> list[str]:
    """A namespaced resource serves its own namespace; a cluster one, every namespace in scope.

    Terminating namespaces are skipped quietly (writes there would fail), and so are namespaces
    annotated ecr.pullsecrets.dev/ignore: "true". An operator limited to some namespaces
    (`watched` globs) serves only those: it could not see what it wrote anywhere else.
    """
    scope = resource.spec.scope
    if scope is None:
        return [resource.namespace]
    return sorted(
        ns.name
        for ns in namespaces
        if not ns.terminating
        and ns.annotations.get(IGNORE_ANNOTATION, "").lower() != "true"
        and any(fnmatchcase(ns.name, glob) for glob in scope.include)
        and not any(fnmatchcase(ns.name, glob) for glob in scope.exclude)
        and selector_matches(scope.selector, ns.labels)
        and (not watched or any(fnmatchcase(ns.name, glob) for glob in watched))
    )


def target_service_accounts(
    scope: ServiceAccountScope | None, accounts: Iterable[ServiceAccountView]
) -> list[ServiceAccountView]:
    if scope is None:
        return []
    if scope.all:
        return list(accounts)
    if scope.names:
        return [sa for sa in accounts if sa.name in scope.names]
    if scope.selector is not None:
        return [sa for sa in accounts if selector_matches(scope.selector, sa.labels)]
    return []
