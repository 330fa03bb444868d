"""One configured Kubernetes API client for the process (in-cluster first, then kubeconfig)."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client, config

from ecr_pull_secrets.model import api

# Every request gives up after this long: a stuck call must never pin one of the worker threads
# that all tenants share. (connect, read) in seconds; watches have their own (kube/watching.py).
REQUEST_TIMEOUT = (5.0, 30.0)
UNAVAILABLE_RETRY_AFTER_CAP = 1.0
"""Seconds, at most, that a request waits when the API server answers 503 with Retry-After."""
ApiClient = client.ApiClient
"""The configured client, named for those outside kube/ and handlers/ (they never import kubernetes)."""


class KubeError(Exception):
    """A failed API call, described by status and reason only: response bodies may echo Secret data."""

    def __init__(self, status: int, reason: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {reason}")
        self.status = status
        self.reason = reason


def api_path(prefix: str, *segments: str) -> str:
    """`prefix` (a constant such as /api/v1) and each segment percent-encoded, so a name can never
    add a query or a fragment. The API server decodes the path before it routes and authorizes, so
    an encoded "/" would still split a segment there: "/", "%" and the dot segments are refused."""
    for segment in segments:
        if segment in ("", ".", "..") or "/" in segment or "%" in segment:
            raise KubeError(400, f"{segment!r} is not a valid name in an API path", "build a request")
    return "/".join((prefix, *(quote(segment, safe="") for segment in segments)))


API_PREFIX = {
    "namespaces": "/api/v1",
    "serviceaccounts": "/api/v1",
    "secrets": "/api/v1",
    "events": "/api/v1",
    api.PLURAL: f"/apis/{api.GROUP}/{api.VERSION}",
    api.CLUSTER_PLURAL: f"/apis/{api.GROUP}/{api.VERSION}",
    "kopfpeerings": "/apis/kopf.dev/v1",
    "clusterkopfpeerings": "/apis/kopf.dev/v1",
}
"""The kinds the operator lists, watches or posts, by plural."""


def collection_path(plural: str, namespace: str | None = None, name: str | None = None) -> str:
    """A collection (or one object of it, by `name`), in one namespace or the whole cluster."""
    segments = ("namespaces", namespace, plural) if namespace else (plural,)
    return api_path(API_PREFIX[plural], *segments, *((name,) if name is not None else ()))


class Retries(urllib3.Retry):
    """urllib3's retries (3, for the methods it retries by default: never POST or PATCH), with the
    Retry-After of a 503 honoured up to UNAVAILABLE_RETRY_AFTER_CAP. A kube-apiserver that is
    starting answers 503 with "Retry-After: 5" for every path it has not installed yet, our CRDs'
    among them, and served them 0.2 s later in a probe: waited in full, the 5 s came on top of the
    restart and used up the renewal lead of Secrets due meanwhile. A 429's Retry-After (API
    Priority and Fairness shedding load: 1 s, growing while the overload lasts) is honoured."""

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        if after is None or response.status != 503:
            return after
        return min(after, UNAVAILABLE_RETRY_AFTER_CAP)


def new_api_client(pool_size: int) -> client.ApiClient:
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        # KUBECONFIG as it is now (the library reads it once, when imported).
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = Retries(3)
    return client.ApiClient(configuration)


class Rest:
    """Plain JSON requests on the configured client, for the core API. The generated CoreV1Api
    builds pydantic validators for its ~400 methods when imported: 78 MB of RSS (measured) for
    the seven calls the operator makes."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client

    def request(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        content_type: str = "application/json",
        *,
        expect: tuple[str, str] | None = None,
        accept: str = "application/json",
    ) -> dict[str, Any]:
        """`expect` (namespace, name): the object that comes back must be that one, or KubeError."""
        headers = {"Accept": accept, "Content-Type": content_type}
        method, url, headers, payload, post = self._api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        try:
            response = self._api.call_api(
                method, url, headers, payload, post, _request_timeout=REQUEST_TIMEOUT
            )
            data = response.read()
        except urllib3.exceptions.HTTPError as error:  # unreachable, refused, timed out
            raise KubeError(0, type(error).__name__, what) from None
        if not 200 <= response.status < 300:
            raise KubeError(int(response.status), str(response.reason or ""), what)
        parsed = json.loads(data or b"{}")
        parsed = parsed if isinstance(parsed, dict) else {}
        if expect is not None:
            meta = parsed.get("metadata") or {}
            if (meta.get("namespace") or "", meta.get("name")) != expect:
                raise KubeError(0, "the API server answered with another object than was asked for", what)
        return parsed
