"""Watches, streamed from a resourceVersion (the informer half that follows a list)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client

from ecr_pull_secrets.kube.client import KubeError, collection_path

WATCH_SECONDS = 300
"""The API server ends each watch after this long; the caller starts the next from where it was."""
TIMEOUT = (5.0, WATCH_SECONDS + 30.0)
"""(connect, read): a silent connection is given up a little after the server would have ended it."""


class Gone(Exception):
    """410: the resourceVersion is older than the API server keeps; list again."""


class Watching:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client

    def events(
        self, plural: str, resource_version: str, *, namespace: str | None = None, label_selector: str = ""
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Blocking: (type, object) for every event after `resource_version`, BOOKMARKs included,
        until the API server ends the watch; raises Gone, or KubeError (status 0: the connection)."""
        path = collection_path(plural, namespace)
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        if label_selector:
            query["labelSelector"] = label_selector
        what = f"watch {plural}"
        method, url, headers, payload, post = self._api.param_serialize(
            "GET",
            f"{path}?{urlencode(query)}",
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(method, url, headers, payload, post, _request_timeout=TIMEOUT)
        except urllib3.exceptions.HTTPError as error:
            raise KubeError(0, type(error).__name__, what) from None
        stream = response.response
        finished = False
        try:
            if response.status == 410:
                raise Gone
            if not 200 <= response.status < 300:
                raise KubeError(int(response.status), str(response.reason or ""), what)
            for line in stream:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type", ""), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone
                    raise KubeError(int(obj.get("code") or 0), str(obj.get("reason") or ""), what)
                yield kind, obj
            finished = True
        except (urllib3.exceptions.HTTPError, OSError) as error:  # the connection broke
            raise KubeError(0, type(error).__name__, what) from None
        finally:
            if finished:
                stream.release_conn()
            else:
                stream.close()
