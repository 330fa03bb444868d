"""Reading and writing managed pull Secrets, always in place (never delete-then-create)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from ecr_pull_secrets.kube.client import KubeError, raw_json


@dataclass(frozen=True)
class ExistingSecret:
    metadata: Mapping[str, Any]
    type: str
    data: Mapping[str, str]


class Secrets:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api_client)

    def get(self, namespace: str, name: str) -> ExistingSecret | None:
        try:
            body = raw_json(
                self._core.read_namespaced_secret, f"get Secret {namespace}/{name}", name, namespace
            )
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        return ExistingSecret(body.get("metadata", {}), body.get("type", ""), body.get("data") or {})

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Returns the Secret as stored."""
        namespace = manifest["metadata"]["namespace"]
        return raw_json(
            self._core.create_namespaced_secret,
            f"create Secret {namespace}/{manifest['metadata']['name']}",
            namespace,
            manifest,
        )

    def update(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """A strategic merge patch: our data, labels, annotations and owner reference win; anybody
        else's labels, annotations and owner references stay (that is how adoption keeps them)."""
        meta = manifest["metadata"]
        return raw_json(
            self._core.patch_namespaced_secret,
            f"update Secret {meta['namespace']}/{meta['name']}",
            meta["name"],
            meta["namespace"],
            {"metadata": meta, "data": manifest["data"]},
            _content_type="application/strategic-merge-patch+json",
        )

    def delete(self, namespace: str, name: str, uid: str) -> None:
        """Deletes only that very object (uid precondition), and tolerates it being gone already."""
        try:
            raw_json(
                self._core.delete_namespaced_secret,
                f"delete Secret {namespace}/{name}",
                name,
                namespace,
                body={"preconditions": {"uid": uid}},
            )
        except KubeError as error:
            if error.status not in (404, 409):
                raise
