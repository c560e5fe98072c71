"""Image references: the distribution reference grammar with Docker's normalisation, and where ECR caches them.

The grammar is github.com/distribution/reference (regexp.go, normalize.go):

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [ domain "/" ] path-component [ "/" path-component ]*
    domain          := (domain-name | "[" IPv6 "]") [ ":" port ]
    path-component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag             := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest          := algorithm ":" hex          (sha256, sha384 or sha512, lower-case hex of the right length)

Docker's normalisation: a first component is a domain only when it contains "." or ":", is "localhost" or has
upper case; otherwise the domain is docker.io. `index.docker.io` becomes `docker.io`, and a one-component Docker
Hub path gets `library/`. Nothing else is invented: no `latest` tag is added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pullthrough import upstreams
from pullthrough.errors import InvalidReference

__all__ = [
    "DEFAULT_DOMAIN",
    "ImageReference",
    "InvalidReference",
    "cache_repository",
    "image_uri",
    "upstream_for",
    "upstream_repository",
    "validate_digest",
    "validate_tag",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library/"
NAME_MAX = 255  # distribution's NameTotalLengthMax, counted on the fully qualified name
TAG_MAX = 128
ECR_REPOSITORY_MAX = 256  # CreateRepository's repositoryName limit
ROOT_PREFIX = "ROOT"  # ECR's name for "no prefix" in pull-through cache rules

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class ImageReference:
    """A fully qualified image reference: `domain/path[:tag][@digest]`; build one with `ImageReference.parse`."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        # Direct construction is allowed (the fields are already normalised) but never yields an invalid reference.
        _validate(self._text(), self.domain, self.path, self.tag, self.digest)

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse and normalise `text` as Docker does; raise InvalidReference naming the reason."""
        _refuse_unparseable(text)
        name, tag, digest = _split_suffixes(text)
        domain, path = _split_domain(text, name)
        _validate(text, domain, path, tag, digest)
        return cls(domain, path, tag, digest)

    @property
    def name(self) -> str:
        """`domain/path`, without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """The short form people write (`nginx:1.27`, `olakego/source-mysql:v0.1.8`, `ghcr.io/org/app`)."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            name = self.path.removeprefix(OFFICIAL_REPOSITORY_PREFIX)
        return name + self._suffix()

    def with_tag(self, tag: str) -> ImageReference:
        """The same repository at another tag (the digest is dropped: it belonged to the old tag)."""
        return ImageReference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> ImageReference:
        """The same repository and tag pinned to `digest`."""
        return ImageReference(self.domain, self.path, self.tag, digest)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def _text(self) -> str:
        return f"{self.domain}/{self.path}{self._suffix()}"

    def __str__(self) -> str:
        return self._text()


def _refuse_unparseable(text: str) -> None:
    """Refuse what is no reference at all: not a string, empty, with whitespace, or an image ID."""
    if not isinstance(text, str):
        raise InvalidReference(repr(text), f"expected a string, got {type(text).__name__}")
    if not text:
        raise InvalidReference(text, "empty; expected [registry/]repository[:tag][@digest]")
    if any(ch.isspace() for ch in text):
        raise InvalidReference(text, "contains whitespace")
    if _IDENTIFIER.fullmatch(text):
        raise InvalidReference(text, "a 64-character hexadecimal string is an image ID, not a repository name")


def _split_suffixes(text: str) -> tuple[str, str | None, str | None]:
    """`text` as its name, its tag and its digest (None when absent)."""
    name, at, digest = text.partition("@")
    if at and not digest:
        raise InvalidReference(text, "'@' must be followed by a digest such as sha256:<64 hex digits>")
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise InvalidReference(text, "':' must be followed by a tag")
    if not name:
        raise InvalidReference(text, "missing repository name")
    return name, tag, digest or None


def _split_domain(text: str, name: str) -> tuple[str, str]:
    """The registry and repository path of `name`, normalised as Docker does (docker.io, library/)."""
    first, slash, rest = name.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost" or first != first.lower()):
        domain, path = first, rest
        if not path:
            raise InvalidReference(text, f"missing repository path after registry {domain!r}")
    else:
        domain, path = DEFAULT_DOMAIN, name
    if path != path.lower():
        raise InvalidReference(text, f"repository path {path!r} must be lower case (write {path.lower()!r})")
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPOSITORY_PREFIX + path
    return domain, path


def upstream_for(ref: ImageReference) -> upstreams.Upstream | None:
    """The catalogue upstream whose images `ref` names, or None when ECR pull-through cache cannot cache it."""
    return upstreams.for_domain(ref.domain.lower())


def upstream_repository(ref: ImageReference) -> str:
    """The repository path as the upstream registry serves it (Docker Hub official images under `library/`)."""
    upstream = upstream_for(ref)
    if upstream is not None and upstream.key == "docker-hub" and "/" not in ref.path:
        # registry-1.docker.io/nginx is not normalised by Docker, but the Hub serves it as library/nginx.
        return OFFICIAL_REPOSITORY_PREFIX + ref.path
    return ref.path


def cache_repository(ref: ImageReference, ecr_prefix: str, upstream_prefix: str | None = None) -> str:
    """The ECR repository a pull-through cache rule caches `ref` in: `<ecr_prefix>/<path>`.

    With an upstream repository prefix, the path must start with it and the cache repository drops it
    (rule `my-app` with upstream prefix `upstream-app`: `upstream-app/image1` is cached as `my-app/image1`).
    """
    path = upstream_repository(ref)
    up = (upstream_prefix or "").strip("/")
    if up and up != ROOT_PREFIX:
        if not path.startswith(up + "/"):
            raise InvalidReference(
                str(ref),
                f"its path {path!r} is not under the rule's upstream prefix '{up}/'; "
                f"this rule only caches repositories {up}/...",
            )
        path = path[len(up) + 1 :]
    prefix = ecr_prefix.strip("/")
    if not prefix:
        raise InvalidReference(str(ref), "the ECR repository prefix is empty; use the rule's prefix or ROOT")
    repository = path if prefix == ROOT_PREFIX else f"{prefix}/{path}"
    if len(repository) > ECR_REPOSITORY_MAX:
        raise InvalidReference(
            str(ref),
            f"its cache repository {repository[:40]}... is {len(repository)} characters; "
            f"ECR allows {ECR_REPOSITORY_MAX} (use a shorter prefix)",
        )
    return repository


def image_uri(registry_host: str, repository: str, tag: str | None = None, digest: str | None = None) -> str:
    """`<registry_host>/<repository>[:tag][@digest]`, e.g. the ECR URI of a cached image (a scheme is dropped)."""
    host = registry_host.split("://", 1)[-1].rstrip("/")
    text = f"{host}/{repository}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    if not host or not repository:
        raise InvalidReference(text, "both a registry host and a repository are needed")
    if tag is not None:
        _check_tag(text, tag)
    if digest is not None:
        _check_digest(text, digest)
    return text


def validate_tag(tag: str) -> str:
    """`tag` when it follows the tag grammar; InvalidReference with the reason otherwise."""
    _check_tag(tag, tag)
    return tag


def validate_digest(digest: str) -> str:
    """`digest` when it is a supported, well-formed digest; InvalidReference with the reason otherwise."""
    _check_digest(digest, digest)
    return digest


# --- validation --------------------------------------------------------------------------------------------------


def _validate(text: str, domain: str, path: str, tag: str | None, digest: str | None) -> None:
    if not _DOMAIN.fullmatch(domain):
        raise InvalidReference(
            text, f"registry {domain!r} is not a valid host[:port] (a DNS name, or an IPv6 address in [brackets])"
        )
    if path != path.lower():
        raise InvalidReference(text, f"repository path {path!r} must be lower case (write {path.lower()!r})")
    for component in path.split("/"):
        if not component:
            raise InvalidReference(text, f"repository path {path!r} has an empty component (a stray '/')")
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                text,
                f"path component {component!r} must be lower-case letters and digits, joined by single "
                "'.', '_' or '__', or by dashes",
            )
    name_length = len(domain) + 1 + len(path)
    if name_length > NAME_MAX:
        raise InvalidReference(text, f"the name is {name_length} characters; the limit is {NAME_MAX}")
    if tag is not None:
        _check_tag(text, tag)
    if digest is not None:
        _check_digest(text, digest)


def _check_tag(text: str, tag: str) -> None:
    if len(tag) > TAG_MAX:
        raise InvalidReference(text, f"the tag is {len(tag)} characters; the limit is {TAG_MAX}")
    if not _TAG.fullmatch(tag):
        raise InvalidReference(
            text,
            f"tag {tag!r} must start with a letter, digit or '_' and hold only letters, digits, '_', '.' and '-'",
        )


def _check_digest(text: str, digest: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise InvalidReference(text, f"digest {digest!r} must look like sha256:<64 lower-case hex digits>")
    algorithm, hex_part = digest.split(":", 1)
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise InvalidReference(
            text, f"digest algorithm {algorithm!r} is not supported (use {', '.join(_DIGEST_HEX_LENGTH)})"
        )
    if len(hex_part) != expected or hex_part != hex_part.lower():
        raise InvalidReference(
            text, f"a {algorithm} digest has exactly {expected} lower-case hex digits (got {len(hex_part)})"
        )
