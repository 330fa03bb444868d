"""Tenant ServiceAccounts: their IRSA role annotation, and tokens minted for them (TokenRequest)."""

from __future__ import annotations

from kubernetes import client

from ecr_pull_secrets.kube.client import raw_json
from ecr_pull_secrets.model.identity import IRSA_ROLE_ANNOTATION

# The shortest lifetime the API server accepts; the token is used once, right away.
TOKEN_SECONDS = 600


class ServiceAccounts:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api_client)

    def role_arn(self, namespace: str, name: str) -> str | None:
        """The eks.amazonaws.com/role-arn annotation; raises KubeError (404) if there is no such SA."""
        body = raw_json(
            self._core.read_namespaced_service_account,
            f"get ServiceAccount {namespace}/{name}",
            name,
            namespace,
        )
        annotations = body.get("metadata", {}).get("annotations") or {}
        value = annotations.get(IRSA_ROLE_ANNOTATION)
        return str(value) if value else None

    def mint_token(self, namespace: str, name: str, audience: str) -> str:
        body = raw_json(
            self._core.create_namespaced_service_account_token,
            f"TokenRequest for ServiceAccount {namespace}/{name}",
            name,
            namespace,
            {"spec": {"audiences": [audience], "expirationSeconds": TOKEN_SECONDS}},
        )
        return str(body["status"]["token"])
