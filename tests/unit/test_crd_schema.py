"""The CRDs: generated from one source, closed and bounded, and agreeing with the Python model on
what parses (registry hosts against botocore's partition data too)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import botocore
import pytest
import yaml

from ecr_pull_secrets.model import api, rules
from ecr_pull_secrets.model.duration import DURATION_PATTERN, InvalidDuration, parse_duration
from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.identity import RoleHop, parse_auth, session_name
from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost
from ecr_pull_secrets.model.resource import parse_spec
from tests.harness import crds
from tests.hostile_specs import CASES
from tests.unit.hosts import ACCOUNT, INVALID, VALID

Schema = dict[str, Any]
MATCHES = re.compile(r"self\.matches\('([^']*)'\)")
LITERAL_OR_MATCHES = re.compile(r"self == '([^']*)' \|\| self\.matches\('([^']*)'\)")
KINDS = [pytest.param(kind, id=kind.kind) for kind in crds.KINDS]


@cache
def crd(file_name: str) -> Schema:
    with (crds.CRDS / file_name).open(encoding="utf-8") as stream:
        loaded: Schema = yaml.safe_load(stream)
    return loaded


def spec_schema(kind: crds.Kind = crds.KINDS[0]) -> Schema:
    (version,) = crd(kind.file_name)["spec"]["versions"]
    schema: Schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def rules_of(schema: Schema) -> list[str]:
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


# -- one source ------------------------------------------------------------------------------------


def test_committed_crds_are_the_generator_output() -> None:
    rendered = crds.render()

    assert sorted(p.name for p in crds.CRDS.glob("*.yaml")) == sorted(rendered)
    for name, content in rendered.items():
        assert (crds.CRDS / name).read_text(encoding="utf-8") == content, (
            f"deploy/crds/{name} differs from tests/harness/crds.py: run `make chart-sync`"
        )


def walk(schema: Schema, path: str) -> Iterator[tuple[str, Schema]]:
    """Every node of a schema with its path: `[]` for list items, `.*` for map values."""
    yield path, schema
    for key, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{key}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("kind", KINDS)
def test_spec_is_closed_and_bounded(kind: crds.Kind) -> None:
    for path, node in walk(spec_schema(kind), "spec"):
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        kind_of = node["type"]
        if kind_of == "string":
            assert "maxLength" in node, path
            assert {"pattern", "enum", "x-kubernetes-validations"} & set(node), path
        elif kind_of == "array":
            assert "maxItems" in node, path
        elif kind_of == "object":
            if "additionalProperties" in node:
                assert "maxProperties" in node, path
            else:
                assert node["properties"], path
        else:
            assert kind_of == "boolean", path


@pytest.mark.parametrize("kind", KINDS)
def test_every_rule_message_names_its_field(kind: crds.Kind) -> None:
    found = 0
    for path, node in walk(spec_schema(kind), "spec"):
        for validation in node.get("x-kubernetes-validations", ()):
            found += 1
            assert validation["message"].startswith(path), (path, validation["message"])
            assert validation["reason"] in {"FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden"}
            if "fieldPath" in validation:
                assert validation["fieldPath"].removeprefix(".") in node["properties"], path
    assert found >= 10


REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")


@pytest.mark.parametrize("kind", KINDS)
def test_patterns_fit_re2(kind: crds.Kind) -> None:
    """The API server compiles patterns with RE2, which refuses repeat counts over 1000."""
    for path, node in walk(spec_schema(kind), "spec"):
        texts = [node.get("pattern", "")] + [v["rule"] for v in node.get("x-kubernetes-validations", ())]
        for text in texts:
            for low, high in REPEAT.findall(text):
                assert max(int(low), int(high or 0)) <= 1000, (path, text)
            for look_around in ("(?=", "(?!", "(?<"):
                assert look_around not in text, (path, text)


def test_a_namespaced_resource_cannot_name_another_namespace() -> None:
    namespaced, cluster = (spec_schema(k)["properties"]["auth"]["properties"] for k in crds.KINDS)

    for ref in ("serviceAccountRef", "secretRef"):
        assert "namespace" not in namespaced[ref]["properties"]
        assert cluster[ref]["required"] == ["name", "namespace"]
        assert cluster[ref]["properties"]["namespace"]["pattern"] == rules.DNS1123_LABEL
        assert cluster[ref]["properties"]["namespace"]["maxLength"] == rules.DNS1123_LABEL_MAX


def test_both_kinds_share_every_other_field() -> None:
    namespaced, cluster = (spec_schema(k)["properties"] for k in crds.KINDS)

    assert set(cluster) - set(namespaced) == {"namespaceSelector", "namespaces"}
    for field in ("registries", "renewBefore", "serviceAccounts", "secretPolicy"):
        assert namespaced[field] == cluster[field], field
    selectors = namespaced["serviceAccounts"]["properties"]["selector"], cluster["namespaceSelector"]
    assert json.dumps(selectors[0]).count("spec.serviceAccounts.selector") == json.dumps(selectors[1]).count(
        "spec.namespaceSelector"
    )


def test_the_hostile_corpus_is_large_and_covers_both_kinds() -> None:
    ids = [(c.kind, c.id) for c in CASES]

    assert len(CASES) >= 30
    assert len(set(ids)) == len(ids)
    assert {c.kind for c in CASES} == {k.kind for k in crds.KINDS}
    assert all(c.field.startswith("spec.") for c in CASES)


# -- names and limits --------------------------------------------------------------------------


def test_crd_names_and_limits_match_the_api_module() -> None:
    body = crd(crds.KINDS[0].file_name)
    registries = spec_schema()["properties"]["registries"]

    assert body["metadata"]["name"] == f"{api.PLURAL}.{api.GROUP}"
    assert (body["spec"]["group"], body["spec"]["names"]["kind"]) == (api.GROUP, api.KIND)
    assert [v["name"] for v in body["spec"]["versions"]] == [api.VERSION]
    assert (registries["minItems"], registries["maxItems"]) == (1, api.MAX_REGISTRIES)
    assert spec_schema()["properties"]["renewBefore"]["default"] == api.DEFAULT_RENEW_BEFORE


# -- renewBefore -------------------------------------------------------------------------------

DURATION_RULES = rules_of(spec_schema()["properties"]["renewBefore"])
DURATION_RULE = cel_pattern(DURATION_RULES[0])


def test_duration_rule_is_the_model_pattern() -> None:
    assert DURATION_RULE.replace("[.]", r"\.") == DURATION_PATTERN


def test_renew_before_bounds_are_the_model_bounds() -> None:
    low, high = rules.go_duration(rules.RENEW_BEFORE_MIN), rules.go_duration(rules.RENEW_BEFORE_MAX)

    assert (low, high) == ("5m", "8h")
    assert f"duration(self) >= duration('{low}') && duration(self) <= duration('{high}')" in DURATION_RULES[1]
    assert spec_schema()["properties"]["renewBefore"]["x-kubernetes-validations"][1]["message"].startswith(
        "spec.renewBefore must be between 5m and 8h"
    )


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


# -- registry hosts ----------------------------------------------------------------------------

REGISTRY_RULES = rules_of(spec_schema()["properties"]["registries"]["items"])
REGISTRY_LITERAL, REGISTRY_PATTERN = cel_literal_or_pattern(REGISTRY_RULES[0])


def registry_rule(host: str) -> bool:
    """The first registry rule, evaluated: the ECR Public host, or the private host pattern."""
    return host == REGISTRY_LITERAL or cel_matches(REGISTRY_PATTERN, host)


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
    assert "region fits its partition" in validations[0]["message"]
    for partition, (standard, _) in SUFFIXES.items():
        assert f"{partition}: " in validations[0]["message"], partition
        assert f".{standard}" in validations[0]["message"], partition
    assert "exactly 12 digits" in validations[1]["message"]


# -- regions: botocore's partition data ----------------------------------------------------------

# ECR's own host suffixes per partition: standard (botocore's dnsSuffix) and dual-stack (None: the
# partition has neither dual-stack nor FIPS registry hosts, only ACCOUNT.dkr.ecr.REGION.SUFFIX).
SUFFIXES: dict[str, tuple[str, str | None]] = {
    "aws": ("amazonaws.com", "on.aws"),
    "aws-cn": ("amazonaws.com.cn", "on.amazonwebservices.com.cn"),
    "aws-us-gov": ("amazonaws.com", "on.aws"),
    "aws-eusc": ("amazonaws.eu", None),
    "aws-iso": ("c2s.ic.gov", None),
    "aws-iso-b": ("sc2s.sgov.gov", None),
    "aws-iso-e": ("cloud.adc-e.uk", None),
    "aws-iso-f": ("csp.hci.ic.gov", None),
}


@cache
def botocore_partitions() -> dict[str, Schema]:
    path = Path(botocore.__file__).parent / "data" / "partitions.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {p["id"]: p for p in data["partitions"]}


def in_host_names(region_regex: str) -> str:
    """botocore's regionRegex with \\w narrowed to what a lower-case host name may hold."""
    return region_regex.replace("\\-", "-").replace("\\w", "[a-z0-9]").replace("\\d", "[0-9]")


