"""Reading and writing managed pull Secrets, always in place (never delete-then-create)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from ecr_pull_secrets.kube.client import KubeError, Rest, api_path


@dataclass(frozen=True)
class ExistingSecret:
    metadata: Mapping[str, Any]
    type: str
    data: Mapping[str, str]


class Secrets:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._rest = Rest(api_client)

    def get(self, namespace: str, name: str) -> ExistingSecret | None:
        try:
            body = self._rest.request(
                "GET", _path(namespace, name), f"get Secret {namespace}/{name}", expect=(namespace, name)
            )
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        return ExistingSecret(body.get("metadata", {}), body.get("type", ""), body.get("data") or {})

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Returns the Secret as stored."""
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        what = f"create Secret {namespace}/{name}"
        return self._rest.request("POST", _path(namespace), what, manifest, expect=(namespace, name))

    def update(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """A strategic merge patch: our data, labels, annotations and owner reference win; anybody
        else's labels, annotations and owner references stay (that is how adoption keeps them)."""
        meta = manifest["metadata"]
        return self._rest.request(
            "PATCH",
            _path(meta["namespace"], meta["name"]),
            f"update Secret {meta['namespace']}/{meta['name']}",
            {"metadata": meta, "data": manifest["data"]},
            "application/strategic-merge-patch+json",
            expect=(meta["namespace"], meta["name"]),
        )

    def delete(self, namespace: str, name: str, uid: str) -> None:
        """Deletes only that very object (uid precondition), and tolerates it being gone already."""
        try:
            self._rest.request(
                "DELETE",
                _path(namespace, name),
                f"delete Secret {namespace}/{name}",
                {"preconditions": {"uid": uid}},
            )
        except KubeError as error:
            if error.status not in (404, 409):
                raise


def _path(namespace: str, name: str | None = None) -> str:
    return api_path("/api/v1", "namespaces", namespace, "secrets", *([name] if name is not None else []))
