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
from ecr_pull_secrets.model.identity import InvalidAuth, RoleHop, parse_auth, session_name
from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost
from ecr_pull_secrets.model.resource import InvalidSpec, parse_spec
from tests.unit.hosts import ACCOUNT, INVALID, VALID

CRD = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "ecr.pullsecrets.dev_ecrpullsecrets.yaml"
MATCHES = re.compile(r"self\.matches\('([^']*)'\)")
LITERAL_OR_MATCHES = re.compile(r"self == '([^']*)' \|\| self\.matches\('([^']*)'\)")


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


def cel_literal_or_pattern(rule: str) -> tuple[str, str]:
    """The literal and the regex of a rule that is exactly `self == '...' || self.matches('...')`."""
    found = LITERAL_OR_MATCHES.fullmatch(rule)
    assert found is not None, rule
    return found[1], found[2]


def cel_matches(pattern: str, text: str) -> bool:
    """CEL matches() and OpenAPI patterns are RE2 searches: \\w is ASCII-only, $ is end of text."""
    assert "\n" not in text, "Python's $ matches before a final newline, RE2's does not"
    return re.search(pattern, text, re.ASCII) is not None


REGISTRY_RULES = rules(spec_schema()["properties"]["registries"]["items"])
REGISTRY_LITERAL, REGISTRY_PATTERN = cel_literal_or_pattern(REGISTRY_RULES[0])
DURATION_RULE = cel_pattern(rules(spec_schema()["properties"]["renewBefore"])[0])


def registry_rule(host: str) -> bool:
    """The first registry rule, evaluated: the ECR Public host, or the private host pattern."""
    return host == REGISTRY_LITERAL or cel_matches(REGISTRY_PATTERN, host)


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


CANONICAL = [
    *(pytest.param(v.raw, id=v.id) for v in VALID if v.canonical),
    *(pytest.param(c.raw, id=c.id) for c in INVALID),
]


def test_registry_rule_literal_is_ecr_public() -> None:
    assert REGISTRY_LITERAL == "public.ecr.aws"
    assert cel_matches(REGISTRY_PATTERN, "public.ecr.aws") is False, "only the literal admits it"


@pytest.mark.parametrize("host", CANONICAL)
def test_registry_rule_accepts_exactly_what_parse_accepts(host: str) -> None:
    assert registry_rule(host) is parses(host)


@pytest.mark.parametrize("case", [v for v in VALID if not v.canonical], ids=lambda v: v.id)
def test_registry_rule_requires_the_canonical_form(case: Any) -> None:
    """Normalisation is parser leniency only: admission wants the host as parse() writes it."""
    assert registry_rule(case.raw) is False
    assert registry_rule(RegistryHost.parse(case.raw).host) is True


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("public.ecr.aws", id="public"),
        pytest.param("PUBLIC.ECR.AWS", id="public-upper"),
        pytest.param("public.ecr.aws/", id="public-slash"),
        pytest.param("public.ecr.aws/docker/library", id="public-path"),
        pytest.param("ecr.aws", id="public-truncated"),
        pytest.param("xpublic.ecr.aws", id="public-prefixed"),
    ],
)
def test_registry_rule_admits_only_the_exact_public_host(host: str) -> None:
    assert registry_rule(host) is (host == "public.ecr.aws")


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
    assert "public.ecr.aws" in validations[0]["message"]
    assert "exactly 12 digits" in validations[1]["message"]


# -- the list-level partition rule ---------------------------------------------------------------

US = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
EU = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
US_DUALSTACK = f"{ACCOUNT}.dkr-ecr.us-east-1.on.aws"
CN = f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn"
CN_DUALSTACK = f"{ACCOUNT}.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn"
GOV = f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com"
GOV_FIPS = f"{ACCOUNT}.dkr.ecr-fips.us-gov-east-1.amazonaws.com"
GOV_DUALSTACK = f"{ACCOUNT}.dkr-ecr.us-gov-west-1.on.aws"
PUBLIC = "public.ecr.aws"
PARTITION_RULE = (
    "(self.all(h, h.endsWith('.cn')) || !self.exists(h, h.endsWith('.cn'))) && "
    "(self.all(h, h.matches('[.]us-gov-')) || !self.exists(h, h.matches('[.]us-gov-')))"
)


def partition_rule(hosts: list[str]) -> bool:
    """PARTITION_RULE, evaluated."""
    (rule,) = rules(spec_schema()["properties"]["registries"])
    assert rule == PARTITION_RULE
    china = [h.endswith(".cn") for h in hosts]
    gov = [cel_matches("[.]us-gov-", h) for h in hosts]
    return (all(china) or not any(china)) and (all(gov) or not any(gov))


def one_partition(hosts: list[str]) -> bool:
    try:
        parse_spec({"registries": hosts}, default_name="app")
    except InvalidSpec as error:
        return "mixes AWS partitions" not in str(error)
    return True


