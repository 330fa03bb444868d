"""Tenant ServiceAccounts: their IRSA role annotation, and tokens minted for them (TokenRequest)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kubernetes import client

from ecr_pull_secrets.kube.client import KubeError, Rest, api_path
from ecr_pull_secrets.model.cluster import ADDED_PULL_SECRETS_ANNOTATION, ServiceAccountView, added_entry
from ecr_pull_secrets.model.identity import IRSA_ROLE_ANNOTATION

# The shortest lifetime the API server accepts; the token is used once, right away.
TOKEN_SECONDS = 600


class ServiceAccounts:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._rest = Rest(api_client)

    def role_arn(self, namespace: str, name: str) -> str | None:
        """The eks.amazonaws.com/role-arn annotation; raises KubeError (404) if there is no such SA."""
        body = self._rest.request(
            "GET", _path(namespace, name), f"get ServiceAccount {namespace}/{name}", expect=(namespace, name)
        )
        annotations = body.get("metadata", {}).get("annotations") or {}
        value = annotations.get(IRSA_ROLE_ANNOTATION)
        return str(value) if value else None

    def add_pull_secret(self, account: ServiceAccountView, secret: str, owner_uid: str) -> dict[str, Any]:
        """imagePullSecrets has no merge key on ServiceAccounts, so the whole list is written, with
        the resourceVersion as a precondition: someone else's concurrent edit is never lost. The
        annotation remembers which entries we added, so we remove only our own."""
        entries = None if secret in account.image_pull_secrets else [*account.image_pull_secrets, secret]
        return self._write(account, entries, sorted({*account.added, added_entry(secret, owner_uid)}))

    def remove_pull_secrets(
        self, account: ServiceAccountView, secrets: Collection[str], owner_uid: str
    ) -> dict[str, Any]:
        entries = [name for name in account.image_pull_secrets if name not in secrets]
        ours = {added_entry(secret, owner_uid) for secret in secrets}
        return self._write(account, entries, sorted(set(account.added) - ours))

    def _write(
        self, account: ServiceAccountView, entries: list[str] | None, added: list[str]
    ) -> dict[str, Any]:
        """Returns the ServiceAccount as stored."""
        patch: dict[str, Any] = {
            "metadata": {
                "resourceVersion": account.resource_version,
                "annotations": {ADDED_PULL_SECRETS_ANNOTATION: ",".join(added) or None},
            }
        }
        if entries is not None:
            patch["imagePullSecrets"] = [{"name": name} for name in entries]
        return self._rest.request(
            "PATCH",
            _path(account.namespace, account.name),
            f"update imagePullSecrets of ServiceAccount {account.namespace}/{account.name}",
            patch,
            "application/merge-patch+json",
            expect=(account.namespace, account.name),
        )

    def mint_token(self, namespace: str, name: str, audience: str) -> str:
        body = self._rest.request(
            "POST",
            _path(namespace, name) + "/token",
            f"TokenRequest for ServiceAccount {namespace}/{name}",
            {"spec": {"audiences": [audience], "expirationSeconds": TOKEN_SECONDS}},
        )
        token = (body.get("status") or {}).get("token")
        if not isinstance(token, str) or not token:
            raise KubeError(
                0, "the TokenRequest answer holds no token", f"TokenRequest for {namespace}/{name}"
            )
        return token


def _path(namespace: str, name: str) -> str:
    return api_path("/api/v1", "namespaces", namespace, "serviceaccounts", name)
