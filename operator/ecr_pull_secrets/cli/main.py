"""`ecr-pull-secrets run`: start the operator."""

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
    args = parser.parse_args(argv)
    if args.command == "run":
        from ecr_pull_secrets.runtime import run  # kopf and boto3 load only when needed

        return run(settings.from_arguments(args))
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
