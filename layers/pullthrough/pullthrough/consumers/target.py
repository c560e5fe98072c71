"""Where consumers pull from: one account's ECR registry in one region, with its partition and DNS suffix.

Partitions and DNS suffixes are botocore's endpoint data (botocore/data/endpoints.json): `aws` answers on
amazonaws.com, `aws-cn` (cn-north-1, cn-northwest-1) on amazonaws.com.cn, `aws-us-gov` on amazonaws.com. The ECR
registry endpoint is `<account>.dkr.ecr.<region>.<dns suffix>` (the ECR User Guide, "Private registry concepts").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from pullthrough.errors import PullthroughError
from pullthrough.reference import ROOT_PREFIX

_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_PARTITIONS = (  # (region prefix, partition, dns suffix), most specific first
    ("cn-", "aws-cn", "amazonaws.com.cn"),
    ("us-gov-", "aws-us-gov", "amazonaws.com"),
    ("", "aws", "amazonaws.com"),
)


class TargetError(PullthroughError):
    """An account id or region a consumer configuration cannot be generated for."""


@dataclass(frozen=True)
class Target:
    """The registry consumers pull from: the account and region (also `pullthrough urls --json`'s `target`)."""

    account: str
    region: str
    partition: Annotated[str, Field(description="aws, aws-cn or aws-us-gov")]
    dns_suffix: Annotated[str, Field(description="amazonaws.com or amazonaws.com.cn")]
    registry: Annotated[str, Field(description="<account>.dkr.ecr.<region>.<dns suffix>")]

    @classmethod
    def of(cls, account: str, region: str) -> Target:
        """The target for `account` in `region`, its partition and DNS suffix derived from the region's name."""
        if not _ACCOUNT.fullmatch(account):
            raise TargetError(f"account {account!r} is not an AWS account id: give the 12 digits, like 123456789012")
        if not _REGION.fullmatch(region):
            raise TargetError(f"region {region!r} is not an AWS region name: give one like us-east-1 or cn-north-1")
        for prefix, partition, suffix in _PARTITIONS:
            if region.startswith(prefix):
                return cls(account, region, partition, suffix, f"{account}.dkr.ecr.{region}.{suffix}")
        raise AssertionError("unreachable: the last partition matches every region")

    @property
    def registry_host(self) -> str:
        """`<account>.dkr.ecr.<region>.<dns suffix>`: the host of every image URI and mirror."""
        return self.registry

    def base(self, prefix: str) -> str:
        """The registry base of a rule: `<host>/<prefix>`, or the host alone for ECR's ROOT prefix."""
        return self.registry_host if prefix == ROOT_PREFIX else f"{self.registry_host}/{prefix}"

    def repository_arn(self, repository: str) -> str:
        """`arn:<partition>:ecr:<region>:<account>:repository/<repository>` (the IAM service reference's ARN form)."""
        return f"arn:{self.partition}:ecr:{self.region}:{self.account}:repository/{repository}"
