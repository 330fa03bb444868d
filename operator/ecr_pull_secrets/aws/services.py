"""The AWS services the operator calls: the only botocore service data its image keeps.

Every client this package creates names its service through these constants. The image build
(hack/image/prune-botocore.py) deletes the data of every other service from botocore, and
tests/unit/test_services.py fails when code asks for a service that is not listed here.
"""

from __future__ import annotations

STS = "sts"
"""Credentials: AssumeRole, AssumeRoleWithWebIdentity, GetCallerIdentity (also botocore's own
web identity and assume-role credential providers)."""
ECR = "ecr"
"""GetAuthorizationToken for private registries."""
ECR_PUBLIC = "ecr-public"
"""GetAuthorizationToken for public.ecr.aws."""

SERVICES = (STS, ECR, ECR_PUBLIC)
