"""plan.content: the dockerconfigjson payload, the managed Secret around it, and reading it back."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.credential import Credential, RegistryToken
from ecr_pull_secrets.model.dockerconfig import digest, registries_in
from ecr_pull_secrets.plan.content import (
    Owner,
    desired_secret,
    dockerconfigjson,
    is_controlled_by,
    tokens_in,
)
from tests.unit.factories import ago, later

US = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
US_2 = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
EU = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
US_CRED = Credential("AWS", "us-token")
EU_CRED = Credential("AWS", "eu-token")
OWNER = Owner("ecr.pullsecrets.dev/v1alpha1", "EcrPullSecret", "pull", "uid-1")
CHAIN = "3f1c2b9a0d8e7f6a5b4c"
ISSUED_AT = ago(hours=1)
EXPIRES_AT = later(hours=11)


def managed(credentials: dict[str, Credential], chain_key: str = CHAIN) -> dict[str, Any]:
    return desired_secret(
        name="pull",
        namespace="team-a",
        owner=OWNER,
        credentials=credentials,
        issued_at=ISSUED_AT,
        expires_at=EXPIRES_AT,
        chain_key=chain_key,
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stamped(data: dict[str, str], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """`metadata` (default: a managed Secret's) with the content digest of `data`, as if we wrote it."""
    metadata = metadata if metadata is not None else managed({US: US_CRED})["metadata"]
    annotations = {**metadata.get("annotations", {}), api.CONTENT_DIGEST_ANNOTATION: digest(data)}
    return {**metadata, "annotations": annotations}


@pytest.mark.parametrize(
    ("credentials", "auths"),
    [
        pytest.param({}, {}, id="none"),
        pytest.param(
            {US: US_CRED},
            {US: {"username": "AWS", "password": "us-token", "auth": b64("AWS:us-token")}},
            id="one",
        ),
        pytest.param(
            {EU: EU_CRED, US: US_CRED, US_2: US_CRED},
            {
                US: {"username": "AWS", "password": "us-token", "auth": b64("AWS:us-token")},
                US_2: {"username": "AWS", "password": "us-token", "auth": b64("AWS:us-token")},
                EU: {"username": "AWS", "password": "eu-token", "auth": b64("AWS:eu-token")},
            },
            id="several-hosts-shared-token",
        ),
        pytest.param(
            {US: Credential("AWS", "a:b=c")},
            {US: {"username": "AWS", "password": "a:b=c", "auth": "QVdTOmE6Yj1j"}},
            id="colon-in-password",
        ),
    ],
)
def test_dockerconfigjson(credentials: dict[str, Credential], auths: dict[str, Any]) -> None:
    assert json.loads(dockerconfigjson(credentials)) == {"auths": auths}


def test_dockerconfigjson_is_canonical() -> None:
    """The same credentials give byte-identical data, so an unchanged Secret is never rewritten."""
    forward = dockerconfigjson({US: US_CRED, EU: EU_CRED})
    backward = dockerconfigjson({EU: EU_CRED, US: US_CRED})

    assert forward == backward
    assert forward.startswith('{"auths":{"123456789012.dkr.ecr.eu-west-1')
    assert " " not in forward


def test_desired_secret() -> None:
    secret = desired_secret(
        name="pull",
        namespace="team-a",
        owner=OWNER,
        credentials={US: US_CRED, EU: EU_CRED},
        issued_at=ago(minutes=5),
        expires_at=later(hours=12),
        chain_key=CHAIN,
    )

    data = secret.pop("data")
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": "pull",
            "namespace": "team-a",
            "labels": {"app.kubernetes.io/managed-by": "ecr-pull-secret-operator"},
            "annotations": {
                "ecr.pullsecrets.dev/expires-at": "2025-03-02T00:00:00Z",
                "ecr.pullsecrets.dev/issued-at": "2025-03-01T11:55:00Z",
                "ecr.pullsecrets.dev/chain": CHAIN,
                "ecr.pullsecrets.dev/content-sha256": sha256(data[".dockerconfigjson"]),
            },
            "ownerReferences": [
                {
                    "apiVersion": "ecr.pullsecrets.dev/v1alpha1",
                    "kind": "EcrPullSecret",
                    "name": "pull",
                    "uid": "uid-1",
                    "controller": True,
                }
            ],
        },
    }
    assert list(data) == [".dockerconfigjson"]
    assert base64.b64decode(data[".dockerconfigjson"]).decode() == dockerconfigjson(
        {US: US_CRED, EU: EU_CRED}
    )


