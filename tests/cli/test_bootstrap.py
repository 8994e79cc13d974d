"""``nexus targets bootstrap`` end to end: the API over real HTTP, the local AWS in-process.

The Chalice app is served by its local dev server (``localaws.server.ApiServer``) on a free port; the
CLI fetches the target's bootstrap template from it, deploys it into account 111111111111 with the
account administrator's keys, then asks the API to validate the target, whose service role must now be
able to assume the new role with the external ID.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

import app as app_module
from chalicelib.composition import Services
from localaws.environment import LocalAws
from localaws.server import ApiServer, free_port
from localaws.sts import account_credentials
from tests.cli.conftest import TARGET, assert_no_secrets, report_of, run


@pytest.fixture
def api(services: Services) -> Iterator[tuple[str, str]]:
    server = ApiServer(app_module.app, "127.0.0.1", free_port())
    server.start()
    try:
        yield server.url, services.auth.issue("tenant-a", "tests")
    finally:
        server.stop()


def test_bootstrap_deploys_the_role_and_the_target_validates(
    local_aws: LocalAws, api: tuple[str, str]
) -> None:
    url, token = api
    created = requests.post(
        f"{url}/targets",
        json={
            "name": "team-a",
            "account_id": TARGET,
            "role_arn": f"arn:aws:iam::{TARGET}:role/NexusDeploymentRole",
            "regions": ["us-east-1"],
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    target_id = created.json()["target_id"]
    key, secret = account_credentials(TARGET)
    env = {"AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": None, "NEXUS_API_TOKEN": token}
    args = ["targets", "bootstrap", target_id, "--access-key-id", key, "--api-url", url, "--json"]
    result = run(args, env=env)
    assert result.exit_code == 0, result.output
    document = report_of(result)
    assert document["stack_status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert document["validation"]["ok"] is True, document["validation"]
    assert document["validation"]["account_id"] == TARGET
    assert_no_secrets(result, secret, token)
    roles = local_aws.account_session(TARGET).client("iam").list_roles()["Roles"]
    assert "NexusDeploymentRole" in {r["RoleName"] for r in roles}
