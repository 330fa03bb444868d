"""`ecr-pull-secrets login`: registry credentials for docker, helm or crane, outside the cluster.

`login HOST` prints the password, like `aws ecr get-login-password`;
`login --dockerconfigjson HOST...` prints a `{"auths": {...}}` document for all the hosts.
Tokens come from boto3's default credential chain, one per distinct region (ECR Public: one
from us-east-1). Failures are one line on stderr, never a traceback and never token material.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ecr_pull_secrets.aws.errors import AwsCallFailed
from ecr_pull_secrets.aws.tokens import TokenSource, default_source
from ecr_pull_secrets.model.credential import Credential
from ecr_pull_secrets.model.identity import OPERATOR_CHAIN
from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost, TokenGroup
from ecr_pull_secrets.plan.content import dockerconfigjson

PROG = "ecr-pull-secrets login"
# Names the requester in role session names; the default chain assumes no role, so it is unused.
OWNER = ("", "cli")


def run(args: argparse.Namespace) -> int:
    """`args.hosts`: registry hosts as typed; `args.dockerconfigjson`: print a config document."""
    try:
        hosts = [RegistryHost.parse(raw) for raw in args.hosts]
    except InvalidRegistryHost as error:
        return _fail(str(error), 2)
    if not args.dockerconfigjson and len(hosts) > 1:
        return _fail("give one HOST, or --dockerconfigjson for several", 2)
    try:
        credentials = credentials_for(hosts, default_source())
    except AwsCallFailed as error:
        return _fail(error.message, 1)
    if args.dockerconfigjson:
        print(dockerconfigjson(credentials))
    else:
        print(credentials[hosts[0].host].password)
    return 0


def credentials_for(hosts: Sequence[RegistryHost], source: TokenSource) -> dict[str, Credential]:
    """A credential per host, asking once per token scope: a private token serves every registry
    of its region; the ECR Public token serves public.ecr.aws."""
    tokens: dict[tuple[str, TokenGroup], Credential] = {}
    for host in hosts:
        scope = (host.partition, host.token_group)
        if scope not in tokens:
            tokens[scope], _ = source.authorization_token(
                OPERATOR_CHAIN, host.partition, host.region, host.public, OWNER, fips=host.fips
            )
    return {host.host: tokens[(host.partition, host.token_group)] for host in hosts}


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code
