"""Reading a raw spec field by field: types, patterns and bounds, each failure naming its field.

The CRD schema refuses all of this at admission; this is the second line, for objects stored
before a CRD upgrade or under a looser schema. Closed: an unknown field is an error too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecr_pull_secrets.model import rules


class InvalidSpec(ValueError):
    """A spec the operator cannot honour; reported on the resource, never retried until it changes."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


class Fields:
    """One object of a raw spec, at `path` (e.g. spec.auth.serviceAccountRef)."""

    def __init__(self, raw: object, path: str, known: frozenset[str] | set[str]) -> None:
        if not isinstance(raw, Mapping):
            raise InvalidSpec(path, f"must be an object, not {_kind(raw)}")
        unknown = sorted(str(k) for k in raw if k not in known)
        if unknown:
            raise InvalidSpec(path, f"has unknown fields {_shown(', '.join(unknown))}")
        self.raw: Mapping[str, Any] = raw
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def object(self, key: str, known: set[str]) -> Fields | None:
        value = self.raw.get(key)
        return None if value is None else Fields(value, self.at(key), known)

    def string(
        self,
        key: str,
        *,
        pattern: str | None = None,
        max_length: int,
        min_length: int = 0,
        default: str | None = None,
        rule: str = "",
    ) -> str | None:
        """None (or the default) when absent or empty: an empty optional string means unset."""
        value = self.raw.get(key)
        if value is None or value == "":
            return default
        text = check_string(value, self.at(key), pattern=pattern, max_length=max_length, rule=rule)
        if len(text) < min_length:
            raise InvalidSpec(self.at(key), f"must be at least {min_length} characters long")
        return text

    def required_string(
        self, key: str, *, pattern: str | None = None, max_length: int, rule: str = ""
    ) -> str:
        value = self.string(key, pattern=pattern, max_length=max_length, rule=rule)
        if value is None:
            raise InvalidSpec(self.at(key), "is required and may not be empty")
        return value

    def boolean(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise InvalidSpec(self.at(key), f"must be true or false, not {_kind(value)}")
        return value

    def items(self, key: str, *, max_items: int, min_items: int = 0) -> list[tuple[str, Any]]:
        """The (path, raw item) pairs of a list field."""
        value = self.raw.get(key)
        if value is None:
            value = []
        if not isinstance(value, list):
            raise InvalidSpec(self.at(key), f"must be a list, not {_kind(value)}")
        if len(value) > max_items:
            raise InvalidSpec(self.at(key), f"may have at most {max_items} items, not {len(value)}")
        if len(value) < min_items:
            raise InvalidSpec(self.at(key), f"must have at least {min_items} item(s)")
        return [(f"{self.at(key)}[{i}]", item) for i, item in enumerate(value)]

    def strings(
        self,
        key: str,
        *,
        pattern: str,
        max_length: int,
        max_items: int,
        min_items: int = 0,
        rule: str = "",
    ) -> tuple[str, ...]:
        return tuple(
            check_string(item, path, pattern=pattern, max_length=max_length, rule=rule)
            for path, item in self.items(key, max_items=max_items, min_items=min_items)
        )


def check_string(value: object, path: str, *, pattern: str | None, max_length: int, rule: str = "") -> str:
    if not isinstance(value, str):
        raise InvalidSpec(path, f"must be a string, not {_kind(value)}")
    if len(value) > max_length:
        raise InvalidSpec(path, f"may be at most {max_length} characters long, not {len(value)}")
    if pattern is not None and not rules.matches(pattern, value):
        raise InvalidSpec(path, f"{_shown(value)} must be {rule or 'of the form ' + pattern}")
    return value


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _shown(text: str) -> str:
    """A value as quoted in a message: bounded, so a hostile 1 MB string stays out of Events."""
    return repr(text if len(text) <= 80 else text[:77] + "...")
