"""cfn-lint passes the packaged template and asl-validator the workflow definition.

Each check also runs once on a deliberately broken copy, so a linter that silently checks nothing
(a wrong path, a skipped resource type, an option that turns the check off) fails here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from infra.package import DEFINITION_PATH, ROLLOUT_DEFINITION_PATH, placeholders
from localaws.stack_resources import render_definition
from tests.package.conftest import CFN_LINT, Packaged


def cfn_lint(template: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--non-zero-exit-code", "none", str(template)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    matches: list[dict[str, Any]] = json.loads(result.stdout)
    return matches


def asl_validate(validator: Path, definition: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(validator), "--json-path", str(definition)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cfn_lint_finds_nothing_in_the_packaged_template(packaged: Packaged) -> None:
    matches = cfn_lint(packaged.template_path)
    assert [f"{m['Level']} {m['Rule']['Id']} {m['Message']}" for m in matches] == []


def test_cfn_lint_finds_nothing_in_the_template_after_the_sam_transform(
    packaged: Packaged, tmp_path: Path
) -> None:
    """What CloudFormation deploys: the packaged template through the SAM transform (as local mode
    deploys it). The gateway responses are in the API's definition, so its deployment carries them
    (no W3660)."""
    from localaws.template import package_code, transform

    path = tmp_path / "transformed.json"
    transformed = transform(package_code(packaged.template), "eu-west-1")
    path.write_text(json.dumps(transformed))
    assert [f"{m['Level']} {m['Rule']['Id']} {m['Message']}" for m in cfn_lint(path)] == []
    body = transformed["Resources"]["RestAPI"]["Properties"]["Body"]
    assert set(body["x-amazon-apigateway-gateway-responses"]) == {
        "MISSING_AUTHENTICATION_TOKEN",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }


def test_cfn_lint_checks_the_inlined_definition(packaged: Packaged, tmp_path: Path) -> None:
    broken = json.loads(json.dumps(packaged.template))
    broken["Resources"]["DeploymentStateMachine"]["Properties"]["Definition"]["States"]["PollStack"][
        "Type"
    ] = "Tsk"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    rules = {(m["Level"], m["Rule"]["Id"]) for m in cfn_lint(path)}
    assert ("Error", "E3601") in rules


def test_asl_validator_accepts_the_definition_as_written_and_as_deployed(
    asl_validator: Path, tmp_path: Path
) -> None:
    as_written = asl_validate(asl_validator, DEFINITION_PATH)
    assert as_written.returncode == 0, as_written.stdout + as_written.stderr

    # With the placeholders bound to Lambda ARNs, as DefinitionSubstitutions does: the ARN check bites.
    text = DEFINITION_PATH.read_text()
    arns = {
        name: f"arn:aws:lambda:eu-west-1:123456789012:function:nexus-{name}" for name in placeholders(text)
    }
    deployed = tmp_path / "deployed.asl.json"
    deployed.write_text(render_definition(text, arns))
    result = asl_validate(asl_validator, deployed)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_accepts_the_rollout_definition_as_written_and_as_deployed(
    asl_validator: Path, tmp_path: Path
) -> None:
    as_written = asl_validate(asl_validator, ROLLOUT_DEFINITION_PATH)
    assert as_written.returncode == 0, as_written.stdout + as_written.stderr
    text = ROLLOUT_DEFINITION_PATH.read_text()
    arns = {
        name: f"arn:aws:lambda:eu-west-1:123456789012:function:nexus-{name}" for name in placeholders(text)
    }
    deployed = tmp_path / "rollout.asl.json"
    deployed.write_text(render_definition(text, arns))
    result = asl_validate(asl_validator, deployed)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_rejects_a_transition_to_a_missing_state(asl_validator: Path, tmp_path: Path) -> None:
    definition = json.loads(DEFINITION_PATH.read_text())
    definition["States"]["AcquireLock"]["Next"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition))
    result = asl_validate(asl_validator, broken)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr
