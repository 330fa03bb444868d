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
        pytest.param(
            "x/../../other/serviceaccounts/victim", "x%2F..%2F..%2Fother%2Fserviceaccounts%2Fvictim"
        ),
        pytest.param(
            "../secrets?watch=true&timeoutSeconds=86400",
            "..%2Fsecrets%3Fwatch%3Dtrue%26timeoutSeconds%3D86400",
        ),
        pytest.param("a#frag", "a%23frag"),
        pytest.param("%2e%2e", "%252e%252e"),
        pytest.param("a b", "a%20b"),
    ],
)
def test_every_segment_is_percent_encoded(name: str, encoded: str) -> None:
    path = api_path("/api/v1", "namespaces", "team-a", "serviceaccounts", name)

    assert path == f"/api/v1/namespaces/team-a/serviceaccounts/{encoded}"
    assert path.count("/") == 6


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_dot_segments_and_empty_names_are_refused(name: str) -> None:
    with pytest.raises(KubeError, match="not a valid name"):
        api_path("/api/v1", "namespaces", name)
