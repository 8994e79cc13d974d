"""Write the deployable template: ``chalice package`` merged with infra/merge-template.json.

Run by ``make package`` (``python -m infra.package``). Writes ``build/sam.json`` (one SAM template:
API, six functions, state machine, table, roles, log groups, EventBridge rule) and
``build/deployment.zip`` (the code of all six functions), plus ``build/merge-template.json``, the
merge template as chalice received it.

Why a script rather than a bare ``chalice package --merge-template infra/merge-template.json``:

* The state machine must run statemachine/deployment.asl.json itself, the file that local mode and
  the workflow tests execute, never a copy pasted into the template. Chalice's merge is a deep merge
  of a static file, so this script writes ``build/merge-template.json``: infra/merge-template.json
  with the definition inlined as the state machine's ``Definition``, after checking that
  ``DefinitionSubstitutions`` names exactly the definition's ``${...}`` placeholders. Inline rather
  than ``DefinitionS3Location`` so that cfn-lint validates the definition with the rest, and
  ``aws cloudformation package`` has only the code zip to upload.
* The alarms and the dashboard are built by infra/observability.py from the merge template's
  functions and state machines and from the metric catalogue (chalicelib/domain/metrics.py), and
  added to ``build/merge-template.json`` with the definitions.
* The functions run on the ``Runtime`` the merge template sets (python3.12), while the venv that
  runs chalice may be another Python: chalice takes the runtime from its own interpreter, and its
  dependency builder cannot fetch wheels for another Python version (it asks pip for the target ABI
  without the target version, then falls back to compiling sdists for the wrong one). So chalice
  packages a staged copy of the app (app.py, chalicelib/, .chalice/) whose requirements.txt is
  empty and whose ``vendor/`` (which chalice copies into the zip as is) holds requirements.txt
  installed by pip for that runtime's CPython and manylinux; a stamp skips that install when
  neither the requirements nor the runtime changed.
* Topics: chalice subscribes ``@app.on_sns_message`` handlers to an ARN it builds from the topic's name
  in the code, while the template names its topic per stack; ``point_subscriptions_at_topics`` makes
  each subscription refer to the topic resource instead.
* Roles: the policies name resources of this same stack (the table, the state machine, the log
  groups), which static chalice policy files cannot, and the two steps that assume target roles
  must share one role, because a target's trust policy names one principal (NEXUS_SERVICE_ROLE_ARN),
  while chalice with ``autogen_policy: false`` makes one role per function. So .chalice/config.json
  says ``manage_iam_role: false`` with a placeholder ``iam_role_arn`` that the merge template
  replaces with the roles it defines; ``check_packaged`` refuses a template where any is left.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra import observability

ROOT = Path(__file__).resolve().parent.parent
DEFINITION_PATH = ROOT / "statemachine" / "deployment.asl.json"
ROLLOUT_DEFINITION_PATH = ROOT / "statemachine" / "rollout.asl.json"
MERGE_TEMPLATE_PATH = ROOT / "infra" / "merge-template.json"
REQUIREMENTS_PATH = ROOT / "requirements.txt"
STATE_MACHINE = "DeploymentStateMachine"
CHALICE_API = "RestAPI"  # the AWS::Serverless::Api chalice package writes
ROLLOUT_STATE_MACHINE = "RolloutStateMachine"
# Lambda's x86_64 Python runtimes (Amazon Linux 2023, glibc 2.34) run manylinux2014 wheels.
WHEEL_PLATFORM = "manylinux2014_x86_64"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
RUNTIME = re.compile(r"^python3\.(\d+)$")
# Settings every function needs (chalicelib/settings.py); AWS_REGION is set by Lambda itself.
FUNCTION_NAME_VARIABLE = "NEXUS_FUNCTION_NAME"
REQUIRED_ENVIRONMENT = frozenset({"NEXUS_TABLE_NAME", "NEXUS_SERVICE_ROLE_ARN", FUNCTION_NAME_VARIABLE})


class PackageError(RuntimeError):
    pass


def placeholders(definition_text: str) -> set[str]:
    return set(PLACEHOLDER.findall(definition_text))


def render_merge_template(
    merge_template: dict[str, Any], definition_text: str, rollout_definition_text: str | None = None
) -> dict[str, Any]:
    """The merge template with each state machine's Definition taken from its ASL file's text."""
    rendered: dict[str, Any] = json.loads(json.dumps(merge_template))
    _inline_definition(rendered, STATE_MACHINE, DEFINITION_PATH, definition_text)
    if ROLLOUT_STATE_MACHINE in rendered["Resources"]:
        rollout_text = rollout_definition_text
        if rollout_text is None:
            rollout_text = ROLLOUT_DEFINITION_PATH.read_text()
        _inline_definition(rendered, ROLLOUT_STATE_MACHINE, ROLLOUT_DEFINITION_PATH, rollout_text)
        # The alarms and the dashboard (infra/observability.py) watch both workflows.
        monitoring = observability.resources(rendered)
        taken = sorted(set(monitoring) & set(rendered["Resources"]))
        if taken:
            raise PackageError(f"the merge template already has resources named {taken}")
        rendered["Resources"].update(monitoring)
        rendered.setdefault("Outputs", {})["DashboardName"] = {"Value": {"Ref": observability.DASHBOARD}}
    for function in observability.functions(rendered):
        # Each function's own name, for the ``function`` dimension of its metrics (the alarms read it):
        # CloudFormation's name for it ends in a random suffix.
        variables = rendered["Resources"][function]["Properties"].setdefault("Environment", {})
        variables.setdefault("Variables", {})[FUNCTION_NAME_VARIABLE] = function
    return rendered


def _inline_definition(rendered: dict[str, Any], machine: str, path: Path, definition_text: str) -> None:
    properties: dict[str, Any] = rendered["Resources"][machine]["Properties"]
    if {"Definition", "DefinitionString", "DefinitionS3Location"} & set(properties):
        raise PackageError(f"{machine} must not carry a definition: it comes from {path.name}")
    wanted = placeholders(definition_text)
    given = set(properties.get("DefinitionSubstitutions", {}))
    if wanted != given:
        raise PackageError(
            f"DefinitionSubstitutions {sorted(given)} must name exactly the definition's "
            f"placeholders {sorted(wanted)}"
        )
    properties["Definition"] = json.loads(definition_text)


def function_runtime(merge_template: dict[str, Any]) -> str:
    """The one Runtime the merge template gives the chalice functions (the resources it has no Type for,
    but the chalice API's, which it gives gateway responses); check_packaged checks every function has it."""
    runtimes = {
        resource.get("Properties", {}).get("Runtime")
        for name, resource in merge_template["Resources"].items()
        if "Type" not in resource and name != CHALICE_API
    }
    if len(runtimes) != 1 or not isinstance(next(iter(runtimes)), str):
        raise PackageError(
            f"the merge template must give every function one Runtime, not {sorted(map(str, runtimes))}"
        )
    runtime = str(next(iter(runtimes)))
    if not RUNTIME.match(runtime):
        raise PackageError(f"unsupported runtime {runtime}: expected python3.N")
    return runtime


_TOPIC_BY_NAME = re.compile(r"^arn:\$\{AWS::Partition\}:sns:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(.+)$")


def point_subscriptions_at_topics(template: dict[str, Any]) -> dict[str, Any]:
    """Each ``@app.on_sns_message`` subscription on the template's own topic resource.

    chalice writes a subscription's topic as an ARN built from the name in the code; the template names
    its topic per stack (two stages in one account must not share it), so the subscription refers to
    the resource whose ``Metadata.ChaliceTopicName`` is that name instead.
    """
    topics = {
        resource.get("Metadata", {}).get("ChaliceTopicName"): name
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::SNS::Topic"
    }
    for name, resource in template["Resources"].items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") != "SNS" or not isinstance(event["Properties"].get("Topic"), dict):
                continue
            match = _TOPIC_BY_NAME.match(str(event["Properties"]["Topic"].get("Fn::Sub", "")))
            if match is None or match.group(1) not in topics:
                raise PackageError(
                    f"{name} subscribes to {event['Properties']['Topic']}: give the topic resource "
                    "Metadata.ChaliceTopicName"
                )
            event["Properties"]["Topic"] = {"Ref": topics[match.group(1)]}
    return template


def check_packaged(template: dict[str, Any], runtime: str) -> None:
    """Refuse a packaged template where the merge left a chalice default in place."""
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }
    if not functions:
        raise PackageError("the packaged template has no functions")
    for name, resource in functions.items():
        properties = resource["Properties"]
        if not isinstance(properties.get("Role"), dict):
            raise PackageError(
                f"{name} kept the role {properties.get('Role')!r}: give it one in the merge template"
            )
        variables = properties.get("Environment", {}).get("Variables", {})
        missing = REQUIRED_ENVIRONMENT - set(variables)
        if missing:
            raise PackageError(f"{name} lacks environment variables {sorted(missing)}")
        if variables[FUNCTION_NAME_VARIABLE] != name:
            raise PackageError(f"{name} is named {variables[FUNCTION_NAME_VARIABLE]!r} in its environment")
        if properties.get("Runtime") != runtime:
            raise PackageError(f"{name} runs {properties.get('Runtime')}, not {runtime}")