def listed_regions(partition: str) -> list[str]:
    """The partition's regions, without pseudo-regions such as aws-global."""
    data = botocore_partitions()[partition]
    return sorted(r for r in data["regions"] if re.fullmatch(data["regionRegex"], r))


def hosts_in(region: str, partition: str) -> list[str]:
    """Every registry host form of `partition` (its suffixes), for `region`."""
    standard, dualstack = SUFFIXES[partition]
    if dualstack is None:
        return [f"{ACCOUNT}.dkr.ecr.{region}.{standard}"]
    return [
        f"{ACCOUNT}.dkr.ecr.{region}.{standard}",
        f"{ACCOUNT}.dkr.ecr-fips.{region}.{standard}",
        f"{ACCOUNT}.dkr-ecr.{region}.{dualstack}",
        f"{ACCOUNT}.dkr-ecr-fips.{region}.{dualstack}",
    ]


def every_form(region: str, partition: str) -> list[str]:
    """hosts_in, plus the dual-stack and FIPS forms a partition without them must refuse."""
    standard, dualstack = SUFFIXES[partition]
    forms = [f"{ACCOUNT}.dkr.ecr-fips.{region}.{standard}"]
    for suffix in {dualstack or "on.aws", "on.aws"}:
        forms += [f"{ACCOUNT}.dkr-ecr.{region}.{suffix}", f"{ACCOUNT}.dkr-ecr-fips.{region}.{suffix}"]
    return sorted(set(hosts_in(region, partition) + forms))


