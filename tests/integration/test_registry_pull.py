"""The operator's Secret, used verbatim as a container client's auth file, pulls from a real registry.

skopeo plays the node's container runtime; the registry is the CNCF distribution registry behind
an ECR-like auth front that accepts exactly the tokens the AWS emulator issued and has not
expired; skopeo reaches it under the ECR host name through an HTTPS proxy, so TLS and the auth
file lookup see that name (see tests/harness/registry.py).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import dockerconfig
from tests.harness.aws_emulator import AwsEmulator
from tests.harness.kube import Kube, wait_for
from tests.harness.registry import Registry
from tests.integration.conftest import REGISTRY_HOST as EAST

APP, DENIED = "team/app", "team/denied"
CONTENT = b"pulled with the operator's Secret\n"


@dataclass(frozen=True)
class Pushed:
    registry: Registry
    digest: str  # of team/app:v1


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> Pushed:
    registry.push_image(DENIED, "v1")
    return Pushed(registry, registry.push_image(APP, "v1", {"hello.txt": CONTENT}))


def _authfile(secret: dict[str, Any] | None, path: Path) -> Path:
    """The Secret's .dockerconfigjson, byte for byte, as the file a client reads."""
    assert secret is not None
    path.write_bytes(base64.b64decode(secret["data"][".dockerconfigjson"]))
    return path


def _assert_pulled(result: subprocess.CompletedProcess[str], destination: Path, digest: str) -> None:
    assert result.returncode == 0, result.stderr
    manifest = (destination / "manifest.json").read_bytes()
    assert f"sha256:{hashlib.sha256(manifest).hexdigest()}" == digest
    [layer] = json.loads(manifest)["layers"]
    blob = (destination / layer["digest"].removeprefix("sha256:")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as archive:
        member = archive.extractfile("hello.txt")
        assert member is not None
        assert member.read() == CONTENT


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, "skopeo pulled, but the registry should have refused"
    return result.stderr


@pytest.mark.usefixtures("operator")
def test_the_secret_pulls_when_fresh_and_renewed_and_not_once_expired(
    kube: Kube,
    namespace: str,
    aws: AwsEmulator,
    pushed: Pushed,
    tmp_path: Path,
) -> None:
    """15 s tokens, renewed a third of their life (5 s) ahead."""
    registry, digest = pushed.registry, pushed.digest
    aws.token_lifetime = 15
    kube.create_eps(namespace, "app", {"registries": [EAST], "secretName": "app-ecr"})
    first = wait_for("the pull Secret", lambda: kube.get_secret(namespace, "app-ecr"), timeout=10)
    fresh = _authfile(first, tmp_path / "fresh.json")
    [old_password] = dockerconfig.passwords(first)

    _assert_pulled(registry.pull(f"{EAST}/{APP}:v1", fresh, tmp_path / "fresh"), tmp_path / "fresh", digest)

    def renewed() -> dict[str, Any] | None:
        secret = kube.get_secret(namespace, "app-ecr")
        return secret if secret and dockerconfig.passwords(secret) != {old_password} else None

    second = wait_for("the renewed Secret", renewed, timeout=aws.token_lifetime)
    after_renewal = _authfile(second, tmp_path / "renewed.json")
    _assert_pulled(
        registry.pull(f"{EAST}/{APP}:v1", after_renewal, tmp_path / "renewed"), tmp_path / "renewed", digest
    )

    old_expiry = aws.issued_tokens()[old_password]
    wait_for("the first token to expire", lambda: time.time() > old_expiry, timeout=aws.token_lifetime)
    error = _refused(registry.inspect(f"{EAST}/{APP}:v1", fresh))
    assert "denied: Your authorization token has expired. Reauthenticate and try again." in error
    assert registry.requests()[-1].status == 403  # what ECR answers for an expired token

    current = _authfile(kube.get_secret(namespace, "app-ecr"), tmp_path / "current.json")
    assert registry.inspect(f"{EAST}/{APP}:v1", current).returncode == 0


@pytest.mark.usefixtures("operator")
def test_a_repository_the_identity_may_not_pull_is_forbidden_and_a_revoked_token_unauthorized(
    kube: Kube,
    namespace: str,
    aws: AwsEmulator,
    pushed: Pushed,
    tmp_path: Path,
) -> None:
    registry, digest = pushed.registry, pushed.digest
    kube.create_eps(namespace, "app", {"registries": [EAST], "secretName": "app-ecr"})
    secret = wait_for("the pull Secret", lambda: kube.get_secret(namespace, "app-ecr"), timeout=10)
    authfile = _authfile(secret, tmp_path / "auth.json")
    [password] = dockerconfig.passwords(secret)
    token = aws.registry_token(password)
    assert token is not None
    aws.deny_pull(DENIED, principal=token.principal)

    error = _refused(registry.inspect(f"{EAST}/{DENIED}:v1", authfile))
    assert (
        f"denied: User: {token.principal} is not authorized to perform: ecr:BatchGetImage on resource: "
        f"arn:aws:ecr:us-east-1:123456789012:repository/{DENIED}"
    ) in error
    assert registry.requests()[-1].status == 403
    # The same token still pulls what its identity may pull.
    _assert_pulled(registry.pull(f"{EAST}/{APP}:v1", authfile, tmp_path / "app"), tmp_path / "app", digest)

    aws.revoke_token(password)
    error = _refused(registry.inspect(f"{EAST}/{APP}:v1", authfile))
    assert "unauthorized: Not Authorized" in error
    assert registry.requests()[-1].status == 401
