"""``python -m bench.corpus``: real public templates through the real API on the local AWS.

Each template under ``bench/corpus/`` (sources and licenses in its README) is deployed as a user would:
``POST /deployments`` (create), ``PUT`` (an update that changes a parameter the template lets change,
else a tag), ``DELETE``, each waited for with a timeout, once with ``NEXUS_LOCAL_UNSUPPORTED=fail`` and
once with ``simulate``. Each template ends in one outcome:

* ``deployed``: created, updated and deleted, all three ending as they should;
* ``failed``: an operation ended FAILED with a reason AWS would give, or a plain statement of what the
  local AWS does not emulate;
* ``refused``: the API answered a 4xx (the template or its parameters are refused before any AWS call);
* ``hung``: an operation did not settle within its timeout;
* ``server_error``: the API answered a 5xx;
* ``python_exception``: a failure's reason (or any event message) carries a Python exception's text.

The last three must never happen. The distribution is printed and written as its own section of
BENCHMARKS.md (section 7; the other benchmarks keep it when they rewrite theirs).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.sections import write_sections
from chalicelib.domain.permissions import PermissionProfile

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "corpus"
SECTION = "## 7. Real public templates on the local AWS"
OUTCOMES = ("deployed", "failed", "refused", "hung", "server_error", "python_exception")
NEVER = frozenset({"hung", "server_error", "python_exception"})
MODES = ("fail", "simulate")
OPERATION_TIMEOUT = 60.0
SUFFIXES = (".yaml", ".yml", ".json", ".template")
# Python's own exception text: a builtin exception name used as one, a traceback, a repr of an object.
PYTHON_EXCEPTION = re.compile(
    r"\b(KeyError|TypeError|AttributeError|ValueError|IndexError|NameError|RecursionError|RuntimeError|"
    r"NotImplementedError|AssertionError|UnboundLocalError|ZeroDivisionError|JSONDecodeError|"
    r"ResponseParserError|ParamValidationError)\b|Traceback \(most recent call last\)|object has no attribute|"
    r"<\w+(\.\w+)+ object at 0x"
)
# Values tried, in order, for a required parameter without AllowedValues: the first its constraints accept.
_CANDIDATES = (
    "nexus-corpus", "nexuscorpus", "ab", "dev", "1", "10", "10.0.0.0/16", "10.0.0.0/24", "0.0.0.0/0",
    "admin@example.com", "t3.micro", "Password1234", "corpus", "a", "",
)  # fmt: skip
TARGET_ACCOUNT = "111111111111"
# The corpus measures how templates are handled, not what a permission profile allows: its target role may
# do anything (a profile that lacks a resource's handler permissions ends it ACCESS_DENIED, as on AWS).
FULL_ACCESS = PermissionProfile(
    "corpus",
    "every action",
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
)


def existing_resources(aws: Any) -> dict[str, str]:
    """What a user passes for AWS-typed parameters: resources that already exist in the target account
    (a VPC with three subnets, a security group, a key pair, an image, a hosted zone), made once."""
    session = aws.account_session(TARGET_ACCOUNT)
    ec2 = session.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"172.31.{n}.0/24", AvailabilityZone=f"us-east-1{zone}")[
            "Subnet"
        ]["SubnetId"]
        for n, zone in enumerate("abc")
    ]
    group = ec2.create_security_group(GroupName="corpus", Description="corpus", VpcId=vpc)["GroupId"]
    ec2.create_key_pair(KeyName="nexus-corpus-key")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    zone = session.client("route53").create_hosted_zone(Name="corpus.example.com", CallerReference="corpus")
    return {
        "AWS::EC2::KeyPair::KeyName": "nexus-corpus-key",
        "AWS::EC2::VPC::Id": vpc,
        "AWS::EC2::Subnet::Id": subnets[0],
        "AWS::EC2::SecurityGroup::Id": group,
        "AWS::EC2::Image::Id": image,
        "AWS::EC2::AvailabilityZone::Name": "us-east-1a",
        "AWS::Route53::HostedZone::Id": zone["HostedZone"]["Id"].split("/")[-1],
        "List<AWS::EC2::Subnet::Id>": ",".join(subnets),
        "List<AWS::EC2::SecurityGroup::Id>": group,
        "List<AWS::EC2::AvailabilityZone::Name>": "us-east-1a,us-east-1b,us-east-1c",
        "List<AWS::EC2::VPC::Id>": vpc,
    }


@dataclass
class Result:
    """One template in one mode: its outcome and what decided it."""

    template: str
    mode: str
    outcome: str
    step: str = ""
    detail: str = ""
    statuses: list[str] = field(default_factory=list)


def templates(root: Path = CORPUS) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith("LICENSE")
    )


def _document(text: str) -> dict[str, Any]:
    from localaws.cloudformation.templates import load_template

    try:
        document = load_template(text)
    except Exception:  # noqa: BLE001 - the API itself will refuse it; no parameters to choose
        return {}
    return document if isinstance(document, dict) else {}


def _allowed(name: str, declaration: dict[str, Any], value: str) -> bool:
    from localaws.cloudformation.checks import parameter_violation

    return parameter_violation(name, declaration, value) is None


def parameter_values(text: str, existing: dict[str, str]) -> dict[str, str]:
    """Values for the parameters a template requires (no Default), that its own constraints accept."""
    values: dict[str, str] = {}
    subnets = existing.get("List<AWS::EC2::Subnet::Id>", "").split(",")
    for name, declaration in (_document(text).get("Parameters") or {}).items():
        if not isinstance(declaration, dict) or "Default" in declaration:
            continue
        allowed = declaration.get("AllowedValues")
        kind = str(declaration.get("Type", "String"))
        if isinstance(allowed, list) and allowed:
            values[name] = str(allowed[0])
            continue
        if kind == "AWS::EC2::Subnet::Id" and len(subnets) > 1:  # several subnet parameters: distinct ones
            values[name] = subnets[sum(1 for v in values.values() if v in subnets) % len(subnets)]
            continue
        if kind in existing:
            values[name] = existing[kind]
            continue
        candidates = [str(declaration.get("MinValue", 1))] if kind == "Number" else list(_CANDIDATES)
        values[name] = next((c for c in candidates if _allowed(name, declaration, c)), candidates[0])
    return values


def changed_parameter(text: str, given: dict[str, str]) -> dict[str, str] | None:
    """An update's parameters: one parameter moved to another of its AllowedValues, when there is one."""
    for name, declaration in (_document(text).get("Parameters") or {}).items():
        if not isinstance(declaration, dict):
            continue
        allowed = [str(v) for v in declaration.get("AllowedValues") or []]
        current = given.get(name, str(declaration.get("Default", "")))
        others = [v for v in allowed if v != current]
        if len(allowed) > 1 and others and str(declaration.get("NoEcho", "")).lower() != "true":
            return {**given, name: others[0]}
    return None


