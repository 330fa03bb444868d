"""Names of our API, shared by the CRD manifests, the handlers and the CLI."""

GROUP = "ecr.pullsecrets.dev"
VERSION = "v1alpha1"
KIND = "EcrPullSecret"
PLURAL = "ecrpullsecrets"
CLUSTER_KIND = "ClusterEcrPullSecret"
CLUSTER_PLURAL = "clusterecrpullsecrets"
FINALIZER = f"{GROUP}/cleanup"
"""Only on resources that patch ServiceAccounts: their entries must be removed before they go."""

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "ecr-pull-secret-operator"
FORCE_REFRESH_ANNOTATION = f"{GROUP}/force-refresh"
EXPIRES_AT_ANNOTATION = f"{GROUP}/expires-at"
ISSUED_AT_ANNOTATION = f"{GROUP}/issued-at"
CHAIN_ANNOTATION = f"{GROUP}/chain"
"""Chain.key of the identity that obtained the tokens (a hash; no names or key material)."""
SECRET_TYPE = "kubernetes.io/dockerconfigjson"
SECRET_KEY = ".dockerconfigjson"

CONTENT_DIGEST_ANNOTATION = f"{GROUP}/content-sha256"
"""Digest of the data the operator wrote, so an edit by anyone else shows as drift."""

DEFAULT_RENEW_BEFORE = "4h"
MAX_REGISTRIES = 20
