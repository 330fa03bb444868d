"""spec.output and spec.secretTemplate: the Secret built for each shape, the parser's rules, and the
summary a Secret of each shape leaves in the cache (enough to see drift, none of its data)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from ecr_pull_secrets.model import api, rules
from ecr_pull_secrets.model.cluster import SecretView, secret_view
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.output import DEFAULT, NO_MARKS, Output, content_digest
from ecr_pull_secrets.model.resource import parse_spec
from ecr_pull_secrets.model.timestamps import format_time
from ecr_pull_secrets.plan import adoption
from ecr_pull_secrets.plan.content import (
    Owner,
    authorizations,
    desired_secret,
    dockerconfigjson,
    tokens_in,
    without_dropped,
)
from ecr_pull_secrets.plan.fanout import SecretState, examine
from ecr_pull_secrets.plan.reconcile import Input, plan_work
from ecr_pull_secrets.plan.renewal import RenewalPolicy
from tests.unit.factories import NOW, ago, issued, later, resource

US = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
EU = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
TOKEN = "eyJwYXlsb2FkIjoi-token"  # a made-up token
CRED = Credential("AWS", TOKEN)
OWNER = Owner(f"{api.GROUP}/{api.VERSION}", api.KIND, "pull", "uid-1")
UID = "uid-1"
CHAIN = "chain-1"
EXPIRES_AT = later(hours=8)
TEMPLATE = Output(
    type="dockerconfigjson",
    labels=(("team", "payments"),),
    annotations=(("example.com/owner", "payments team"),),
)
ARGOCD = Output(type="argocd")
BASIC = Output(type="basicAuth")


def build(output: Output = DEFAULT, hosts: tuple[str, ...] = (US,)) -> dict[str, Any]:
    body: dict[str, Any] = desired_secret(
        name="pull",
        namespace="team-a",
        owner=OWNER,
        credentials=dict.fromkeys(hosts, CRED),
        issued_at=ago(hours=4),
        expires_at=EXPIRES_AT,
        chain_key=CHAIN,
        output=output,
    )
    return body


def decoded(body: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in body["data"].items()}


def seen(body: dict[str, Any]) -> SecretView:
    """The Secret as the watch reports it."""
    stored = json.loads(json.dumps(body))
    stored["metadata"] |= {"uid": "secret-uid", "resourceVersion": "5"}
    return secret_view(stored)


# -- content, per shape ---------------------------------------------------------------------------


def _before_outputs(credentials: dict[str, Credential]) -> dict[str, Any]:
    """desired_secret as it was before spec.output, kept here to hold the default to it."""
    data = {api.SECRET_KEY: base64.b64encode(dockerconfigjson(credentials).encode()).decode()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": api.SECRET_TYPE,
        "metadata": {
            "name": "pull",
            "namespace": "team-a",
            "labels": {api.MANAGED_BY_LABEL: api.MANAGED_BY},
            "annotations": {
                api.EXPIRES_AT_ANNOTATION: format_time(EXPIRES_AT),
                api.ISSUED_AT_ANNOTATION: format_time(ago(hours=4)),
                api.CHAIN_ANNOTATION: CHAIN,
                api.CONTENT_DIGEST_ANNOTATION: hashlib.sha256(data[api.SECRET_KEY].encode()).hexdigest(),
            },
            "ownerReferences": [
                {
                    "apiVersion": OWNER.api_version,
                    "kind": OWNER.kind,
                    "name": OWNER.name,
                    "uid": OWNER.uid,
                    "controller": True,
                }
            ],
        },
        "data": data,
    }


def test_the_default_output_is_todays_secret_byte_for_byte() -> None:
    assert json.dumps(build(hosts=(US, EU))) == json.dumps(_before_outputs({US: CRED, EU: CRED}))
    assert json.dumps(build(Output(), hosts=(US, EU))) == json.dumps(_before_outputs({US: CRED, EU: CRED}))


@pytest.mark.parametrize(
    ("output", "secret_type", "data", "labels"),
    [
        pytest.param(
            DEFAULT,
            "kubernetes.io/dockerconfigjson",
            {".dockerconfigjson": dockerconfigjson({US: CRED})},
            {},
            id="dockerconfigjson",
        ),
        pytest.param(
            ARGOCD,
            "Opaque",
            {"enableOCI": "true", "password": TOKEN, "type": "helm", "url": US, "username": "AWS"},
            {"argocd.argoproj.io/secret-type": "repo-creds"},
            id="argocd",
        ),
        pytest.param(
            BASIC,
            "kubernetes.io/basic-auth",
            {"password": TOKEN, "username": "AWS"},
            {},
            id="basicAuth",
        ),
    ],
)
def test_content_per_shape(
    output: Output, secret_type: str, data: dict[str, str], labels: dict[str, str]
) -> None:
    body = build(output)

    assert body["type"] == secret_type
    assert decoded(body) == data
    assert body["metadata"]["labels"] == {**labels, api.MANAGED_BY_LABEL: api.MANAGED_BY}
    annotations = body["metadata"]["annotations"]
    assert annotations[api.CONTENT_DIGEST_ANNOTATION] == content_digest(
        secret_type, body["data"], annotations
    )
    if output.shape.single_registry:
        assert annotations["ecr.pullsecrets.dev/registry"] == US
    else:
        assert "ecr.pullsecrets.dev/registry" not in annotations


@pytest.mark.parametrize("output", [DEFAULT, ARGOCD, BASIC], ids=lambda o: o.type)
def test_template_labels_and_annotations_go_beside_the_operators_own(output: Output) -> None:
    body = build(replace(TEMPLATE, type=output.type))
    meta = body["metadata"]

    assert meta["labels"]["team"] == "payments"
    assert meta["labels"][api.MANAGED_BY_LABEL] == api.MANAGED_BY
    assert meta["annotations"]["example.com/owner"] == "payments team"
    assert meta["annotations"][api.EXPIRES_AT_ANNOTATION] == format_time(EXPIRES_AT)


@pytest.mark.parametrize("output", [DEFAULT, ARGOCD, BASIC], ids=lambda o: o.type)
def test_every_shape_reads_back_its_tokens_and_authorizations(output: Output) -> None:
    body = build(output)

    tokens = tokens_in(body["metadata"], body["data"], CHAIN, body["type"])
    assert {host: token.credential for host, token in tokens.items()} == {US: CRED}
    assert {token.expires_at for token in tokens.values()} == {EXPIRES_AT}
    auth = base64.b64encode(f"AWS:{TOKEN}".encode()).decode()
    assert authorizations(body["type"], body["metadata"], body["data"]) == {US: auth}


@pytest.mark.parametrize("output", [ARGOCD, BASIC], ids=lambda o: o.type)
def test_an_edited_single_registry_secret_lends_no_tokens(output: Output) -> None:
    body = build(output)
    body["data"]["password"] = base64.b64encode(b"forged").decode()

    assert tokens_in(body["metadata"], body["data"], CHAIN, body["type"]) == {}


@pytest.mark.parametrize(
    "data",
    [{}, {"username": "%%%", "password": "%%%"}, {"username": base64.b64encode(b"\xff").decode()}],
    ids=["empty", "not-base64", "not-utf8"],
)
def test_a_garbled_basic_auth_secret_holds_no_credentials(data: dict[str, str]) -> None:
    annotations = {"ecr.pullsecrets.dev/registry": US}
    assert authorizations("kubernetes.io/basic-auth", {"annotations": annotations}, data) == {}


# -- the parser ------------------------------------------------------------------------------------


def spec(**fields: Any) -> dict[str, Any]:
    return {"registries": [US], **fields}


@pytest.mark.parametrize("cluster", [False, True], ids=["namespaced", "cluster"])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(spec(), Output(), id="absent"),
        pytest.param(spec(output={}), Output(), id="empty"),
        pytest.param(spec(output={"type": "dockerconfigjson"}), Output(), id="dockerconfigjson"),
        pytest.param(spec(output={"type": "argocd"}), ARGOCD, id="argocd"),
        pytest.param(spec(output={"type": "basicAuth"}), BASIC, id="basicAuth"),
        pytest.param(
            spec(registries=[US, EU], output={"type": "dockerconfigjson"}),
            Output(),
            id="dockerconfigjson-many-registries",
        ),
        pytest.param(
            spec(
                secretTemplate={
                    "metadata": {
                        "labels": {"team": "payments", "app.kubernetes.io/part-of": "shop"},
                        "annotations": {"example.com/owner": "payments team", "note": ""},
                    }
                }
            ),
            Output(
                labels=(("app.kubernetes.io/part-of", "shop"), ("team", "payments")),
                annotations=(("example.com/owner", "payments team"), ("note", "")),
            ),
            id="template",
        ),
        pytest.param(spec(secretTemplate={}), Output(), id="empty-template"),
        pytest.param(spec(secretTemplate={"metadata": {}}), Output(), id="empty-template-metadata"),
        pytest.param(
            spec(
                secretTemplate={
                    "metadata": {
                        "labels": {f"k{i}": "v" for i in range(rules.MAX_TEMPLATE_LABELS)},
                        "annotations": {f"k{i}": "v" * 1024 for i in range(rules.MAX_TEMPLATE_ANNOTATIONS)},
                    }
                }
            ),
            Output(
                labels=tuple(sorted((f"k{i}", "v") for i in range(16))),
                annotations=tuple(sorted((f"k{i}", "v" * 1024) for i in range(16))),
            ),
            id="template-at-every-bound",
        ),
    ],
)
def test_parser_reads_output_and_template(raw: dict[str, Any], expected: Output, cluster: bool) -> None:
    assert parse_spec(raw, default_name="pull", cluster=cluster).output == expected


LONG_PREFIX = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])


def labels(**pairs: Any) -> dict[str, Any]:
    return spec(secretTemplate={"metadata": {"labels": pairs}})


def annotations(pairs: dict[str, Any]) -> dict[str, Any]:
    return spec(secretTemplate={"metadata": {"annotations": pairs}})


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        pytest.param(spec(output={"type": "helm"}), "spec.output.type", "must be one of", id="unknown-type"),
        pytest.param(spec(output={"type": 1}), "spec.output.type", "must be a string", id="type-not-string"),
        pytest.param(spec(output={"kind": "argocd"}), "spec.output", "unknown fields", id="unknown-field"),
        pytest.param(spec(output="argocd"), "spec.output", "must be an object", id="output-not-object"),
        pytest.param(
            spec(registries=[US, EU], output={"type": "argocd"}),
            "spec.registries",
            "exactly one registry when spec.output.type is argocd",
            id="argocd-two-registries",
        ),
        pytest.param(
            spec(registries=[US, EU], output={"type": "basicAuth"}),
            "spec.registries",
            "exactly one registry when spec.output.type is basicAuth",
            id="basic-auth-two-registries",
        ),
        pytest.param(
            spec(secretTemplate={"spec": {}}), "spec.secretTemplate", "unknown fields", id="template-field"
        ),
        pytest.param(
            spec(secretTemplate={"metadata": {"name": "x"}}),
            "spec.secretTemplate.metadata",
            "unknown fields",
            id="template-metadata-name",
        ),
        pytest.param(
            spec(secretTemplate={"metadata": {"labels": ["a"]}}),
            "spec.secretTemplate.metadata.labels",
            "must be an object",
            id="labels-not-object",
        ),
        pytest.param(
            labels(**{f"k{i}": "v" for i in range(17)}),
            "spec.secretTemplate.metadata.labels",
            "at most 16 entries",
            id="too-many-labels",
        ),
        pytest.param(
            annotations({f"k{i}": "v" for i in range(17)}),
            "spec.secretTemplate.metadata.annotations",
            "at most 16 entries",
            id="too-many-annotations",
        ),
        pytest.param(
            labels(**{"app.kubernetes.io/managed-by": "someone-else"}),
            "spec.secretTemplate.metadata.labels",
            "is reserved",
            id="managed-by",
        ),
        pytest.param(
            labels(**{"argocd.argoproj.io/secret-type": "cluster"}),
            "spec.secretTemplate.metadata.labels",
            "is reserved",
            id="argocd-secret-type",
        ),
        pytest.param(
            annotations({"ecr.pullsecrets.dev/expires-at": "2099-01-01T00:00:00Z"}),
            "spec.secretTemplate.metadata.annotations",
            "is reserved",
            id="our-domain",
        ),
        pytest.param(
            annotations({"x.ecr.pullsecrets.dev/a": "b"}),
            "spec.secretTemplate.metadata.annotations",
            "is reserved",
            id="our-subdomain",
        ),
        pytest.param(
            annotations({"kubernetes.io/service-account.name": "default"}),
            "spec.secretTemplate.metadata.annotations",
            "is reserved",
            id="kubernetes-io",
        ),
        pytest.param(
            annotations({"kubectl.kubernetes.io/last-applied-configuration": "{}"}),
            "spec.secretTemplate.metadata.annotations",
            "is reserved",
            id="kubernetes-io-subdomain",
        ),
        pytest.param(
            labels(**{"k8s.io/x": "y"}), "spec.secretTemplate.metadata.labels", "is reserved", id="k8s-io"
        ),
        pytest.param(
            labels(**{"Bad Key": "v"}),
            "spec.secretTemplate.metadata.labels",
            "must be a label key",
            id="label-key-pattern",
        ),
        pytest.param(
            labels(**{f"{LONG_PREFIX}a/n": "v"}),
            "spec.secretTemplate.metadata.labels",
            "must be a label key",
            id="label-key-prefix-too-long",
        ),
        pytest.param(
            labels(**{"n" * 64: "v"}),
            "spec.secretTemplate.metadata.labels",
            "must be a label key",
            id="label-key-name-too-long",
        ),
        pytest.param(
            labels(team="a b"),
            "spec.secretTemplate.metadata.labels.team",
            "must be a label value",
            id="label-value-pattern",
        ),
        pytest.param(
            labels(team="v" * 64),
            "spec.secretTemplate.metadata.labels.team",
            "at most 63 characters",
            id="label-value-too-long",
        ),
        pytest.param(
            labels(team=1),
            "spec.secretTemplate.metadata.labels.team",
            "must be a string",
            id="label-value-not-string",
        ),
        pytest.param(
            annotations({"note": "v" * 1025}),
            "spec.secretTemplate.metadata.annotations.note",
            "at most 1024 characters",
            id="annotation-value-too-long",
        ),
        pytest.param(
            annotations({"note": "two\nlines"}),
            "spec.secretTemplate.metadata.annotations.note",
            "printable text on one line",
            id="annotation-value-newline",
        ),
    ],
)
def test_parser_refuses(raw: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(raw, default_name="pull")

    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("key", "reserved"),
    [
        ("team", False),
        ("example.com/owner", False),
        ("app.kubernetes.io/part-of", False),
        ("app.kubernetes.io/name", False),
        ("argocd.argoproj.io/sync-options", False),
        ("kubernetes.io.example.com/x", False),
        ("mykubernetes.io/x", False),
        ("notk8s.io/x", False),
        ("app.kubernetes.io/managed-by", True),
        ("argocd.argoproj.io/secret-type", True),
        ("kubernetes.io/x", True),
        ("k8s.io/x", True),
        ("node.k8s.io/x", True),
        ("kubectl.kubernetes.io/last-applied-configuration", True),
        ("ecr.pullsecrets.dev/chain", True),
        ("a.b.ecr.pullsecrets.dev/x", True),
    ],
)
def test_reserved_keys(key: str, reserved: bool) -> None:
    assert rules.reserved_key(key) is reserved


# -- the cache's summary and drift -----------------------------------------------------------------


@pytest.mark.parametrize("output", [DEFAULT, ARGOCD, BASIC, TEMPLATE], ids=["dcj", "argocd", "basic", "tpl"])
def test_a_fresh_secret_of_every_shape_is_ok(output: Output) -> None:
    view = seen(build(output))

    assert view.content_ok
    assert view.hosts == {US}
    assert view.type == output.shape.secret_type
    assert examine(view, UID, [US], EXPIRES_AT, output) is SecretState.OK


def test_a_pull_secret_without_a_template_adds_nothing_to_the_cache() -> None:
    view = seen(build())

    assert view.marks == frozenset()
    assert view.marks is NO_MARKS  # one shared empty set


def test_the_summary_keeps_no_secret_data() -> None:
    for output in (DEFAULT, ARGOCD, BASIC, TEMPLATE):
        text = repr(seen(build(output)))
        assert TOKEN not in text
        assert base64.b64encode(TOKEN.encode()).decode() not in text


def tampered(output: Output, change: str) -> dict[str, Any]:  # noqa: PLR0912  # a table in code
    body = build(output)
    meta, data = body["metadata"], body["data"]
    match change:
        case "key-removed":
            data.pop(sorted(data)[0])
        case "password-changed":
            key = api.SECRET_KEY if api.SECRET_KEY in data else "password"
            data[key] = base64.b64encode(b"other").decode()
        case "url-changed":
            data["url"] = base64.b64encode(EU.encode()).decode()
        case "registry-annotation-changed":
            meta["annotations"]["ecr.pullsecrets.dev/registry"] = EU
        case "argocd-label-changed":
            meta["labels"]["argocd.argoproj.io/secret-type"] = "repository"
        case "argocd-label-removed":
            del meta["labels"]["argocd.argoproj.io/secret-type"]
        case "template-label-changed":
            meta["labels"]["team"] = "other"
        case "template-label-removed":
            del meta["labels"]["team"]
        case "template-annotation-changed":
            meta["annotations"]["example.com/owner"] = "someone"
        case "managed-by-removed":
            del meta["labels"][api.MANAGED_BY_LABEL]
        case "foreign-label-added":
            meta["labels"]["other-tool/seen"] = "yes"
        case "foreign-annotation-added":
            meta["annotations"]["other-tool/note"] = "x" * 5000
        case "extra-data-key":
            data["extra"] = base64.b64encode(b"x").decode()
        case _:
            raise AssertionError(change)
    return body


@pytest.mark.parametrize(
    ("output", "change", "state"),
    [
        (DEFAULT, "key-removed", SecretState.STALE),
        (DEFAULT, "password-changed", SecretState.STALE),
        (ARGOCD, "key-removed", SecretState.STALE),
        (ARGOCD, "password-changed", SecretState.STALE),
        (ARGOCD, "url-changed", SecretState.STALE),
        (ARGOCD, "registry-annotation-changed", SecretState.STALE),
        (ARGOCD, "argocd-label-changed", SecretState.STALE),
        (ARGOCD, "argocd-label-removed", SecretState.STALE),
        (ARGOCD, "managed-by-removed", SecretState.STALE),
        (BASIC, "key-removed", SecretState.STALE),
        (BASIC, "password-changed", SecretState.STALE),
        (BASIC, "registry-annotation-changed", SecretState.STALE),
        (TEMPLATE, "template-label-changed", SecretState.STALE),
        (TEMPLATE, "template-label-removed", SecretState.STALE),
        (TEMPLATE, "template-annotation-changed", SecretState.STALE),
        # Others may add to a Secret; their additions stay and are no drift.
        (TEMPLATE, "foreign-label-added", SecretState.OK),
        (ARGOCD, "foreign-label-added", SecretState.OK),
        (BASIC, "foreign-annotation-added", SecretState.OK),
        (ARGOCD, "extra-data-key", SecretState.OK),
        (DEFAULT, "extra-data-key", SecretState.OK),
    ],
    ids=lambda v: v.type if isinstance(v, Output) else str(v),
)
def test_drift(output: Output, change: str, state: SecretState) -> None:
    assert examine(seen(tampered(output, change)), UID, [US], EXPIRES_AT, output) is state


@pytest.mark.parametrize(
    ("written", "wanted"),
    [
        (DEFAULT, ARGOCD),
        (DEFAULT, BASIC),
        (ARGOCD, BASIC),
        (BASIC, DEFAULT),
        (DEFAULT, TEMPLATE),  # a template added: its labels are missing
        (replace(TEMPLATE, labels=(("team", "x"),)), TEMPLATE),
    ],
    ids=["dcj-argocd", "dcj-basic", "argocd-basic", "basic-dcj", "template-added", "template-changed"],
)
def test_a_changed_output_makes_the_secret_stale(written: Output, wanted: Output) -> None:
    assert examine(seen(build(written)), UID, [US], EXPIRES_AT, wanted) is SecretState.STALE


def test_a_key_dropped_from_the_template_is_drift() -> None:
    """The Secret's ecr.pullsecrets.dev/template annotation lists the keys its template set."""
    view = seen(build(TEMPLATE))

    assert view.annotations["ecr.pullsecrets.dev/template"] == "a:example.com/owner,l:team"
    assert examine(view, UID, [US], EXPIRES_AT, DEFAULT) is SecretState.STALE
    assert examine(view, UID, [US], EXPIRES_AT, replace(TEMPLATE, annotations=())) is SecretState.STALE


