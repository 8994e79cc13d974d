"""Real public templates through the API on the local AWS: none hangs, answers 5xx or quotes Python.

A fixed part of ``bench/corpus/`` (``python -m bench.corpus`` runs all of it and writes the distribution to
BENCHMARKS.md): each template is created, updated and deleted through the API, in ``fail`` mode and in
``simulate`` mode, and ends deployed, FAILED with an AWS-shaped reason, or refused with a 4xx.
"""

from __future__ import annotations

import logging
import re

import pytest

from bench.corpus import CORPUS, NEVER, Result, run, templates

SUBSET = (
    "aws-cloudformation-templates/AppRunner/AppRunnerServiceFromECR.yaml",
    "aws-cloudformation-templates/CloudFormation/fn-foreach-ddb.yaml",
    "aws-cloudformation-templates/DynamoDB/DynamoDB_Table.yaml",
    "aws-cloudformation-templates/ECS/ECS_Schedule_Example.yaml",
    "aws-cloudformation-templates/ElastiCache/Elasticache-snapshot.yaml",
    "aws-cloudformation-templates/Lambda/SAM/template.yaml",
    "aws-cloudformation-templates/SNS/SNSTopic.yaml",
    "aws-cloudformation-templates/SQS/SQSStandardQueue.json",
    "aws-cloudformation-templates/VPC/VPC_With_Managed_NAT_And_Private_Subnet.yaml",
)


def outcomes(results: list[Result], mode: str) -> dict[str, str]:
    return {r.template: r.outcome for r in results if r.mode == mode}


def test_real_templates_never_hang_5xx_or_quote_python(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="moto")  # each failed execution logs its whole state
    results = run([CORPUS / name for name in SUBSET])
    bad = [(r.mode, r.template, r.outcome, r.step, r.detail[:300]) for r in results if r.outcome in NEVER]
    assert bad == []
    fail, simulate = outcomes(results, "fail"), outcomes(results, "simulate")
    assert len(fail) == len(simulate) == len(SUBSET)
    # Not vacuous: templates of emulated types deploy fully; unemulated types fail, and simulate deploys them.
    for name in ("DynamoDB/DynamoDB_Table.yaml", "SQS/SQSStandardQueue.json"):
        assert fail[f"aws-cloudformation-templates/{name}"] == "deployed"
    for name in (
        "SNS/SNSTopic.yaml",
        "VPC/VPC_With_Managed_NAT_And_Private_Subnet.yaml",
        "AppRunner/AppRunnerServiceFromECR.yaml",
    ):
        assert fail[f"aws-cloudformation-templates/{name}"] == "failed"
        assert simulate[f"aws-cloudformation-templates/{name}"] == "deployed"
    assert fail["aws-cloudformation-templates/CloudFormation/fn-foreach-ddb.yaml"] == "refused"


def test_every_corpus_template_names_its_source_commit() -> None:
    listed = dict(
        re.findall(r"^\| `([^`]+)` \| ([0-9a-f]{40}) \|$", (CORPUS / "README.md").read_text(), re.M)
    )
    assert sorted(listed) == sorted(str(path.relative_to(CORPUS)) for path in templates())
