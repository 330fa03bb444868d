"""Ask a registry, with a Secret's credentials, `GET /v2/` and `HEAD` a manifest.

Each request has a connect and a read timeout and goes to `https://HOST`, or to the endpoint the
settings name for HOST (a private endpoint, or the tests' local registry), trusting the system's
CAs or the configured bundle. `HTTPS_PROXY`/`NO_PROXY` are honoured (a CONNECT tunnel). The
`Authorization` header is the only place the credentials go: never into logs, errors or answers.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ecr_pull_secrets.plan.verify import Answer, result, split_image

log = logging.getLogger(__name__)

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
MAX_ERROR_BODY = 8192


@dataclass(frozen=True)
class RegistryClient:
    endpoints: Mapping[str, str] = field(default_factory=dict)
    """HOST -> https://ADDRESS[:PORT]: where to connect for HOST (Host header stays HOST)."""
    ca_bundle: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    record: Callable[[str], None] = lambda result: None
    """Called with every request's result (`OK` or a reason), for the metric."""

    def check(self, hosts: Mapping[str, str | None], images: Sequence[str]) -> list[Answer]:
        """For each host (-> its `auth` value, base64 `user:password`): /v2/, then each image's
        manifest while the token is accepted. Blocking: run it in a thread."""
        context = ssl.create_default_context(cafile=self.ca_bundle)
        answers = []
        for host, auth in hosts.items():
            first = self._ask(context, host, auth, "GET", "/v2/", None)
            answers.append(first)
            if result(first) != "OK":
                continue
            for image in images:
                repository, reference = split_image(image)
                path = f"/v2/{repository}/manifests/{reference}"
                answers.append(self._ask(context, host, auth, "HEAD", path, image))
        return answers

    def _ask(  # noqa: PLR0917  # one request, spelled out
        self, context: ssl.SSLContext, host: str, auth: str | None, method: str, path: str, image: str | None
    ) -> Answer:
        connection = self._connection(context, host)
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(self.read_timeout)
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", host)
            connection.putheader("Accept", MANIFEST_TYPES if image else "application/json")
            if auth:
                connection.putheader("Authorization", f"Basic {auth}")
            connection.endheaders()
            response = connection.getresponse()
            body = response.read(MAX_ERROR_BODY) if response.status >= 400 else b""
            answer = Answer(host, image, response.status, _registry_error(body))
        except ssl.SSLError as error:
            answer = Answer(host, image, None, _tls_error(error), tls=True)
        except (OSError, http.client.HTTPException) as error:
            answer = Answer(host, image, None, _transport_error(error))
        finally:
            connection.close()
        self.record(result(answer))
        log.debug("verify %s %s%s: %s", method, host, path, answer.status or answer.error)
        return answer

    def _connection(self, context: ssl.SSLContext, host: str) -> http.client.HTTPSConnection:
        target = urllib.parse.urlsplit(self.endpoints.get(host) or f"https://{host}")
        address, port = target.hostname or host, target.port or 443
        proxy = _proxy_for(address)
        if proxy is None:
            return http.client.HTTPSConnection(address, port, timeout=self.connect_timeout, context=context)
        connection = http.client.HTTPSConnection(
            proxy.hostname or "", proxy.port or 80, timeout=self.connect_timeout, context=context
        )
        connection.set_tunnel(address, port)
        return connection


def _proxy_for(address: str) -> urllib.parse.SplitResult | None:
    proxy = urllib.request.getproxies().get("https")
    if not proxy or urllib.request.proxy_bypass(address):
        return None
    return urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")


def _registry_error(body: bytes) -> str:
    """The first error message of a registry's JSON error body; '' for anything else."""
    try:
        errors = json.loads(body).get("errors") or []
        return str(errors[0].get("message") or "")[:300]
    except (ValueError, AttributeError, IndexError, TypeError, RecursionError):
        return ""


def _tls_error(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {error.verify_message}"
    return f"TLS handshake failed: {error.reason or type(error).__name__}"


def _transport_error(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "host name not resolved"
    return type(error).__name__