def test_a_tampered_template_annotation_is_drift() -> None:
    body = build(TEMPLATE)
    body["metadata"]["annotations"]["ecr.pullsecrets.dev/template"] = "l:team"

    assert examine(seen(body), UID, [US], EXPIRES_AT, TEMPLATE) is SecretState.STALE


@pytest.mark.parametrize(
    ("recorded", "wanted", "labels", "annotations"),
    [
        pytest.param("", DEFAULT, {}, {}, id="never-templated"),
        pytest.param("a:example.com/owner,l:team", TEMPLATE, {}, {}, id="unchanged"),
        pytest.param(
            "a:example.com/owner,l:team",
            DEFAULT,
            {"team": None},
            {"example.com/owner": None, "ecr.pullsecrets.dev/template": None},
            id="template-removed",
        ),
        pytest.param(
            "a:example.com/owner,l:old,l:team",
            TEMPLATE,
            {"old": None},
            {},
            id="one-label-dropped",
        ),
        pytest.param(
            "l:app.kubernetes.io/managed-by,l:argocd.argoproj.io/secret-type,a:ecr.pullsecrets.dev/chain,"
            "a:kubernetes.io/x,a:example.com/owner,l:team",
            TEMPLATE,
            {},
            {},
            id="reserved-keys-never-removed",
        ),
        pytest.param(",,x,l:,l:team,a:example.com/owner", TEMPLATE, {}, {}, id="garbage"),
    ],
)
def test_without_dropped(
    recorded: str, wanted: Output, labels: dict[str, None], annotations: dict[str, None]
) -> None:
    manifest = build(wanted)
    patch = without_dropped(manifest, recorded)

    meta, written = patch["metadata"], manifest["metadata"]
    assert meta["labels"] == {**labels, **written["labels"]}
    assert meta["annotations"] == {**annotations, **written["annotations"]}
    assert patch["data"] == manifest["data"]