def test_registries_in_reads_back_desired_secret() -> None:
    written = managed({US: US_CRED, US_2: US_CRED, EU: EU_CRED})

    assert registries_in(written["data"]) == {US, US_2, EU}


GARBAGE = [
    pytest.param({}, id="no-key"),
    pytest.param({"other": b64('{"auths":{"x":{"username":"AWS","password":"p"}}}')}, id="other-key-only"),
    pytest.param({api.SECRET_KEY: ""}, id="empty"),
    pytest.param({api.SECRET_KEY: "abc"}, id="bad-padding"),
    pytest.param({api.SECRET_KEY: "!!!!"}, id="not-base64"),
    pytest.param({api.SECRET_KEY: "é"}, id="non-ascii"),
    pytest.param({api.SECRET_KEY: base64.b64encode(b"\xff\xfe").decode()}, id="not-utf8"),
    pytest.param({api.SECRET_KEY: b64("not json")}, id="not-json"),
    pytest.param({api.SECRET_KEY: b64("null")}, id="json-null"),
    pytest.param({api.SECRET_KEY: b64("[1, 2]")}, id="json-list"),
    pytest.param({api.SECRET_KEY: b64("42")}, id="json-number"),
    pytest.param({api.SECRET_KEY: b64("{}")}, id="no-auths"),
    pytest.param({api.SECRET_KEY: b64('{"auths": ["h"]}')}, id="auths-list"),
    pytest.param({api.SECRET_KEY: b64('{"auths": "h"}')}, id="auths-string"),
    pytest.param({api.SECRET_KEY: b64('{"auths": {"a": 1, "b": null, "c": "x"}}')}, id="odd-entries"),
    pytest.param({api.SECRET_KEY: b64(f'{{"auths": {{"{US}": {{"username": "AWS"}}}}}}')}, id="no-password"),
    pytest.param(
        {api.SECRET_KEY: b64(f'{{"auths": {{"{US}": {{"username": "", "password": "p"}}}}}}')},
        id="empty-username",
    ),
    pytest.param(
        {api.SECRET_KEY: b64(f'{{"auths": {{"{US}": {{"auth": "{b64("AWS:p")}"}}}}}}')},
        id="auth-field-only",
    ),
]


@pytest.mark.parametrize(
    ("data", "hosts"),
    [
        pytest.param({}, set(), id="no-key"),
        pytest.param({"other": b64('{"auths":{"x":{}}}')}, set(), id="other-key-only"),
        pytest.param({api.SECRET_KEY: ""}, set(), id="empty"),
        pytest.param({api.SECRET_KEY: "abc"}, set(), id="bad-padding"),
        pytest.param({api.SECRET_KEY: "!!!!"}, set(), id="not-base64"),
        pytest.param({api.SECRET_KEY: "é"}, set(), id="non-ascii"),
        pytest.param({api.SECRET_KEY: base64.b64encode(b"\xff\xfe").decode()}, set(), id="not-utf8"),
        pytest.param({api.SECRET_KEY: b64("not json")}, set(), id="not-json"),
        pytest.param({api.SECRET_KEY: b64("null")}, set(), id="json-null"),
        pytest.param({api.SECRET_KEY: b64("[1, 2]")}, set(), id="json-list"),
        pytest.param({api.SECRET_KEY: b64("42")}, set(), id="json-number"),
        pytest.param({api.SECRET_KEY: b64("{}")}, set(), id="no-auths"),
        pytest.param({api.SECRET_KEY: b64('{"auths": ["h"]}')}, set(), id="auths-list"),
        pytest.param({api.SECRET_KEY: b64('{"auths": "h"}')}, set(), id="auths-string"),
        pytest.param({api.SECRET_KEY: b64('{"auths": {"a": 1, "b": null}}')}, {"a", "b"}, id="odd-entries"),
    ],
)
def test_registries_in_tolerates_garbage(data: dict[str, str], hosts: set[str]) -> None:
    assert registries_in(data) == hosts


