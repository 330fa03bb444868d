"""model.identity: spec.auth as written, and the credential chains it resolves to."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.identity import (
    DEFAULT_AUDIENCE,
    OPERATOR_CHAIN,
    Auth,
    Chain,
    OperatorIdentity,
    RoleHop,
    SecretRef,
    ServiceAccountRef,
    StaticKeys,
    WebIdentity,
    parse_auth,
    session_name,
    session_tags,
)

ROLE = "arn:aws:iam::123456789012:role/ecr-pull"
ROLE_2 = "arn:aws:iam::210987654321:role/ecr-read"
SA_ROLE = "arn:aws:iam::123456789012:role/team-a-irsa"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
AWS_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)


# -- parse_auth --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, Auth(), id="absent"),
        pytest.param({}, Auth(), id="empty"),
        pytest.param({"roleChain": [], "serviceAccountRef": None, "secretRef": None}, Auth(), id="nulls"),
        pytest.param(
            {"roleChain": [{"roleArn": ROLE}]},
            Auth(role_chain=(RoleHop(ROLE, None, None),)),
            id="one-role",
        ),
        pytest.param(
            {
                "roleChain": [
                    {"roleArn": ROLE, "externalId": "tenant-7", "sessionName": "ci-pull"},
                    {"roleArn": ROLE_2},
                ]
            },
            Auth(role_chain=(RoleHop(ROLE, "tenant-7", "ci-pull"), RoleHop(ROLE_2, None, None))),
            id="role-chain-external-id-session-name",
        ),
        pytest.param(
            {"roleChain": [{"roleArn": ROLE, "externalId": "", "sessionName": ""}]},
            Auth(role_chain=(RoleHop(ROLE, None, None),)),
            id="empty-strings-are-unset",
        ),
        pytest.param(
            {"serviceAccountRef": {"name": "puller"}},
            Auth(service_account=ServiceAccountRef("puller", audience="sts.amazonaws.com", role_arn=None)),
            id="service-account-defaults",
        ),
        pytest.param(
            {"serviceAccountRef": {"name": "puller", "audience": "", "roleArn": ""}},
            Auth(service_account=ServiceAccountRef("puller", audience="sts.amazonaws.com", role_arn=None)),
            id="service-account-empty-strings",
        ),
        pytest.param(
            {"serviceAccountRef": {"name": "puller", "audience": "ecr.example", "roleArn": SA_ROLE}},
            Auth(service_account=ServiceAccountRef("puller", audience="ecr.example", role_arn=SA_ROLE)),
            id="service-account-explicit",
        ),
        pytest.param(
            {"serviceAccountRef": {"name": "puller"}, "roleChain": [{"roleArn": ROLE}]},
            Auth(role_chain=(RoleHop(ROLE),), service_account=ServiceAccountRef("puller")),
            id="service-account-then-role",
        ),
        pytest.param(
            {"secretRef": {"name": "aws-keys"}},
            Auth(
                secret=SecretRef(
                    "aws-keys",
                    access_key_id_key="AWS_ACCESS_KEY_ID",
                    secret_access_key_key="AWS_SECRET_ACCESS_KEY",
                    session_token_key="AWS_SESSION_TOKEN",
                )
            ),
            id="secret-default-keys",
        ),
        pytest.param(
            {
                "secretRef": {
                    "name": "aws-keys",
                    "accessKeyIdKey": "id",
                    "secretAccessKeyKey": "secret",
                    "sessionTokenKey": "token",
                }
            },
            Auth(
                secret=SecretRef(
                    "aws-keys",
                    access_key_id_key="id",
                    secret_access_key_key="secret",
                    session_token_key="token",
                )
            ),
            id="secret-custom-keys",
        ),
        pytest.param(
            {"secretRef": {"name": "aws-keys"}, "roleChain": [{"roleArn": ROLE, "externalId": "x1"}]},
            Auth(role_chain=(RoleHop(ROLE, "x1"),), secret=SecretRef("aws-keys")),
            id="secret-then-role",
        ),
        pytest.param(
            {"serviceAccountRef": {"name": "puller", "namespace": ""}},
            Auth(service_account=ServiceAccountRef("puller", namespace=None)),
            id="service-account-empty-namespace-is-unset",
        ),
    ],
)
def test_parse_auth(raw: dict[str, Any] | None, expected: Auth) -> None:
    assert parse_auth(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {"serviceAccountRef": {"name": "puller", "namespace": "ci"}},
            Auth(service_account=ServiceAccountRef("puller", namespace="ci")),
            id="service-account-namespace",
        ),
        pytest.param(
            {"secretRef": {"name": "aws-keys", "namespace": "vault"}},
            Auth(secret=SecretRef("aws-keys", namespace="vault")),
            id="secret-namespace",
        ),
    ],
)
def test_parse_auth_of_a_cluster_resource_names_namespaces(raw: dict[str, Any], expected: Auth) -> None:
    assert parse_auth(raw, cluster=True) == expected
    with pytest.raises(InvalidSpec, match="may not be set: an EcrPullSecret uses only its own namespace"):
        parse_auth(raw)


@pytest.mark.parametrize(
    ("raw", "operator"),
    [
        pytest.param(None, True, id="absent"),
        pytest.param({"roleChain": [{"roleArn": ROLE}]}, True, id="role-chain-from-operator"),
        pytest.param({"serviceAccountRef": {"name": "puller"}}, False, id="service-account"),
        pytest.param({"secretRef": {"name": "aws-keys"}}, False, id="secret"),
        pytest.param(
            {"serviceAccountRef": {"name": "puller"}, "roleChain": [{"roleArn": ROLE}]},
            False,
            id="role-chain-from-service-account",
        ),
    ],
)
def test_uses_operator_identity(raw: dict[str, Any] | None, operator: bool) -> None:
    assert parse_auth(raw).uses_operator_identity is operator


def test_default_audience_is_sts() -> None:
    assert DEFAULT_AUDIENCE == "sts.amazonaws.com"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"serviceAccountRef": {"name": "a"}, "secretRef": {"name": "b"}}, id="both"),
        pytest.param(
            {
                "serviceAccountRef": {"name": "a"},
                "secretRef": {"name": "b"},
                "roleChain": [{"roleArn": ROLE}],
            },
            id="both-with-role-chain",
        ),
    ],
)
def test_parse_auth_refuses_both_refs(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_auth(raw)

    assert str(caught.value) == "spec.auth may name a serviceAccountRef or a secretRef, not both"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"roleChain": [{"externalId": "x1"}]}, id="hop-without-role-arn"),
        pytest.param({"roleChain": "arn:aws:iam::123456789012:role/r"}, id="role-chain-string"),
        pytest.param({"serviceAccountRef": {"audience": "sts.amazonaws.com"}}, id="service-account-no-name"),
        pytest.param({"secretRef": "aws-keys"}, id="secret-ref-string"),
    ],
)
def test_parse_auth_reports_malformed_blocks_as_invalid_auth(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec):
        parse_auth(raw)


# -- Chain.key ---------------------------------------------------------------------------------

WEB = WebIdentity("team-a", "puller", "sts.amazonaws.com", SA_ROLE)
TAGS = session_tags("team-a", "pull")


def keys(
    version: str = "uid-1:41", access_key_id: str = ACCESS_KEY_ID, secret: str = SECRET_ACCESS_KEY
) -> StaticKeys:
    return StaticKeys("team-a", "aws-keys", version, access_key_id, secret, SESSION_TOKEN)


BASE = Chain(WEB, (RoleHop(ROLE, "tenant-7", "ci-pull"),), TAGS)
VARIANTS: dict[str, Chain] = {
    "start-operator": Chain(OperatorIdentity(), BASE.hops, TAGS),
    "start-keys": Chain(keys(), BASE.hops, TAGS),
    "start-keys-rotated": Chain(keys(version="uid-1:42"), BASE.hops, TAGS),
    "start-keys-recreated": Chain(keys(version="uid-2:41"), BASE.hops, TAGS),
    "web-namespace": Chain(WebIdentity("team-b", "puller", "sts.amazonaws.com", SA_ROLE), BASE.hops, TAGS),
    "web-service-account": Chain(
        WebIdentity("team-a", "other", "sts.amazonaws.com", SA_ROLE), BASE.hops, TAGS
    ),
    "web-audience": Chain(WebIdentity("team-a", "puller", "ecr.example", SA_ROLE), BASE.hops, TAGS),
    "web-role": Chain(WebIdentity("team-a", "puller", "sts.amazonaws.com", ROLE_2), BASE.hops, TAGS),
    "hop-role": Chain(WEB, (RoleHop(ROLE_2, "tenant-7", "ci-pull"),), TAGS),
    "hop-external-id": Chain(WEB, (RoleHop(ROLE, "tenant-8", "ci-pull"),), TAGS),
    "hop-no-external-id": Chain(WEB, (RoleHop(ROLE, None, "ci-pull"),), TAGS),
    "hop-session-name": Chain(WEB, (RoleHop(ROLE, "tenant-7", "ci-push"),), TAGS),
    "hop-no-session-name": Chain(WEB, (RoleHop(ROLE, "tenant-7", None),), TAGS),
    "hop-fields-swapped": Chain(WEB, (RoleHop(ROLE, "ci-pull", "tenant-7"),), TAGS),
    "hop-added": Chain(WEB, (*BASE.hops, RoleHop(ROLE_2)), TAGS),
    "hop-removed": Chain(WEB, (), TAGS),
    "tags-name": Chain(WEB, BASE.hops, session_tags("team-a", "pull-2")),
    "tags-namespace": Chain(WEB, BASE.hops, session_tags("team-b", "pull")),
    "tags-none": Chain(WEB, BASE.hops, ()),
}


def test_chain_key_is_stable() -> None:
    """Keys are written into Secrets (ecr.pullsecrets.dev/chain): a new format forfeits reuse."""
    assert OPERATOR_CHAIN.key == "06e55b633481f7bb0729"
    assert Chain(OperatorIdentity()).key == OPERATOR_CHAIN.key
    assert BASE.key == "0608635164dbd7b5f9d2"
    assert Chain(WEB, (RoleHop(ROLE, "tenant-7", "ci-pull"),), TAGS).key == BASE.key
    assert re.fullmatch(r"[0-9a-f]{20}", BASE.key)


@pytest.mark.parametrize("variant", VARIANTS)
def test_chain_key_differs_from_base(variant: str) -> None:
    assert VARIANTS[variant].key != BASE.key


def test_chain_keys_are_all_distinct() -> None:
    chains = [BASE, *VARIANTS.values()]

    assert len({c.key for c in chains}) == len(chains)


def test_chain_key_ignores_tags_without_roles() -> None:
    """Tags go on AssumeRole only, so without a role to assume they change nothing."""
    assert Chain(OperatorIdentity(), (), TAGS).key == OPERATOR_CHAIN.key


def test_static_keys_differing_only_in_key_material_share_a_chain() -> None:
    """The Secret's uid:resourceVersion names the keys; the material itself never enters the key."""
    one = Chain(keys(), BASE.hops, TAGS)
    other = Chain(keys(access_key_id="AKIAOTHERKEY00000000", secret="other/secret"), BASE.hops, TAGS)

    assert one.key == other.key
    assert one == other


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param(Chain(keys()), id="keys"),
        pytest.param(Chain(keys(), BASE.hops, TAGS), id="keys-then-role"),
    ],
)
def test_chain_never_shows_key_material(chain: Chain) -> None:
    for shown in (chain.key, chain.describe(), repr(chain), str(chain)):
        assert ACCESS_KEY_ID not in shown
        assert SECRET_ACCESS_KEY not in shown
        assert SESSION_TOKEN not in shown
    assert chain.describe().startswith("keys:team-a/aws-keys@uid-1:41")


