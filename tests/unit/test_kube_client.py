"""kube.client's retries against a local HTTP server: a starting kube-apiserver answers 503 with
"Retry-After: 5" for paths it has not installed yet (our CRDs') and serves them a moment later."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
import yaml

from ecr_pull_secrets.kube.client import UNAVAILABLE_RETRY_AFTER_CAP, KubeError, Rest, new_api_client
from tests.unit.local_http import LocalServer, QuietHandler

UNAVAILABLE = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "message": "the request has been made before all known HTTP paths have been installed",
    "reason": "ServiceUnavailable",
    "details": {"retryAfterSeconds": 5},
    "code": 503,
}


class Starting(LocalServer):
    """Answers the first `unavailable` requests `status` (with Retry-After when `retry_after`),
    then 200."""

    def __init__(self) -> None:
        self.unavailable = 1
        self.status = 503
        self.retry_after: str | None = "5"
        self.asked = 0
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.asked += 1
                if server.asked <= server.unavailable:
                    status, body = server.status, {**UNAVAILABLE, "code": server.status}
                else:
                    status, body = 200, {"kind": "EcrPullSecretList", "items": []}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status != 200 and server.retry_after is not None:
                    self.send_header("Retry-After", server.retry_after)
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Starting]:
    """The server, and a kubeconfig naming it (new_api_client reads it as the operator would)."""
    starting = Starting()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": starting.url}}],
        "users": [{"name": "local", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "local"}}],
        "current-context": "local",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield starting
    starting.close()


PATH = "/apis/ecr.pullsecrets.dev/v1alpha1/ecrpullsecrets"


@pytest.mark.parametrize(
    ("status", "waited"),
    [
        (503, UNAVAILABLE_RETRY_AFTER_CAP),  # a starting API server: capped
        # API Priority and Fairness sheds load with 429 and a Retry-After that grows while the
        # overload lasts: that one is the server's to set.
        (429, 5),
    ],
)
def test_the_retry_after_is_capped_for_a_503_only(server: Starting, status: int, waited: float) -> None:
    server.status = status
    api_client = new_api_client(pool_size=1)
    response = urllib3.PoolManager().request("GET", server.url + PATH, retries=False)
    assert response.status == status
    assert response.headers["Retry-After"] == "5"
    assert api_client.configuration.retries.get_retry_after(response) == waited
    assert UNAVAILABLE_RETRY_AFTER_CAP < 5


def test_a_request_answered_503_with_retry_after_is_asked_again_within_the_cap(server: Starting) -> None:
    began = time.monotonic()
    listed = Rest(new_api_client(pool_size=1)).request("GET", PATH, "list ecrpullsecrets")
    took = time.monotonic() - began
    assert listed["kind"] == "EcrPullSecretList"
    assert server.asked == 2
    assert took < 3.0  # the server asked for 5 s; the cap is 1 s


def test_a_503_without_retry_after_is_the_caller_s_to_retry(server: Starting) -> None:
    server.retry_after = None
    with pytest.raises(KubeError) as raised:
        Rest(new_api_client(pool_size=1)).request("GET", PATH, "list ecrpullsecrets")
    assert raised.value.status == 503
    assert server.asked == 1
