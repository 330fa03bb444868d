"""Paginated lists: whole objects to prime the caches, metadata only to check them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from kubernetes import client

from ecr_pull_secrets.kube.client import KubeError, Rest, collection_path

PAGE = 500
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class Listing:
    """One kind (a plural of kube.client.API_PREFIX), cluster-wide or in one namespace."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._rest = Rest(api_client)

    def pages(
        self,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Each page's items and the list's resourceVersion (the same on every page)."""
        path = collection_path(plural, namespace)
        token = ""
        while True:
            query = {"limit": str(PAGE)}
            if label_selector:
                query["labelSelector"] = label_selector
            if field_selector:
                query["fieldSelector"] = field_selector
            if token:
                query["continue"] = token
            body = self._rest.request(
                "GET",
                f"{path}?{urlencode(query)}",
                f"list {plural}",
                accept=METADATA_ONLY if metadata_only else "application/json",
            )
            meta = body.get("metadata") or {}
            yield list(body.get("items") or ()), str(meta.get("resourceVersion") or "")
            token = str(meta.get("continue") or "")
            if not token:
                return

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """One whole object, or None if it is gone."""
        try:
            path = collection_path(plural, namespace, name)
            return self._rest.request("GET", path, f"get {plural} {name}", expect=(namespace or "", name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise
