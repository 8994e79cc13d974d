"""``nexus tokens create`` writes the token's SHA-256 to the service table; the token it prints works."""

from __future__ import annotations

from chalicelib.composition import Services
from chalicelib.service.auth import token_hash
from localaws.environment import LocalAws
from tests.cli.conftest import run


def test_created_token_authenticates_its_tenant(local_aws: LocalAws, services: Services) -> None:
    result = run(
        ["tokens", "create", "--tenant", "acme", "--label", "first"],
        env=local_aws.host.environment(local_aws.host.api_function),
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("nxs_")
    assert services.auth.tenant_for(f"Bearer {token}") == "acme"
    table = local_aws.account_session("123456789012").resource("dynamodb").Table(local_aws.central.table_name)
    items = table.scan()["Items"]
    assert not any(token in str(item) for item in items)
    assert any(token_hash(token) in str(item) for item in items)


def test_tenant_id_is_validated_before_any_aws_call(aws_calls) -> None:
    result = run(["tokens", "create", "--tenant", "no spaces allowed"])
    assert result.exit_code == 2
    assert aws_calls.calls == []
