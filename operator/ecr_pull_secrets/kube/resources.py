"""Writes to our own custom resources: status, and the cleanup finalizer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from ecr_pull_secrets.kube.client import Rest, api_path
from ecr_pull_secrets.model import api

MERGE_PATCH = "application/merge-patch+json"
PLACEHOLDER_REGISTRY = "public.ecr.aws"
"""The spec an unwritable object gets on its way out: valid, and never acted on."""
_GROUP_PATH = f"/apis/{api.GROUP}/{api.VERSION}"


class Resources:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._rest = Rest(api_client)

    def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        return self._rest.request(
            "PATCH",
            _path(kind, namespace, name) + "/status",
            f"patch status of {_ref(kind, namespace, name)}",
            {"status": dict(status)},
            MERGE_PATCH,
            expect=(namespace, name),
        )

    def set_finalizers(
        self, kind: str, namespace: str, name: str, finalizers: Sequence[str], resource_version: str
    ) -> None:
        """The resourceVersion makes this a compare-and-swap: someone else's finalizer is never lost."""
        self._rest.request(
            "PATCH",
            _path(kind, namespace, name),
            f"update finalizers of {_ref(kind, namespace, name)}",
            {"metadata": {"finalizers": list(finalizers), "resourceVersion": resource_version}},
            MERGE_PATCH,
            expect=(namespace, name),
        )

    def release_unwritable(
        self, kind: str, namespace: str, name: str, finalizers: Sequence[str], resource_version: str
    ) -> None:
        """For an object being deleted whose stored spec the API server no longer accepts: set the
        finalizers and replace the spec with the least one admission accepts, in one patch."""
        self._rest.request(
            "PATCH",
            _path(kind, namespace, name),
            f"release {_ref(kind, namespace, name)}",
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
                {"op": "replace", "path": "/spec", "value": {"registries": [PLACEHOLDER_REGISTRY]}},
                {"op": "replace", "path": "/metadata/finalizers", "value": list(finalizers)},
            ],
            "application/json-patch+json",
            expect=(namespace, name),
        )


def _path(kind: str, namespace: str, name: str) -> str:
    if kind == api.CLUSTER_KIND:
        return api_path(_GROUP_PATH, api.CLUSTER_PLURAL, name)
    return api_path(_GROUP_PATH, "namespaces", namespace, api.PLURAL, name)


def _ref(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
