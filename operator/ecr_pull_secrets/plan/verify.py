"""Does the Secret pull? What each registry answer means, pure: the `Verified` condition's status,
stable reason and a message that says what to fix.

The requests themselves (verify/) ask each registry of a resource `GET /v2/` with the Secret's
credentials (is the token accepted?) and then `HEAD /v2/<repository>/manifests/<tag or digest>` for
each of spec.verify.images (may that identity pull it?). Each answer comes here as an `Answer`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost

VERIFIED = "Verified"
REASONS = ("Verified", "Unauthorized", "Forbidden", "NotFound", "Unreachable", "TLSError", "RegistryError")
"""Every reason the condition (and the request metric, with `OK` for a good answer) can carry."""

_EXPIRED = "token has expired"
"""In ECR's 403 for an expired token; the same 403 without it means no IAM permission."""


@dataclass(frozen=True)
class Answer:
    """What one request got: an HTTP status, or None when none came (then `error` says why)."""

    host: str
    image: str | None
    """None for `GET /v2/`; else the `repository:tag` or `repository@digest` asked for."""
    status: int | None
    error: str = ""
    """The registry's own error message (4xx), or the transport error; never credentials."""
    tls: bool = False
    """The connection failed in the TLS handshake (certificate, protocol)."""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    message: str

    @property
    def status(self) -> str:
        return "True" if self.ok else "False"


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag or digest) of a spec.verify.images entry (already valid)."""
    if "@" in image:
        repository, digest = image.split("@", 1)
        return repository, digest
    repository, tag = image.rsplit(":", 1)
    return repository, tag


def result(answer: Answer) -> str:
    """`OK` or the reason one answer fails with: the metric's label."""
    if answer.status is None:
        return "TLSError" if answer.tls else "Unreachable"
    if 200 <= answer.status < 300:
        return "OK"
    if answer.status == 401 or (answer.status == 403 and _EXPIRED in answer.error):
        return "Unauthorized"
    if answer.status == 403:
        return "Forbidden"
    if answer.status == 404 and answer.image is not None:
        return "NotFound"
    return "RegistryError"


def judge(answers: Sequence[Answer], identity: str | None) -> Verdict:
    """The first failing answer decides; all good: Verified."""
    for answer in answers:
        reason = result(answer)
        if reason != "OK":
            what, fix = explain(answer, reason, identity)
            return Verdict(False, reason, f"{what}; {fix}")
    hosts = sorted({a.host for a in answers})
    images = sorted({a.image for a in answers if a.image is not None})
    accepted = f"{', '.join(hosts)} accept{'s' if len(hosts) == 1 else ''} the Secret's token"
    pulled = f"; {len(images)} image manifest(s) answer: {', '.join(images)}" if images else ""
    return Verdict(True, "Verified", accepted + pulled)


def explain(answer: Answer, reason: str, identity: str | None) -> tuple[str, str]:
    """(what the registry said, what to fix) for a failing answer."""
    host, image = answer.host, answer.image
    asked = f"{host}/{image}" if image else f"{host} (GET /v2/)"
    said = f": {_bounded(answer.error).rstrip('.')}" if answer.error else ""
    fixes = {
        "Forbidden": (
            f"{asked}: 403, pull denied{said}",
            f"allow {identity or 'the identity that made the token'} ecr:BatchGetImage and "
            f"ecr:GetDownloadUrlForLayer on {repository_arn(host, split_image(image or 'x:x')[0])} "
            f"(`ecr-pull-secrets iam-policy --registry {host}` prints a policy), or in the repository policy",
        ),
        "NotFound": (
            f"{asked}: no such manifest (404){said}",
            "check the repository and tag or digest, and that the image was pushed to this registry",
        ),
        "TLSError": (
            f"{asked}: TLS failed ({_bounded(answer.error)})",
            "behind a proxy that intercepts TLS, trust its CA with --registry-ca-bundle",
        ),
        "Unreachable": (
            f"{asked}: unreachable ({_bounded(answer.error)})",
            "check egress to the registry, proxies, a VPC endpoint for ecr.dkr, or --registry-endpoint",
        ),
        "Unauthorized": (
            f"{asked}: the Secret's token has expired{said}"
            if answer.status == 403
            else f"{asked} refused the Secret's token (401){said}",
            "the operator renews tokens ahead of expiry: see the Ready and Degraded conditions for why "
            "it did not"
            if answer.status == 403
            else "the token is unknown to ECR or was revoked: annotate the resource with "
            f"{api.FORCE_REFRESH_ANNOTATION}=<any new value> to get a new one",
        ),
    }
    return fixes.get(reason, (f"{asked}: the registry answered {answer.status}{said}", "retry later"))


def repository_arn(host: str, repository: str) -> str:
    try:
        registry = RegistryHost.parse(host)
    except InvalidRegistryHost:
        return f"repository {repository}"
    if registry.account is None:
        return f"arn:aws:ecr-public::ACCOUNT:repository/{repository}"
    return f"arn:{registry.partition}:ecr:{registry.region}:{registry.account}:repository/{repository}"


def authorizations(dockerconfigjson: str) -> dict[str, str]:
    """host -> the `auth` value of a .dockerconfigjson (base64 of `user:password`), as a client
    sends it after `Basic `; entries that are not base64 are left out."""
    try:
        auths = json.loads(base64.b64decode(dockerconfigjson, validate=True)).get("auths") or {}
    except (ValueError, AttributeError, binascii.Error, RecursionError):  # RecursionError: too deep
        return {}
    found = {}
    for host, entry in auths.items() if isinstance(auths, Mapping) else ():
        auth = entry.get("auth") if isinstance(entry, Mapping) else None
        if isinstance(auth, str) and auth:
            found[str(host)] = auth
    return found


def _bounded(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
