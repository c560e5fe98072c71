"""The upstream catalogue: what ECR pull-through cache supports, checked against the botocore service model."""

from __future__ import annotations

import re

import botocore.session
import pytest

from pullthrough import upstreams
from pullthrough.upstreams import CATALOGUE, Auth


@pytest.fixture(scope="module")
def create_rule_input() -> dict[str, object]:
    model = botocore.session.get_session().get_service_model("ecr")
    return dict(model.operation_model("CreatePullThroughCacheRule").input_shape.members)


def test_catalogue_keys_are_exactly_ecrs_upstream_registry_values(create_rule_input: dict[str, object]) -> None:
    # Given the UpstreamRegistry enum of the ECR service model botocore ships
    enum = set(create_rule_input["upstreamRegistry"].enum)  # type: ignore[attr-defined]
    # Then the catalogue has one entry per value, no more, no less
    assert set(CATALOGUE) == enum


def test_fixed_urls_are_the_ones_the_api_documents(create_rule_input: dict[str, object]) -> None:
    # Given the upstreamRegistryUrl documentation ("Docker Hub (docker-hub) - registry-1.docker.io", ...)
    doc = create_rule_input["upstreamRegistryUrl"].documentation  # type: ignore[attr-defined]
    for upstream in CATALOGUE.values():
        if upstream.url is not None and upstream.key != "chainguard":  # chainguard: user guide, not the API doc
            # Then each fixed URL appears next to its key
            assert f"(<code>{upstream.key}</code>) \N{EN DASH} <code>{upstream.url}</code>" in doc


def test_auth_follows_the_user_guide() -> None:
    # "ECR Public, Kubernetes and Quay (doesn't require authentication); Docker Hub, Azure, GHCR, GitLab and
    # Chainguard (requires a Secrets Manager secret); Amazon ECR (requires an IAM role)"
    by_auth = {auth: {u.key for u in CATALOGUE.values() if u.auth is auth} for auth in Auth}
    assert by_auth[Auth.NONE] == {"ecr-public", "k8s", "quay"}
    assert by_auth[Auth.SECRET] == {
        "docker-hub",
        "azure-container-registry",
        "github-container-registry",
        "gitlab-container-registry",
        "chainguard",
    }
    assert by_auth[Auth.IAM_ROLE] == {"ecr"}
    assert [u.key for u in CATALOGUE.values() if u.needs_secret] == sorted(
        by_auth[Auth.SECRET], key=list(CATALOGUE).index
    )


@pytest.mark.parametrize("upstream", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_each_example_url_matches_its_own_pattern_and_no_other(upstream: upstreams.Upstream) -> None:
    assert upstream.matches_url(upstream.example_url)
    assert upstream.url is None or upstream.matches_url(upstream.url)
    others = [u.key for u in CATALOGUE.values() if u is not upstream and u.matches_url(upstream.example_url)]
    assert others == []


@pytest.mark.parametrize(
    ("url", "key", "matches"),
    [
        ("myregistry.azurecr.io", "azure-container-registry", True),
        ("abcd.azurecr.io", "azure-container-registry", False),  # ACR names are 5 to 50 characters
        ("my-registry.azurecr.io", "azure-container-registry", False),  # alphanumeric only
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com", "ecr", True),
        ("111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn", "ecr", True),
        ("11112222333.dkr.ecr.eu-west-1.amazonaws.com", "ecr", False),  # 11 digits
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com.evil.io", "ecr", False),
        ("registry-1.docker.io", "docker-hub", True),
        ("docker.io", "docker-hub", False),  # the reference domain is not the rule URL
    ],
)
def test_url_patterns(url: str, key: str, matches: bool) -> None:
    assert CATALOGUE[key].matches_url(url) is matches


@pytest.mark.parametrize(
    ("domain", "key"),
    [
        ("docker.io", "docker-hub"),
        ("registry-1.docker.io", "docker-hub"),
        ("index.docker.io", "docker-hub"),
        ("ghcr.io", "github-container-registry"),
        ("registry.gitlab.com", "gitlab-container-registry"),
        ("cgr.dev", "chainguard"),
        ("quay.io", "quay"),
        ("registry.k8s.io", "k8s"),
        ("public.ecr.aws", "ecr-public"),
        ("myregistry.azurecr.io", "azure-container-registry"),
        ("111122223333.dkr.ecr.us-east-1.amazonaws.com", "ecr"),
        ("gcr.io", None),
        ("k8s.gcr.io", None),  # the frozen old Kubernetes registry is not registry.k8s.io
        ("localhost:5000", None),
    ],
)
def test_for_domain(domain: str, key: str | None) -> None:
    found = upstreams.for_domain(domain)
    assert (found.key if found else None) == key


def test_get_names_the_valid_keys_when_the_key_is_unknown() -> None:
    assert upstreams.get("quay") is CATALOGUE["quay"]
    with pytest.raises(KeyError) as caught:
        upstreams.get("dockerhub")
    assert "unknown upstream 'dockerhub'; valid: azure-container-registry, chainguard, docker-hub" in str(caught.value)


def test_canonical_domain_is_how_references_write_the_upstream() -> None:
    assert upstreams.canonical_domain(CATALOGUE["docker-hub"], "registry-1.docker.io") == "docker.io"
    assert upstreams.canonical_domain(CATALOGUE["ecr"], "111122223333.dkr.ecr.eu-west-1.amazonaws.com") == (
        "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
    )


def test_keys_are_valid_ecr_upstream_registry_names() -> None:
    # Config files name upstreams by key; a key must be usable verbatim as ECR's upstreamRegistry
    assert all(re.fullmatch(r"[a-z0-9-]+", key) and upstream.key == key for key, upstream in CATALOGUE.items())
