"""The AWS services the operator calls: the only botocore service data its image keeps.

Every client this package creates names its service through these constants. The image build
(hack/image/prune.py) deletes botocore's data for every service not in KEPT, and
tests/unit/test_services.py fails when code asks botocore for a service the image lacks.
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
"""What the operator's own code creates clients for."""
CREDENTIAL_SERVICES = ("sso", "sso-oidc", "signin")
"""What botocore's default credential chain creates clients for by itself, besides sts, when an
AWS config profile asks for it (IAM Identity Center, `aws login`): the operator's own identity and
`ecr-pull-secrets login` run that chain. About 80 kB of data."""
KEPT = (*SERVICES, *CREDENTIAL_SERVICES)
"""The botocore service data the image keeps."""
