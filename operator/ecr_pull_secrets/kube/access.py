"""Read-only questions `doctor` asks the cluster, with the user's own kubeconfig: are the CRDs
there, may a ServiceAccount do what the operator does (SubjectAccessReview), what does a
resource say. Nothing here writes anything but the (stateless) access reviews."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

from ecr_pull_secrets.kube.client import KubeError, new_api_client, raw_json
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
        self._authz = client.AuthorizationV1Api(api_client)
        self._extensions = client.ApiextensionsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

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
        review = _json(
            self._authz.create_subject_access_review,
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
        try:
            crd = _json(
                self._extensions.read_custom_resource_definition, f"get CustomResourceDefinition {name}", name
            )
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    def service_account_exists(self, namespace: str, name: str) -> bool:
        try:
            _json(
                self._core.read_namespaced_service_account,
                f"get ServiceAccount {namespace}/{name}",
                name,
                namespace,
            )
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True

    def ecr_pull_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _json(
                self._custom.get_namespaced_custom_object,
                f"get {api.KIND} {namespace}/{name}",
                api.GROUP,
                api.VERSION,
                namespace,
                api.PLURAL,
                name,
            )
        except KubeError as error:
            if error.status == 404:
                return None
            raise


def _json(call: Callable[..., Any], what: str, *args: Any) -> dict[str, Any]:
    """raw_json, with an unreachable API server reported like any other failed call."""
    try:
        return raw_json(call, what, *args)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise KubeError(0, f"API server unreachable ({type(error).__name__})", what) from None


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
