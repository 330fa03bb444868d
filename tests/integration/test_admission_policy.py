"""The admission policy (deploy/admission/) on the real API server, with `kubectl --as` users: naming a
ServiceAccount, a Secret, `secretPolicy: Adopt` or `spec.serviceAccounts` needs the requesting user's
own right on those objects; a user who may only create EcrPullSecrets is refused with a message
naming the missing right, the built-in `edit` role (with the chart's aggregated roles) may do all of it.

The policy and the aggregated roles are cluster-wide; this module applies them under names of its
own (so a test applying deploy/manifests, which holds the same objects, cannot remove them) and
removes them at the end. Other tests create EcrPullSecrets as the admin user, who holds every right.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
import yaml

from tests.harness import helm
from tests.harness.kube import Kube, wait_for

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
EPS_ONLY = [{"apiGroups": ["ecr.pullsecrets.dev"], "resources": ["ecrpullsecrets"], "verbs": ["create"]}]
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
RBAC = "rbac.authorization.k8s.io/v1"


def manifest(namespace: str, name: str, spec: Mapping[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "ecr.pullsecrets.dev/v1alpha1",
            "kind": "EcrPullSecret",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"registries": [REGISTRY], **spec},
        }
    )


def as_user(kube: Kube, user: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return kube.kubectl("--as", user, *args, stdin=stdin, check=False)


def grant(kube: Kube, namespace: str, user: str, rules: Sequence[Mapping[str, Any]]) -> None:
    """A Role with `rules` in `namespace`, bound to `user`."""
    name = f"grant-{uuid.uuid4().hex[:6]}"
    role = {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": name, "namespace": namespace}}
    kube.kubectl("create", "-f", "-", stdin=yaml.safe_dump({**role, "rules": [dict(r) for r in rules]}))
    bind(kube, namespace, user, "Role", name)


def bind(kube: Kube, namespace: str, user: str, kind: str, role: str) -> None:
    binding = {
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": {"name": f"{role}-{user}"[:63], "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    kube.kubectl("create", "-f", "-", stdin=yaml.safe_dump(binding))


def can_i(kube: Kube, user: str, namespace: str, verb: str, resource: str, *flags: str) -> bool:
    return (
        as_user(kube, user, "auth", "can-i", verb, resource, "-n", namespace, *flags).stdout.strip() == "yes"
    )


def eps_only_user(kube: Kube, namespace: str) -> str:
    """A new user who may create EcrPullSecrets in `namespace` and do nothing else."""
    user = new_user("tenant")
    grant(kube, namespace, user, EPS_ONLY)
    wait_for("RBAC to know the user", lambda: can_i(kube, user, namespace, "create", "ecrpullsecrets"), 15)
    return user


def new_user(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:6]}"


def _cluster_docs() -> list[dict[str, Any]]:
    """The policy and binding from deploy/admission/, the aggregated ClusterRoles from
    deploy/manifests/, renamed for this module."""
    suffix = f"-test-{uuid.uuid4().hex[:5]}"
    admission = [
        d for d in yaml.safe_load_all((helm.ROOT / "deploy/admission/admission-policy.yaml").read_text()) if d
    ]
    operator = [d for d in yaml.safe_load_all((helm.MANIFESTS / "operator.yaml").read_text()) if d]
    aggregated = [
        d
        for d in operator
        if d["kind"] == "ClusterRole"
        and any(k.startswith(AGGREGATE) for k in d["metadata"].get("labels", {}))
    ]
    assert [d["kind"] for d in admission] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    assert len(aggregated) == 2
    for doc in admission + aggregated:
        doc["metadata"]["name"] += suffix
    admission[1]["spec"]["policyName"] += suffix
    return admission + aggregated


@pytest.fixture(scope="module")
def policy(kube: Kube) -> Iterator[None]:
    """Applies the policy and waits until the API server enforces it: a dry run that it refuses."""
    docs = _cluster_docs()
    text = yaml.safe_dump_all(docs)
    kube.kubectl("apply", "--server-side", "-f", "-", stdin=text)
    probe_namespace = f"admission-probe-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(probe_namespace)
    try:
        probe_user = eps_only_user(kube, probe_namespace)
        probe = manifest(probe_namespace, "probe", {"auth": {"secretRef": {"name": "aws-keys"}}})

        def refused() -> bool:
            result = as_user(kube, probe_user, "create", "--dry-run=server", "-f", "-", stdin=probe)
            return result.returncode != 0 and "spec.auth.secretRef" in result.stderr

        wait_for("the admission policy to refuse a request", refused, timeout=30, interval=0.2)
        yield
    finally:
        kube.delete_namespace(probe_namespace)
        kube.kubectl("delete", "--ignore-not-found", "-f", "-", stdin=text)


CASES = [
    pytest.param(
        {"auth": {"serviceAccountRef": {"name": "victim"}}},
        "spec.auth.serviceAccountRef: user {user} may neither impersonate ServiceAccount victim nor create "
        "serviceaccounts/token for it in namespace {namespace}; naming a ServiceAccount requires one of them",
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["impersonate"],
            "resourceNames": ["victim"],
        },
        id="serviceAccountRef-impersonate",
    ),
    pytest.param(
        {"auth": {"serviceAccountRef": {"name": "victim"}}},
        "may neither impersonate ServiceAccount victim nor create serviceaccounts/token for it",
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts/token"],
            "verbs": ["create"],
            "resourceNames": ["victim"],
        },
        id="serviceAccountRef-token",
    ),
    pytest.param(
        {"auth": {"secretRef": {"name": "aws-keys"}}},
        "spec.auth.secretRef: user {user} may not get Secret aws-keys in namespace {namespace}; "
        "naming a Secret requires get on it",
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["aws-keys"]},
        id="secretRef-get",
    ),
    pytest.param(
        {"secretName": "registry-creds", "secretPolicy": "Adopt"},
        "spec.secretPolicy: user {user} may not update Secret registry-creds in namespace {namespace}; "
        "Adopt takes over an existing Secret and requires update on it",
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["update"],
            "resourceNames": ["registry-creds"],
        },
        id="adopt-update",
    ),
    pytest.param(
        {"serviceAccounts": {"all": True}},
        "spec.serviceAccounts: user {user} may not patch ServiceAccounts in namespace {namespace}; "
        "adding the Secret to their imagePullSecrets requires patch on serviceaccounts",
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["patch"]},
        id="service-accounts-patch",
    ),
]


@pytest.mark.usefixtures("policy")
@pytest.mark.parametrize(("spec", "message", "right"), CASES)
def test_ecrpullsecret_only_user_needs_the_right_on_what_it_names(
    kube: Kube, namespace: str, spec: dict[str, Any], message: str, right: dict[str, Any]
) -> None:
    user = eps_only_user(kube, namespace)
    body = manifest(namespace, "app", spec)

    refused = as_user(kube, user, "create", "-f", "-", stdin=body)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr, refused.stderr
    assert message.format(user=user, namespace=namespace) in refused.stderr, refused.stderr

    # Just that one right, on just that object, and the same request goes through.
    grant(kube, namespace, user, [right])
    wait_for(
        "the request to be admitted once the right is granted",
        lambda: as_user(kube, user, "create", "-f", "-", stdin=body).returncode == 0,
        timeout=15,
    )
    assert kube.get_eps(namespace, "app")["metadata"]["name"] == "app"


@pytest.mark.usefixtures("policy")
def test_references_the_policy_does_not_govern_pass(kube: Kube, namespace: str) -> None:
    """No reference, or a roleChain (the operator's namespace policy decides on it): admitted."""
    user = eps_only_user(kube, namespace)
    chain = {"auth": {"roleChain": [{"roleArn": "arn:aws:iam::123456789012:role/ecr-pull"}]}}
    for name, spec in (("plain", {}), ("chain", chain), ("fail", {"secretPolicy": "Fail"})):
        result = as_user(kube, user, "create", "-f", "-", stdin=manifest(namespace, name, spec))
        assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("policy")
def test_edit_role_may_name_everything(kube: Kube, namespace: str) -> None:
    user = new_user("editor")
    bind(kube, namespace, user, "ClusterRole", "edit")
    # The chart's aggregated role reaches edit through the controller manager's aggregation.
    wait_for(
        "edit to include EcrPullSecrets", lambda: can_i(kube, user, namespace, "create", "ecrpullsecrets"), 30
    )
    specs: dict[str, dict[str, Any]] = {
        "by-service-account": {"auth": {"serviceAccountRef": {"name": "builder"}}, "secretPolicy": "Adopt"},
        "by-keys": {"auth": {"secretRef": {"name": "aws-keys"}}},
        "patching": {"serviceAccounts": {"selector": {"matchLabels": {"pull": "ecr"}}}},
    }
    for name, spec in specs.items():
        result = as_user(kube, user, "create", "-f", "-", stdin=manifest(namespace, name, spec))
        assert result.returncode == 0, result.stderr
    for verb in ("get", "list", "watch", "update", "patch", "delete", "deletecollection"):
        assert can_i(kube, user, namespace, verb, "ecrpullsecrets"), verb
    assert not can_i(kube, user, namespace, "patch", "ecrpullsecrets", "--subresource=status")
    # ClusterEcrPullSecrets are in none of the aggregated roles.
    assert not can_i(kube, user, namespace, "create", "clusterecrpullsecrets")
    assert not can_i(kube, user, namespace, "list", "clusterecrpullsecrets")

    viewer = new_user("viewer")
    bind(kube, namespace, viewer, "ClusterRole", "view")
    wait_for(
        "view to include EcrPullSecrets", lambda: can_i(kube, viewer, namespace, "list", "ecrpullsecrets"), 30
    )
    assert not can_i(kube, viewer, namespace, "create", "ecrpullsecrets")


@pytest.mark.usefixtures("policy")
def test_update_checks_only_a_changed_reference(kube: Kube, namespace: str) -> None:
    """Someone with the rights set the reference; a user who may only edit EcrPullSecrets can change
    other fields (as a GitOps resync or the operator's finalizer does), not point it elsewhere."""
    kube.create_eps(namespace, "app", {"registries": [REGISTRY], "auth": {"secretRef": {"name": "aws-keys"}}})
    kube.create_eps(namespace, "adopter", {"registries": [REGISTRY], "secretPolicy": "Adopt"})
    user = new_user("tenant")
    grant(
        kube,
        namespace,
        user,
        [{"apiGroups": ["ecr.pullsecrets.dev"], "resources": ["ecrpullsecrets"], "verbs": ["get", "patch"]}],
    )
    wait_for("RBAC to know the user", lambda: can_i(kube, user, namespace, "patch", "ecrpullsecrets"), 15)

    def patch(spec: Mapping[str, Any], name: str = "app") -> subprocess.CompletedProcess[str]:
        return as_user(
            kube, user, "patch", "ecrpullsecret", name, "-n", namespace, "--type=merge", "-p",
            json.dumps({"spec": dict(spec)}),
        )  # fmt: skip

    unrelated = patch({"renewBefore": "5h"})
    assert unrelated.returncode == 0, unrelated.stderr
    labelled = as_user(kube, user, "label", "ecrpullsecret", "app", "-n", namespace, "team=a")
    assert labelled.returncode == 0, labelled.stderr

    moved = patch({"auth": {"secretRef": {"name": "other-keys"}}})
    assert moved.returncode != 0
    assert f"user {user} may not get Secret other-keys in namespace {namespace}" in moved.stderr, moved.stderr
    adopt = patch({"secretPolicy": "Adopt"})
    assert adopt.returncode != 0
    assert f"user {user} may not update Secret app in namespace {namespace}" in adopt.stderr, adopt.stderr
    # Adopt stays checked for the Secret it takes over: another name is another Secret.
    assert patch({"renewBefore": "6h"}, "adopter").returncode == 0
    renamed = patch({"secretName": "someone-elses"}, "adopter")
    assert renamed.returncode != 0
    assert f"user {user} may not update Secret someone-elses in namespace" in renamed.stderr, renamed.stderr

    spec = kube.get_eps(namespace, "app")["spec"]
    assert spec["auth"]["secretRef"]["name"] == "aws-keys"
    assert spec.get("secretPolicy", "Fail") == "Fail"
    assert spec["renewBefore"] == "5h"
