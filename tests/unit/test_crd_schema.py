"""The CRD's admission rules agree with the Python model on what parses."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.duration import DURATION_PATTERN, InvalidDuration, parse_duration
from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost
from tests.unit.hosts import INVALID, VALID

CRD = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "ecr.pullsecrets.dev_ecrpullsecrets.yaml"
MATCHES = re.compile(r"self\.matches\('([^']*)'\)")


@cache
def crd() -> dict[str, Any]:
    with CRD.open(encoding="utf-8") as stream:
        loaded: dict[str, Any] = yaml.safe_load(stream)
    return loaded


def spec_schema() -> dict[str, Any]:
    (version,) = crd()["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def rules(schema: dict[str, Any]) -> list[str]:
    return [v["rule"].strip() for v in schema["x-kubernetes-validations"]]


def cel_pattern(rule: str) -> str:
    """The regex of a rule that is exactly one `self.matches('...')`."""
    found = MATCHES.fullmatch(rule)
    assert found is not None, rule
    return found[1]


def cel_matches(pattern: str, text: str) -> bool:
    """CEL matches() is an RE2 search; these patterns are anchored and need no RE2-only syntax."""
    assert "\n" not in text, "Python's $ matches before a final newline, RE2's does not"
    return re.search(pattern, text) is not None


REGISTRY_RULES = rules(spec_schema()["properties"]["registries"]["items"])
REGISTRY_PATTERN = cel_pattern(REGISTRY_RULES[0])
DURATION_RULE = cel_pattern(rules(spec_schema()["properties"]["renewBefore"])[0])


def test_crd_names_and_limits_match_the_api_module() -> None:
    body = crd()
    registries = spec_schema()["properties"]["registries"]

    assert body["metadata"]["name"] == f"{api.PLURAL}.{api.GROUP}"
    assert (body["spec"]["group"], body["spec"]["names"]["kind"]) == (api.GROUP, api.KIND)
    assert [v["name"] for v in body["spec"]["versions"]] == [api.VERSION]
    assert (registries["minItems"], registries["maxItems"]) == (1, api.MAX_REGISTRIES)
    assert spec_schema()["properties"]["renewBefore"]["default"] == api.DEFAULT_RENEW_BEFORE


def test_duration_rule_is_the_model_pattern() -> None:
    assert DURATION_RULE.replace("[.]", r"\.") == DURATION_PATTERN


@pytest.mark.parametrize(
    "text",
    [
        "4h", "90m", "1h30m", "1.5h", "90s", "500ms", "250us", "250µs", "3000ns", "0s", "11h59m59s",
        "", "4", "h", "-1h", "+1h", "4 h", " 4h", "4h ", "4d", "1w", "4H", ".5h", "1.h", "1e3s", "1μs",
    ],
)  # fmt: skip
def test_duration_rule_accepts_what_parse_duration_accepts(text: str) -> None:
    try:
        parse_duration(text)
    except InvalidDuration:
        parses = False
    else:
        parses = True

    assert cel_matches(DURATION_RULE, text) is parses


def parses(host: str) -> bool:
    try:
        RegistryHost.parse(host)
    except InvalidRegistryHost:
        return False
    return True


CANONICAL_PRIVATE = [
    *(pytest.param(v.raw, id=v.id) for v in VALID if v.canonical and v.account),
    *(
        pytest.param(
            c.raw,
            id=c.id,
        )
        for c in INVALID
    ),
]


@pytest.mark.parametrize("host", CANONICAL_PRIVATE)
def test_registry_rule_accepts_exactly_what_parse_accepts(host: str) -> None:
    assert cel_matches(REGISTRY_PATTERN, host) is parses(host)


@pytest.mark.parametrize("case", [v for v in VALID if not v.canonical], ids=lambda v: v.id)
def test_registry_rule_requires_the_canonical_form(case: Any) -> None:
    """Normalisation is parser leniency only: admission wants the host as parse() writes it."""
    assert cel_matches(REGISTRY_PATTERN, case.raw) is False
    assert cel_matches(REGISTRY_PATTERN, RegistryHost.parse(case.raw).host) is (case.account is not None)


def test_registry_rule_rejects_ecr_public() -> None:
    """The model parses public.ecr.aws, but the API does not offer it (no ecr-public token source)."""
    assert parses("public.ecr.aws")
    assert cel_matches(REGISTRY_PATTERN, "public.ecr.aws") is False


def account_rule(host: str) -> bool:
    """`!self.matches('^[0-9]+[.]') || self.matches('^[0-9]{12}[.]')`."""
    assert REGISTRY_RULES[1] == "!self.matches('^[0-9]+[.]') || self.matches('^[0-9]{12}[.]')"
    return not cel_matches("^[0-9]+[.]", host) or cel_matches("^[0-9]{12}[.]", host)


@pytest.mark.parametrize(
    ("host", "admitted"),
    [
        pytest.param("123456789012.dkr.ecr.us-east-1.amazonaws.com", True, id="12-digits"),
        pytest.param("12345678901.dkr.ecr.us-east-1.amazonaws.com", False, id="11-digits"),
        pytest.param("1234567890123.dkr.ecr.us-east-1.amazonaws.com", False, id="13-digits"),
        pytest.param("docker.io", True, id="no-account-left-to-first-rule"),
    ],
)
def test_account_rule(host: str, admitted: bool) -> None:
    assert account_rule(host) is admitted


def test_registry_rule_messages_are_helpful() -> None:
    validations = spec_schema()["properties"]["registries"]["items"]["x-kubernetes-validations"]

    assert "123456789012.dkr.ecr.us-east-1.amazonaws.com" in validations[0]["message"]
    assert "exactly 12 digits" in validations[1]["message"]
