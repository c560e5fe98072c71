"""Pruning: delete the cached images nobody pulled for `prune.unused_for_days`, under the rules' prefixes only.

Why not an ECR lifecycle policy: ECR's `sinceImagePulled` count type exists only paired with the archive storage
class. AWS closed aws/containers-roadmap #921 ("add sinceImagePulled countType") on 2025-11-20 saying it was
"implemented ... paired with our new archival storage class", users there report that a `sinceImagePulled` rule
with action `expire` is refused by the API and the console, and #2728 ("Support lifecycle policy for image deletion
not just transitioning to archive", for pull-through caches) is open. Archived images still cost storage (with a
90-day minimum) and cannot be pulled until restored. No lifecycle rule could spare the images the warm list names
either. So Pullthrough deletes them itself, with BatchDeleteImage.

What counts as use: `lastRecordedPullTime` (botocore's ImageDetail: refreshed "at least once every 24 hours", so a
day's slack), or `imagePushedAt` (the import) for an image never pulled. BatchGetImage refreshes that time
(containers-roadmap #2390, reproduced there with the CLI), so pruning reads a manifest only of an index it is about
to delete: reading any other would keep it alive.

What is never deleted: anything outside the rules' prefixes (a ROOT rule's repositories carry upstream names that
cannot be told from the account's own, so they are left alone); an image a warm-list entry or `prune.keep` names
(tag patterns and latest-N evaluated on the tags ECR holds); a platform image whose index stays (it is deleted only
with its index, after it, and only when it is itself unused; a repository left without any index also loses its
unused untagged images).

The package: `keeping` (what must stay), `decisions` (the plan, pure), `deletion` (ECR deletes in the order it
requires), `ecr` (the calls, and against AWS), `handler` (one run, and prune_images' `handle`).
"""

from pullthrough.prune.decisions import INDEX_TYPES, Candidate, Plan, last_used, plan
from pullthrough.prune.deletion import Outcomes, execute
from pullthrough.prune.ecr import AwsEcr, Ecr
from pullthrough.prune.handler import RunInfo, handle, managed_prefixes, run

__all__ = [
    "INDEX_TYPES",
    "AwsEcr",
    "Candidate",
    "Ecr",
    "Outcomes",
    "Plan",
    "RunInfo",
    "execute",
    "handle",
    "last_used",
    "managed_prefixes",
    "plan",
    "run",
]
