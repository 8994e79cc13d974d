"""The demo's calls: the public HTTP API as a portal calls it (``Api``, and waiting for a deployment
or a rollout to settle), and a target account's administrator acting in the embedded AWS
(``AccountAdmin``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from localaws.demo.base import REGION, ROLE_NAME, ROLLOUT_ENDED, SETTLED, expect

# -- the public HTTP API, as a portal calls it ------------------------------------------------------


@dataclass(frozen=True)
class Api:
    base_url: str
    token: str

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())  # what a portal sends, so a retry is safe
        data = json.dumps(body).encode() if body is not None else None
        url = self.base_url + path
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own http:// URL
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None, *, status: int) -> Any:
        got, answer = self.call(method, path, body)
        expect(got == status, f"{method} {path} answered {got}, expected {status}: {answer}")
        return answer


# -- a target account's administrator ---------------------------------------------------------------


@dataclass(frozen=True)
class AccountAdmin:
    """Acts in one account of the embedded AWS, as that account's administrator."""

    aws_url: str
    account_id: str

    def client(self, service: str) -> Any:
        import boto3

        client = boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.aws_url,
            region_name=REGION,
            aws_access_key_id="local-admin",
            aws_secret_access_key="local-admin",  # the embedded AWS checks no signature
        )

        def pick_account(request: Any, **kwargs: Any) -> None:
            request.headers["x-moto-account-id"] = self.account_id

        client.meta.events.register("before-sign.*.*", pick_account)
        return client

    def create_role(self, trust_policy: Mapping[str, Any]) -> str:
        iam = self.client("iam")
        arn: str = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust_policy))[
            "Role"
        ]["Arn"]
        return arn

    def deploy_bootstrap(self, template: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]:
        """Create the bootstrap stack, wait for CREATE_COMPLETE, return its outputs."""
        self.start_bootstrap(template)
        return self.wait_bootstrap(timeout)

    def start_bootstrap(self, template: Mapping[str, Any]) -> None:
        self.client("cloudformation").create_stack(
            StackName="nexus-bootstrap",
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )

    def wait_bootstrap(self, timeout: float = 60.0) -> dict[str, str]:
        cfn = self.client("cloudformation")
        deadline = time.monotonic() + timeout
        while True:
            stack = cfn.describe_stacks(StackName="nexus-bootstrap")["Stacks"][0]
            if stack["StackStatus"] != "CREATE_IN_PROGRESS":
                break
            expect(time.monotonic() < deadline, f"the bootstrap stack is still {stack['StackStatus']}")
            time.sleep(0.25)
        expect(stack["StackStatus"] == "CREATE_COMPLETE", f"the bootstrap stack ended {stack['StackStatus']}")
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def stack(self, name: str) -> tuple[str, dict[str, str]]:
        """One stack's status and outputs (DescribeStacks); ("", {}) when the account has none of that name."""
        found = [
            s for s in self.client("cloudformation").describe_stacks()["Stacks"] if s["StackName"] == name
        ]
        live = [s for s in found if s["StackStatus"] != "DELETE_COMPLETE"]
        if not live:
            return "", {}
        return live[0]["StackStatus"], {o["OutputKey"]: o["OutputValue"] for o in live[0].get("Outputs", [])}

    def stacks(self) -> dict[str, str]:
        """Live stacks in the account's demo region, name -> status."""
        described = self.client("cloudformation").describe_stacks()["Stacks"]
        return {s["StackName"]: s["StackStatus"] for s in described if s["StackStatus"] != "DELETE_COMPLETE"}


def wait_deployment(api: Api, deployment_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        deployment: dict[str, Any] = api.ok("GET", f"/deployments/{deployment_id}", status=200)
        if deployment["operation"]["status"] in SETTLED:
            return deployment
        expect(time.monotonic() < deadline, f"{deployment_id}: no result after {timeout:.0f} s")
        time.sleep(0.25)


def wait_rollout(api: Api, rollout_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        rollout: dict[str, Any] = api.ok("GET", f"/rollouts/{rollout_id}", status=200)
        if rollout["status"] in ROLLOUT_ENDED:
            return rollout
        expect(time.monotonic() < deadline, f"{rollout_id}: still {rollout['status']} after {timeout:.0f} s")
        time.sleep(0.25)


def target_body(name: str, account: str) -> dict[str, Any]:
    return {
        "name": name,
        "account_id": account,
        "role_arn": f"arn:aws:iam::{account}:role/{ROLE_NAME}",
        "regions": [REGION],
    }