@pytest.mark.parametrize("partition", sorted(SUFFIXES))
def test_region_patterns_are_botocores(partition: str) -> None:
    data = botocore_partitions()[partition]

    assert rules.REGION_PATTERNS[partition] == in_host_names(data["regionRegex"])
    assert crds.region_host_pattern(partition) in REGISTRY_PATTERN
    assert data["outputs"]["dnsSuffix"] == SUFFIXES[partition][0]


@pytest.mark.parametrize("partition", sorted(SUFFIXES))
def test_every_region_botocore_lists_is_admitted_and_parsed(partition: str) -> None:
    regions = listed_regions(partition)

    assert len(regions) >= 1
    for region in regions:
        for host in hosts_in(region, partition):
            assert registry_rule(host), host
            parsed = RegistryHost.parse(host)
            assert (parsed.partition, parsed.region) == (partition, region), host


def test_every_partition_botocore_knows_is_known() -> None:
    assert sorted(botocore_partitions()) == sorted(SUFFIXES) == sorted(rules.PARTITIONS)


@pytest.mark.parametrize("partition", sorted(SUFFIXES))
def test_regions_with_another_partitions_suffix_are_refused(partition: str) -> None:
    """A region of one partition under the host suffixes of another is neither admitted nor parsed."""
    for region in listed_regions(partition):
        for other, suffixes in SUFFIXES.items():
            if suffixes == SUFFIXES[partition]:
                continue  # aws and aws-us-gov share their suffixes: the region tells them apart
            for host in hosts_in(region, other):
                assert not registry_rule(host), host
                assert not parses(host), host


