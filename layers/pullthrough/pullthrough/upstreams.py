"""The catalogue of upstream registries that ECR pull-through cache supports.

Source: the ECR User Guide ("Sync an upstream registry with an Amazon ECR private registry") and the
`UpstreamRegistry` enum of the botocore ECR service model. Each entry says what ECR's CreatePullThroughCacheRule
wants (`upstreamRegistry`, the form of `upstreamRegistryUrl`), what authentication the rule needs, and which
image-reference domains belong to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Auth(StrEnum):
    """How ECR authenticates to the upstream for a rule."""

    NONE = "none"  # public registries: the rule must not name a secret
    SECRET = "secret"  # noqa: S105 - a Secrets Manager secret named ecr-pullthroughcache/... (username, accessToken)
    IAM_ROLE = "iam-role"  # ECR to ECR: a customRoleArn when the upstream is another account


@dataclass(frozen=True)
class Upstream:
    """One supported upstream registry."""

    key: str  # the config's name for it, equal to ECR's upstreamRegistry value
    title: str
    url: str | None  # upstreamRegistryUrl; None where the user supplies it (Azure, ECR private)
    url_pattern: str  # a regular expression every valid upstreamRegistryUrl matches
    auth: Auth
    domains: tuple[str, ...]  # reference domains that mean this upstream (after Docker's normalisation)
    example_url: str
    # Repositories whose pull scopes one token request may carry (repeated `scope` parameters, Docker's token spec).
    # More than 1 only where the realm is known to grant them all in one token: Docker Hub's auth.docker.io does
    # (docker/hub-feedback#2215: a regression in that handling was reported and fixed in 2022). GHCR, GitLab, Quay
    # and the others keep one token per repository: no source of theirs says they honour several scopes.
    token_scopes: int = 1

    @property
    def needs_secret(self) -> bool:
        return self.auth is Auth.SECRET

    def matches_url(self, url: str) -> bool:
        return re.fullmatch(self.url_pattern, url) is not None


_ECR_PRIVATE = r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"

CATALOGUE: dict[str, Upstream] = {
    u.key: u
    for u in (
        Upstream(
            key="docker-hub",
            title="Docker Hub",
            url="registry-1.docker.io",
            url_pattern=r"registry-1\.docker\.io",
            auth=Auth.SECRET,
            domains=("docker.io", "registry-1.docker.io", "index.docker.io"),
            example_url="registry-1.docker.io",
            # 50 scopes of typical names (30 to 60 characters encoded) make a 2 to 4 KB query string: under the
            # 8 KB request line common HTTP front ends accept.
            token_scopes=50,
        ),
        Upstream(
            key="github-container-registry",
            title="GitHub Container Registry",
            url="ghcr.io",
            url_pattern=r"ghcr\.io",
            auth=Auth.SECRET,
            domains=("ghcr.io",),
            example_url="ghcr.io",
        ),
        Upstream(
            key="gitlab-container-registry",
            title="GitLab Container Registry (GitLab.com)",
            url="registry.gitlab.com",
            url_pattern=r"registry\.gitlab\.com",
            auth=Auth.SECRET,
            domains=("registry.gitlab.com",),
            example_url="registry.gitlab.com",
        ),
        Upstream(
            key="azure-container-registry",
            title="Microsoft Azure Container Registry",
            url=None,
            url_pattern=r"[a-z0-9]{5,50}\.azurecr\.io",
            auth=Auth.SECRET,
            domains=(),  # every <name>.azurecr.io; matched through url_pattern
            example_url="myregistry.azurecr.io",
        ),
        Upstream(
            key="chainguard",
            title="Chainguard Registry",
            url="cgr.dev",
            url_pattern=r"cgr\.dev",
            auth=Auth.SECRET,
            domains=("cgr.dev",),
            example_url="cgr.dev",
        ),
        Upstream(
            key="quay",
            title="Quay",
            url="quay.io",
            url_pattern=r"quay\.io",
            auth=Auth.NONE,
            domains=("quay.io",),
            example_url="quay.io",
        ),
        Upstream(
            key="k8s",
            title="Kubernetes container image registry",
            url="registry.k8s.io",
            url_pattern=r"registry\.k8s\.io",
            auth=Auth.NONE,
            domains=("registry.k8s.io",),
            example_url="registry.k8s.io",
        ),
        Upstream(
            key="ecr-public",
            title="Amazon ECR Public",
            url="public.ecr.aws",
            url_pattern=r"public\.ecr\.aws",
            auth=Auth.NONE,
            domains=("public.ecr.aws",),
            example_url="public.ecr.aws",
        ),
        Upstream(
            key="ecr",
            title="Amazon ECR (private, cross-account or cross-region)",
            url=None,
            url_pattern=_ECR_PRIVATE,
            auth=Auth.IAM_ROLE,
            domains=(),  # every <account>.dkr.ecr.<region>.amazonaws.com; matched through url_pattern
            example_url="111122223333.dkr.ecr.eu-west-1.amazonaws.com",
        ),
    )
}


def get(key: str) -> Upstream:
    """The catalogue entry for an upstreamRegistry key; KeyError names the valid keys."""
    try:
        return CATALOGUE[key]
    except KeyError:
        raise KeyError(f"unknown upstream {key!r}; valid: {', '.join(sorted(CATALOGUE))}") from None


def for_domain(domain: str) -> Upstream | None:
    """The upstream a (normalised) reference domain belongs to, or None when ECR cannot cache it."""
    for upstream in CATALOGUE.values():
        if domain in upstream.domains or (not upstream.domains and upstream.matches_url(domain)):
            return upstream
    return None


def canonical_domain(upstream: Upstream, url: str) -> str:
    """The reference domain images of this upstream are written with (`docker.io` for Docker Hub)."""
    return upstream.domains[0] if upstream.domains else url