@pytest.mark.parametrize(
    ("meta", "controlled"),
    [
        pytest.param({"ownerReferences": [{"uid": "uid-1", "controller": True}]}, True, id="controller"),
        pytest.param(
            {"ownerReferences": [{"uid": "x", "controller": True}, {"uid": "uid-1", "controller": True}]},
            True,
            id="second-reference",
        ),
        pytest.param(
            {"ownerReferences": [{"uid": "uid-1", "controller": False}]}, False, id="owner-not-controller"
        ),
        pytest.param({"ownerReferences": [{"uid": "uid-1"}]}, False, id="controller-unset"),
        pytest.param({"ownerReferences": [{"uid": "uid-2", "controller": True}]}, False, id="other-uid"),
        pytest.param({"ownerReferences": []}, False, id="empty-references"),
        pytest.param({"ownerReferences": None}, False, id="null-references"),
        pytest.param({}, False, id="no-references"),
    ],
)
def test_is_controlled_by(meta: dict[str, Any], controlled: bool) -> None:
    assert is_controlled_by(meta, "uid-1") is controlled


def test_desired_secret_is_controlled_by_its_owner() -> None:
    written = managed({US: US_CRED})

    assert is_controlled_by(written["metadata"], "uid-1") is True
    assert is_controlled_by(written["metadata"], "uid-2") is False


# -- tokens_in: what a restarted operator may reuse --------------------------------------------


def test_tokens_in_reads_back_what_desired_secret_wrote() -> None:
    written = managed({US: US_CRED, US_2: US_CRED, EU: EU_CRED})

    tokens = tokens_in(written["metadata"], written["data"], CHAIN)

    assert tokens == {
        US: RegistryToken(US_CRED, ISSUED_AT, EXPIRES_AT),
        US_2: RegistryToken(US_CRED, ISSUED_AT, EXPIRES_AT),
        EU: RegistryToken(EU_CRED, ISSUED_AT, EXPIRES_AT),
    }
    assert tokens[US].credential.password == "us-token"
    assert (
        dockerconfigjson({h: t.credential for h, t in tokens.items()})
        == base64.b64decode(written["data"][api.SECRET_KEY]).decode()
    ), "rewriting what was read changes nothing"


def test_tokens_in_reads_the_annotation_times() -> None:
    metadata = {
        "annotations": {
            api.CHAIN_ANNOTATION: CHAIN,
            api.ISSUED_AT_ANNOTATION: "2025-03-01T02:03:04Z",
            api.EXPIRES_AT_ANNOTATION: "2025-03-01T14:03:04+00:00",
        }
    }
    data = {api.SECRET_KEY: b64(dockerconfigjson({US: US_CRED}))}

    (token,) = tokens_in(metadata, data, CHAIN).values()

    assert token.issued_at == ago(hours=9, minutes=56, seconds=56)
    assert token.expires_at == later(hours=2, minutes=3, seconds=4)


def without(annotation: str) -> dict[str, Any]:
    metadata: dict[str, Any] = managed({US: US_CRED})["metadata"]
    del metadata["annotations"][annotation]
    return metadata


@pytest.mark.parametrize(
    ("metadata", "chain_key"),
    [
        pytest.param(managed({US: US_CRED})["metadata"], "0000000000other00000", id="other-chain"),
        pytest.param(managed({US: US_CRED})["metadata"], "", id="empty-chain-asked"),
        pytest.param(managed({US: US_CRED}, chain_key="")["metadata"], CHAIN, id="empty-chain-written"),
        pytest.param(without(api.CHAIN_ANNOTATION), CHAIN, id="no-chain-annotation"),
        pytest.param(without(api.EXPIRES_AT_ANNOTATION), CHAIN, id="no-expires-at"),
        pytest.param(without(api.ISSUED_AT_ANNOTATION), CHAIN, id="no-issued-at"),
        pytest.param({"annotations": {}}, CHAIN, id="no-annotations"),
        pytest.param({"annotations": None}, CHAIN, id="null-annotations"),
        pytest.param({}, CHAIN, id="no-metadata"),
    ],
)
def test_tokens_in_reuses_nothing_unless_the_same_chain_wrote_it(
    metadata: dict[str, Any], chain_key: str
) -> None:
    data = managed({US: US_CRED})["data"]

    assert tokens_in(metadata, data, chain_key) == {}