@pytest.mark.parametrize("partition", [p for p, (_, dualstack) in SUFFIXES.items() if dualstack is None])
def test_partitions_without_dualstack_or_fips_hosts_refuse_those_forms(partition: str) -> None:
    for region in listed_regions(partition):
        (standard,) = hosts_in(region, partition)
        for host in every_form(region, partition):
            assert registry_rule(host) is (host == standard), host
            assert parses(host) is (host == standard), host


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        pytest.param("eu-newplace-9", "aws", id="future-aws-region"),
        pytest.param("mx-central-12", "aws", id="future-two-digit"),
        pytest.param("cn-southwest-3", "aws-cn", id="future-china-region"),
        pytest.param("us-gov-central-1", "aws-us-gov", id="future-govcloud-region"),
        pytest.param("eusc-de-west-1", "aws-eusc", id="future-eu-sovereign-region"),
        pytest.param("us-iso-north-1", "aws-iso", id="future-iso-region"),
        pytest.param("us-isob-south-2", "aws-iso-b", id="future-iso-b-region"),
        pytest.param("eu-isoe-north-1", "aws-iso-e", id="future-iso-e-region"),
        pytest.param("us-isof-west-1", "aws-iso-f", id="future-iso-f-region"),
        pytest.param("eusc-fr-east-1", None, id="eu-sovereign-country-botocore-does-not-name"),
        pytest.param("eusc-east-1", None, id="eu-sovereign-without-country"),
        pytest.param("us-isoz-east-1", None, id="iso-letter-botocore-does-not-name"),
        pytest.param("xx-east-1", None, id="unknown-prefix"),
        pytest.param("zz-north-1", None, id="unknown-prefix-2"),
        pytest.param("us-east-west-1", None, id="two-word-name"),
        pytest.param("us-east", None, id="no-number"),
        pytest.param("us-east_1-1", None, id="underscore"),
        pytest.param("cn-north", None, id="china-no-number"),
        # botocore's aws regionRegex claims it, its aws-us-gov one does not: the pattern that
        # matches decides the partition, not the prefix.
        pytest.param("us-gov-1", "aws", id="govcloud-prefix-without-name"),
    ],
)
def test_made_up_regions(region: str, partition: str | None) -> None:
    """A new region of a known prefix works today; a region no partition would name does not."""
    for suffix_of in SUFFIXES if partition is None else (partition,):
        for host in hosts_in(region, suffix_of):
            assert registry_rule(host) is (partition is not None), host
            assert parses(host) is (partition is not None), host
            if partition is not None:
                assert RegistryHost.parse(host).partition == partition, host


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
EUSC = f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu"
EUSC_FUTURE = f"{ACCOUNT}.dkr.ecr.eusc-de-west-2.amazonaws.eu"
ISO = f"{ACCOUNT}.dkr.ecr.us-iso-east-1.c2s.ic.gov"
ISO_WEST = f"{ACCOUNT}.dkr.ecr.us-iso-west-1.c2s.ic.gov"
ISO_B = f"{ACCOUNT}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov"
ISO_E = f"{ACCOUNT}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk"
ISO_F = f"{ACCOUNT}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov"
# Per partition other than aws, what marks its hosts (evaluated in Python below).
MARKERS = {
    "aws-cn": "h.endsWith('.cn')",
    "aws-us-gov": "h.matches('[.]us-gov-')",
    "aws-eusc": "h.endsWith('.amazonaws.eu')",
    "aws-iso": "h.endsWith('.c2s.ic.gov')",
    "aws-iso-b": "h.endsWith('.sc2s.sgov.gov')",
    "aws-iso-e": "h.endsWith('.cloud.adc-e.uk')",
    "aws-iso-f": "h.endsWith('.csp.hci.ic.gov')",
}
PARTITION_RULE = " && ".join(f"(self.all(h, {m}) || !self.exists(h, {m}))" for m in MARKERS.values())


def marked(marker: str, host: str) -> bool:
    """One MARKERS test, evaluated."""
    ends = re.fullmatch(r"h\.endsWith\('([^']*)'\)", marker)
    if ends:
        return host.endswith(ends[1])
    found = re.fullmatch(r"h\.matches\('([^']*)'\)", marker)
    assert found is not None, marker
    return cel_matches(found[1], host)


def partition_rule(hosts: list[str]) -> bool:
    """PARTITION_RULE, evaluated."""
    (rule,) = rules_of(spec_schema()["properties"]["registries"])
    assert rule == PARTITION_RULE
    for marker in MARKERS.values():
        flags = [marked(marker, h) for h in hosts]
        if not (all(flags) or not any(flags)):
            return False
    return True


@pytest.mark.parametrize("partition", sorted(SUFFIXES))
def test_each_admitted_host_carries_exactly_its_partitions_marker(partition: str) -> None:
    for region in listed_regions(partition):
        for host in hosts_in(region, partition):
            assert registry_rule(host), host
            assert {p for p, m in MARKERS.items() if marked(m, host)} == (
                set() if partition == "aws" else {partition}
            ), host


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
        pytest.param([EUSC, EUSC_FUTURE], True, id="eu-sovereign"),
        pytest.param([ISO, ISO_WEST], True, id="iso"),
        pytest.param([ISO_B], True, id="iso-b"),
        pytest.param([ISO_E], True, id="iso-e"),
        pytest.param([ISO_F], True, id="iso-f"),
        pytest.param([EUSC, US], False, id="eu-sovereign-and-aws"),
        pytest.param([EU, EUSC], False, id="eu-and-eu-sovereign"),
        pytest.param([EUSC, PUBLIC], False, id="eu-sovereign-and-public"),
        pytest.param([EUSC, CN], False, id="eu-sovereign-and-china"),
        pytest.param([ISO, ISO_B], False, id="iso-and-iso-b"),
        pytest.param([ISO, ISO_F], False, id="iso-and-iso-f"),
        pytest.param([ISO_E, EUSC], False, id="iso-e-and-eu-sovereign"),
        pytest.param([GOV, ISO], False, id="govcloud-and-iso"),
        pytest.param([ISO_F, PUBLIC], False, id="iso-f-and-public"),
    ],
)
def test_partition_rule_agrees_with_parse_spec(hosts: list[str], admitted: bool) -> None:
    assert partition_rule(hosts) is admitted
    assert one_partition(hosts) is admitted


