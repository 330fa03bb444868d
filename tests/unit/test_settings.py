"""settings: flags, their environment defaults and their bounds."""

from __future__ import annotations

import argparse

import pytest

from ecr_pull_secrets.settings import Settings, add_arguments, from_arguments


def settings(*argv: str, env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, env=env or {})
    return from_arguments(parser.parse_args(list(argv)))


def test_the_peering_lifetime_is_kopf_s_default_unless_told() -> None:
    assert settings().peering_lifetime == 60
    assert settings("--peering-lifetime", "20").peering_lifetime == 20
    assert settings("--peering-lifetime", "15").peering_lifetime == 15
    assert settings("--peering-lifetime", "3600").peering_lifetime == 3600
    flag_over_env = settings("--peering-lifetime", "20", env={"ECR_PULL_SECRETS_PEERING_LIFETIME": "30"})
    assert flag_over_env.peering_lifetime == 20
    assert settings(env={"ECR_PULL_SECRETS_PEERING_LIFETIME": "30"}).peering_lifetime == 30


@pytest.mark.parametrize("seconds", ["14", "3601", "ten"])
def test_a_peering_lifetime_out_of_bounds_is_refused(seconds: str) -> None:
    with pytest.raises(SystemExit):
        settings("--peering-lifetime", seconds)
    with pytest.raises(SystemExit):
        settings(env={"ECR_PULL_SECRETS_PEERING_LIFETIME": seconds})
