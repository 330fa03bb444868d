"""The `ecr-pull-secrets` command."""
