"""plan.content: the dockerconfigjson payload and the managed Secret around it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.plan.content import (
    Owner,
    desired_secret,
    dockerconfigjson,
    is_controlled_by,
    registries_in,
)
from tests.unit.factories import later

US = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
US_2 = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
EU = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
US_CRED = Credential("AWS", "us-token")
EU_CRED = Credential("AWS", "eu-token")
OWNER = Owner("ecr.pullsecrets.dev/v1alpha1", "EcrPullSecret", "pull", "uid-1")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


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
        expires_at=later(hours=12),
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
            "annotations": {"ecr.pullsecrets.dev/expires-at": "2025-03-02T00:00:00Z"},
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
    secret = desired_secret(
        name="pull",
        namespace="team-a",
        owner=OWNER,
        credentials={US: US_CRED, US_2: US_CRED, EU: EU_CRED},
        expires_at=later(hours=12),
    )

    assert registries_in(secret["data"]) == {US, US_2, EU}


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
    secret = desired_secret(
        name="pull", namespace="ns", owner=OWNER, credentials={US: US_CRED}, expires_at=later(hours=1)
    )

    assert is_controlled_by(secret["metadata"], "uid-1") is True
    assert is_controlled_by(secret["metadata"], "uid-2") is False
