"""moto's ECS ListTaskDefinitions, with the order and the pages AWS documents.

moto answers RegisterTaskDefinition, ListTaskDefinitions and DescribeTaskDefinition in shapes botocore's model
accepts (tests/contracts/test_ecs_shapes.py holds them to it), and filters familyPrefix as the model says ("the full
family name") and status. It ignores `sort` and `maxResults` and never returns a nextToken (moto 5.2.5,
moto/ecs/responses.py `list_task_definitions`); botocore's ECS model documents both:
- sort: "By default (ASC) task definitions are listed lexicographically by family name and in ascending numerical
  order by revision ... DESC reverses the sort order on family name and revision";
- maxResults: "between 1 and 100"; without it, "up to 100 results and a nextToken value if applicable".
`install()` replaces the response method with one that does both, so the adapter's paging and its reading of DESC
are exercised. The token is opaque to callers, as the model asks; here it is the offset of the next page.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.responses import EC2ContainerServiceResponse

__all__ = ["MAX_RESULTS", "install"]

MAX_RESULTS = 100
_INSTALLED = "_pullthrough_ecs_pages"


def _order(arn: str) -> tuple[str, int]:
    family, _, revision = arn.rsplit("/", 1)[-1].rpartition(":")
    return family, int(revision)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameterException("Invalid nextToken") from None


def list_task_definitions(self: Any) -> ActionResult:
    """ListTaskDefinitions: familyPrefix and status as moto has them, then sorted and paged as AWS documents."""
    limit = self._get_param("maxResults")
    limit = MAX_RESULTS if limit is None else int(limit)
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidParameterException(f"maxResults must be between 1 and {MAX_RESULTS}")
    order = str(self._get_param("sort") or "ASC")
    if order not in ("ASC", "DESC"):
        raise InvalidParameterException("sort must be ASC or DESC")
    arns = self.ecs_backend.list_task_definitions(self._get_param("familyPrefix"), self._get_param("status", "ACTIVE"))
    arns = sorted(arns, key=_order, reverse=order == "DESC")
    start = _offset(self._get_param("nextToken"))
    page = arns[start : start + limit]
    answer: dict[str, Any] = {"taskDefinitionArns": page}
    if start + limit < len(arns):
        answer["nextToken"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
    return ActionResult(answer)


def install() -> None:
    """Replace moto's ListTaskDefinitions response; safe to call any number of times."""
    if getattr(EC2ContainerServiceResponse, _INSTALLED, False):
        return
    EC2ContainerServiceResponse.list_task_definitions = list_task_definitions  # type: ignore[method-assign]
    setattr(EC2ContainerServiceResponse, _INSTALLED, True)
