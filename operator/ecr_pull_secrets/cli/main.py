"""`ecr-pull-secrets run`: start the operator; `iam-policy`, `login` and `doctor` help outside the cluster."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ecr_pull_secrets import __version__, settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecr-pull-secrets", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run the operator")
    settings.add_arguments(run_parser)
    _add_iam_policy(commands)
    _add_login(commands)
    _add_doctor(commands)
    args = parser.parse_args(argv)
    if args.command == "run":
        from ecr_pull_secrets.runtime import run  # the Kubernetes client, kopf and botocore load only now

        return run(settings.from_arguments(args))
    if args.command == "iam-policy":
        from ecr_pull_secrets.cli import iam_policy

        return iam_policy.run(args)
    if args.command == "login":
        from ecr_pull_secrets.cli import login  # boto3 loads only for this command

        return login.run(args)
    if args.command == "doctor":
        from ecr_pull_secrets.cli import doctor  # kubernetes and boto3 load only for this command

        return doctor.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


def _add_iam_policy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "iam-policy",
        help="print the least-privilege IAM policy for pulling from registries",
        description="Print the IAM identity policy a role needs to get tokens for the registries and "
        "pull from their repositories; with --trust-service-account and --oidc-provider, also the "
        "IRSA trust policy, as {identityPolicy, trustPolicy}. Registries must share a partition.",
    )
    parser.add_argument(
        "--registry",
        action="append",
        required=True,
        dest="registries",
        metavar="HOST",
        help="registry host, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com (repeatable)",
    )
    parser.add_argument(
        "--repository",
        action="append",
        default=[],
        dest="repositories",
        metavar="NAME",
        help="repository to allow pulls from, in every private registry (repeatable; IAM wildcards "
        "allowed); default: all repositories",
    )
    parser.add_argument(
        "--pull-through-cache",
        action="append",
        default=[],
        dest="pull_through_cache",
        metavar="PREFIX",
        help="a pull-through cache rule's repository prefix: also allow creating and importing into "
        "PREFIX/* in every private registry, which the first pull through the cache needs (repeatable)",
    )
    parser.add_argument(
        "--trust-service-account",
        dest="service_account",
        metavar="NS/NAME",
        help="also print a trust policy letting this ServiceAccount assume the role (IRSA)",
    )
    parser.add_argument(
        "--oidc-provider",
        metavar="ARN",
        help="the cluster's IAM OIDC provider, e.g. "
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
    )
    parser.add_argument(
        "--audience",
        help="token audience the trust policy requires (default: sts.amazonaws.com)",
    )
    parser.add_argument("--output", choices=["json"], default="json", help="output format (default: json)")


def _add_login(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "login",
        help="print a registry password, or a docker config for several registries",
        description="Get registry tokens with boto3's default credential chain (one per region) and "
        "print the password for HOST, like `aws ecr get-login-password`, or with --dockerconfigjson "
        'a {"auths": ...} document for every HOST.',
    )
    parser.add_argument("hosts", nargs="+", metavar="HOST", help="registry host, or public.ecr.aws")
    parser.add_argument(
        "--dockerconfigjson",
        action="store_true",
        help="print a docker config.json document for all the hosts instead of one password",
    )


def _add_doctor(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the setup: AWS identity, CRDs, the operator's RBAC, and a resource's tokens",
        description="Check, with your kubeconfig and AWS credentials, the AWS identity in effect, the "
        "CRDs, that the operator's ServiceAccount has every RBAC permission it needs and, given NAME, "
        "that EcrPullSecret's conditions and that a token can be had for each of its registries. "
        "Prints one line per check (✓ or ✗, with a fix); exits 1 if any check failed.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="an EcrPullSecret to check end to end")
    parser.add_argument(
        "-n", "--namespace", help="NAME's namespace (default: the kubeconfig context's namespace)"
    )
    parser.add_argument(
        "--operator-service-account",
        default="ecr-pull-secrets/ecr-pull-secret-operator",
        metavar="NS/NAME",
        help="the operator's ServiceAccount (default: ecr-pull-secrets/ecr-pull-secret-operator)",
    )
    parser.add_argument(
        "--image",
        metavar="REF",
        help="instead: would a pod in the namespace pull REF (HOST/REPOSITORY:TAG)? walks the Secret, the "
        "ServiceAccount, the token's identity, the registry and the manifest, with a fix for each failure",
    )


if __name__ == "__main__":
    sys.exit(main())
