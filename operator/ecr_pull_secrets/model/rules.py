"""The shape and bounds of every spec field, in one place: the CRD schemas (admission) are checked
against these, and the parser enforces them again, so a spec stored before a CRD upgrade, or
written while the schema was looser, cannot slip through.

Patterns are written for both RE2 (OpenAPI `pattern`, CEL `matches`) and Python `re` with
`re.ASCII`: no look-arounds, no back-references, `\\w` meaning [A-Za-z0-9_].
"""

from __future__ import annotations

import re
from datetime import timedelta

# -- Kubernetes object names (k8s.io/apimachinery validation) ---------------------------------

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_LABEL_MAX = 63
"""Namespace names."""
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_SUBDOMAIN_MAX = 253
"""Secret and ServiceAccount names."""
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
SECRET_KEY_MAX = 253
"""Keys of a Secret's data."""

# -- label selectors (metav1.LabelSelector) ----------------------------------------------------

LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_KEY_MAX = 253 + 1 + 63
LABEL_NAME_MAX = 63
"""The part of a key after its optional prefix."""
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_VALUE_MAX = 63
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
MAX_MATCH_LABELS = 32
MAX_MATCH_EXPRESSIONS = 16
MAX_EXPRESSION_VALUES = 64

# -- namespace globs (ClusterEcrPullSecret spec.namespaces) -------------------------------------

NAMESPACE_GLOB = r"^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$"
"""A namespace name in which * and ? stand for any run of characters and any one character."""
NAMESPACE_GLOB_MAX = 63
MAX_NAMESPACE_GLOBS = 64

# -- spec.serviceAccounts -----------------------------------------------------------------------

MAX_SERVICE_ACCOUNT_NAMES = 50

# -- spec.verify.images ------------------------------------------------------------------------

IMAGE_REFERENCE = (
    r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$"
)
"""`repository:tag` or `repository@sha256:<64 hex>`: ECR's repository and tag rules, no host (each
image is looked up at every registry of the resource)."""
IMAGE_REFERENCE_MAX = 384
MAX_VERIFY_IMAGES = 10

# -- AWS identifiers (IAM and STS API references) ----------------------------------------------

REGION_PATTERNS = {
    "aws": r"^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z0-9]+-[0-9]+$",
    "aws-cn": r"^cn-[a-z0-9]+-[0-9]+$",
    "aws-us-gov": r"^us-gov-[a-z0-9]+-[0-9]+$",
    "aws-eusc": r"^eusc-(de)-[a-z0-9]+-[0-9]+$",
    "aws-iso": r"^us-iso-[a-z0-9]+-[0-9]+$",
    "aws-iso-b": r"^us-isob-[a-z0-9]+-[0-9]+$",
    "aws-iso-e": r"^eu-isoe-[a-z0-9]+-[0-9]+$",
    "aws-iso-f": r"^us-isof-[a-z0-9]+-[0-9]+$",
}
"""botocore's partition `regionRegex` (\\w narrowed to what a host name may hold): a region AWS
opens tomorrow parses today, a made-up one does not. tests/unit ties these to botocore's data."""
PARTITIONS = tuple(REGION_PATTERNS)
REGISTRY_SUFFIXES: dict[str, tuple[str, str | None]] = {
    "aws": ("amazonaws.com", "on.aws"),
    "aws-cn": ("amazonaws.com.cn", "on.amazonwebservices.com.cn"),
    "aws-us-gov": ("amazonaws.com", "on.aws"),
    "aws-eusc": ("amazonaws.eu", None),
    "aws-iso": ("c2s.ic.gov", None),
    "aws-iso-b": ("sc2s.sgov.gov", None),
    "aws-iso-e": ("cloud.adc-e.uk", None),
    "aws-iso-f": ("csp.hci.ic.gov", None),
}
"""Per partition, the suffix of its ECR registry hosts (botocore's `dnsSuffix`, tests/unit checks)
and of its dual-stack registry hosts (dkr-ecr.REGION.SUFFIX, ECR's endpoint page), or None.
Dual-stack and FIPS registry hosts (dkr-ecr, dkr.ecr-fips) are documented for aws, aws-cn and
aws-us-gov only (AWS General Reference, "Amazon ECR endpoints and quotas"); botocore's data has
API endpoints, not registry hosts. The other partitions take ACCOUNT.dkr.ecr.REGION.SUFFIX."""
FIPS_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
"""Partitions whose registry hosts have a FIPS form (dkr.ecr-fips, dkr-ecr-fips)."""
ROLE_ARN = rf"^arn:({'|'.join(PARTITIONS)}):iam::[0-9]{{12}}:role/([\w+=,.@-]+/)*[\w+=,.@-]{{1,64}}$"
"""IAM role names are 1-64 of [\\w+=,.@-]; paths are segments of the same characters."""
ROLE_ARN_MAX = 2048
"""sts:AssumeRole RoleArn: 20-2048 characters."""
EXTERNAL_ID = r"^[\w+=,.@:/-]+$"
"""Its length goes in EXTERNAL_ID_MIN/MAX: RE2 refuses repeat counts over 1000."""
EXTERNAL_ID_MIN = 2
EXTERNAL_ID_MAX = 1224
SESSION_NAME = r"^[\w+=,.@-]{2,64}$"
SESSION_NAME_MAX = 64
AUDIENCE = r"^[\x21-\x7e]{1,253}$"
"""A TokenRequest audience: printable ASCII without spaces, e.g. sts.amazonaws.com."""
AUDIENCE_MAX = 253
MAX_ROLE_CHAIN = 5

