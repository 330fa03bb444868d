"""The namespace policy: parse_policy (the admin's file) and check (may this namespace use this auth?)."""

from __future__ import annotations

from typing import Any

import pytest

from ecr_pull_secrets.model.identity import Auth, RoleHop, SecretRef, ServiceAccountRef
from ecr_pull_secrets.model.policy import DENY_ALL, InvalidPolicy, Policy, RoleRule, parse_policy
from ecr_pull_secrets.plan.policy import CLUSTER_SCOPED, check

ECR_PULL = "arn:aws:iam::123456789012:role/ecr-pull"
ECR_PUSH = "arn:aws:iam::123456789012:role/ecr-push"
OTHER_ACCOUNT = "arn:aws:iam::210987654321:role/ecr-pull"
ADMIN = "arn:aws:iam::123456789012:role/admin"

# -- parse_policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, DENY_ALL, id="absent"),
        pytest.param({}, DENY_ALL, id="empty"),
        pytest.param({"operatorIdentity": None, "assumeRoles": None}, DENY_ALL, id="nulls"),
        pytest.param({"operatorIdentity": {}, "assumeRoles": []}, DENY_ALL, id="empty-sections"),
        pytest.param(
            {"operatorIdentity": {"namespaces": ["platform-*", "ci"]}},
            Policy(operator_identity_namespaces=("platform-*", "ci")),
            id="operator-identity",
        ),
        pytest.param(
            {
                "assumeRoles": [
                    {"namespaces": ["team-*"], "roleArns": ["arn:aws:iam::*:role/ecr-*"]},
                    {"namespaces": ["ci"], "roleArns": [ECR_PUSH, ECR_PULL]},
                ]
            },
            Policy(
                assume_roles=(
                    RoleRule(("team-*",), ("arn:aws:iam::*:role/ecr-*",)),
                    RoleRule(("ci",), (ECR_PUSH, ECR_PULL)),
                )
            ),
            id="assume-roles",
        ),
        pytest.param(
            {"assumeRoles": [{"namespaces": ["team-*"]}]},
            Policy(assume_roles=(RoleRule(("team-*",), ()),)),
            id="rule-without-roles",
        ),
    ],
)
def test_parse_policy(raw: dict[str, Any] | None, expected: Policy) -> None:
    assert parse_policy(raw) == expected


def test_deny_all_allows_nothing() -> None:
    assert (DENY_ALL.operator_identity_namespaces, DENY_ALL.assume_roles) == ((), ())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"operatorIdentities": {}}, "unknown keys in the policy: operatorIdentities", id="typo"),
        pytest.param(
            {"assumeRoles": [], "zeta": 1, "alpha": 2},
            "unknown keys in the policy: alpha, zeta",
            id="two-unknown",
        ),
        pytest.param(
            {"operatorIdentity": {"namespaces": "team-a"}},
            "policy field namespaces must be a list of strings",
            id="namespaces-string",
        ),
        pytest.param(
            {"operatorIdentity": {"namespaces": ["team-a", 7]}},
            "policy field namespaces must be a list of strings",
            id="namespaces-not-strings",
        ),
        pytest.param(
            {"operatorIdentity": {"namespaces": {"team-a": True}}},
            "policy field namespaces must be a list of strings",
            id="namespaces-mapping",
        ),
        pytest.param(
            {"assumeRoles": [{"namespaces": ["a"], "roleArns": ECR_PULL}]},
            "policy field roleArns must be a list of strings",
            id="role-arns-string",
        ),
        pytest.param(
            {"assumeRoles": [{"namespaces": "a", "roleArns": [ECR_PULL]}]},
            "policy field namespaces must be a list of strings",
            id="rule-namespaces-string",
        ),
        pytest.param(
            {"assumeRoles": {"namespaces": ["a"], "roleArns": [ECR_PULL]}},
            "assumeRoles must be a list of rules",
            id="assume-roles-mapping",
        ),
        pytest.param(
            {"assumeRoles": "everything"}, "assumeRoles must be a list of rules", id="assume-roles-string"
        ),
        pytest.param({"assumeRoles": [None]}, "an assumeRoles rule must be a mapping", id="rule-null"),
        pytest.param(
            {"operatorIdentity": ["team-a"]},
            "operatorIdentity must be a mapping",
            id="operator-identity-list",
        ),
    ],
)
def test_parse_policy_rejects(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(raw)

    assert message in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"assumeRoles": [{"namespaces": ["a"], "roleArn": [ECR_PULL]}]}, id="rule-typo"),
        pytest.param({"operatorIdentity": {"namespace": ["a"]}}, id="operator-identity-typo"),
    ],
)
def test_parse_policy_rejects_unknown_nested_keys(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidPolicy):
        parse_policy(raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param([{"operatorIdentity": {"namespaces": ["a"]}}], id="list-of-mappings"),
        pytest.param(42, id="number"),
    ],
)
def test_parse_policy_rejects_a_non_mapping_document(raw: Any) -> None:
    with pytest.raises(InvalidPolicy):
        parse_policy(raw)