def test_plan_work_rewrites_a_tampered_argocd_secret() -> None:
    subject = resource(issued())
    subject = replace(subject, spec=replace(subject.spec, output=ARGOCD))
    body = tampered(ARGOCD, "argocd-label-changed")
    body["metadata"]["ownerReferences"][0]["uid"] = subject.uid
    body["metadata"]["annotations"][api.EXPIRES_AT_ANNOTATION] = format_time(subject.status.expires_at)
    inp = Input(resource=subject, now=NOW, namespaces=("team-a",), secrets={"team-a": seen(body)})

    work = plan_work(inp, RenewalPolicy(jitter=0.0))

    assert work.write_to == ("team-a",)


# -- adoption ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "wanted", "refused"),
    [
        ("Opaque", "Opaque", None),
        ("kubernetes.io/basic-auth", "kubernetes.io/basic-auth", None),
        ("kubernetes.io/dockerconfigjson", "Opaque", "cannot become Opaque"),
        ("Opaque", "kubernetes.io/basic-auth", "cannot become kubernetes.io/basic-auth"),
    ],
)
def test_adoption_wants_the_outputs_type(existing: str, wanted: str, refused: str | None) -> None:
    found = adoption.refusal({"name": "pull"}, existing, UID, "Adopt", api.KIND, wanted_type=wanted)

    assert found is None if refused is None else refused in (found or "")
