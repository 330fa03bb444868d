"""Writes to our own custom resources: status, and the cleanup finalizer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from ecr_pull_secrets.kube.client import Rest, api_path
from ecr_pull_secrets.model import api

MERGE_PATCH = "application/merge-patch+json"
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


def _path(kind: str, namespace: str, name: str) -> str:
    if kind == api.CLUSTER_KIND:
        return api_path(_GROUP_PATH, api.CLUSTER_PLURAL, name)
    return api_path(_GROUP_PATH, "namespaces", namespace, api.PLURAL, name)


def _ref(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
