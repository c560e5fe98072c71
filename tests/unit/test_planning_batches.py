"""Planning asks ECR per repository, not per tag (pullthrough/warm/decisions.py): one DescribeImages, one
BatchGetImage per manifest level and one BatchCheckLayerAvailability for all of a repository's tags, whatever their
number.

The fakes are test_planning's, with ECR also answering for several tags at once, as pullthrough.aws.ecr does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pullthrough.aws.ecr import EcrImage
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.planner import Planner, WarmRequest
from tests.unit.test_planning import RUN, FakeEcr, FakeUpstream, config_with, image_manifest, index_manifest


@dataclass
class TaggedEcr(FakeEcr):
    """FakeEcr that also lists a repository's tags in one call (the EcrTags protocol)."""

    def describe_images(self, repository: str, tags: Sequence[str]) -> dict[str, EcrImage]:
        self.asked.append(("describe many", (repository, tuple(tags))))
        return {t: EcrImage(repository, d, (t,)) for (r, t), d in self.tags.items() if r == repository and t in tags}


def test_a_repositorys_tags_cost_one_call_of_each_kind_and_a_head_each() -> None:
    # Given four tags of one repository: three complete in ECR (one of them multi-arch), one absent
    repository = "docker-hub/library/app"
    ecr, upstream = TaggedEcr(), FakeUpstream()
    for tag in ("1", "2"):
        digest, body, blobs = image_manifest(f"app{tag}")
        ecr.hold(repository, tag, digest, body, blobs)
        upstream.serve("library/app", tag, digest)
    amd, amd_body, amd_blobs = image_manifest("amd")
    arm, arm_body, arm_blobs = image_manifest("arm")
    top, top_body = index_manifest({"linux/amd64": amd, "linux/arm64": arm})
    ecr.hold(repository, "3", top, top_body)
    for digest, body, blobs in ((amd, amd_body, amd_blobs), (arm, arm_body, arm_blobs)):
        ecr.stored[digest] = body
        ecr.blobs.update(blobs)
    upstream.serve("library/app", "3", top, "application/vnd.oci.image.index.v1+json")
    new, _, _ = image_manifest("app4")
    upstream.serve("library/app", "4", new)
    config = config_with([{"image": "app", "tags": ["1", "2", "3", "4"]}])
    # When the warm list is planned
    plan = Planner(config, ecr, lambda rule: upstream, workers=4).plan(WarmRequest(trigger="t"), RUN)
    # Then the three held tags are already cached and the absent one is a warm job
    decided = {d.item.subject: d.item.outcome for d in plan.decided}
    assert decided == {f"docker.io/library/app:{t}": Outcome.ALREADY_CACHED for t in ("1", "2", "3")}
    assert [(job.tag, job.action) for job in plan.jobs] == [("4", "warm")]
    # And ECR was asked once for the tags, once for the manifests, once for the platforms' manifests, once for the
    # blobs; the upstream once per tag, with HEADs only
    kinds = [kind for kind, _ in ecr.asked]
    assert kinds == ["describe many", "get", "get", "layers"]
    assert sorted(upstream.calls) == [("HEAD", "library/app", t) for t in ("1", "2", "3", "4")]


def test_an_ecr_without_the_batch_call_is_asked_tag_by_tag() -> None:
    # Given an ECR view that answers one tag at a time only (the EcrView protocol alone)
    repository = "docker-hub/library/app"
    ecr, upstream = FakeEcr(), FakeUpstream()
    for tag in ("1", "2"):
        digest, body, blobs = image_manifest(f"app{tag}")
        ecr.hold(repository, tag, digest, body, blobs)
        upstream.serve("library/app", tag, digest)
    config = config_with([{"image": "app", "tags": ["1", "2"]}])
    # When the list is planned, Then both tags are already cached, each described on its own
    plan = Planner(config, ecr, lambda rule: upstream, workers=2).plan(WarmRequest(trigger="t"), RUN)
    assert {d.item.outcome for d in plan.decided} == {Outcome.ALREADY_CACHED}
    assert sorted(args for kind, args in ecr.asked if kind == "describe") == [(repository, "1"), (repository, "2")]