def vendor_dependencies(vendor: Path, runtime: str) -> None:
    """Install requirements.txt into ``vendor`` for the Lambda runtime, unless already there."""
    minor = RUNTIME.fullmatch(runtime)
    assert minor is not None  # checked by function_runtime
    stamp = vendor.parent / "vendor.stamp"
    fingerprint = hashlib.sha256(
        f"{runtime} {WHEEL_PLATFORM}\n".encode() + REQUIREMENTS_PATH.read_bytes()
    ).hexdigest()
    if vendor.is_dir() and stamp.is_file() and stamp.read_text() == fingerprint:
        return
    shutil.rmtree(vendor, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            f"3.{minor.group(1)}",
            "--platform",
            WHEEL_PLATFORM,
            "--target",
            str(vendor),
            "-r",
            str(REQUIREMENTS_PATH),
        ],
        check=True,
    )
    # Console scripts and bytecode of the building interpreter are of no use in the function.
    shutil.rmtree(vendor / "bin", ignore_errors=True)
    for cache in vendor.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    stamp.write_text(fingerprint)


def stage_app(stage: Path, runtime: str, *, vendor: bool = True) -> None:
    """A copy of the app for chalice: same code and config, dependencies already in vendor/ (or none,
    for a template-only build: the template does not depend on them)."""
    stage.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "app.py", stage / "app.py")
    shutil.rmtree(stage / "chalicelib", ignore_errors=True)
    shutil.copytree(ROOT / "chalicelib", stage / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (stage / ".chalice").mkdir(exist_ok=True)
    for config in (ROOT / ".chalice").glob("*.json"):
        shutil.copy2(config, stage / ".chalice" / config.name)
    (stage / "requirements.txt").write_text(
        "# installed for the Lambda runtime into vendor/ by infra/package.py\n"
    )
    if vendor:
        vendor_dependencies(stage / "vendor", runtime)


def run_chalice_package(project_dir: Path, stage_name: str, merge_template: Path, out_dir: Path) -> None:
    from chalice.cli import cli

    # Chalice builds a boto3 session on the way and refuses to start without a region; the template
    # itself names none (it uses AWS::Region), so any region gives the same output.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    cli.main(
        args=[
            "--project-dir",
            str(project_dir),
            "package",
            "--stage",
            stage_name,
            "--merge-template",
            str(merge_template),
            str(out_dir),
        ],
        prog_name="chalice",
        obj={},
        standalone_mode=False,
    )


