"""kube.watching.Watching against a local HTTP server speaking the watch protocol (JSON lines):
events in order with bookmarks, the query it sends, 410 in both forms, other errors, a broken stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.watching import Gone, Watching
from tests.unit.local_http import LocalServer, QuietHandler


class Server(LocalServer):
    """Answers every request with `status` and the given lines; records what was asked."""

    def __init__(self) -> None:
        self.status = 200
        self.lines: list[bytes] = []
        self.truncate = False
        self.asked: list[tuple[str, dict[str, list[str]]]] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                server.asked.append((url.path, parse_qs(url.query)))
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for line in server.lines:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line) + 1, line + b"\n"))
                if not server.truncate:
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True

        super().__init__(Handler)


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def watching(server: Server) -> Watching:
    configuration = client.Configuration()
    configuration.host = server.url
    return Watching(client.ApiClient(configuration))


def line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode()


def test_events_in_order_with_bookmarks_and_the_query_asked(server: Server) -> None:
    server.lines = [
        line("ADDED", {"metadata": {"name": "a", "resourceVersion": "11"}}),
        b"",
        line("BOOKMARK", {"metadata": {"resourceVersion": "15"}}),
        line("DELETED", {"metadata": {"name": "a", "resourceVersion": "16"}}),
    ]
    got = list(watching(server).events("secrets", "10", namespace="team-a", label_selector="x=y"))
    assert [(kind, obj["metadata"]["resourceVersion"]) for kind, obj in got] == [
        ("ADDED", "11"),
        ("BOOKMARK", "15"),
        ("DELETED", "16"),
    ]
    [(path, query)] = server.asked
    assert path == "/api/v1/namespaces/team-a/secrets"
    assert query == {
        "watch": ["1"],
        "resourceVersion": ["10"],
        "allowWatchBookmarks": ["true"],
        "timeoutSeconds": ["300"],
        "labelSelector": ["x=y"],
    }


def test_a_gone_version_in_the_status_or_in_the_stream(server: Server) -> None:
    server.status = 410
    with pytest.raises(Gone):
        list(watching(server).events("namespaces", "1"))
    server.status = 200
    server.lines = [line("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})]
    with pytest.raises(Gone):
        list(watching(server).events("namespaces", "1"))


def test_other_errors_are_kube_errors(server: Server) -> None:
    server.status = 403
    with pytest.raises(KubeError) as refused:
        list(watching(server).events("serviceaccounts", "1"))
    assert refused.value.status == 403
    server.status = 200
    server.lines = [line("ERROR", {"kind": "Status", "code": 500, "reason": "InternalError"})]
    with pytest.raises(KubeError) as failed:
        list(watching(server).events("serviceaccounts", "1"))
    assert failed.value.status == 500


def test_a_broken_stream_is_a_kube_error_after_what_arrived(server: Server) -> None:
    server.lines = [line("ADDED", {"metadata": {"name": "a", "resourceVersion": "2"}})]
    server.truncate = True
    stream = watching(server).events("secrets", "1")
    assert next(stream)[0] == "ADDED"
    with pytest.raises(KubeError) as broken:
        next(stream)
    assert broken.value.status == 0


def test_an_unreachable_server_is_a_kube_error() -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:1"
    configuration.retries = 0
    with pytest.raises(KubeError) as unreachable:
        list(Watching(client.ApiClient(configuration)).events("secrets", "1"))
    assert unreachable.value.status == 0
