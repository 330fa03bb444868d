"""Credentials never show their password in a repr, so they cannot leak into logs."""

from __future__ import annotations

import pytest

from ecr_pull_secrets.model.credential import Credential, RegistryToken
from tests.unit.factories import NOW, later

SECRET = "eyJwYXlsb2FkIjoic2VjcmV0LXRva2VuIn0"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(Credential("AWS", SECRET), id="credential"),
        pytest.param(RegistryToken(Credential("AWS", SECRET), NOW, later(hours=12)), id="token"),
        pytest.param([Credential("AWS", SECRET)], id="inside-a-list"),
        pytest.param({"host": Credential("AWS", SECRET)}, id="inside-a-dict"),
    ],
)
def test_repr_hides_password(value: object) -> None:
    for text in (repr(value), str(value), f"{value}", f"{value!r}"):
        assert SECRET not in text
        assert "AWS" in text, "the username stays visible for debugging"


def test_password_is_still_readable_and_compared() -> None:
    credential = Credential("AWS", SECRET)

    assert credential.password == SECRET
    assert credential != Credential("AWS", "other")
