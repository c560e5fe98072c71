"""Image references: the distribution grammar, Docker's normalisation, and the mapping to ECR cache names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullthrough import errors
from pullthrough.reference import (
    ImageReference,
    InvalidReference,
    cache_repository,
    image_uri,
    upstream_for,
    upstream_repository,
    validate_digest,
    validate_tag,
)

D = "sha256:" + "a" * 64
D512 = "sha512:" + "b" * 128

# input, domain, path, tag, digest
VALID = [
    ("nginx", "docker.io", "library/nginx", None, None),
    ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
    ("nginx@" + D, "docker.io", "library/nginx", None, D),
    ("nginx:1.27@" + D, "docker.io", "library/nginx", "1.27", D),
    ("library/nginx", "docker.io", "library/nginx", None, None),
    ("docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", None),
    ("index.docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("index.docker.io/olakego/source-mysql:v0.1.8", "docker.io", "olakego/source-mysql", "v0.1.8", None),
    ("olakego/source-mysql:v0.1.8", "docker.io", "olakego/source-mysql", "v0.1.8", None),
    ("registry-1.docker.io/nginx", "registry-1.docker.io", "nginx", None, None),
    ("ghcr.io/fluxcd/source-controller:v1.4.1", "ghcr.io", "fluxcd/source-controller", "v1.4.1", None),
    ("quay.io/prometheus/node-exporter", "quay.io", "prometheus/node-exporter", None, None),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io", "pause", "3.10", None),
    ("public.ecr.aws/docker/library/redis:7.4", "public.ecr.aws", "docker/library/redis", "7.4", None),
    ("localhost/app", "localhost", "app", None, None),
    ("localhost:5000/team/app:dev", "localhost:5000", "team/app", "dev", None),
    ("localhost", "docker.io", "library/localhost", None, None),  # no '/': a repository named localhost
    ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # ...with tag 5000
    ("127.0.0.1:41001/private/app", "127.0.0.1:41001", "private/app", None, None),
    ("[::1]/app", "[::1]", "app", None, None),
    ("[2001:db8::1]:5000/ns/app:v1", "[2001:db8::1]:5000", "ns/app", "v1", None),
    ("Registry/app", "Registry", "app", None, None),  # upper case makes the first component a domain
    ("a.b.c/d/e/f/g", "a.b.c", "d/e/f/g", None, None),
    ("foo/bar__baz", "docker.io", "foo/bar__baz", None, None),
    ("foo/bar---baz", "docker.io", "foo/bar---baz", None, None),
    ("foo/b.a_r-z", "docker.io", "foo/b.a_r-z", None, None),
    ("app:_x", "docker.io", "library/app", "_x", None),
    ("app:" + "t" * 128, "docker.io", "library/app", "t" * 128, None),
    ("app@" + D512, "docker.io", "library/app", None, D512),
    ("a" * 63, "docker.io", "library/" + "a" * 63, None, None),  # 63 hex digits is a name, not an ID
    ("docker.io", "docker.io", "library/docker.io", None, None),  # no '/': a repository name
]

# input, the reason InvalidReference gives
INVALID = [
    ("", "empty; expected [registry/]repository[:tag][@digest]"),
    ("nginx :1", "contains whitespace"),
    ("a" * 64, "a 64-character hexadecimal string is an image ID, not a repository name"),
    ("Nginx", "repository path 'Nginx' must be lower case (write 'nginx')"),
    (
        "olakego/Source-MySQL",
        "repository path 'olakego/Source-MySQL' must be lower case (write 'olakego/source-mysql')",
    ),
    ("ghcr.io/Org/app", "repository path 'Org/app' must be lower case (write 'org/app')"),
    ("nginx:", "':' must be followed by a tag"),
    ("nginx@", "'@' must be followed by a digest such as sha256:<64 hex digits>"),
    (":tag", "missing repository name"),
    ("ghcr.io/", "missing repository path after registry 'ghcr.io'"),
    ("foo//bar", "repository path 'foo//bar' has an empty component (a stray '/')"),
    ("/foo", "repository path '/foo' has an empty component (a stray '/')"),
    ("foo/", "repository path 'foo/' has an empty component (a stray '/')"),
    (
        "foo/-bar",
        "path component '-bar' must be lower-case letters and digits, joined by single '.', '_' or '__', or by dashes",
    ),
    (
        "foo/bar.",
        "path component 'bar.' must be lower-case letters and digits, joined by single '.', '_' or '__', or by dashes",
    ),
    (
        "foo/a___b",
        "path component 'a___b' must be lower-case letters and digits, joined by single '.', '_' or '__', or by dashes",
    ),
    (
        "foo/a..b",
        "path component 'a..b' must be lower-case letters and digits, joined by single '.', '_' or '__', or by dashes",
    ),
    (
        "foo/a$b",
        "path component 'a$b' must be lower-case letters and digits, joined by single '.', '_' or '__', or by dashes",
    ),
    ("nginx:-1", "tag '-1' must start with a letter, digit or '_' and hold only letters, digits, '_', '.' and '-'"),
    ("nginx:a+b", "tag 'a+b' must start with a letter, digit or '_' and hold only letters, digits, '_', '.' and '-'"),
    ("nginx:" + "t" * 129, "the tag is 129 characters; the limit is 128"),
    ("nginx@sha256:abc", "digest 'sha256:abc' must look like sha256:<64 lower-case hex digits>"),
    ("nginx@sha256:" + "a" * 63, "a sha256 digest has exactly 64 lower-case hex digits (got 63)"),
    ("nginx@sha256:" + "A" * 64, "a sha256 digest has exactly 64 lower-case hex digits (got 64)"),
    ("nginx@md5:" + "a" * 32, "digest algorithm 'md5' is not supported (use sha256, sha384, sha512)"),
    ("nginx@1.0", "digest '1.0' must look like sha256:<64 lower-case hex digits>"),
    ("nginx:1@2@" + D, "digest '2@" + D + "' must look like sha256:<64 lower-case hex digits>"),
    (
        "-bad.io/app",
        "registry '-bad.io' is not a valid host[:port] (a DNS name, or an IPv6 address in [brackets])",
    ),
    (
        "host:port/app",
        "registry 'host:port' is not a valid host[:port] (a DNS name, or an IPv6 address in [brackets])",
    ),
    (
        "[::1%eth0]/app",
        "registry '[::1%eth0]' is not a valid host[:port] (a DNS name, or an IPv6 address in [brackets])",
    ),
    (
        "[::1]",  # an IPv6 registry without a repository: '[:' is read as the name, '1]' as the tag
        "path component '[:' must be lower-case letters and digits, joined by single '.', '_' or '__', or by dashes",
    ),
    ("ghcr.io/" + "a" * 248, "the name is 256 characters; the limit is 255"),
]


@pytest.mark.parametrize(("text", "domain", "path", "tag", "digest"), VALID, ids=[row[0][:40] for row in VALID])
def test_valid_references_parse_and_normalise(
    text: str, domain: str, path: str, tag: str | None, digest: str | None
) -> None:
    # Given a reference the distribution grammar accepts
    # When it is parsed
    ref = ImageReference.parse(text)
    # Then each part is normalised the way Docker does it, and nothing is invented
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == f"{domain}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@pytest.mark.parametrize(("text", "reason"), INVALID, ids=[row[0][:40] or "empty" for row in INVALID])
def test_invalid_references_name_the_reason(text: str, reason: str) -> None:
    # Given a reference the grammar refuses
    # When it is parsed
    with pytest.raises(InvalidReference) as caught:
        ImageReference.parse(text)
    # Then the error says why, and is both a PullthroughError and a ValueError
    assert caught.value.reason == reason
    assert caught.value.text == text
    assert str(caught.value) == f"invalid image reference {text!r}: {reason}"
    assert isinstance(caught.value, errors.PullthroughError)
    assert isinstance(caught.value, ValueError)


def test_the_tables_are_large_enough() -> None:
    assert len(VALID) + len(INVALID) >= 30


def test_invalid_reference_is_the_errors_module_class() -> None:
    # Callers catch pullthrough.errors.InvalidReference; the re-export must be the same class
    assert InvalidReference is errors.InvalidReference


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidReference, match="expected a string, got float"):
        ImageReference.parse(1.27)  # type: ignore[arg-type]


def test_str_round_trips_and_equal_references_compare_equal() -> None:
    # Given the same image written three ways
    forms = ["nginx:1.27", "docker.io/library/nginx:1.27", "index.docker.io/library/nginx:1.27"]
    # When each is parsed
    refs = {ImageReference.parse(f) for f in forms}
    # Then they are one reference, whose string parses back to itself
    assert len(refs) == 1
    (ref,) = refs
    assert ImageReference.parse(str(ref)) == ref
    assert str(ref) == "docker.io/library/nginx:1.27"


def test_familiar_form_is_the_short_one_people_write() -> None:
    assert ImageReference.parse("docker.io/library/nginx:1.27").familiar == "nginx:1.27"
    assert ImageReference.parse("olakego/source-mysql:v0.1.8").familiar == "olakego/source-mysql:v0.1.8"
    assert ImageReference.parse("ghcr.io/org/app@" + D).familiar == "ghcr.io/org/app@" + D


def test_name_with_tag_and_with_digest() -> None:
    ref = ImageReference.parse("ghcr.io/org/app:v1@" + D)
    assert ref.name == "ghcr.io/org/app"
    assert str(ref.with_tag("v2")) == "ghcr.io/org/app:v2"  # the old digest belonged to v1
    assert str(ref.with_digest(D512)) == "ghcr.io/org/app:v1@" + D512


def test_direct_construction_cannot_build_an_invalid_reference() -> None:
    # Given fields that are not normalised (upper-case path)
    # When a reference is built from them directly
    # Then it is refused like a parsed one
    with pytest.raises(InvalidReference, match="must be lower case"):
        ImageReference("docker.io", "library/Nginx")
    with pytest.raises(InvalidReference, match="the tag is 129 characters"):
        ImageReference("docker.io", "library/nginx", "x" * 129)


def test_tag_and_digest_validators() -> None:
    assert validate_tag("v0.1.8") == "v0.1.8"
    assert validate_digest(D) == D
    with pytest.raises(InvalidReference, match="must start with a letter"):
        validate_tag(".hidden")
    with pytest.raises(InvalidReference, match="not supported"):
        validate_digest("md5:" + "a" * 32)


# --- upstreams and cache repositories ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "upstream"),
    [
        ("nginx", "docker-hub"),
        ("registry-1.docker.io/library/nginx", "docker-hub"),
        ("index.docker.io/nginx", "docker-hub"),
        ("ghcr.io/org/app", "github-container-registry"),
        ("registry.gitlab.com/group/project/app", "gitlab-container-registry"),
        ("myregistry.azurecr.io/app", "azure-container-registry"),
        ("MyRegistry.azurecr.io/app", "azure-container-registry"),  # DNS is case-insensitive
        ("cgr.dev/chainguard/static", "chainguard"),
        ("quay.io/org/app", "quay"),
        ("registry.k8s.io/pause", "k8s"),
        ("public.ecr.aws/docker/library/redis", "ecr-public"),
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/app", "ecr"),
        ("gcr.io/distroless/static", None),
        ("localhost:5000/app", None),
    ],
)
def test_upstream_for_names_the_catalogue_entry(text: str, upstream: str | None) -> None:
    found = upstream_for(ImageReference.parse(text))
    assert (found.key if found else None) == upstream


@pytest.mark.parametrize(
    ("text", "prefix", "upstream_prefix", "repository"),
    [
        ("nginx:1.27", "docker-hub", None, "docker-hub/library/nginx"),  # official images keep library/
        ("olakego/source-mysql:v0.1.8", "dockerhub", None, "dockerhub/olakego/source-mysql"),
        ("registry-1.docker.io/nginx", "docker-hub", None, "docker-hub/library/nginx"),
        ("ghcr.io/fluxcd/source-controller", "ghcr", None, "ghcr/fluxcd/source-controller"),
        ("registry.k8s.io/pause:3.10", "k8s", None, "k8s/pause"),
        ("public.ecr.aws/docker/library/redis", "ecr-public", None, "ecr-public/docker/library/redis"),
        ("quay.io/org/app", "cache/quay", None, "cache/quay/org/app"),
        ("quay.io/org/app", "quay/", None, "quay/org/app"),  # ECR's assumed trailing '/'
        # upstream prefixes, as in the ECR user guide's table
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/team-a/myapp/image1", "team-a", "team-a", "team-a/myapp/image1"),
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/upstream-app/image1", "my-app", "upstream-app", "my-app/image1"),
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-app/image1", "ROOT", None, "my-app/image1"),
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-app/image1", "mirror", "ROOT", "mirror/my-app/image1"),
    ],
)
def test_cache_repository_maps_a_reference_to_its_ecr_repository(
    text: str, prefix: str, upstream_prefix: str | None, repository: str
) -> None:
    assert cache_repository(ImageReference.parse(text), prefix, upstream_prefix) == repository


def test_cache_repository_refuses_a_path_outside_the_upstream_prefix() -> None:
    # Given a rule that only caches upstream-app/... and an image elsewhere
    ref = ImageReference.parse("111122223333.dkr.ecr.eu-west-1.amazonaws.com/other/image1:v1")
    # When its cache repository is asked for
    with pytest.raises(InvalidReference) as caught:
        cache_repository(ref, "my-app", "upstream-app")
    # Then the error names the path and the prefix
    assert caught.value.reason == (
        "its path 'other/image1' is not under the rule's upstream prefix 'upstream-app/'; "
        "this rule only caches repositories upstream-app/..."
    )


def test_cache_repository_refuses_a_name_ecr_cannot_hold() -> None:
    ref = ImageReference.parse("ghcr.io/" + "/".join(["abcdefghij"] * 22))
    with pytest.raises(InvalidReference, match="ECR allows 256"):
        cache_repository(ref, "a-rather-long-cache-prefix")


def test_upstream_repository_is_the_path_the_upstream_serves() -> None:
    assert upstream_repository(ImageReference.parse("registry-1.docker.io/nginx")) == "library/nginx"
    assert upstream_repository(ImageReference.parse("localhost:5000/nginx")) == "nginx"


@pytest.mark.parametrize(
    ("host", "repository", "tag", "digest", "uri"),
    [
        ("111122223333.dkr.ecr.us-east-1.amazonaws.com", "docker-hub/library/nginx", "1.27", None,
         "111122223333.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.27"),
        ("https://111122223333.dkr.ecr.us-east-1.amazonaws.com/", "ghcr/org/app", None, D,
         "111122223333.dkr.ecr.us-east-1.amazonaws.com/ghcr/org/app@" + D),
        ("http://127.0.0.1:41002", "k8s/pause", "3.10", D, "127.0.0.1:41002/k8s/pause:3.10@" + D),
        ("127.0.0.1:41002", "k8s/pause", None, None, "127.0.0.1:41002/k8s/pause"),
    ],
)  # fmt: skip
def test_image_uri(host: str, repository: str, tag: str | None, digest: str | None, uri: str) -> None:
    assert image_uri(host, repository, tag, digest) == uri


def test_image_uri_refuses_a_bad_tag() -> None:
    with pytest.raises(InvalidReference, match="tag 'a b'"):
        image_uri("127.0.0.1:1", "k8s/pause", "a b")


# --- a property: every reference built from the grammar parses back to itself ----------------------------------

_component = st.from_regex(r"[a-z0-9]{1,5}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,5}){0,2}", fullmatch=True)
_domain = st.sampled_from(["ghcr.io", "quay.io", "localhost:5000", "[::1]:5000", "Registry.Example.com", "docker.io"])
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(
    domain=_domain,
    components=st.lists(_component, min_size=2, max_size=4),
    tag=st.none() | _tag,
    digest=st.none() | st.just(D),
)
def test_fully_qualified_references_round_trip(
    domain: str, components: list[str], tag: str | None, digest: str | None
) -> None:
    # Given a fully qualified reference built from the grammar
    text = f"{domain}/{'/'.join(components)}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    # When it is parsed
    ref = ImageReference.parse(text)
    # Then nothing is lost or added
    assert str(ref) == text
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, "/".join(components), tag, digest)
