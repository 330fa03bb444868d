"""Which namespaces and ServiceAccounts a resource covers, as written in its spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecr_pull_secrets.model import rules
from ecr_pull_secrets.model.fields import Fields, InvalidSpec, check_string

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


_SELECTOR_FIELDS = {"matchLabels", "matchExpressions"}
_EXPRESSION_FIELDS = {"key", "operator", "values"}


def parse_selector(raw: Mapping[str, Any] | None, path: str = "selector") -> LabelSelector | None:
    """metav1.LabelSelector, as the CRD types it; raises InvalidSpec naming the field."""
    if raw is None:
        return None
    fields = Fields(raw, path, _SELECTOR_FIELDS)
    return LabelSelector(
        match_labels=_match_labels(fields),
        match_expressions=tuple(
            _requirement(Fields(item, at, _EXPRESSION_FIELDS))
            for at, item in fields.items("matchExpressions", max_items=rules.MAX_MATCH_EXPRESSIONS)
        ),
    )


def _match_labels(fields: Fields) -> tuple[tuple[str, str], ...]:
    raw = fields.raw.get("matchLabels")
    raw = {} if raw is None else raw
    path = fields.at("matchLabels")
    if not isinstance(raw, Mapping):
        raise InvalidSpec(path, "must be a map of label keys to values")
    if len(raw) > rules.MAX_MATCH_LABELS:
        raise InvalidSpec(path, f"may have at most {rules.MAX_MATCH_LABELS} entries, not {len(raw)}")
    return tuple(
        sorted(
            (
                _label_key(key, path),
                check_string(
                    value,
                    f"{path}.{key}",
                    pattern=rules.LABEL_VALUE,
                    max_length=rules.LABEL_VALUE_MAX,
                    rule="a label value",
                ),
            )
            for key, value in raw.items()
        )
    )


def _requirement(fields: Fields) -> Requirement:
    key = _label_key(fields.raw.get("key"), fields.at("key"))
    operator = fields.required_string("operator", max_length=16)
    if operator not in rules.SELECTOR_OPERATORS:
        raise InvalidSpec(fields.at("operator"), f"must be one of {', '.join(rules.SELECTOR_OPERATORS)}")
    values = fields.strings(
        "values",
        pattern=rules.LABEL_VALUE,
        max_length=rules.LABEL_VALUE_MAX,
        max_items=rules.MAX_EXPRESSION_VALUES,
        rule="a label value",
    )
    if operator in ("In", "NotIn") and not values:
        raise InvalidSpec(fields.at("values"), f"must not be empty for operator {operator}")
    if operator in ("Exists", "DoesNotExist") and values:
        raise InvalidSpec(fields.at("values"), f"must be empty for operator {operator}")
    return Requirement(key, operator, values)


def _label_key(key: object, path: str) -> str:
    text = check_string(
        key, path, pattern=rules.LABEL_KEY, max_length=rules.LABEL_KEY_MAX, rule="a label key"
    )
    prefix, _, name = text.rpartition("/")
    if len(name) > rules.LABEL_NAME_MAX or len(prefix) > rules.DNS1123_SUBDOMAIN_MAX:
        raise InvalidSpec(path, f"{text!r}: a label key is a prefix of at most 253 and a name of at most 63")
    return text


def parse_namespace_scope(
    selector: Mapping[str, Any] | None, globs: Mapping[str, Any] | None
) -> NamespaceScope:
    fields = Fields(globs or {}, "spec.namespaces", {"include", "exclude"})

    def patterns(key: str) -> tuple[str, ...]:
        return fields.strings(
            key,
            pattern=rules.NAMESPACE_GLOB,
            max_length=rules.NAMESPACE_GLOB_MAX,
            max_items=rules.MAX_NAMESPACE_GLOBS,
            rule="a namespace name in which * and ? may stand for characters",
        )

    return NamespaceScope(
        selector=parse_selector(selector, "spec.namespaceSelector"),
        include=patterns("include") or ("*",),
        exclude=patterns("exclude"),
    )


def parse_service_account_scope(raw: Mapping[str, Any] | None) -> ServiceAccountScope | None:
    if raw is None:
        return None
    fields = Fields(raw, "spec.serviceAccounts", {"names", "selector", "all"})
    chosen = [key for key in ("names", "selector") if fields.has(key)] + (
        ["all"] if fields.boolean("all") else []
    )
    if len(chosen) != 1:
        raise InvalidSpec(fields.path, "must set exactly one of names, selector or all")
    return ServiceAccountScope(
        names=fields.strings(
            "names",
            pattern=rules.DNS1123_SUBDOMAIN,
            max_length=rules.DNS1123_SUBDOMAIN_MAX,
            max_items=rules.MAX_SERVICE_ACCOUNT_NAMES,
            min_items=1 if chosen == ["names"] else 0,
            rule="a ServiceAccount name (DNS-1123 subdomain)",
        ),
        selector=parse_selector(fields.raw.get("selector"), fields.at("selector")),
        all=fields.boolean("all"),
    )