@dataclass
class Session:
    """The API and a target account on a fresh local AWS, with resources to pass as parameters."""

    client: Any
    headers: dict[str, str]
    target_id: str
    existing: dict[str, str]


@contextmanager
def session(mode: str = "fail") -> Iterator[Session]:
    from bench.harness import _setup_target, local_service

    # Change sets are polled: at once, as the tests do; a stack event not seen within 5 s is reconciled.
    fast = {"NEXUS_POLL_MAX_SECONDS": "0", "NEXUS_EVENT_TIMEOUT_SECONDS": "5"}
    with local_service(unsupported=mode, tuning=fast) as (client, services, aws):
        token = services.auth.issue("corpus", "corpus")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        target_id = _setup_target(client, token, aws, profile=FULL_ACCESS)
        yield Session(client, headers, target_id, existing_resources(aws))


def _wait(client: Any, headers: dict[str, str], deployment_id: str, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = json.loads(
            client.http.get(f"/deployments/{deployment_id}", headers=headers).body
        )
        if (body.get("operation") or {}).get("status") in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return body
        time.sleep(0.05)
    return None


def _texts(client: Any, headers: dict[str, str], deployment_id: str, body: dict[str, Any]) -> str:
    """Everything a user reads about the deployment: its error and every event message."""
    events = json.loads(client.http.get(f"/deployments/{deployment_id}/events", headers=headers).body)
    items = events.get("items", events if isinstance(events, list) else [])
    messages = [str(item.get("message") or "") for item in items if isinstance(item, dict)]
    return json.dumps(body.get("error") or {}) + "\n" + "\n".join(messages)


def _answer_outcome(status: int) -> str | None:
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "refused"
    return None


def deploy_one(api: Session, path: Path, mode: str, index: int) -> Result:
    """Create, update and delete one template through the API; the outcome of the first step that ends."""
    client, headers, target_id = api.client, api.headers, api.target_id
    text = path.read_text(encoding="utf-8")
    name = str(path.relative_to(CORPUS))
    parameters = parameter_values(text, api.existing)
    stack = f"corpus-{mode}-{index}"
    created = client.http.post(
        "/deployments",
        headers=headers,
        body=json.dumps(
            {"target_id": target_id, "region": "us-east-1", "stack_name": stack, "template_body": text,
             "parameters": parameters, "tags": {"corpus": "1"}}
        ).encode(),
    )  # fmt: skip
    result = Result(name, mode, "deployed")
    outcome = _answer_outcome(created.status_code)
    if outcome is not None:
        result.outcome, result.step, result.detail = outcome, "create", created.body.decode()[:500]
        return result
    deployment_id = json.loads(created.body)["deployment_id"]
    update = changed_parameter(text, parameters)
    steps: list[tuple[str, str, dict[str, Any] | None]] = [
        ("create", "", None),
        ("update", "PUT", {"parameters": update} if update else {"tags": {"corpus": "2"}}),
        ("delete", "DELETE", None),
    ]
    for step, method, body in steps:
        if method:
            answer = getattr(client.http, method.lower())(
                f"/deployments/{deployment_id}", headers=headers, body=json.dumps(body or {}).encode()
            )
            outcome = _answer_outcome(answer.status_code)
            if outcome is not None:
                result.outcome, result.step, result.detail = outcome, step, answer.body.decode()[:500]
                return result
        settled = _wait(client, headers, deployment_id, OPERATION_TIMEOUT)
        if settled is None:
            result.outcome, result.step = "hung", step
            return result
        result.statuses.append(str(settled.get("status")))
        texts = _texts(client, headers, deployment_id, settled)
        if PYTHON_EXCEPTION.search(texts):
            result.outcome, result.step, result.detail = "python_exception", step, texts[:1000]
            return result
        if settled["operation"]["status"] != "SUCCEEDED":
            result.outcome, result.step = "failed", step
            result.detail = json.dumps(settled.get("error") or {})[:1000]
            return result
    return result


def run(paths: list[Path], modes: Iterable[str] = MODES) -> list[Result]:
    """Every template in every mode, on one local AWS (the mode is switched between passes)."""
    from localaws.cloudformation import StackSimulation, install

    results: list[Result] = []
    with session("fail") as api:
        for mode in modes:
            install(StackSimulation(stack_seconds=0, unsupported=mode))
            for index, path in enumerate(paths):
                results.append(deploy_one(api, path, mode, index))
    return results


def distribution(results: list[Result]) -> dict[str, Counter[str]]:
    table: dict[str, Counter[str]] = {}
    for result in results:
        table.setdefault(result.mode, Counter())[result.outcome] += 1
    return table


def report(results: list[Result], count: int, seconds: float) -> str:
    table = distribution(results)
    modes = [mode for mode in MODES if mode in table]
    lines = [
        SECTION,
        "",
        f"{count} real public templates (`bench/corpus/`, sources and licenses in its README), each deployed "
        "through the API on the local AWS as a user would: create, an update (another of a parameter's "
        "AllowedValues when the template has one, else a tag), delete; each operation waited for at most "
        f"{OPERATION_TIMEOUT:g} s. Once with `NEXUS_LOCAL_UNSUPPORTED=fail` (the default: a resource type moto "
        "does not emulate fails its stack) and once with `simulate` (such resources are checked against their "
        f"schema and simulated). `python -m bench.corpus` ({seconds:.0f} s).",
        "",
        "| outcome | " + " | ".join(f"`{mode}`" for mode in modes) + " |",
        "|---|" + "---|" * len(modes),
    ]
    labels = {
        "deployed": "deployed fully (create, update, delete)",
        "failed": "FAILED with an AWS-shaped reason (or a plain statement of what is not emulated)",
        "refused": "refused by the API (4xx, before any AWS call)",
        "hung": "hung (an operation did not settle)",
        "server_error": "5xx from the API",
        "python_exception": "a reason quoting a Python exception",
    }
    for outcome in OUTCOMES:
        lines.append(f"| {labels[outcome]} | " + " | ".join(str(table[m][outcome]) for m in modes) + " |")
    lines += ["", "Failures by first reason (fail mode, the most frequent):", ""]
    reasons = Counter(_reason_kind(r.detail) for r in results if r.mode == "fail" and r.outcome == "failed")
    lines += [f"- {count} x {reason}" for reason, count in reasons.most_common(12)]
    lines.append("")
    return "\n".join(lines)


def _reason_kind(detail: str) -> str:
    """A failure reason without its names and ids, to group alike failures."""
    try:
        message = str(json.loads(detail).get("message", detail))
    except ValueError:
        message = detail
    message = re.sub(r"\[[^\]]*\]", "[...]", message)
    message = re.sub(r"resource type \S+", "resource type X", message)
    return re.sub(r"\s+", " ", message)[:160]


def main(argv: list[str]) -> int:
    from bench.harness import local_credentials

    local_credentials()
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # failed executions log their whole state
    paths = templates()
    started = time.monotonic()
    results = run(paths)
    text = report(results, len(paths), time.monotonic() - started)
    print(text)
    for result in results:
        if result.outcome != "deployed":
            print(
                f"{result.mode:8} {result.outcome:16} {result.step:7} {result.template}: {result.detail[:300]}"
            )
    if "--no-write" not in argv:
        write_sections(text, ROOT / "BENCHMARKS.md")
    return 1 if any(r.outcome in NEVER for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