@pytest.mark.parametrize(
    ("hosts", "admitted"),
    [
        pytest.param([US], True, id="aws"),
        pytest.param([US, EU, US_DUALSTACK, PUBLIC], True, id="aws-with-public"),
        pytest.param([CN, CN_DUALSTACK], True, id="china"),
        pytest.param([GOV, GOV_FIPS, GOV_DUALSTACK], True, id="govcloud"),
        pytest.param([PUBLIC], True, id="public-only"),
        pytest.param([CN, US], False, id="china-and-aws"),
        pytest.param([US, CN_DUALSTACK], False, id="aws-and-china-dualstack"),
        pytest.param([CN, PUBLIC], False, id="china-and-public"),
        pytest.param([GOV, US], False, id="govcloud-and-aws"),
        pytest.param([GOV_DUALSTACK, PUBLIC], False, id="govcloud-dualstack-and-public"),
        pytest.param([GOV, CN], False, id="govcloud-and-china"),
        pytest.param([US, GOV_FIPS, CN], False, id="three-partitions"),
    ],
)
def test_partition_rule_agrees_with_parse_spec(hosts: list[str], admitted: bool) -> None:
    assert partition_rule(hosts) is admitted
    assert one_partition(hosts) is admitted


def test_partition_rule_message_names_the_partitions() -> None:
    (validation,) = spec_schema()["properties"]["registries"]["x-kubernetes-validations"]

    assert "one AWS partition (aws, aws-cn or aws-us-gov)" in validation["message"]


# -- spec.auth ---------------------------------------------------------------------------------


def auth_schema() -> dict[str, Any]:
    schema: dict[str, Any] = spec_schema()["properties"]["auth"]
    return schema


def role_arn_patterns() -> dict[str, str]:
    props = auth_schema()["properties"]
    return {
        "roleChain": props["roleChain"]["items"]["properties"]["roleArn"]["pattern"],
        "serviceAccountRef": props["serviceAccountRef"]["properties"]["roleArn"]["pattern"],
    }


@pytest.mark.parametrize("where", ["roleChain", "serviceAccountRef"])
@pytest.mark.parametrize(
    ("arn", "admitted"),
    [
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/ecr-pull", True, id="aws"),
        pytest.param(f"arn:aws-cn:iam::{ACCOUNT}:role/ecr-pull", True, id="aws-cn"),
        pytest.param(f"arn:aws-us-gov:iam::{ACCOUNT}:role/ecr-pull", True, id="aws-us-gov"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/team/a/ecr-pull", True, id="with-path"),
        pytest.param(f"arn:aws-iso:iam::{ACCOUNT}:role/ecr-pull", False, id="aws-iso"),
        pytest.param(f"arn:aws-iso-b:iam::{ACCOUNT}:role/ecr-pull", False, id="aws-iso-b"),
        pytest.param(f"arn:aws-eu:iam::{ACCOUNT}:role/ecr-pull", False, id="unknown-partition"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:user/ecr-pull", False, id="user"),
        pytest.param(f"arn:aws:sts::{ACCOUNT}:assumed-role/ecr-pull/s", False, id="assumed-role"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/", False, id="no-role-name"),
        pytest.param("arn:aws:iam::12345678901:role/ecr-pull", False, id="11-digit-account"),
        pytest.param("arn:aws:iam::1234567890123:role/ecr-pull", False, id="13-digit-account"),
        pytest.param(f"arn:aws:iam:us-east-1:{ACCOUNT}:role/ecr-pull", False, id="with-region"),
        pytest.param(f" arn:aws:iam::{ACCOUNT}:role/ecr-pull", False, id="leading-space"),
        pytest.param("ecr-pull", False, id="bare-name"),
        pytest.param("", False, id="empty"),
    ],
)
def test_role_arn_pattern(where: str, arn: str, admitted: bool) -> None:
    assert cel_matches(role_arn_patterns()[where], arn) is admitted


def test_auth_rule_refuses_both_refs_like_parse_auth() -> None:
    (validation,) = auth_schema()["x-kubernetes-validations"]
    both = {"serviceAccountRef": {"name": "sa"}, "secretRef": {"name": "keys"}}

    assert validation["rule"] == "!(has(self.serviceAccountRef) && has(self.secretRef))"
    assert "not both" in validation["message"]
    with pytest.raises(InvalidAuth, match="not both"):
        parse_auth(both)


def test_auth_defaults_match_the_model() -> None:
    props = auth_schema()["properties"]
    secret = props["secretRef"]["properties"]
    parsed = parse_auth({"serviceAccountRef": {"name": "sa"}})
    keys = parse_auth({"secretRef": {"name": "keys"}}).secret

    assert parsed.service_account is not None
    assert props["serviceAccountRef"]["properties"]["audience"]["default"] == parsed.service_account.audience
    assert keys is not None
    assert (
        secret["accessKeyIdKey"]["default"],
        secret["secretAccessKeyKey"]["default"],
        secret["sessionTokenKey"]["default"],
    ) == (keys.access_key_id_key, keys.secret_access_key_key, keys.session_token_key)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        pytest.param("team-a", "pull", id="short"),
        pytest.param("", "pull", id="cluster-scoped"),
        pytest.param("n" * 63, "x" * 253, id="longest-names"),
        pytest.param("team-a", "web.app-1", id="dotted-name"),
    ],
)
def test_default_session_name_passes_the_session_name_pattern(namespace: str, name: str) -> None:
    """A default session name must be one a user could also have written in spec.auth."""
    pattern = auth_schema()["properties"]["roleChain"]["items"]["properties"]["sessionName"]["pattern"]

    assert cel_matches(pattern, session_name(RoleHop("arn:aws:iam::123456789012:role/r"), namespace, name))
