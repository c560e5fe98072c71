"""Tags read as versions for latest-N (pullthrough/versions.py): semver, four-part, calendar, suffix families."""

from __future__ import annotations

import pytest

from pullthrough.versions import Version, highest_first, latest, latest_versions


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.2.3", "1.2.4"),
        ("1.2.9", "1.10.0"),
        ("v1.9.0", "v2.0.0"),
        ("2.0.0-rc.1", "2.0.0"),
        ("2.0.0-alpha", "2.0.0-alpha.1"),
        ("2.0.0-alpha.1", "2.0.0-alpha.beta"),
        ("2.0.0-beta.2", "2.0.0-beta.11"),
        ("2.0.0-beta2", "2.0.0-beta11"),
        ("1.27", "1.27.1"),
        # four-part versions: the fourth number counts
        ("1.2.3.4", "1.2.3.10"),
        ("1.2.3", "1.2.3.1"),
        ("1.2.3.99", "1.2.4"),
        # calendar versions: a leading zero is just a number
        ("2024.01.15", "2024.01.16"),
        ("2024.09.30", "2024.10.01"),
        ("2023.12.31", "2024.01.01"),
        ("24.04", "24.10"),
        # a suffix family orders by its version, not as a pre-release of the plain tag
        ("1.27.2-alpine", "1.27.10-alpine"),
        ("3.11.9-slim-bookworm", "3.12.1-slim-bookworm"),
        ("2.0.0-rc.1-alpine", "2.0.0-alpine"),
    ],
)
def test_versions_order_as_their_numbers_say(lower: str, higher: str) -> None:
    # Given two tags read as versions, Then they order by their numbers (semver's rules for pre-releases)
    low, high = Version.parse(lower), Version.parse(higher)
    assert low is not None
    assert high is not None
    assert low < high
    assert low.suffix == high.suffix


@pytest.mark.parametrize(
    ("tag", "suffix", "prerelease"),
    [
        ("1.27-alpine", "alpine", False),
        ("1.27.3-alpine3.20", "alpine3.20", False),
        ("3.12-slim-bookworm", "slim-bookworm", False),
        ("17.2-bookworm", "bookworm", False),
        ("2.0.0-rc.1", "", True),
        ("2.0.0-0.3.7", "", True),
        ("2.0.0-beta.2-alpine", "alpine", True),
        ("2024.01.15", "", False),
    ],
)
def test_a_suffix_names_a_family_and_a_prerelease_word_a_prerelease(tag: str, suffix: str, prerelease: bool) -> None:
    version = Version.parse(tag)
    assert version is not None
    assert (version.suffix, version.is_prerelease) == (suffix, prerelease)


@pytest.mark.parametrize("tag", ["latest", "1", "16", "stable-1.2", "1.2.3_rc", "mainline-alpine", "1.2.3.4.5"])
def test_tags_that_name_no_version_are_not_read_as_versions(tag: str) -> None:
    assert Version.parse(tag) is None


def test_latest_n_picks_the_highest_releases_and_skips_prereleases_unless_asked() -> None:
    # Given a tag list with releases, pre-releases and non-versions
    tags = ["latest", "1.9.0", "1.10.0", "2.0.0-rc.1", "1.10.1", "alpine", "0.9.9"]
    # When the latest 2 are picked, with and without pre-releases
    releases = latest_versions(tags, 2)
    with_pre = latest_versions(tags, 2, prereleases=True)
    # Then releases rank by version and pre-releases count only when asked for
    assert releases == ["1.10.1", "1.10.0"]
    assert with_pre == ["2.0.0-rc.1", "1.10.1"]


def test_latest_n_orders_calendar_and_four_part_versions() -> None:
    calendar = ["2023.12.31", "2024.01.15", "2024.01.09", "2024.10.01", "latest"]
    assert latest(calendar, 3).tags == ["2024.10.01", "2024.01.15", "2024.01.09"]
    four = ["1.2.3.4", "1.2.3.10", "1.2.3.9", "1.2.2.99"]
    assert latest(four, 2).tags == ["1.2.3.10", "1.2.3.9"]


def test_without_a_pattern_latest_n_takes_plain_tags_and_counts_the_suffix_families_left_out() -> None:
    # Given nginx-like tags: plain versions and -alpine / -perl variants
    tags = ["1.27.3", "1.27.3-alpine", "1.27.2", "1.27.10-alpine", "1.26.0", "1.27.2-alpine", "1.27.3-perl"]
    # When the latest 2 are picked without a tag_pattern
    picked = latest(tags, 2)
    # Then only plain tags are picked, and the variants are counted per family, not silently dropped
    assert picked.tags == ["1.27.3", "1.27.2"]
    assert picked.other_families == {"alpine": 3, "perl": 1}


def test_with_a_pattern_each_suffix_family_gets_its_own_latest_n() -> None:
    # Given tags a pattern chose across two families
    tags = ["1.27.3", "1.27.3-alpine", "1.27.2", "1.27.10-alpine", "1.27.2-alpine", "1.27.1"]
    # When the latest 2 are picked
    picked = latest(tags, 2, families=True)
    # Then each family is ordered within itself: 1.27.10-alpine beats 1.27.3-alpine, and never outranks 1.27.3
    assert picked.tags == ["1.27.10-alpine", "1.27.3-alpine", "1.27.3", "1.27.2"]
    assert picked.other_families == {}


def test_tags_that_cannot_be_ordered_are_reported_not_dropped_silently() -> None:
    # Given a tag list with floating tags latest-N cannot order
    tags = ["1.2.0", "1.3.0", "latest", "stable", "16", "edge", "mainline", "nightly", "1.3.0-alpine"]
    # When the latest 1 is picked
    picked = latest(tags, 1)
    # Then the pick is made, and what was left out is said, with the fix
    assert picked.tags == ["1.3.0"]
    assert picked.unordered == ("latest", "stable", "16", "edge", "mainline", "nightly")
    note = picked.note("docker.io/acme/app (latest 1)")
    assert note == (
        "docker.io/acme/app (latest 1): 6 tag(s) name no version it can order: latest, stable, 16, edge, mainline "
        "and 1 more; tags with a suffix were left out: -alpine (1). Name such a tag under tags:, or choose a suffix "
        r"family with tag_pattern (e.g. ^\d+\.\d+\.\d+-alpine$)."
    )


def test_nothing_left_out_means_no_note() -> None:
    assert latest(["1.0.0", "1.1.0"], 1).note("x") is None


def test_highest_first_orders_every_match_then_the_tags_without_a_version() -> None:
    assert highest_first(["1.26.0", "1.27.2", "main", "1.27.10", "2024.01.15"]) == [
        "2024.01.15",
        "1.27.10",
        "1.27.2",
        "1.26.0",
        "main",
    ]
