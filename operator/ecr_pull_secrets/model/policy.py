"""The namespace policy: who may use the operator's own AWS identity, and which roles it may
assume on whose behalf. An admin setting (a file), never something a tenant can write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class InvalidPolicy(ValueError):
    """A policy file the operator refuses to start with."""


@dataclass(frozen=True)
class RoleRule:
    namespaces: tuple[str, ...]
    role_arns: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    operator_identity_namespaces: tuple[str, ...] = ()
    """Namespace globs whose resources may use the operator's own identity directly."""
    assume_roles: tuple[RoleRule, ...] = ()
    """Which roles the operator's identity may assume for which namespaces."""


DENY_ALL = Policy()


def parse_policy(raw: Mapping[str, Any] | None) -> Policy:
    if not raw:
        return DENY_ALL
    if not isinstance(raw, Mapping):
        raise InvalidPolicy("a policy must be a mapping with operatorIdentity and assumeRoles")
    _known(raw, {"operatorIdentity", "assumeRoles"}, "the policy")
    try:
        identity = raw.get("operatorIdentity") or {}
        _known(identity, {"namespaces"}, "operatorIdentity")
        rules = []
        if not isinstance(raw.get("assumeRoles") or [], list):
            raise InvalidPolicy("assumeRoles must be a list of rules")
        for rule in raw.get("assumeRoles") or ():
            # A typo such as roleArn: would make a rule that silently allows nothing.
            _known(rule, {"namespaces", "roleArns"}, "an assumeRoles rule")
            rules.append(
                RoleRule(namespaces=_strings(rule, "namespaces"), role_arns=_strings(rule, "roleArns"))
            )
        return Policy(
            operator_identity_namespaces=_strings(identity, "namespaces"), assume_roles=tuple(rules)
        )
    except (TypeError, AttributeError) as error:
        raise InvalidPolicy(f"malformed policy: {error}") from None


def _known(raw: Mapping[str, Any], keys: set[str], where: str) -> None:
    if not isinstance(raw, Mapping):
        raise InvalidPolicy(f"{where} must be a mapping")
    unknown = set(raw) - keys
    if unknown:
        raise InvalidPolicy(f"unknown keys in {where}: {', '.join(sorted(unknown))}")


def _strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = raw.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidPolicy(f"policy field {key} must be a list of strings")
    return tuple(values)
