"""Region names the service accepts, by partition.

Kept as data rather than read from botocore so the domain stays free of AWS libraries; a unit test
compares it with botocore's endpoint data, so a region AWS adds fails a test instead of a request.
"""

from __future__ import annotations

REGIONS_BY_PARTITION: dict[str, frozenset[str]] = {
    "aws": frozenset(
        {
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        }
    ),
    "aws-cn": frozenset({"cn-north-1", "cn-northwest-1"}),
    "aws-us-gov": frozenset({"us-gov-east-1", "us-gov-west-1"}),
}

ALL_REGIONS: frozenset[str] = frozenset().union(*REGIONS_BY_PARTITION.values())


def partition_of(region: str) -> str | None:
    for partition, regions in REGIONS_BY_PARTITION.items():
        if region in regions:
            return partition
    return None
