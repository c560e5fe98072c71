"""The names and shapes the config's values must have: ECR prefixes, secret names, role and key ARNs, platforms.

Kept apart from the validators that use them because the redaction of problems needs the secret prefix and the token
prefixes too, and the fields need that redaction: a leaf module breaks the circle.
"""

from __future__ import annotations

__all__ = [
    "ADMIN_SECRET_PREFIX",
    "ARCHES",
    "EXCLUSION_FILTER",
    "HUB_NAMESPACE",
    "KMS_KEY_ARN",
    "OSES",
    "REPO_PREFIX",
    "ROLE_ARN",
    "SECRET_NAME",
    "SECRET_PREFIX",
    "STACK",
    "TOKEN_PREFIXES",
]

ADMIN_SECRET_PREFIX = "pullthrough/"  # noqa: S105 - a secret name prefix, not a password
SECRET_PREFIX = "ecr-pullthroughcache/"  # noqa: S105 - a secret name prefix, not a password

# The ECR API's ecrRepositoryPrefix / upstreamRepositoryPrefix pattern, without the optional trailing "/"
# (ECR always assumes one; refusing it keeps prefixes comparable).
REPO_PREFIX = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
SECRET_NAME = r"[A-Za-z0-9/_+=.@-]+"  # noqa: S105 - the characters of a secret name
ROLE_ARN = r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}"
KMS_KEY_ARN = r"arn:aws[a-z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-z0-9-]+"
HUB_NAMESPACE = r"[a-z0-9]{4,30}"
EXCLUSION_FILTER = r"[0-9a-zA-Z._*-]{1,128}"
STACK = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
# Lower-case GOOS / GOARCH values: catches "linux/amd46" before a run silently warms nothing.
OSES = frozenset({
    "aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
    "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows",
})  # fmt: skip
ARCHES = frozenset({
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64",
    "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm",
})  # fmt: skip
TOKEN_PREFIXES = ("dckr_pat_", "dckr_oat_", "ghp_", "gho_", "ghu_", "ghs_", "github_pat_", "glpat-", "AKIA", "ASIA")