def build(stage_name: str, out_dir: Path, work_dir: Path, *, vendor: bool = True) -> Path:
    """Write ``out_dir``/sam.json and deployment.zip; return the template's path.

    ``vendor=False`` leaves the dependencies out of the zip (local mode deploys the template and runs
    the code from this checkout): the template is the same, and no wheel is fetched.
    """
    merge_template = json.loads(MERGE_TEMPLATE_PATH.read_text())
    runtime = function_runtime(merge_template)
    rendered = render_merge_template(merge_template, DEFINITION_PATH.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    merge_path = out_dir / "merge-template.json"
    merge_path.write_text(json.dumps(rendered, indent=2) + "\n")
    stage_app(work_dir, runtime, vendor=vendor)
    run_chalice_package(work_dir, stage_name, merge_path, out_dir)
    template_path = out_dir / "sam.json"
    template = point_subscriptions_at_topics(json.loads(template_path.read_text()))
    template_path.write_text(json.dumps(template, indent=2) + "\n")
    check_packaged(template, runtime)
    return template_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write build/sam.json and build/deployment.zip.")
    parser.add_argument("--stage", default="dev", help="chalice stage in .chalice/config.json (dev, prod)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "build", help="where sam.json and deployment.zip go"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build" / ".stage",
        help="the staged app and its vendored dependencies (kept between runs)",
    )
    args = parser.parse_args(argv)
    try:
        path = build(args.stage, args.out.resolve(), args.work.resolve())
    except PackageError as error:
        print(f"package: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path} and {path.parent / 'deployment.zip'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
