"""Writes to our own custom resources: status, and the cleanup finalizer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from ecr_pull_secrets.kube.client import raw_json
from ecr_pull_secrets.model import api

MERGE_PATCH = "application/merge-patch+json"


class Resources:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)

    def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        body = {"status": dict(status)}
        if kind == api.CLUSTER_KIND:
            return raw_json(
                self._custom.patch_cluster_custom_object_status,
                f"patch status of {kind} {name}",
                api.GROUP, api.VERSION, api.CLUSTER_PLURAL, name, body,
                _content_type=MERGE_PATCH,
            )  # fmt: skip
        return raw_json(
            self._custom.patch_namespaced_custom_object_status,
            f"patch status of {kind} {namespace}/{name}",
            api.GROUP, api.VERSION, namespace, api.PLURAL, name, body,
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    def set_finalizers(
        self, kind: str, namespace: str, name: str, finalizers: Sequence[str], resource_version: str
    ) -> None:
        """The resourceVersion makes this a compare-and-swap: someone else's finalizer is never lost."""
        body = {"metadata": {"finalizers": list(finalizers), "resourceVersion": resource_version}}
        if kind == api.CLUSTER_KIND:
            raw_json(
                self._custom.patch_cluster_custom_object,
                f"update finalizers of {kind} {name}",
                api.GROUP, api.VERSION, api.CLUSTER_PLURAL, name, body,
                _content_type=MERGE_PATCH,
            )  # fmt: skip
            return
        raw_json(
            self._custom.patch_namespaced_custom_object,
            f"update finalizers of {kind} {namespace}/{name}",
            api.GROUP, api.VERSION, namespace, api.PLURAL, name, body,
            _content_type=MERGE_PATCH,
        )  # fmt: skip
