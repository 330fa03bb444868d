"""model.cluster: the plain views built from watched Namespaces, Secrets and ServiceAccounts."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ecr_pull_secrets.model.cluster import (
    ADDED_PULL_SECRETS_ANNOTATION,
    NamespaceView,
    SecretView,
    ServiceAccountView,
    namespace_view,
    secret_view,
    service_account_view,
)
from ecr_pull_secrets.model.dockerconfig import digest


def test_added_pull_secrets_annotation() -> None:
    assert ADDED_PULL_SECRETS_ANNOTATION == "ecr.pullsecrets.dev/image-pull-secrets"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"metadata": {"name": "team-a"}}, NamespaceView("team-a"), id="bare"),
        pytest.param(
            {
                "metadata": {
                    "name": "team-a",
                    "labels": {"env": "prod"},
                    "annotations": {"ecr.pullsecrets.dev/ignore": "true"},
                },
                "status": {"phase": "Active"},
            },
            NamespaceView(
                "team-a", {"env": "prod"}, {"ecr.pullsecrets.dev/ignore": "true"}, terminating=False
            ),
            id="active",
        ),
        pytest.param(
            {"metadata": {"name": "team-a", "labels": None, "annotations": None}},
            NamespaceView("team-a"),
            id="null-maps",
        ),
        pytest.param(
            {"metadata": {"name": "team-a", "deletionTimestamp": "2025-03-01T11:59:00Z"}},
            NamespaceView("team-a", terminating=True),
            id="deletion-timestamp",
        ),
        pytest.param(
            {"metadata": {"name": "team-a"}, "status": {"phase": "Terminating"}},
            NamespaceView("team-a", terminating=True),
            id="phase-terminating",
        ),
        pytest.param(
            {
                "metadata": {"name": "team-a", "deletionTimestamp": "2025-03-01T11:59:00Z"},
                "status": {"phase": "Active"},
            },
            NamespaceView("team-a", terminating=True),
            id="deletion-timestamp-before-phase",
        ),
        pytest.param(
            {"metadata": {"name": "team-a", "deletionTimestamp": None}, "status": {}},
            NamespaceView("team-a"),
            id="null-deletion-timestamp",
        ),
        pytest.param({}, NamespaceView(""), id="empty"),
    ],
)
def test_namespace_view(body: dict[str, Any], expected: NamespaceView) -> None:
    assert namespace_view(body) == expected


OURS = {"apiVersion": "ecr.pullsecrets.dev/v1alpha1", "kind": "ClusterEcrPullSecret", "name": "shared"}


def secret(**metadata: Any) -> dict[str, Any]:
    return {
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "namespace": "team-b",
            "name": "pull",
            "uid": "s-1",
            "resourceVersion": "41",
            **metadata,
        },
        "data": {".dockerconfigjson": "e30="},
    }


@pytest.mark.parametrize(
    ("body", "controller_uid", "controller"),
    [
        pytest.param(
            secret(ownerReferences=[{**OURS, "uid": "u-1", "controller": True}]),
            "u-1",
            "ClusterEcrPullSecret shared",
            id="controller",
        ),
        pytest.param(
            secret(
                ownerReferences=[
                    {"kind": "ConfigMap", "name": "x", "uid": "u-0"},
                    {**OURS, "uid": "u-1", "controller": True},
                ]
            ),
            "u-1",
            "ClusterEcrPullSecret shared",
            id="controller-second",
        ),
        pytest.param(
            secret(ownerReferences=[{**OURS, "uid": "u-1", "controller": False}]),
            None,
            "",
            id="owner-not-controller",
        ),
        pytest.param(secret(ownerReferences=[{**OURS, "uid": "u-1"}]), None, "", id="controller-unset"),
        pytest.param(secret(ownerReferences=None), None, "", id="null-references"),
        pytest.param(secret(), None, "", id="no-references"),
        pytest.param(
            secret(ownerReferences=[{"uid": "u-9", "controller": True}]),
            "u-9",
            "",
            id="controller-without-kind-name",
        ),
    ],
)
def test_secret_view_controller(body: dict[str, Any], controller_uid: str | None, controller: str) -> None:
    view = secret_view(body)

    assert (view.controller_uid, view.controller) == (controller_uid, controller)


def test_secret_view_fields() -> None:
    body = secret(
        labels={"app.kubernetes.io/managed-by": "ecr-pull-secret-operator", "team": "b"},
        annotations={
            "ecr.pullsecrets.dev/expires-at": "2025-03-01T20:00:00Z",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        },
        ownerReferences=[{**OURS, "uid": "u-1", "controller": True}],
    )

    assert secret_view(body) == SecretView(
        namespace="team-b",
        name="pull",
        uid="s-1",
        type="kubernetes.io/dockerconfigjson",
        controller_uid="u-1",
        resource_version="41",
        controller="ClusterEcrPullSecret shared",
        managed=True,
        annotations={"ecr.pullsecrets.dev/expires-at": "2025-03-01T20:00:00Z"},
        content_ok=False,
        hosts=frozenset(),
        marks=frozenset({"l:team=b"}),
    )


def test_secret_view_of_a_sparse_body() -> None:
    assert secret_view({"metadata": {"labels": None, "annotations": None}, "data": None}) == SecretView(
        namespace="", name="", uid="", type="", controller_uid=None
    )


def test_secret_view_summarises_its_data_and_keeps_none_of_it() -> None:
    data = base64.b64encode(b'{"auths":{"a.example":{"username":"AWS","password":"p"}}}').decode()
    body = secret(annotations={"ecr.pullsecrets.dev/content-sha256": digest({".dockerconfigjson": data})})
    body["data"] = {".dockerconfigjson": data}

    view = secret_view(body)
    body["metadata"]["annotations"]["ecr.pullsecrets.dev/content-sha256"] = "0" * 64

    assert (view.content_ok, view.hosts) == (True, {"a.example"})
    assert data not in repr(view)
    assert not hasattr(view, "data")


def test_secret_view_sees_edited_data() -> None:
    body = secret(annotations={"ecr.pullsecrets.dev/content-sha256": digest({".dockerconfigjson": "e30="})})
    body["data"] = {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()}

    assert not secret_view(body).content_ok


def test_secret_view_hides_data_from_repr() -> None:
    assert "e30=" not in repr(secret_view(secret()))


def account(annotation: str | None = None, **fields: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"namespace": "team-a", "name": "builder", "resourceVersion": "17"}
    if annotation is not None:
        metadata["annotations"] = {ADDED_PULL_SECRETS_ANNOTATION: annotation, "other": "x"}
    return {"metadata": metadata, **fields}


@pytest.mark.parametrize(
    ("body", "listed", "added"),
    [
        pytest.param(account(), (), (), id="bare"),
        pytest.param(account(imagePullSecrets=None), (), (), id="null-list"),
        pytest.param(
            account(imagePullSecrets=[{"name": "docker-hub"}, {"name": "pull"}]),
            ("docker-hub", "pull"),
            (),
            id="listed-not-added",
        ),
        pytest.param(
            account("pull", imagePullSecrets=[{"name": "pull"}]), ("pull",), ("pull",), id="one-added"
        ),
        pytest.param(account("pull,pull-eu"), (), ("pull", "pull-eu"), id="two-added"),
        pytest.param(account(""), (), (), id="empty-annotation"),
        pytest.param(account(",pull,,pull-eu,"), (), ("pull", "pull-eu"), id="empty-entries-dropped"),
        pytest.param(
            {"metadata": {"name": "builder", "annotations": None}, "imagePullSecrets": [{}]},
            ("",),
            (),
            id="entry-without-name",
        ),
    ],
)
def test_service_account_view_entries(
    body: dict[str, Any], listed: tuple[str, ...], added: tuple[str, ...]
) -> None:
    view = service_account_view(body)

    assert (view.image_pull_secrets, view.added) == (listed, added)


def test_service_account_view_fields() -> None:
    body = account("pull", imagePullSecrets=[{"name": "pull"}])
    body["metadata"]["labels"] = {"pull": "ecr"}

    assert service_account_view(body) == ServiceAccountView(
        namespace="team-a",
        name="builder",
        labels={"pull": "ecr"},
        image_pull_secrets=("pull",),
        added=("pull",),
        resource_version="17",
    )


def test_a_config_nested_too_deep_to_decode_covers_no_registry() -> None:
    """A tenant writes its Secret's data: JSON nested 5,000 levels deep is valid for the API server
    (10,000) and must not raise out of the view (the start-up lists build one of every Secret)."""
    nested = b'{"a":' * 5000 + b"{}" + b"}" * 5000
    body = {
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"namespace": "team-a", "name": "deep", "uid": "u", "resourceVersion": "1"},
        "data": {".dockerconfigjson": base64.b64encode(nested).decode()},
    }
    assert secret_view(body).hosts == frozenset()
