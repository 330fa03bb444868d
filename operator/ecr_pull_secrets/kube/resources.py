"""Status writes for our custom resources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from ecr_pull_secrets.kube.client import raw_json
from ecr_pull_secrets.model import api


class Resources:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Returns the object as stored, so the caller can tell when the watch has caught up."""
        return raw_json(
            self._custom.patch_namespaced_custom_object_status,
            f"patch status of {api.KIND} {namespace}/{name}",
            api.GROUP,
            api.VERSION,
            namespace,
            api.PLURAL,
            name,
            {"status": dict(status)},
            _content_type="application/merge-patch+json",
        )
