"""Manifest parsing: the four media types, platforms, attestations, digests, and what is refused."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from pullthrough.errors import InvalidManifest, PullthroughError
from pullthrough.registry import manifests
from pullthrough.registry.manifests import Descriptor, ImageManifest, Index, PlatformEntry

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
D4 = "sha256:" + "4" * 64


def body(document: Mapping[str, object]) -> bytes:
    return json.dumps(document).encode()


def image_document(media_type: str | None = manifests.OCI_MANIFEST) -> dict[str, object]:
    document: dict[str, object] = {
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 7},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 100},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D3, "size": 200},
        ],
    }
    if media_type:
        document["mediaType"] = media_type
    return document


def index_document(media_type: str = manifests.OCI_INDEX) -> dict[str, object]:
    child = manifests.DOCKER_MANIFEST if media_type == manifests.DOCKER_LIST else manifests.OCI_MANIFEST
    return {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": child, "digest": D1, "size": 500, "platform": {"os": "linux", "architecture": "amd64"}},
            {
                "mediaType": child,
                "digest": D2,
                "size": 501,
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {
                "mediaType": child,
                "digest": D3,
                "size": 300,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": D1},
            },
        ],
    }


class TestAccept:
    def test_accept_names_all_four_types_index_first(self) -> None:
        # Given the Accept list the client sends
        # When it is read
        # Then it has both indexes and both image manifests, an index first
        assert set(manifests.ACCEPT) == manifests.INDEX_TYPES | manifests.IMAGE_TYPES
        assert len(manifests.ACCEPT) == 4
        assert manifests.ACCEPT[0] == manifests.OCI_INDEX
        assert ", ".join(manifests.ACCEPT) == manifests.ACCEPT_HEADER


class TestImageManifest:
    @pytest.mark.parametrize("media_type", [manifests.OCI_MANIFEST, manifests.DOCKER_MANIFEST])
    def test_config_and_layers(self, media_type: str) -> None:
        # Given an image manifest of either family
        # When parsed with its Content-Type
        parsed = manifests.parse(body(image_document(media_type)), media_type)
        # Then config and layers are typed descriptors, config first among the blobs
        assert isinstance(parsed, ImageManifest)
        assert parsed.media_type == media_type
        assert parsed.config == Descriptor("application/vnd.oci.image.config.v1+json", D1, 7)
        assert [layer.digest for layer in parsed.layers] == [D2, D3]
        assert [b.digest for b in parsed.blobs] == [D1, D2, D3]

    def test_no_media_type_anywhere_is_read_from_the_shape(self) -> None:
        # Given an OCI manifest without mediaType (optional in the OCI spec) and a generic Content-Type
        # When parsed
        parsed = manifests.parse(body(image_document(None)), "application/json")
        # Then it is an OCI image manifest
        assert isinstance(parsed, ImageManifest)
        assert parsed.media_type == manifests.OCI_MANIFEST

    def test_header_params_are_ignored(self) -> None:
        # Given a Content-Type with a charset parameter
        # When the media type is decided
        # Then the parameter does not matter
        found = manifests.media_type_of(b"{}", manifests.DOCKER_MANIFEST + "; charset=utf-8")
        assert found == manifests.DOCKER_MANIFEST


class TestIndex:
    @pytest.mark.parametrize("media_type", [manifests.OCI_INDEX, manifests.DOCKER_LIST])
    def test_platforms_skip_attestations(self, media_type: str) -> None:
        # Given an index with two images and a BuildKit attestation
        # When parsed without a Content-Type (the body's mediaType decides)
        parsed = manifests.parse(body(index_document(media_type)))
        # Then every entry is there, but only images count as platforms
        assert isinstance(parsed, Index)
        assert parsed.media_type == media_type
        assert [e.digest for e in parsed.entries] == [D1, D2, D3]
        assert parsed.platforms == ["linux/amd64", "linux/arm64/v8"]
        assert parsed.entries[2].is_attestation

    @pytest.mark.parametrize(
        ("wanted", "digest"),
        [("linux/amd64", D1), ("linux/arm64", D2), ("linux/arm64/v8", D2), ("LINUX/ARM64", D2), ("linux/s390x", None)],
    )
    def test_entry_for_normalises_the_variant(self, wanted: str, digest: str | None) -> None:
        # Given an index over amd64 and arm64/v8
        parsed = manifests.parse(body(index_document()))
        assert isinstance(parsed, Index)
        # When a platform is looked up
        entry = parsed.entry_for(wanted)
        # Then arm64 means arm64/v8, and an absent platform is None
        assert (entry.digest if entry else None) == digest

    def test_entry_without_platform_is_unknown(self) -> None:
        # Given an index entry with no platform object
        document = {"mediaType": manifests.OCI_INDEX, "manifests": [{"digest": D4, "size": 1, "mediaType": "x"}]}
        # When parsed
        parsed = manifests.parse(body(document))
        # Then the entry exists but is not a platform
        assert parsed == Index(entries=[PlatformEntry(D4, "unknown/unknown", 1, "x")], media_type=manifests.OCI_INDEX)
        assert parsed.platforms == []


class TestRefused:
    @pytest.mark.parametrize(
        ("data", "media_type", "message"),
        [
            (b"<html>login</html>", None, "not JSON"),
            (b"[1, 2]", None, "must be a JSON object"),
            (b'{"schemaVersion": 1, "fsLayers": []}', None, "schema 1"),
            (body({"mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"}), None, "schema 1"),
            (body({"mediaType": "application/vnd.oci.artifact.manifest.v1+json"}), None, "not a supported manifest"),
            (body({"schemaVersion": 2}), "application/json", "not a supported manifest"),
            (body({**image_document(), "layers": "nope"}), None, "'layers' must be a list"),
            (body({**image_document(), "config": None}), None, "'config' must be a descriptor"),
            (body({**image_document(), "config": {"digest": "sha256:abc", "size": 1}}), None, "config.digest"),
            (body({**image_document(), "config": {"digest": D1, "size": -1}}), None, "config.size"),
            (body({**image_document(), "config": {"digest": D1, "size": True}}), None, "config.size"),
            (
                body({"mediaType": manifests.OCI_INDEX, "manifests": [{"digest": D1, "size": 1, "platform": "linux"}]}),
                None,
                "manifests[0].platform must be an object",
            ),
        ],
    )
    def test_each_says_what_is_wrong(self, data: bytes, media_type: str | None, message: str) -> None:
        # Given a body that is not a supported manifest
        # When parsed
        # Then InvalidManifest (a PullthroughError and a ValueError) says why
        with pytest.raises(InvalidManifest, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
            manifests.parse(data, media_type)
        assert isinstance(caught.value, PullthroughError)
        assert isinstance(caught.value, ValueError)
        assert caught.value.reason == "invalid_manifest"


class TestDigests:
    def test_sha256_of_known_bytes(self) -> None:
        # Given the empty string, whose sha256 everybody knows
        # When hashed
        # Then it is the well-known empty digest
        assert manifests.sha256_digest(b"") == (
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )

    @pytest.mark.parametrize(
        ("reference", "expected"),
        [
            (D1, True),
            ("sha512:" + "a" * 128, True),
            ("latest", False),
            ("sha256:" + "A" * 64, False),
            ("sha256:" + "1" * 63, False),
            ("md5:" + "1" * 32, False),
        ],
    )
    def test_is_digest(self, reference: str, expected: bool) -> None:
        # Given a manifest reference
        # When asked whether it is a digest
        # Then only well-formed sha256/sha512 digests are
        assert manifests.is_digest(reference) is expected

    @pytest.mark.parametrize(
        ("platform", "normal"),
        [("linux/arm64", "linux/arm64/v8"), ("linux/arm", "linux/arm/v7"), ("Linux/AMD64", "linux/amd64")],
    )
    def test_normalize_platform(self, platform: str, normal: str) -> None:
        # Given a platform as users write it
        # When normalised
        # Then the default variant is explicit and the case is lower
        assert manifests.normalize_platform(platform) == normal