def test_partition_rule_message_names_the_partitions() -> None:
    (validation,) = spec_schema()["properties"]["registries"]["x-kubernetes-validations"]

    assert (
        "one AWS partition (aws, aws-cn, aws-us-gov, aws-eusc, aws-iso, aws-iso-b, aws-iso-e or aws-iso-f)"
        in validation["message"]
    )


# -- spec.auth ---------------------------------------------------------------------------------


def auth_schema() -> Schema:
    schema: Schema = spec_schema()["properties"]["auth"]
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
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/{'r' * 64}", True, id="64-character-name"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/a+b=c,d.e@f_g-h", True, id="every-allowed-character"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/{'r' * 65}", False, id="65-character-name"),
        pytest.param(f"arn:aws-eusc:iam::{ACCOUNT}:role/ecr-pull", True, id="aws-eusc"),
        pytest.param(f"arn:aws-iso:iam::{ACCOUNT}:role/ecr-pull", True, id="aws-iso"),
        pytest.param(f"arn:aws-iso-b:iam::{ACCOUNT}:role/ecr-pull", True, id="aws-iso-b"),
        pytest.param(f"arn:aws-iso-e:iam::{ACCOUNT}:role/ecr-pull", True, id="aws-iso-e"),
        pytest.param(f"arn:aws-iso-f:iam::{ACCOUNT}:role/ecr-pull", True, id="aws-iso-f"),
        pytest.param(f"arn:aws-iso-z:iam::{ACCOUNT}:role/ecr-pull", False, id="aws-iso-unknown"),
        pytest.param(f"arn:aws-eusc-de:iam::{ACCOUNT}:role/ecr-pull", False, id="aws-eusc-lookalike"),
        pytest.param(f"arn:aws-eu:iam::{ACCOUNT}:role/ecr-pull", False, id="unknown-partition"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:user/ecr-pull", False, id="user"),
        pytest.param(f"arn:aws:sts::{ACCOUNT}:assumed-role/ecr-pull/s", False, id="assumed-role"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/", False, id="no-role-name"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/ecr-*", False, id="wildcard"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/team//ecr-pull", False, id="empty-path-segment"),
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


def hop_schema(field: str) -> Schema:
    schema: Schema = auth_schema()["properties"]["roleChain"]["items"]["properties"][field]
    return schema


def admitted_string(schema: Schema, text: str) -> bool:
    """What the API server decides for a string node with minLength/maxLength/pattern."""
    return schema.get("minLength", 0) <= len(text) <= schema["maxLength"] and cel_matches(
        schema["pattern"], text
    )


@pytest.mark.parametrize(
    "text",
    ["", "x", "xy", "x" * 1224, "x" * 1225, "tenant a", "a:b/c=d,e.f@g+h_i-j", "é" * 4, "a\tb"],
)
def test_external_id_schema_is_the_model_rule(text: str) -> None:
    """The CRD and the model both spell it as pattern + lengths (RE2 refuses {2,1224})."""
    model = (
        rules.matches(rules.EXTERNAL_ID, text) and rules.EXTERNAL_ID_MIN <= len(text) <= rules.EXTERNAL_ID_MAX
    )
    assert admitted_string(hop_schema("externalId"), text) is model


@pytest.mark.parametrize("text", ["", "a", "ab", "s" * 64, "s" * 65, "team a", "a/b", "a+b=c,d.e@f_g-h"])
def test_session_name_schema_is_the_model_rule(text: str) -> None:
    assert admitted_string(hop_schema("sessionName"), text) is rules.matches(rules.SESSION_NAME, text)


def test_auth_rule_refuses_both_refs_like_parse_auth() -> None:
    (validation,) = auth_schema()["x-kubernetes-validations"]
    both = {"serviceAccountRef": {"name": "sa"}, "secretRef": {"name": "keys"}}

    assert validation["rule"] == "!(has(self.serviceAccountRef) && has(self.secretRef))"
    assert "not both" in validation["message"]
    with pytest.raises(InvalidSpec, match="not both"):
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
    pattern = hop_schema("sessionName")["pattern"]

    assert cel_matches(pattern, session_name(RoleHop("arn:aws:iam::123456789012:role/r"), namespace, name))
