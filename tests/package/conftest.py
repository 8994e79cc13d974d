"""The packaged cloud template, built once per test run exactly as ``make package`` builds it.

The build runs ``python -m infra.package`` in a subprocess (chalice's CLI and its import of app.py
stay out of the test process) into a temporary directory; the staged app and its vendored
dependencies are shared with ``make package`` under build/.stage, so only the first build of a
machine downloads wheels. ``resolve`` turns the template's intrinsic functions into the values
CloudFormation would give them in one made-up account (with the resolver local mode deploys with,
``infra/intrinsics.py``), so IAM policies can be evaluated for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from infra.intrinsics import Pseudo, Resolver

ROOT = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK = "nexus"
PSEUDO = Pseudo(account_id=ACCOUNT, region=REGION, stack_name=STACK)


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
        """The name CloudFormation gives: the template's own for a named state machine or topic, else
        generated."""
        resource = self.resources[logical_id]
        own = {"AWS::StepFunctions::StateMachine": "StateMachineName", "AWS::SNS::Topic": "TopicName"}
        if own.get(resource["Type"]) in resource["Properties"]:
            return str(self.resolve(resource["Properties"][own[resource["Type"]]]))
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
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        }[self.resources[logical_id]["Type"]]

    def ref(self, name: str) -> str:
        if self.resources[name]["Type"] in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"):
            return self.arn(name)  # Ref of these is their ARN; of the others here, the name
        return self.physical_name(name)

    def get_att(self, name: str, attribute: str) -> str:
        if attribute == "QueueName" and self.resources[name]["Type"] == "AWS::SQS::Queue":
            return self.physical_name(name)
        assert attribute == "Arn", f"no fake value for {name}.{attribute}"
        return self.arn(name)

    def resolve(self, value: Any) -> Any:
        """The value with its intrinsic functions resolved as CloudFormation would (infra/intrinsics.py)."""
        return Resolver(self.template, PSEUDO, self.ref, self.get_att).resolve(value)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """The package, built once per test run: the test workers share one build, the first to take the lock
    in the run's temporary directory making it (pytest-xdist's recipe for a session fixture run once), so
    the package tests spread over the workers like any others. It is built aside and moved into place
    only once ``infra.package`` (which checks what it built) succeeded; a failed build is recorded, and
    every worker fails with its output instead of building it again."""
    run_dir = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_dir = run_dir.parent  # shared by the workers of this run
    out, failed = run_dir / "package", run_dir / "package.failed"
    with FileLock(str(run_dir / "package.lock")):
        if failed.is_file():
            pytest.fail(failed.read_text())
        if not out.is_dir():
            building = run_dir / "package.building"
            shutil.rmtree(building, ignore_errors=True)
            (ROOT / "build").mkdir(exist_ok=True)
            try:  # build/.stage is also another test run's (and `make package` takes no lock: not meanwhile)
                with FileLock(str(ROOT / "build" / ".stage.lock")):
                    result = subprocess.run(
                        [sys.executable, "-m", "infra.package", "--out", str(building)],
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        timeout=600,
                        check=False,
                    )
                problem = "" if result.returncode == 0 else f"{result.stdout}\n{result.stderr}"
            except (subprocess.TimeoutExpired, OSError) as error:
                problem = repr(error)
            if problem:
                failed.write_text(f"infra.package failed:\n{problem}")
                pytest.fail(failed.read_text())
            building.rename(out)
    template_path = out / "sam.json"
    return Packaged(out, template_path, json.loads(template_path.read_text()))


@pytest.fixture(scope="session")
def asl_validator() -> Path:
    assert ASL_VALIDATOR.exists(), "asl-validator is missing: run `make node-tools` (npm ci) first"
    return ASL_VALIDATOR
