"""What ECR's import of a tag costs upstream: the index and every manifest it lists (the ECR guide: all of them are
pulled, whatever platforms are wanted; Docker Hub counts a pull for each), or one for a single manifest. Learned from
earlier imports (the ledger's verified images) or estimated from the index's size.

Separate from the budget (what a run may spend) and the decisions (what needs a job): this is the price list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pullthrough.aws.ledger import Verified
from pullthrough.registry import manifests
from pullthrough.registry.client import ManifestHead
from pullthrough.warm.plan import Candidate

# An index never imported before: its manifests are estimated from its size at one per this many bytes. An index entry
# (a descriptor with a platform) is about 200 bytes written compactly and 400 to 700 pretty-printed with BuildKit's
# attestation annotations, as Docker Hub serves them; 250 over-counts most indexes a little and under-counts few.
INDEX_BYTES_PER_MANIFEST = 250

Known = dict[tuple[str, str | None], int]


def estimate_children(size: int, platforms: int) -> int:
    """Manifests an index of `size` bytes probably lists: never fewer than the platforms wanted from it."""
    return max(math.ceil(size / INDEX_BYTES_PER_MANIFEST), platforms)


def children_known(remembered: Mapping[tuple[str, str], Verified]) -> Known:
    """What earlier imports showed: manifests listed by (repository, digest), and the most any index of a repository
    listed (repository, None), which prices a new tag of a repository whose platforms rarely change."""
    known: Known = {}
    for verified in remembered.values():
        if verified.children:
            known[(verified.repository, verified.digest)] = verified.children
            known[(verified.repository, None)] = max(known.get((verified.repository, None), 0), verified.children)
    return known


def import_cost(c: Candidate, head: ManifestHead, known: Known) -> int:
    """Upstream pulls ECR's import of the tag costs: the index and every manifest it lists (the ECR guide: all of
    them are pulled; Docker Hub counts a pull for each), or one for a single manifest."""
    if head.media_type not in manifests.INDEX_TYPES:
        return 1
    listed = known.get((c.repository, head.digest)) or known.get((c.repository, None))
    return 1 + (listed or estimate_children(head.size, len(c.platforms)))
