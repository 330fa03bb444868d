"""`ecr-pull-secrets iam-policy`: print the least-privilege IAM policy (and IRSA trust policy).

Parsing and printing only; the policies come from the pure `plan.iam`.
"""

from __future__ import annotations

import argparse
import json
import sys

from ecr_pull_secrets.model.registry import InvalidRegistryHost, RegistryHost
from ecr_pull_secrets.plan.iam import (
    DEFAULT_AUDIENCE,
    InvalidPolicyRequest,
    OidcProvider,
    ServiceAccount,
    policies,
)

PROG = "ecr-pull-secrets iam-policy"


def run(args: argparse.Namespace) -> int:
    """`args`: registries, repositories, pull_through_cache (lists of str), service_account,
    oidc_provider (str or None), audience (str or None: the default) and output ("json")."""
    if (args.service_account is None) != (args.oidc_provider is None):
        return _fail("--trust-service-account and --oidc-provider go together: give both or neither")
    try:
        registries = [RegistryHost.parse(raw) for raw in args.registries]
        trust = None
        if args.service_account is not None:
            trust = (OidcProvider.parse(args.oidc_provider), ServiceAccount.parse(args.service_account))
        document = policies(
            registries,
            args.repositories,
            pull_through_cache=args.pull_through_cache,
            trust=trust,
            audience=args.audience or DEFAULT_AUDIENCE,
        )
    except (InvalidRegistryHost, InvalidPolicyRequest) as error:
        return _fail(str(error))
    print(json.dumps(document, indent=2))
    return 0


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2
