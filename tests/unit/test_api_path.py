"""API paths: a name is one encoded segment, never a way to another namespace, a query or a watch."""

from __future__ import annotations

import pytest

from ecr_pull_secrets.kube.client import KubeError, api_path


def test_plain_names_are_unchanged() -> None:
    assert api_path("/api/v1", "namespaces", "team-a", "secrets", "pull.v1") == (
        "/api/v1/namespaces/team-a/secrets/pull.v1"
    )


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        pytest.param("x?watch=true&timeoutSeconds=86400", "x%3Fwatch%3Dtrue%26timeoutSeconds%3D86400"),
        pytest.param("a#frag", "a%23frag"),
        pytest.param("a b", "a%20b"),
    ],
)
def test_queries_and_fragments_are_percent_encoded(name: str, encoded: str) -> None:
    path = api_path("/api/v1", "namespaces", "team-a", "serviceaccounts", name)

    assert path == f"/api/v1/namespaces/team-a/serviceaccounts/{encoded}"


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "x/../../other/serviceaccounts/victim", "../secrets?watch=true", "%2e%2e", "a%2Fb"],
)
def test_names_the_server_would_split_or_walk_are_refused(name: str) -> None:
    """The API server routes on the decoded path: an encoded / or .. would still walk."""
    with pytest.raises(KubeError, match="not a valid name"):
        api_path("/api/v1", "namespaces", "team-a", "serviceaccounts", name)
