"""The service's cloud template as CloudFormation deploys it: packaged, then through the SAM transform.

Local mode and the tests deploy the service into the embedded AWS from this template, so they run what
``make package`` ships (``localaws/stack.py`` creates its resources). Three steps, as on AWS:

1. build: ``infra.package.build`` (``chalice package`` merged with ``infra/merge-template.json``), the same
   code ``make package`` runs, without the vendored dependencies (the template does not depend on them,
   and the local AWS runs the functions' code from this checkout);
2. package: what ``aws cloudformation package`` does, each function's ``CodeUri`` becomes an S3 location;
3. transform: ``Transform: AWS::Serverless-2016-10-31`` applied offline with ``aws-sam-translator`` (the
   library CloudFormation's own transform is), giving plain CloudFormation: roles, functions, rules,
   subscriptions, permissions, the API's deployment and stage.

Building takes a few seconds (chalice imports the app; the translator is slow to import), so it runs in
a subprocess (``python -m localaws.template``), keeping chalice's ``sys.path`` changes and both imports out
of the caller, and its result is cached: in this process, and on disk under ``build/local/`` keyed by a
hash of every input (the app's code and config, the merge template, the state machines, this module and
the tools' versions). A changed input builds again; concurrent builders write to temporary files and
rename, so they never see half a template.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "build" / "local"
STAGE = "dev"
# Where `aws cloudformation package` would have uploaded the code (never read: see the module docstring).
ARTIFACT_BUCKET = "nexus-deployer-local-artifacts"
_INPUTS = (
    "app.py",
    ".chalice/config.json",
    "infra/merge-template.json",
    "infra/package.py",
    "localaws/template.py",
    "statemachine/deployment.asl.json",
    "statemachine/rollout.asl.json",
)
_TOOLS = ("chalice", "aws-sam-translator")

_lock = threading.Lock()
_memo: dict[tuple[str, str], dict[str, Any]] = {}


class TemplateBuildError(RuntimeError):
    pass


def fingerprint(stage: str, region: str) -> str:
    """A hash of everything the transformed template is made from."""
    digest = hashlib.sha256(f"{stage}\n{region}\n".encode())
    files = [ROOT / name for name in _INPUTS] + sorted((ROOT / "chalicelib").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    for tool in _TOOLS:
        digest.update(f"{tool}=={metadata.version(tool)}\n".encode())
    return digest.hexdigest()[:24]


def service_template(stage: str = STAGE, region: str = "us-east-1") -> dict[str, Any]:
    """The transformed template (a fresh copy: callers may change it)."""
    key = (stage, region)
    with _lock:
        if key not in _memo:
            _memo[key] = _cached_or_built(stage, region)
        copy: dict[str, Any] = json.loads(json.dumps(_memo[key]))
        return copy


def _cached_or_built(stage: str, region: str) -> dict[str, Any]:
    path = CACHE_DIR / f"{stage}-{region}-{fingerprint(stage, region)}.json"
    if not path.is_file():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "localaws.template",
                "--stage",
                stage,
                "--region",
                region,
                "--out",
                str(path),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0 or not path.is_file():
            raise TemplateBuildError(
                f"building the service's template failed (python -m localaws.template):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
    template: dict[str, Any] = json.loads(path.read_text())
    return template


def package_code(template: dict[str, Any]) -> dict[str, Any]:
    """What ``aws cloudformation package`` does to the template: code locations become S3 URIs."""
    packaged: dict[str, Any] = json.loads(json.dumps(template))
    for name, resource in packaged["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{name}.zip"
    return packaged


def transform(template: dict[str, Any], region: str) -> dict[str, Any]:
    """Apply ``AWS::Serverless-2016-10-31`` as CloudFormation does; the result has no SAM type left."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    def no_managed_policies() -> dict[str, str]:
        # SAM resolves policy names like "AmazonS3ReadOnlyAccess" through IAM; the template names none.
        raise TemplateBuildError("the template names a managed policy by name; give its ARN instead")

    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    transformed: dict[str, Any] = translator.translate(
        template, parameter_values={}, get_managed_policy_map=no_managed_policies
    )
    left = sorted(
        {str(r.get("Type")) for r in transformed["Resources"].values() if "Serverless" in str(r.get("Type"))}
    )
    if left or "Transform" in transformed:
        raise TemplateBuildError(f"the transform left SAM in the template: {left}")
    return transformed


def build_transformed(stage: str, region: str, out: Path) -> None:
    """Build, package and transform; write the result to ``out`` atomically."""
    from infra.package import build

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="template-", dir=out.parent) as scratch:
        work = Path(scratch)
        sam_path = build(stage, work / "out", work / "stage", vendor=False)
        transformed = transform(package_code(json.loads(sam_path.read_text())), region)
        partial = work / "transformed.json"
        partial.write_text(json.dumps(transformed, indent=1, sort_keys=True) + "\n")
        os.replace(partial, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the service's template after the SAM transform.")
    parser.add_argument("--stage", default=STAGE)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--template",
        type=Path,
        help="transform this packaged template (make package's) instead of building one",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", args.region)
    if args.template is None:
        build_transformed(args.stage, args.region, args.out.resolve())
    else:
        transformed = transform(package_code(json.loads(args.template.read_text())), args.region)
        args.out.write_text(json.dumps(transformed, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
