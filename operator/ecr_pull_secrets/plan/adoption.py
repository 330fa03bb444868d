"""May a resource write a Secret that already exists under its secretName? (the create was refused)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecr_pull_secrets.model import api


def refusal(
    metadata: Mapping[str, Any],
    secret_type: str,
    owner_uid: str,
    policy: str,
    kind: str,
    *,
    wanted_type: str = api.SECRET_TYPE,
) -> str | None:
    """None: write it in place (it is ours already, or unowned and spec.secretPolicy is Adopt);
    otherwise why not, in words for status and Events. `wanted_type`: the type of the Secret the
    resource's spec.output makes; a Secret's type cannot change, and one not ours is never replaced."""
    name = metadata.get("name", "")
    controller = next((r for r in metadata.get("ownerReferences") or () if r.get("controller")), None)
    if controller is not None and controller.get("uid") != owner_uid:
        return (
            f"Secret {name} is managed by {controller.get('kind')} {controller.get('name')}; "
            "two resources may not write one Secret"
        )
    if controller is None and policy != "Adopt":
        return unowned_message(name, kind)
    if secret_type != wanted_type:
        return f"Secret {name} has type {secret_type}, which cannot become {wanted_type}"
    return None


def unowned_message(secret_name: str, kind: str) -> str:
    return (
        f"Secret {secret_name} already exists and is not managed by this {kind}; "
        "rename spec.secretName, delete that Secret, or set spec.secretPolicy: Adopt"
    )
