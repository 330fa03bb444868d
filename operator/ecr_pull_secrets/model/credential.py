"""Registry credentials. Their repr never shows the password, so they cannot leak into logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Credential:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RegistryToken:
    """One ECR authorization token: valid for every registry of its region the identity may read."""

    credential: Credential
    issued_at: datetime
    expires_at: datetime
