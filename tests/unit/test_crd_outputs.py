"""The CRD schema of spec.output and spec.secretTemplate: generated from model/rules.py, the same in
both kinds, and its CEL rules deciding what the parser decides (the hostile corpus and
tests/integration/test_admission.py put both in front of the real API server)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ecr_pull_secrets.model import rules
from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.resource import parse_spec
from tests.harness import crds

Schema = dict[str, Any]
US = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
EU = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def spec_schema(kind: crds.Kind) -> Schema:
    (version,) = crds.crd(kind)["spec"]["versions"]
    schema: Schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


NAMESPACED, CLUSTER = (spec_schema(kind) for kind in crds.KINDS)
TEMPLATE = NAMESPACED["properties"]["secretTemplate"]["properties"]["metadata"]["properties"]


def test_both_kinds_have_the_same_output_and_template() -> None:
    for field in ("output", "secretTemplate"):
        assert NAMESPACED["properties"][field] == CLUSTER["properties"][field], field
    assert NAMESPACED["x-kubernetes-validations"] == CLUSTER["x-kubernetes-validations"]


def test_output_type_is_the_models() -> None:
    schema = NAMESPACED["properties"]["output"]["properties"]["type"]

    assert schema["enum"] == list(rules.OUTPUT_TYPES)
    assert schema["default"] == "dockerconfigjson"
    assert schema["maxLength"] >= max(len(t) for t in rules.OUTPUT_TYPES)
    assert parse_spec({"registries": [US]}, default_name="x").output.type == schema["default"]


def test_template_maps_are_bounded_by_the_model() -> None:
    labels, annotations = TEMPLATE["labels"], TEMPLATE["annotations"]

    assert labels["maxProperties"] == rules.MAX_TEMPLATE_LABELS
    assert annotations["maxProperties"] == rules.MAX_TEMPLATE_ANNOTATIONS
    assert labels["additionalProperties"]["pattern"] == rules.LABEL_VALUE
    assert labels["additionalProperties"]["maxLength"] == rules.LABEL_VALUE_MAX
    assert annotations["additionalProperties"]["pattern"] == rules.TEMPLATE_ANNOTATION_VALUE
    assert annotations["additionalProperties"]["maxLength"] == rules.TEMPLATE_ANNOTATION_VALUE_MAX


# -- the CEL rules, evaluated here the way the API server would ---------------------------------------

EQUALS = re.compile(r"k == '([^']*)'")
MATCHES = re.compile(r"k\.matches\('([^']*)'\)")
STARTS = re.compile(r"!k\.startsWith\('([^']*)'\)")


def reserved_by_cel(key: str) -> bool:
    """The second rule of each template map:
    `!self.exists(k, NAMES || (k.matches(P) && !k.startsWith(O)))`."""
    rule = TEMPLATE["labels"]["x-kubernetes-validations"][1]["rule"]
    assert rule.startswith("!self.exists(k, ")
    names = EQUALS.findall(rule)
    (pattern,) = MATCHES.findall(rule)
    (open_prefix,) = STARTS.findall(rule)
    return key in names or (re.search(pattern, key, re.ASCII) is not None and not key.startswith(open_prefix))


KEYS = [
    "team",
    "example.com/owner",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "argocd.argoproj.io/secret-type",
    "argocd.argoproj.io/sync-options",
    "kubernetes.io/x",
    "kubectl.kubernetes.io/last-applied-configuration",
    "k8s.io/x",
    "node.k8s.io/x",
    "notk8s.io/x",
    "kubernetes.io.example.com/x",
    "ecr.pullsecrets.dev/chain",
    "x.ecr.pullsecrets.dev/y",
]


@pytest.mark.parametrize("key", KEYS)
def test_reserved_key_rule_is_the_models(key: str) -> None:
    assert reserved_by_cel(key) is rules.reserved_key(key)
    assert TEMPLATE["labels"]["x-kubernetes-validations"] == [
        {**v, "message": v["message"].replace(".annotations", ".labels")}
        for v in TEMPLATE["annotations"]["x-kubernetes-validations"]
    ]


@pytest.mark.parametrize("key", KEYS)
def test_parser_refuses_exactly_the_reserved_keys(key: str) -> None:
    raw = {"registries": [US], "secretTemplate": {"metadata": {"labels": {key: "v"}}}}
    if rules.reserved_key(key):
        with pytest.raises(InvalidSpec, match="is reserved"):
            parse_spec(raw, default_name="x")
    else:
        assert parse_spec(raw, default_name="x").output.labels == ((key, "v"),)


def rule_at(field_path: str) -> dict[str, str]:
    (found,) = [v for v in NAMESPACED["x-kubernetes-validations"] if v.get("fieldPath") == field_path]
    return found


def single_registry_by_cel(spec: dict[str, Any]) -> bool:
    """The spec-level rule, evaluated:
    `!has(output) || !has(output.type) || !(type in [...]) || size(registries) == 1`."""
    validation = rule_at(".registries")
    shapes = re.findall(r"'([^']*)'", validation["rule"])
    output = spec.get("output")
    return (
        output is None or "type" not in output or output["type"] not in shapes or len(spec["registries"]) == 1
    )


@pytest.mark.parametrize("output", [None, {}, *({"type": t} for t in rules.OUTPUT_TYPES)])
@pytest.mark.parametrize("registries", [[US], [US, EU]], ids=["one", "two"])
def test_single_registry_rule_agrees_with_the_parser(
    output: dict[str, str] | None, registries: list[str]
) -> None:
    spec: dict[str, Any] = {"registries": registries}
    if output is not None:
        spec["output"] = output
    refused = None
    try:
        parse_spec(spec, default_name="x")
    except InvalidSpec as error:
        refused = error.field
    parsed = refused is None
    assert refused in (None, "spec.registries")
    # The API server defaults output.type before the rule runs.
    defaulted = {**spec, "output": {"type": "dockerconfigjson", **output}} if output is not None else spec
    assert single_registry_by_cel(defaulted) is parsed
    assert rule_at(".registries")["message"].startswith("spec.registries must name exactly one registry")


@pytest.mark.parametrize("output", [None, {}, *({"type": t} for t in rules.OUTPUT_TYPES)])
@pytest.mark.parametrize("accounts", [None, {"all": True}], ids=["no-accounts", "accounts"])
def test_service_accounts_only_with_pull_secrets_agrees_with_the_parser(
    output: dict[str, str] | None, accounts: dict[str, bool] | None
) -> None:
    spec: dict[str, Any] = {"registries": [US]}
    if output is not None:
        spec["output"] = output
    if accounts is not None:
        spec["serviceAccounts"] = accounts
    refused = None
    try:
        parse_spec(spec, default_name="x")
    except InvalidSpec as error:
        refused = error.field
    assert refused in (None, "spec.serviceAccounts")
    rule = rule_at(".serviceAccounts")["rule"]
    assert f"self.output.type == '{rules.OUTPUT_TYPES[0]}'" in rule
    # The API server defaults output.type before the rule runs.
    kind = {"type": "dockerconfigjson", **(output or {})}["type"]
    assert (accounts is None or kind == "dockerconfigjson") is (refused is None)
