"""plan.verify: what a registry's answers mean for the Verified condition, and what to fix."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.resource import parse_spec
from ecr_pull_secrets.plan.status import verified
from ecr_pull_secrets.plan.verify import Answer, authorizations, judge, result, split_image
from ecr_pull_secrets.settings import parse_endpoints
from tests.unit.factories import NOW

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
CN = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
ROLE = "arn:aws:sts::123456789012:assumed-role/puller/s"
DIGEST = "sha256:" + "ab" * 32
OK = Answer(HOST, None, 200)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(OK, "OK", id="v2-ok"),
        pytest.param(Answer(HOST, "team/app:v1", 200), "OK", id="manifest-ok"),
        pytest.param(Answer(HOST, None, 401, "Not Authorized"), "Unauthorized", id="revoked"),
        pytest.param(
            Answer(HOST, None, 403, "Your authorization token has expired. Reauthenticate and try again."),
            "Unauthorized",
            id="expired-is-a-403",
        ),
        pytest.param(Answer(HOST, "team/app:v1", 403), "Forbidden", id="denied-head-has-no-body"),
        pytest.param(Answer(HOST, "team/app:v1", 404), "NotFound", id="no-manifest"),
        pytest.param(Answer(HOST, None, 404), "RegistryError", id="no-v2-is-not-an-image"),
        pytest.param(Answer(HOST, None, 502), "RegistryError", id="bad-gateway"),
        pytest.param(Answer(HOST, None, None, "timed out"), "Unreachable", id="timeout"),
        pytest.param(Answer(HOST, None, None, "certificate not trusted", tls=True), "TLSError", id="tls"),
    ],
)
def test_result(answer: Answer, expected: str) -> None:
    assert result(answer) == expected


@pytest.mark.parametrize(
    ("answers", "reason", "fragments"),
    [
        pytest.param(
            [OK, Answer(HOST, "team/app:v1", 200), Answer(HOST, f"team/app@{DIGEST}", 200)],
            "Verified",
            (
                f"{HOST} accepts the Secret's token",
                f"2 image manifest(s) answer: team/app:v1, team/app@{DIGEST}",
            ),
            id="all-good",
        ),
        pytest.param(
            [OK, Answer(HOST, "team/denied:v1", 403)],
            "Forbidden",
            (
                f"{HOST}/team/denied:v1: 403, pull denied",
                f"allow {ROLE} ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on "
                "arn:aws:ecr:us-east-1:123456789012:repository/team/denied",
                f"`ecr-pull-secrets iam-policy --registry {HOST}`",
            ),
            id="forbidden-names-action-and-arn",
        ),
        pytest.param(
            [Answer(CN, None, 200), Answer(CN, "app:v1", 403)],
            "Forbidden",
            ("arn:aws-cn:ecr:cn-north-1:123456789012:repository/app",),
            id="forbidden-arn-in-its-partition",
        ),
        pytest.param(
            [Answer(HOST, None, 401, "Not Authorized")],
            "Unauthorized",
            ("refused the Secret's token (401): Not Authorized", "ecr.pullsecrets.dev/force-refresh"),
            id="revoked",
        ),
        pytest.param(
            [Answer(HOST, None, 403, "Your authorization token has expired. Reauthenticate and try again.")],
            "Unauthorized",
            ("the Secret's token has expired", "Ready and Degraded"),
            id="expired",
        ),
        pytest.param(
            [OK, Answer(HOST, "team/app:v9", 404)],
            "NotFound",
            (f"{HOST}/team/app:v9: no such manifest (404)", "check the repository and tag or digest"),
            id="not-found",
        ),
        pytest.param(
            [Answer(HOST, None, None, "connection refused")],
            "Unreachable",
            ("unreachable (connection refused)", "--registry-endpoint"),
            id="unreachable",
        ),
        pytest.param(
            [Answer(HOST, None, None, "certificate not trusted: self-signed", tls=True)],
            "TLSError",
            ("TLS failed (certificate not trusted: self-signed)", "--registry-ca-bundle"),
            id="tls",
        ),
        pytest.param(
            [OK, Answer(HOST, "a:v1", 404), Answer(HOST, "b:v1", 403)],
            "NotFound",
            ("a:v1",),
            id="first-failure-decides",
        ),
    ],
)
def test_judge(answers: list[Answer], reason: str, fragments: tuple[str, ...]) -> None:
    verdict = judge(answers, ROLE)
    assert (verdict.ok, verdict.reason) == (reason == "Verified", reason)
    for fragment in fragments:
        assert fragment in verdict.message


def test_forbidden_without_a_known_identity_says_whose() -> None:
    assert "allow the identity that made the token" in judge([Answer(HOST, "a:v1", 403)], None).message


def test_messages_are_bounded_whatever_the_registry_says() -> None:
    verdict = judge([Answer(HOST, None, 401, "x" * 100_000)], ROLE)
    assert len(verdict.message) < 600


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("team/app:v1", ("team/app", "v1")),
        ("app@" + DIGEST, ("app", DIGEST)),
        ("a/b/c:1.0_rc-1", ("a/b/c", "1.0_rc-1")),
    ],
)
def test_split_image(image: str, parts: tuple[str, str]) -> None:
    assert split_image(image) == parts


def _config(auths: object) -> str:
    return base64.b64encode(json.dumps({"auths": auths}).encode()).decode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(_config({HOST: {"auth": "QVdTOnB3"}}), {HOST: "QVdTOnB3"}, id="one-host"),
        pytest.param(_config({HOST: {"username": "AWS"}}), {}, id="no-auth"),
        pytest.param(_config([1]), {}, id="auths-not-an-object"),
        pytest.param("not base64!", {}, id="not-base64"),
        pytest.param(base64.b64encode(b"[]").decode(), {}, id="not-an-object"),
        pytest.param("", {}, id="empty"),
        pytest.param(
            base64.b64encode(b'{"a":' * 5000 + b"{}" + b"}" * 5000).decode(),
            {},
            id="nested-deeper-than-python-decodes",  # valid JSON: the API server takes 10,000 levels
        ),
    ],
)
def test_authorizations(data: str, expected: dict[str, str]) -> None:
    assert authorizations(data) == expected


def test_verified_condition_keeps_the_others_and_its_transition_time() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Issued", "message": "m"}
    first = verified([ready], False, "Forbidden", "no", 3, NOW)
    assert first[0] == ready
    assert first[1] | {"lastTransitionTime": None} == {
        "type": "Verified",
        "status": "False",
        "reason": "Forbidden",
        "message": "no",
        "observedGeneration": 3,
        "lastTransitionTime": None,
    }
    again = verified(first, False, "NotFound", "still no", 3, NOW + timedelta(hours=1))
    assert again[1]["lastTransitionTime"] == first[1]["lastTransitionTime"]
    fixed = verified(again, True, "Verified", "yes", 3, NOW + timedelta(hours=2))
    assert fixed[1]["lastTransitionTime"] != first[1]["lastTransitionTime"]


@pytest.mark.parametrize(
    ("verify", "images"),
    [
        pytest.param(None, (), id="absent"),
        pytest.param({}, (), id="empty"),
        pytest.param(
            {"images": ["team/app:v1", f"app@{DIGEST}"]}, ("team/app:v1", f"app@{DIGEST}"), id="both"
        ),
    ],
)
def test_spec_verify_images(verify: object, images: tuple[str, ...]) -> None:
    raw = {"registries": [HOST]} | ({} if verify is None else {"verify": verify})
    assert parse_spec(raw, "x").verify_images == images


@pytest.mark.parametrize(
    ("verify", "field"),
    [
        pytest.param({"images": ["a:v1", "a:v1"]}, "spec.verify.images", id="twice"),
        pytest.param({"images": "a:v1"}, "spec.verify.images", id="not-a-list"),
        pytest.param({"image": ["a:v1"]}, "spec.verify", id="unknown-field"),
        pytest.param({"images": ["a:latest "]}, "spec.verify.images[0]", id="trailing-space"),
    ],
)
def test_spec_verify_images_refused(verify: object, field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec({"registries": [HOST], "verify": verify}, "x")
    assert caught.value.field == field


def test_registry_endpoints() -> None:
    assert parse_endpoints([f"{HOST.upper()}=https://127.0.0.1:8443"]) == {HOST: "https://127.0.0.1:8443"}
    for bad in (HOST, f"{HOST}=http://127.0.0.1", "=https://x"):
        with pytest.raises(ValueError, match="HOST=https://"):
            parse_endpoints([bad])
