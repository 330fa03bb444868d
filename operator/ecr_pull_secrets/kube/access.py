"""Read-only questions `doctor` asks the cluster, with the user's own kubeconfig: are the CRDs
there, may a ServiceAccount do what the operator does (SubjectAccessReview), what does a
resource say. Nothing here writes anything but the (stateless) access reviews."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, config

from ecr_pull_secrets.kube.client import KubeError, Rest, api_path, new_api_client
from ecr_pull_secrets.kube.permissions import Permission
from ecr_pull_secrets.model import api

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class NoCluster(Exception):
    """Neither an in-cluster configuration nor a usable kubeconfig."""


def service_account_user(namespace: str, name: str) -> tuple[str, tuple[str, ...]]:
    """The user name and groups the API server gives a ServiceAccount's tokens."""
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


class Access:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._rest = Rest(api_client)

    @classmethod
    def connect(cls) -> Access:
        try:
            return cls(new_api_client(pool_size=4))
        except (config.ConfigException, OSError) as error:
            raise NoCluster(f"no Kubernetes configuration: {error}") from None

    def allowed(self, user: str, groups: Sequence[str], permission: Permission) -> bool:
        """Whether `user` may do `permission` in every namespace (a SubjectAccessReview)."""
        attributes = {
            "verb": permission.verb,
            "group": permission.group,
            "resource": permission.resource,
            "subresource": permission.subresource,
        }
        review = self._rest.request(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            f"SubjectAccessReview for {permission}",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": user, "groups": list(groups), "resourceAttributes": attributes},
            },
        )
        return bool((review.get("status") or {}).get("allowed"))

    def crd_established(self, name: str) -> bool | None:
        """True: served; False: created but not (yet) Established; None: not installed."""
        crd = self._get(
            api_path("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", name),
            f"get CustomResourceDefinition {name}",
            ("", name),
        )
        if crd is None:
            return None
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    def service_account_exists(self, namespace: str, name: str) -> bool:
        path = api_path("/api/v1", "namespaces", namespace, "serviceaccounts", name)
        return self._get(path, f"get ServiceAccount {namespace}/{name}", (namespace, name)) is not None

    def ecr_pull_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        path = api_path(f"/apis/{api.GROUP}/{api.VERSION}", "namespaces", namespace, api.PLURAL, name)
        return self._get(path, f"get {api.KIND} {namespace}/{name}", (namespace, name))

    def _get(self, path: str, what: str, expect: tuple[str, str]) -> dict[str, Any] | None:
        try:
            return self._rest.request("GET", path, what, expect=expect)
        except KubeError as error:
            if error.status == 404:
                return None
            raise


def current_namespace() -> str:
    """The kubeconfig context's namespace (in a pod: the pod's), else `default`."""
    try:
        _, context = config.list_kube_config_contexts()
    except (config.ConfigException, OSError):
        try:
            return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"
    return str((context or {}).get("context", {}).get("namespace") or "default")