def test_static_keys_repr_hides_key_material() -> None:
    shown = repr(keys())

    assert shown == "StaticKeys(namespace='team-a', secret='aws-keys', version='uid-1:41')"


@pytest.mark.parametrize(
    ("chain", "described"),
    [
        pytest.param(OPERATOR_CHAIN, "operator", id="operator"),
        pytest.param(
            Chain(WEB),
            f"web:team-a/puller:sts.amazonaws.com:{SA_ROLE}",
            id="web",
        ),
        pytest.param(
            Chain(OperatorIdentity(), (RoleHop(ROLE), RoleHop(ROLE_2)), TAGS),
            f"operator -> {ROLE} -> {ROLE_2}",
            id="operator-two-roles",
        ),
    ],
)
def test_chain_describe(chain: Chain, described: str) -> None:
    assert chain.describe() == described


# -- session names and tags --------------------------------------------------------------------

HOP = RoleHop(ROLE)


@pytest.mark.parametrize(
    ("hop", "namespace", "name", "expected"),
    [
        pytest.param(RoleHop(ROLE, None, "ci-pull"), "team-a", "pull", "team-a.ci-pull", id="explicit"),
        pytest.param(
            RoleHop(ROLE, None, "team-b.pull"), "team-a", "pull", "team-a.team-b.pull", id="posing-as-team-b"
        ),
        pytest.param(RoleHop(ROLE, None, "ci-pull"), "", "pull", "cluster@ci-pull", id="explicit-cluster"),
        pytest.param(HOP, "team-a", "pull", "team-a.pull", id="default"),
        pytest.param(HOP, "", "pull", "cluster@pull", id="cluster-scoped"),
        pytest.param(HOP, "team-a", "web.app-1", "team-a.web.app-1", id="dotted-name"),
        pytest.param(HOP, "team a", "x/y:z", "team-a.x-y-z", id="unsafe-replaced"),
        pytest.param(HOP, "n" * 63, "x" * 253, "n" * 63 + ".", id="truncated-to-64"),
        pytest.param(HOP, "team-a", "a" * 57, "team-a." + "a" * 57, id="exactly-64"),
    ],
)
def test_session_name(hop: RoleHop, namespace: str, name: str, expected: str) -> None:
    assert session_name(hop, namespace, name) == expected


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("team-a", "pull"),
        ("", "pull"),
        ("n" * 63, "x" * 253),
        ("kube-system", "a.b.c"),
        ("ns", "a:b/c d*e"),
        ("ns", "tab\there"),
    ],
)
def test_default_session_name_is_acceptable_to_aws(namespace: str, name: str) -> None:
    """AWS RoleSessionName: 2-64 characters of [\\w+=,.@-] (ASCII)."""
    made = session_name(HOP, namespace, name)

    assert AWS_SESSION_NAME.fullmatch(made), made
    assert made.startswith(f"{namespace}." if namespace else "cluster@")


@pytest.mark.parametrize(
    ("namespace", "name", "tags"),
    [
        pytest.param(
            "team-a",
            "pull",
            (("ecr-pull-secrets:namespace", "team-a"), ("ecr-pull-secrets:name", "pull")),
            id="namespaced",
        ),
        pytest.param(
            "", "pull", (("ecr-pull-secrets:namespace", "-"), ("ecr-pull-secrets:name", "pull")), id="cluster"
        ),
    ],
)
def test_session_tags(namespace: str, name: str, tags: tuple[tuple[str, str], ...]) -> None:
    assert session_tags(namespace, name) == tags


def test_session_tags_tell_resources_apart() -> None:
    pairs = [("team-a", "pull"), ("team-b", "pull"), ("team-a", "pull-2"), ("", "pull")]

    for one, other in itertools.combinations(pairs, 2):
        assert session_tags(*one) != session_tags(*other)
