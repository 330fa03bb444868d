"""Which namespaces and ServiceAccounts a resource covers, as written in its spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IGNORE_ANNOTATION = "ecr.pullsecrets.dev/ignore"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """Kubernetes label selector semantics: every matchLabels pair and every expression must hold."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class NamespaceScope:
    selector: LabelSelector | None = None
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceAccountScope:
    """Exactly one of: names, selector, all."""

    names: tuple[str, ...] = ()
    selector: LabelSelector | None = None
    all: bool = False


def parse_selector(raw: Mapping[str, Any] | None) -> LabelSelector | None:
    if raw is None:
        return None
    return LabelSelector(
        match_labels=tuple(sorted((str(k), str(v)) for k, v in (raw.get("matchLabels") or {}).items())),
        match_expressions=tuple(
            Requirement(str(e["key"]), str(e["operator"]), tuple(str(v) for v in e.get("values") or ()))
            for e in raw.get("matchExpressions") or ()
        ),
    )


def parse_namespace_scope(
    selector: Mapping[str, Any] | None, globs: Mapping[str, Any] | None
) -> NamespaceScope:
    globs = globs or {}
    return NamespaceScope(
        selector=parse_selector(selector),
        include=tuple(globs.get("include") or ("*",)),
        exclude=tuple(globs.get("exclude") or ()),
    )


def parse_service_account_scope(raw: Mapping[str, Any] | None) -> ServiceAccountScope | None:
    if not raw:
        return None
    return ServiceAccountScope(
        names=tuple(str(n) for n in raw.get("names") or ()),
        selector=parse_selector(raw.get("selector")),
        all=bool(raw.get("all")),
    )
