"""What the API server's discovery lists: kopf reads it once, at start, to learn which kinds it can
watch. Right after kube-apiserver (re)starts it can answer before it lists the CRDs' groups again."""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes import client

from ecr_pull_secrets.kube.client import KubeError, Rest

GroupVersion = tuple[str, str]


class Discovery:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._rest = Rest(api_client)

    def unlisted(self, wanted: Mapping[GroupVersion, frozenset[str]]) -> list[str]:
        """The `plural.group` of each wanted kind that discovery does not list (yet).

        Raises KubeError when the API server fails to answer; status 0 when it cannot be reached."""
        groups = self._rest.request("GET", "/apis", "list API groups").get("groups", [])
        listed = {(g.get("name"), v.get("version")) for g in groups for v in g.get("versions", [])}
        missing: list[str] = []
        for (group, version), plurals in sorted(wanted.items()):
            served: set[str] = set()
            if (group, version) in listed:
                try:
                    what = f"list the {group}/{version} resources"
                    body = self._rest.request("GET", f"/apis/{group}/{version}", what)
                    served = {str(r.get("name", "")) for r in body.get("resources", [])}
                except KubeError as error:
                    if error.status != 404:
                        raise
            missing += [f"{plural}.{group}" for plural in sorted(plurals - served)]
        return missing
