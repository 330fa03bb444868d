"""doctor's verdicts and report (plan/doctor.py), and the one list of operator permissions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecr_pull_secrets.kube.permissions import OPERATOR_PERMISSIONS, Permission, rbac_rules
from ecr_pull_secrets.model.identity import Auth, RoleHop, SecretRef, ServiceAccountRef
from ecr_pull_secrets.plan import doctor
from ecr_pull_secrets.plan.doctor import Check, Verdict
from ecr_pull_secrets.plan.verify import Answer

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


# -- the permissions ---------------------------------------------------------------------------------

REQUIRED = {
    ("ecrpullsecrets", ""): {"get", "list", "watch", "patch"},
    ("ecrpullsecrets", "status"): {"patch"},
    ("clusterecrpullsecrets", ""): {"get", "list", "watch", "patch"},
    ("clusterecrpullsecrets", "status"): {"patch"},
    ("secrets", ""): {"get", "list", "watch", "create", "patch", "delete"},
    ("serviceaccounts", ""): {"get", "list", "watch", "patch"},
    ("serviceaccounts", "token"): {"create"},
    ("namespaces", ""): {"list", "watch"},
    ("events", ""): {"create"},
    ("customresourcedefinitions", ""): {"list", "watch"},
}


def test_the_operator_permissions_are_exactly_these() -> None:
    granted: dict[tuple[str, str], set[str]] = {}
    for p in OPERATOR_PERMISSIONS:
        granted.setdefault((p.resource, p.subresource), set()).add(p.verb)
    assert granted == REQUIRED
    assert len(set(OPERATOR_PERMISSIONS)) == len(OPERATOR_PERMISSIONS)
    groups = {p.resource: p.group for p in OPERATOR_PERMISSIONS}
    assert groups["ecrpullsecrets"] == groups["clusterecrpullsecrets"] == "ecr.pullsecrets.dev"
    assert groups["customresourcedefinitions"] == "apiextensions.k8s.io"
    assert groups["secrets"] == groups["events"] == ""


def test_permissions_read_like_kubectl_auth_can_i() -> None:
    assert str(Permission("create", "", "serviceaccounts", "token")) == "create serviceaccounts/token"
    assert str(Permission("patch", "ecr.pullsecrets.dev", "ecrpullsecrets", "status")) == (
        "patch ecrpullsecrets.ecr.pullsecrets.dev/status"
    )
    assert str(Permission("list", "apiextensions.k8s.io", "customresourcedefinitions")) == (
        "list customresourcedefinitions.apiextensions.k8s.io"
    )


def test_rbac_rules_grant_every_permission_once() -> None:
    rules = rbac_rules()
    back = {
        Permission(verb, group, *resource.partition("/")[::2])
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert back == set(OPERATOR_PERMISSIONS)
    assert {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]} in rules


# -- the checks ------------------------------------------------------------------------------------


def test_rbac_names_every_missing_permission() -> None:
    user = "system:serviceaccount:ops:eps"
    ok = doctor.rbac(user, [("get secrets", True), ("list secrets", True)])
    assert ok == doctor.passed(f"RBAC: {user} has all 2 permissions the operator needs")

    bad = doctor.rbac(user, [("get secrets", True), ("delete secrets", False), ("patch events", False)])
    assert bad.verdict is Verdict.FAIL
    assert bad.summary == f"RBAC: {user} lacks 2 of 3 permissions: delete secrets, patch events"
    assert "ClusterRole" in bad.fix


@pytest.mark.parametrize(
    ("established", "verdict", "words"),
    [
        (True, Verdict.PASS, "is installed"),
        (False, Verdict.FAIL, "not Established"),
        (None, Verdict.FAIL, "not installed"),
    ],
)
def test_crd(established: bool | None, verdict: Verdict, words: str) -> None:
    check = doctor.crd("ecrpullsecrets.ecr.pullsecrets.dev", established)
    assert check.verdict is verdict
    assert words in check.summary
    assert bool(check.fix) == (verdict is Verdict.FAIL)


@pytest.mark.parametrize(
    ("reason", "fragment"),
    [
        ("AccessDenied", f"`ecr-pull-secrets iam-policy --registry {HOST}`"),
        ("NoCredentials", "IRSA or EKS Pod Identity"),
        ("InvalidCredentials", "trust policy"),
        ("Throttled", "--aws-rate-limit"),
        ("AwsUnreachable", "VPC endpoints"),
        ("AuthNotAllowed", "--policy"),
        ("AuthUnresolved", "eks.amazonaws.com/role-arn"),
        ("SecretConflict", "spec.secretName"),
        ("SomethingNew", "operator's logs"),
    ],
)
def test_every_reason_has_a_one_line_fix(reason: str, fragment: str) -> None:
    fix = doctor.fix_for(reason, HOST)
    assert fragment in fix
    assert "\n" not in fix


def test_token_checks_never_show_the_token() -> None:
    good = doctor.token(HOST, "arn:aws:sts::1:user/me", datetime(2030, 1, 1, tzinfo=UTC))
    assert good == doctor.passed(
        f"token for {HOST} with arn:aws:sts::1:user/me (valid until 2030-01-01T00:00:00Z)"
    )
    bad = doctor.token_failed(
        HOST, "AccessDenied", "ecr:GetAuthorizationToken in us-east-1 failed: AccessDenied"
    )
    assert bad.verdict is Verdict.FAIL
    assert HOST in bad.fix


def test_conditions() -> None:
    def status(*conditions: dict[str, str]) -> dict[str, object]:
        return {"conditions": list(conditions)}

    ready = {"type": "Ready", "status": "True", "reason": "Renewed", "message": "Secret app holds tokens"}
    degraded = {"type": "Degraded", "status": "True", "reason": "Throttled", "message": "slow down"}
    refused = {"type": "Ready", "status": "False", "reason": "AuthNotAllowed", "message": "no"}

    assert doctor.conditions("EcrPullSecret", "a", "app", status(ready)).verdict is Verdict.PASS
    assert doctor.conditions(
        "EcrPullSecret", "a", "app", status(ready, {**degraded, "status": "False"})
    ).verdict is (Verdict.PASS)
    check = doctor.conditions("EcrPullSecret", "a", "app", status(ready, degraded))
    assert (check.verdict, check.summary) == (
        Verdict.FAIL,
        "EcrPullSecret a/app is Degraded (Throttled): slow down",
    )
    check = doctor.conditions("EcrPullSecret", "a", "app", status(refused))
    assert check.summary == "EcrPullSecret a/app is not Ready (AuthNotAllowed): no"
    assert "--policy" in check.fix
    assert "not reconciled" in doctor.conditions("EcrPullSecret", "a", "app", {}).summary


def test_only_the_operator_identity_is_checked_for_tokens() -> None:
    chain = (RoleHop("arn:aws:iam::1:role/a"), RoleHop("arn:aws:iam::2:role/b"))
    assert doctor.checks_tokens(Auth())
    for auth, said in [
        (Auth(role_chain=chain), "the operator's identity → arn:aws:iam::1:role/a → arn:aws:iam::2:role/b"),
        (Auth(service_account=ServiceAccountRef("puller")), "ServiceAccount puller"),
        (Auth(secret=SecretRef("keys")), "static keys from Secret keys"),
    ]:
        assert not doctor.checks_tokens(auth)
        check = doctor.tokens_not_checked(auth)
        assert check.verdict is Verdict.SKIP
        assert check.summary == (
            f"tokens not checked: spec.auth uses {said}; doctor checks only the operator-identity path"
        )


# -- the report ------------------------------------------------------------------------------------


def test_render_and_exit_code() -> None:
    checks = [
        doctor.passed("AWS identity: arn:aws:sts::1:user/me"),
        doctor.failed("CRD x is not installed", "install it"),
        doctor.skipped("tokens not checked: why"),
    ]
    assert doctor.render(checks) == (
        "✓ AWS identity: arn:aws:sts::1:user/me\n"
        "✗ CRD x is not installed\n"
        "  fix: install it\n"
        "- tokens not checked: why\n"
        "1 passed, 1 failed, 1 skipped"
    )
    assert doctor.exit_code(checks) == 1
    assert doctor.exit_code([checks[0], checks[2]]) == 0
    assert doctor.render([checks[0]]).endswith("\n1 passed, 0 failed")


# -- doctor --image ------------------------------------------------------------------------------

IMAGE_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
COVER = doctor.Covering("EcrPullSecret", "app", "app-ecr", "arn:aws:sts::123456789012:assumed-role/r/s")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        pytest.param(f"{IMAGE_HOST}/team/app:v1", "team/app:v1", id="tag"),
        pytest.param(f"{IMAGE_HOST}/team/app", "team/app:latest", id="no-tag-is-latest"),
        pytest.param(f"{IMAGE_HOST}/app@sha256:" + "0" * 64, "app@sha256:" + "0" * 64, id="digest"),
        pytest.param(f"{IMAGE_HOST}:443/app:v1", "is not an Amazon ECR registry host", id="port"),
        pytest.param("docker.io/library/nginx:1", "is not an Amazon ECR registry host", id="not-ecr"),
        pytest.param(f"{IMAGE_HOST}/Team/App:v1", "is not REPOSITORY[:TAG]", id="upper-case"),
        pytest.param(f"{IMAGE_HOST}/app@sha256:abc", "is not REPOSITORY[:TAG]", id="short-digest"),
        pytest.param(f"{IMAGE_HOST}/", "is not REPOSITORY[:TAG]", id="no-repository"),
    ],
)
def test_parse_image(reference: str, expected: str) -> None:
    parsed = doctor.parse_image(reference)
    if isinstance(parsed, str):
        assert expected in parsed
        check = doctor.image(reference, parsed)
        assert check.verdict is Verdict.FAIL
        assert "ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG" in check.fix
    else:
        assert (parsed.registry.host, parsed.image) == (IMAGE_HOST, expected)
        assert doctor.image(reference, parsed).summary == (
            f"image {IMAGE_HOST}/{expected}: account 123456789012, region us-east-1"
        )


@pytest.mark.parametrize(
    ("check", "verdict", "fragments"),
    [
        pytest.param(
            doctor.coverage("team", IMAGE_HOST, []),
            Verdict.FAIL,
            ("no EcrPullSecret or ClusterEcrPullSecret writes a Secret", f"spec.registries: [{IMAGE_HOST}]"),
            id="not-covered",
        ),
        pytest.param(
            doctor.coverage("team", IMAGE_HOST, [COVER]),
            Verdict.PASS,
            ("covered by EcrPullSecret app (Secret app-ecr)",),
            id="covered",
        ),
        pytest.param(
            doctor.secret("team", COVER, IMAGE_HOST, None),
            Verdict.FAIL,
            ("Secret team/app-ecr does not exist", "Ready condition"),
            id="secret-missing",
        ),
        pytest.param(
            doctor.secret("team", COVER, IMAGE_HOST, False),
            Verdict.FAIL,
            (f"holds no credentials for {IMAGE_HOST}", "spec.registries"),
            id="secret-without-host",
        ),
        pytest.param(
            doctor.secret("team", COVER, IMAGE_HOST, True), Verdict.PASS, ("holds",), id="secret-ok"
        ),
        pytest.param(
            doctor.image_pull_secrets("team", "default", "app-ecr", False),
            Verdict.FAIL,
            ("does not list app-ecr in imagePullSecrets", "spec.serviceAccounts"),
            id="account-not-patched",
        ),
        pytest.param(
            doctor.image_pull_secrets("team", "default", "app-ecr", None),
            Verdict.FAIL,
            ("ServiceAccount team/default does not exist",),
            id="account-missing",
        ),
        pytest.param(
            doctor.image_pull_secrets("team", "default", "app-ecr", True),
            Verdict.PASS,
            ("lists",),
            id="patched",
        ),
        pytest.param(doctor.token_identity(None), Verdict.SKIP, ("status.identity",), id="identity-unknown"),
        pytest.param(
            doctor.token_identity("arn:x", own=True), Verdict.PASS, ("your AWS identity",), id="own"
        ),
        pytest.param(
            doctor.registry(Answer(IMAGE_HOST, None, 200), None),
            Verdict.PASS,
            (f"{IMAGE_HOST} accepts the token (GET /v2/)",),
            id="v2-ok",
        ),
        pytest.param(
            doctor.registry(Answer(IMAGE_HOST, "team/app:v1", 403), "arn:role"),
            Verdict.FAIL,
            ("[Forbidden]", "allow arn:role ecr:BatchGetImage", "repository/team/app"),
            id="forbidden",
        ),
        pytest.param(
            doctor.registry(Answer(IMAGE_HOST, None, 401, "Not Authorized"), None),
            Verdict.FAIL,
            ("[Unauthorized]", "force-refresh"),
            id="revoked",
        ),
    ],
)
def test_image_checks(check: Check, verdict: Verdict, fragments: tuple[str, ...]) -> None:
    assert check.verdict is verdict
    text = f"{check.summary} {check.fix}"
    for fragment in fragments:
        assert fragment in text