@pytest.mark.parametrize("data", GARBAGE)
def test_tokens_in_tolerates_garbage_data(data: dict[str, str]) -> None:
    """With a digest that matches the garbage, so the parsing itself is what refuses it."""
    assert tokens_in(stamped(data), data, CHAIN) == {}


def test_tokens_in_skips_only_the_unusable_entries() -> None:
    auths = {
        US: {"username": "AWS", "password": "us-token"},
        EU: {"username": "AWS"},
        US_2: "not an entry",
    }
    data = {api.SECRET_KEY: b64(json.dumps({"auths": auths}))}

    tokens = tokens_in(stamped(data), data, CHAIN)

    assert tokens == {US: RegistryToken(US_CRED, ISSUED_AT, EXPIRES_AT)}


@pytest.mark.parametrize(
    "annotation", [api.EXPIRES_AT_ANNOTATION, api.ISSUED_AT_ANNOTATION], ids=["expires-at", "issued-at"]
)
@pytest.mark.parametrize("chain_key", [CHAIN, "0000000000other00000"], ids=["same-chain", "other-chain"])
def test_tokens_in_tolerates_malformed_times(annotation: str, chain_key: str) -> None:
    written = managed({US: US_CRED})
    written["metadata"]["annotations"][annotation] = "tomorrow"

    assert tokens_in(written["metadata"], written["data"], chain_key) == {}


# -- the content digest: edits by anyone else show as drift ------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({}, sha256(""), id="no-key"),
        pytest.param({api.SECRET_KEY: ""}, sha256(""), id="empty"),
        pytest.param({api.SECRET_KEY: "eyJhdXRocyI6e319"}, sha256("eyJhdXRocyI6e319"), id="as-written"),
        pytest.param(
            {api.SECRET_KEY: "eyJhdXRocyI6e319", "extra": "x"},
            sha256("eyJhdXRocyI6e319"),
            id="other-keys-ignored",
        ),
        pytest.param({"extra": "x"}, sha256(""), id="other-key-only"),
    ],
)
def test_digest(data: dict[str, str], expected: str) -> None:
    assert digest(data) == expected


def test_digest_of_an_empty_payload_is_the_sha256_of_nothing() -> None:
    assert digest({}) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


EDITED = {api.SECRET_KEY: b64(dockerconfigjson({US: Credential("AWS", "planted")}))}


def with_digest(value: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = managed({US: US_CRED})["metadata"]
    if value is None:
        del metadata["annotations"][api.CONTENT_DIGEST_ANNOTATION]
    else:
        metadata["annotations"][api.CONTENT_DIGEST_ANNOTATION] = value
    return metadata


@pytest.mark.parametrize(
    ("metadata", "data", "reused"),
    [
        pytest.param(
            managed({US: US_CRED})["metadata"], managed({US: US_CRED})["data"], True, id="as-written"
        ),
        pytest.param(managed({US: US_CRED})["metadata"], EDITED, False, id="data-edited"),
        pytest.param(with_digest(None), managed({US: US_CRED})["data"], True, id="no-digest-written-before"),
        pytest.param(with_digest(""), managed({US: US_CRED})["data"], False, id="digest-emptied"),
        pytest.param(with_digest("0" * 64), managed({US: US_CRED})["data"], False, id="digest-edited"),
        pytest.param(
            with_digest(digest(managed({US: US_CRED})["data"]).upper()),
            managed({US: US_CRED})["data"],
            False,
            id="digest-case-differs",
        ),
        pytest.param(stamped(EDITED), EDITED, True, id="edited-and-restamped"),
    ],
)
def test_tokens_in_refuses_data_that_does_not_match_its_digest(
    metadata: dict[str, Any], data: dict[str, str], reused: bool
) -> None:
    tokens = tokens_in(metadata, data, CHAIN)

    password = "planted" if data is EDITED else "us-token"
    assert tokens == (
        {US: RegistryToken(Credential("AWS", password), ISSUED_AT, EXPIRES_AT)} if reused else {}
    )