# -- durations ---------------------------------------------------------------------------------

RENEW_BEFORE_MIN = timedelta(minutes=5)
RENEW_BEFORE_MAX = timedelta(hours=8)
"""cert-manager's two thirds of the 12 h token life: a token fetched for one resource stays
acceptable to every other resource sharing its chain, so a renewal window needs one call."""


def matches(pattern: str, text: str) -> bool:
    """What the API server's RE2 decides for `pattern` (a search; $ is end of text)."""
    return "\n" not in text and re.search(pattern, text, re.ASCII) is not None


def go_duration(delta: timedelta) -> str:
    """5m, 8h: how a bound is written in CEL and in messages."""
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# -- spec.output and spec.secretTemplate --------------------------------------------------------

OUTPUT_TYPES = ("dockerconfigjson", "argocd", "basicAuth")
"""The Secret shapes: a pull Secret, an Argo CD repository-credentials Secret, a basic-auth Secret."""
SINGLE_REGISTRY_OUTPUTS = ("argocd", "basicAuth")
"""Shapes that hold one registry's username and password: their resource names exactly one."""
MAX_TEMPLATE_LABELS = 16
MAX_TEMPLATE_ANNOTATIONS = 16
TEMPLATE_ANNOTATION_VALUE = r"^[^\x00-\x1f\x7f]*$"
"""Printable text on one line."""
TEMPLATE_ANNOTATION_VALUE_MAX = 1024
RESERVED_KEY_NAMES = ("app.kubernetes.io/managed-by", "argocd.argoproj.io/secret-type")
"""Label or annotation keys secretTemplate may not set: the first marks the operator's Secrets (its
watch selects on it), the second is decided by spec.output (a tenant must not make a pull Secret
look like an Argo CD one)."""
RESERVED_KEY_PREFIX = r"^([a-z0-9.-]*[.])?(kubernetes[.]io|k8s[.]io|ecr[.]pullsecrets[.]dev)/"
"""The operator's own domain (its bookkeeping annotations) and Kubernetes' reserved domains, with
their subdomains; app.kubernetes.io/ (the recommended labels, other than managed-by) stays open."""
OPEN_KEY_PREFIX = "app.kubernetes.io/"


def reserved_key(key: str) -> bool:
    """May secretTemplate not set this label or annotation key? (the CRD's CEL rule says the same)"""
    return key in RESERVED_KEY_NAMES or (
        matches(RESERVED_KEY_PREFIX, key) and not key.startswith(OPEN_KEY_PREFIX)
    )
