"""pullthrough/prune/'s decisions (pure): what counts as use, the cap, what the warm list keeps, untagged images."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pullthrough import config, prune
from pullthrough.aws.ecr import EcrImage
from pullthrough.prune import keeping
from pullthrough.reporting.vocabulary import Outcome

NOW = datetime(2026, 12, 7, tzinfo=UTC)
INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE = "application/vnd.oci.image.manifest.v1+json"


def ecr_image(n: int, *tags: str, pulled: int | None = None, pushed: int = 100, media: str = IMAGE) -> EcrImage:
    """An image pushed `pushed` days ago, last pulled `pulled` days ago (never when None)."""
    return EcrImage(
        repository="hub/app",
        digest=f"sha256:{n:064x}",
        tags=tags,
        media_type=media,
        size=1000 * n,
        pushed_at=NOW - timedelta(days=pushed),
        last_pulled=None if pulled is None else NOW - timedelta(days=pulled),
    )


def decide(images: list[EcrImage], kept: dict[str, dict[str, str]] | None = None, cap: int = 100) -> prune.Plan:
    return prune.plan({"hub/app": images}, kept or {}, now=NOW, unused_for_days=30, max_deletions=cap)


def digests(candidates: list[prune.Candidate]) -> list[str]:
    return [c.image.digest[-2:] for c in candidates]


def test_use_is_the_last_pull_or_the_import_of_an_image_never_pulled() -> None:
    # Given an image pulled 5 days ago (imported long before), one never pulled and imported 40 days ago, and one
    # never pulled, imported 10 days ago
    plan = decide([ecr_image(1, "a", pulled=5), ecr_image(2, "b"), ecr_image(3, "c", pushed=10)])
    # Then only the one unused for 30 days goes
    assert digests(plan.delete) == ["02"]
    assert plan.fresh == 2


def test_the_cap_takes_the_oldest_and_defers_the_rest() -> None:
    plan = decide([ecr_image(1, "a", pulled=31), ecr_image(2, "b", pulled=90), ecr_image(3, "c", pulled=60)], cap=2)
    assert digests(plan.delete) == ["02", "03"]
    assert digests(plan.deferred) == ["01"]


def test_a_tag_any_keep_names_keeps_the_image_and_a_whole_repository_keeps_all() -> None:
    images = [ecr_image(1, "1.0", "stable", pulled=90), ecr_image(2, "2.0", pulled=90)]
    by_tag = decide(images, {"hub/app": {"stable": "warm.images names it"}})
    assert (digests(by_tag.kept), digests(by_tag.delete)) == (["01"], ["02"])
    assert by_tag.kept[0].kept_by == "warm.images names it"
    whole = decide(images, {"hub/app": {keeping.WHOLE_REPOSITORY: "prune.keep names it"}})
    assert (digests(whole.kept), whole.delete) == (["01", "02"], [])


def test_untagged_images_wait_for_their_index_and_go_when_no_index_stays() -> None:
    # Given an untagged platform image beside a kept index, Then it stays (for the index to decide)
    kept_index = [ecr_image(1, "1", pulled=90, media=INDEX), ecr_image(2, pulled=90)]
    waiting = decide(kept_index, {"hub/app": {"1": "warm.images names it"}})
    assert waiting.delete == []
    assert digests(waiting.untagged["hub/app"]) == ["02"]
    # Given the index goes too, Then no index stays to list it: it goes (after the index, in a second call)
    going = decide(kept_index)
    assert digests(going.delete) == ["01", "02"]
    orphans = decide([ecr_image(3, pulled=90), ecr_image(4, "x", pulled=1)])
    assert digests(orphans.delete) == ["03"]


def test_tag_patterns_and_latest_are_evaluated_on_the_tags_ecr_holds() -> None:
    # Given a warm list with latest 2 and a pattern, and the tags ECR holds
    parsed = config.parse(
        "version: 1\nrules:\n  - {prefix: quay, upstream: quay}\nwarm:\n  images:\n"
        "    - {image: quay.io/org/app, latest: 2}\n"
        "    - {image: quay.io/org/tool, tag_pattern: '^v1\\..*$'}\n"
    )
    held = {
        "quay/org/app": [ecr_image(1, "1.0"), ecr_image(2, "1.1"), ecr_image(3, "1.2"), ecr_image(4, "edge")],
        "quay/org/tool": [ecr_image(5, "v1.0"), ecr_image(6, "v2.0")],
    }
    kept = keeping.protected(parsed, held)
    # Then the two highest versions and the matching tags are kept, nothing else
    assert set(kept["quay/org/app"]) == {"1.2", "1.1"}
    assert set(kept["quay/org/tool"]) == {"v1.0"}


def test_a_root_rule_is_never_pruned() -> None:
    parsed = config.parse(
        "version: 1\nrules:\n  - {prefix: ROOT, upstream: ecr, url: 111122223333.dkr.ecr.eu-west-1.amazonaws.com,"
        " custom_role_arn: 'arn:aws:iam::444455556666:role/r'}\n  - {prefix: quay, upstream: quay}\n"
    )
    prefixes, notes = prune.managed_prefixes(parsed)
    assert prefixes == ["quay"]
    assert "ROOT" in notes[0]


class _Untouchable:
    """An ECR that must not be asked anything."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"prune asked ECR ({name}) although a source could not be read")


def test_an_ecs_source_stops_the_run_before_ecr_is_asked() -> None:
    # Given a config whose warm.sources name ECS task definitions (read at plan time only)
    parsed = config.parse(
        "version: 1\nrules:\n  - {prefix: quay, upstream: quay}\n"
        "warm:\n  sources: [{kind: ecs, family_prefix: olake-}]\nprune: {unused_for_days: 30, dry_run: false}\n"
    )
    # When prune runs, Then it deletes nothing, asks ECR nothing, and says why
    report = prune.run(
        parsed,
        _Untouchable(),  # type: ignore[arg-type]
        prune.RunInfo(now=NOW, run_id="prune-1", trigger="test", region="us-east-1", account="111122223333"),
    )
    (item,) = report.items
    assert item.outcome is Outcome.SKIPPED
    assert "ecs" in (item.reason or "")
