"""The packaged cloud template, built once per session exactly as ``make package`` builds it.

The build runs ``python -m infra.package`` in a subprocess (chalice's CLI and its import of app.py
stay out of the test process) into a temporary directory; the staged app and its vendored
dependencies are shared with ``make package`` under build/.stage, so only the first build of a
machine downloads wheels. ``resolve`` turns the template's intrinsic functions into the values
CloudFormation would give them in one made-up account, so IAM policies can be evaluated for real.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK = "nexus"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK,
}
SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:.]+)\}")


@dataclass(frozen=True)
class Packaged:
    directory: Path
    template_path: Path
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def zip_names(self) -> list[str]:
        with zipfile.ZipFile(self.directory / "deployment.zip") as archive:
            return archive.namelist()

    def physical_name(self, logical_id: str) -> str:
        """The name CloudFormation gives: the template's own for a named state machine, else generated."""
        resource = self.resources[logical_id]
        if (
            resource["Type"] == "AWS::StepFunctions::StateMachine"
            and "StateMachineName" in resource["Properties"]
        ):
            return str(self.resolve(resource["Properties"]["StateMachineName"]))
        if resource["Type"] == "AWS::S3::Bucket":  # generated bucket names are lower case
            return f"{STACK}-{logical_id}".lower()
        return f"{STACK}-{logical_id}"

    def arn(self, logical_id: str) -> str:
        name = self.physical_name(logical_id)
        return {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        }[self.resources[logical_id]["Type"]]

    def ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.template.get("Parameters", {}):
            return str(self.template["Parameters"][name]["Default"])
        if self.resources[name]["Type"] == "AWS::StepFunctions::StateMachine":
            return self.arn(name)  # Ref of a state machine is its ARN; of the others here, the name
        return self.physical_name(name)

    def get_att(self, name: str, attribute: str) -> str:
        if attribute == "QueueName" and self.resources[name]["Type"] == "AWS::SQS::Queue":
            return self.physical_name(name)
        assert attribute == "Arn", f"no fake value for {name}.{attribute}"
        return self.arn(name)

    def resolve(self, value: Any) -> Any:
        """The value with Ref, Fn::GetAtt and Fn::Sub replaced as CloudFormation would."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            name, attribute = value["Fn::GetAtt"]
            return self.get_att(name, attribute)
        if set(value) == {"Fn::Sub"}:
            text, variables = (
                (value["Fn::Sub"], {})
                if isinstance(value["Fn::Sub"], str)
                else (value["Fn::Sub"][0], self.resolve(value["Fn::Sub"][1]))
            )

            def substitute(match: re.Match[str]) -> str:
                key = match.group(1)
                if key in variables:
                    return str(variables[key])
                if "." in key and not key.startswith("AWS::"):
                    return self.get_att(*key.split(".", 1))
                return self.ref(key)

            return SUB_VARIABLE.sub(substitute, text)
        assert not any(key.startswith("Fn::") for key in value), f"no resolver for {value}"
        return {key: self.resolve(item) for key, item in value.items()}


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    out = tmp_path_factory.mktemp("package")
    result = subprocess.run(
        [sys.executable, "-m", "infra.package", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"infra.package failed:\n{result.stdout}\n{result.stderr}"
    template_path = out / "sam.json"
    return Packaged(out, template_path, json.loads(template_path.read_text()))


@pytest.fixture(scope="session")
def asl_validator() -> Path:
    assert ASL_VALIDATOR.exists(), "asl-validator is missing: run `make node-tools` (npm ci) first"
    return ASL_VALIDATOR