# -- check -------------------------------------------------------------------------------------

OPERATOR = Auth()
SERVICE_ACCOUNT = Auth(service_account=ServiceAccountRef("puller"))
KEYS = Auth(secret=SecretRef("aws-keys"))


def roles(*arns: str) -> Auth:
    return Auth(role_chain=tuple(RoleHop(arn) for arn in arns))


GLOBS = Policy(operator_identity_namespaces=("platform-*", "ci"))
RULES = Policy(
    assume_roles=(
        RoleRule(("team-*",), ("arn:aws:iam::123456789012:role/ecr-*",)),
        RoleRule(("ci",), (ECR_PUSH, OTHER_ACCOUNT)),
    )
)
RULES_DESCRIBED = (
    "rule 1: namespaces ['team-*'] roleArns ['arn:aws:iam::123456789012:role/ecr-*']; "
    f"rule 2: namespaces ['ci'] roleArns ['{ECR_PUSH}', '{OTHER_ACCOUNT}']"
)


@pytest.mark.parametrize(
    ("policy", "namespace", "auth"),
    [
        pytest.param(GLOBS, "platform-tools", OPERATOR, id="operator-glob"),
        pytest.param(GLOBS, "ci", OPERATOR, id="operator-exact"),
        pytest.param(Policy(operator_identity_namespaces=("*",)), "anything", OPERATOR, id="operator-star"),
        pytest.param(DENY_ALL, "team-a", SERVICE_ACCOUNT, id="service-account-needs-nothing"),
        pytest.param(DENY_ALL, "team-a", KEYS, id="secret-needs-nothing"),
        pytest.param(
            DENY_ALL,
            "team-a",
            Auth(role_chain=(RoleHop(ADMIN),), service_account=ServiceAccountRef("puller")),
            id="service-account-then-any-role",
        ),
        pytest.param(
            DENY_ALL,
            "team-a",
            Auth(role_chain=(RoleHop(ADMIN),), secret=SecretRef("k")),
            id="keys-then-any-role",
        ),
        pytest.param(RULES, "team-a", roles(ECR_PULL), id="role-rule-1"),
        pytest.param(RULES, "team-a", roles(ECR_PULL, ECR_PUSH), id="two-roles-one-rule"),
        pytest.param(RULES, "ci", roles(ECR_PUSH, OTHER_ACCOUNT), id="two-roles-rule-2"),
        pytest.param(
            Policy(assume_roles=(RoleRule(("team-a",), (ECR_PULL,)), RoleRule(("team-*",), (ADMIN,)))),
            "team-a",
            roles(ECR_PULL, ADMIN),
            id="each-role-by-its-own-rule",
        ),
        pytest.param(DENY_ALL, CLUSTER_SCOPED, OPERATOR, id="cluster-scoped-operator"),
        pytest.param(DENY_ALL, CLUSTER_SCOPED, roles(ADMIN), id="cluster-scoped-role"),
    ],
)
def test_check_allows(policy: Policy, namespace: str, auth: Auth) -> None:
    assert check(policy, namespace, auth) is None


def test_cluster_scoped_is_the_empty_namespace() -> None:
    assert CLUSTER_SCOPED == ""


@pytest.mark.parametrize(
    ("policy", "namespace", "globs"),
    [
        pytest.param(DENY_ALL, "team-a", "[]", id="default-policy"),
        pytest.param(GLOBS, "team-a", "['platform-*', 'ci']", id="no-glob-matches"),
        pytest.param(GLOBS, "platform", "['platform-*', 'ci']", id="glob-needs-the-dash"),
        pytest.param(GLOBS, "ci-2", "['platform-*', 'ci']", id="exact-is-exact"),
        pytest.param(GLOBS, "Platform-tools", "['platform-*', 'ci']", id="case-sensitive"),
        pytest.param(RULES, "team-a", "[]", id="assume-rules-do-not-grant-it"),
    ],
)
def test_check_refuses_operator_identity(policy: Policy, namespace: str, globs: str) -> None:
    refusal = check(policy, namespace, OPERATOR)

    assert refusal is not None
    assert refusal.message == (
        f"namespace {namespace} may not use the operator's own AWS identity: the namespace policy "
        "(operatorIdentity.namespaces) does not list it; use spec.auth.serviceAccountRef, or ask an admin "
        "to allow it"
    )
    assert str(globs) not in refusal.message, "other namespaces' globs are not the tenant's business"


@pytest.mark.parametrize(
    ("policy", "namespace", "auth", "refused_role", "described"),
    [
        pytest.param(
            DENY_ALL,
            "team-a",
            roles(ECR_PULL),
            ECR_PULL,
            "the policy has no assumeRoles rules",
            id="no-rules",
        ),
        pytest.param(
            GLOBS,
            "platform-tools",
            roles(ECR_PULL),
            ECR_PULL,
            "the policy has no assumeRoles rules",
            id="operator-glob-does-not-grant-roles",
        ),
        pytest.param(
            RULES, "other", roles(ECR_PULL), ECR_PULL, RULES_DESCRIBED, id="namespace-matches-no-rule"
        ),
        pytest.param(RULES, "team-a", roles(ADMIN), ADMIN, RULES_DESCRIBED, id="role-matches-no-rule"),
        pytest.param(
            RULES, "team-a", roles(OTHER_ACCOUNT), OTHER_ACCOUNT, RULES_DESCRIBED, id="role-of-another-rule"
        ),
        pytest.param(RULES, "ci", roles(ECR_PULL), ECR_PULL, RULES_DESCRIBED, id="namespace-of-another-rule"),
        pytest.param(
            RULES, "team-a", roles(ECR_PULL, ADMIN), ADMIN, RULES_DESCRIBED, id="second-role-not-allowed"
        ),
        pytest.param(
            RULES, "team-a", roles(ADMIN, ECR_PULL), ADMIN, RULES_DESCRIBED, id="first-role-not-allowed"
        ),
        pytest.param(
            RULES,
            "team-a",
            roles("arn:aws:iam::210987654321:role/ecr-pull"),
            OTHER_ACCOUNT,
            RULES_DESCRIBED,
            id="account-is-part-of-the-arn",
        ),
    ],
)
def test_check_refuses_role_chain(
    policy: Policy, namespace: str, auth: Auth, refused_role: str, described: str
) -> None:
    refusal = check(policy, namespace, auth)

    assert refusal is not None
    assert refusal.message == (
        f"namespace {namespace} may not assume {refused_role} with the operator's identity: "
        "no assumeRoles rule of the namespace policy allows it for this namespace; ask an admin"
    )
    assert described not in refusal.message, "other tenants' rules are not the tenant's business"


@pytest.mark.parametrize(
    ("glob", "arn", "allowed"),
    [
        pytest.param("arn:aws:iam::123456789012:role/ecr-*", "arn:aws:iam::123456789012:role/ecr-pull", True),
        pytest.param(
            "arn:aws:iam::*:role/ecr-*", "arn:aws:iam::999999999999:role/ecr-pull", True, id="any-account"
        ),
        pytest.param(
            "arn:aws:iam::123456789012:role/ecr-*",
            "arn:aws:iam::123456789012:role/ecr-x/admin",
            False,
            id="star-does-not-cross-slash",
        ),
        pytest.param(
            "arn:aws:iam::1234*:role/ecr",
            "arn:aws:iam::123456789012:role/x:role/ecr",
            False,
            id="star-does-not-cross-colon",
        ),
        pytest.param("*", "arn:aws:iam::123456789012:role/ecr", False, id="bare-star-is-one-segment"),
        pytest.param(
            "arn:aws:iam::123456789012:role/team/*",
            "arn:aws:iam::123456789012:role/team/pull",
            True,
            id="path",
        ),
        pytest.param(
            "arn:aws:iam::12345678901?:role/r", "arn:aws:iam::123456789012:role/r", True, id="question"
        ),
        pytest.param(
            "arn:aws:iam::123456789012:role/r?",
            "arn:aws:iam::123456789012:role/r/",
            False,
            id="question-slash",
        ),
        pytest.param(
            "arn:aws:iam::123456789012:role/r.x",
            "arn:aws:iam::123456789012:role/r-x",
            False,
            id="dot-literal",
        ),
    ],
)
def test_role_arn_globs_never_cross_a_colon_or_slash(glob: str, arn: str, allowed: bool) -> None:
    policy = Policy(assume_roles=(RoleRule(("team-a",), (glob,)),))

    assert (check(policy, "team-a", roles(arn)) is None) is allowed
