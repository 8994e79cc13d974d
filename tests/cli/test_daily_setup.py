"""The everyday ``nexus`` commands that set things up, run as a user runs them (``.venv/bin/nexus``
subprocesses against a real local mode, fixtures in ``conftest``), checked by exit code and ``--json``
output: ``configure``, ``targets`` and ``local admin``, and the command line itself (version, completion,
an example in every help).

Each test uses its own names and accounts so the tests stay independent of each other's order.
"""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from tests.cli.conftest import APP, TARGET, TOKEN, Cli
from tests.support.local_mode import BIN, LocalMode

# -- configure ----------------------------------------------------------------------------------------


def test_configure_writes_a_0600_file_that_commands_use_and_the_environment_overrides(
    cli: Cli, local: LocalMode, tmp_path: Path
) -> None:
    config = tmp_path / "nexus" / "config.json"
    config.parent.mkdir()
    config.write_text("{}")
    config.chmod(0o644)  # an older, too open file: configure must close it
    base = {k: v for k, v in cli.env.items() if k != "NEXUS_API_TOKEN"}
    env = {**base, "NEXUS_CONFIG_FILE": str(config)}

    no_token = subprocess.run(
        [str(BIN / "nexus"), "targets", "list"], env=env, capture_output=True, text=True, check=False
    )
    assert no_token.returncode == 2, no_token.stderr
    assert "nexus configure" in no_token.stderr

    saved = subprocess.run(
        [str(BIN / "nexus"), "configure", "--api-url", local.api_url, "--token-stdin", "--json"],
        env=env,
        input=TOKEN + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert saved.returncode == 0, saved.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"api_url": local.api_url, "token": TOKEN}
    shown = json.loads(saved.stdout)
    assert shown["api_url_from"] == "file"
    assert shown["token_from"] == "file"
    assert TOKEN not in saved.stdout  # --show and the answer mask the token

    def nexus(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "nexus"), *args], env={**env, **extra}, capture_output=True, text=True, check=False
        )

    assert nexus("targets", "list", "--json").returncode == 0  # URL and token from the file
    wrong_url = nexus("targets", "list", NEXUS_API_URL="http://127.0.0.1:9")
    assert wrong_url.returncode == 1
    assert "API_UNREACHABLE" in wrong_url.stderr
    wrong_token = nexus("targets", "list", "--json", NEXUS_API_TOKEN="not-a-token")
    assert wrong_token.returncode == 1
    assert json.loads(wrong_token.stdout)["error"]["status"] == 401
    show = json.loads(nexus("configure", "--show", "--json", NEXUS_API_TOKEN="env-token-1234567").stdout)
    assert show["token_from"] == "env"
    assert show["api_url_from"] == "file"
    assert show["token"] == "****4567"


# -- targets and local admin ----------------------------------------------------------------------------


def test_targets_create_prints_the_external_id_trust_policy_and_next_command(cli: Cli) -> None:
    shown = cli.ok(
        "targets", "create", "--name", "team-x", "--account-id", "555555555555", "--region", "us-east-1"
    )
    target = next(t for t in cli.json("targets", "list")["items"] if t["account_id"] == "555555555555")
    assert target["external_id"] in shown.stdout
    assert '"sts:ExternalId"' in shown.stdout
    assert f"nexus targets bootstrap {target['target_id']} --profile" in shown.stdout
    assert cli.json("targets", "show", target["target_id"])["trust_policy"] == target["trust_policy"]

    not_validated = cli.run("targets", "validate", target["target_id"], "--json")
    assert not_validated.returncode == 1  # no role in that account yet
    assert json.loads(not_validated.stdout)["checks"][0]["code"] == "ACCESS_DENIED"

    updated = cli.json(
        "targets", "update", target["target_id"], "--name", "team-x2", "--region", "us-east-1",
        "--region", "eu-west-1", "--permission-profile", "cloudformation-only",
    )  # fmt: skip
    assert updated["name"] == "team-x2"
    assert updated["regions"] == ["us-east-1", "eu-west-1"]
    assert updated["permission_profile"] == "cloudformation-only"
    assert updated["external_id"] == target["external_id"]  # never changes
    assert cli.run("targets", "update", target["target_id"]).returncode == 2  # nothing to change

    denied = cli.run(
        "deploy", "--target", target["target_id"], "--region", "us-east-1", "--stack-name", "x-app",
        "--template", APP, "--json",
    )  # fmt: skip
    assert denied.returncode == 1
    failed = json.loads(denied.stdout)
    assert failed["error"]["code"] == "ACCESS_DENIED"
    assert failed["failed_resource"] is None  # no stack: the role could not be assumed
    blocked = cli.run("targets", "delete", target["target_id"], "--json")
    assert blocked.returncode == 1  # its FAILED deployment still holds it
    forgotten = cli.json("deployments", "forget", failed["deployment_id"])
    assert forgotten["status"] == "DELETED"

    cli.ok("targets", "delete", target["target_id"])
    gone = cli.run("targets", "show", target["target_id"], "--json")
    assert gone.returncode == 1
    assert json.loads(gone.stdout)["error"]["status"] == 404


def test_local_admin_keys_act_in_that_account_and_the_profile_works_with_the_aws_cli(
    cli: Cli, local: LocalMode, target_id: str
) -> None:
    exported = cli.ok("local", "admin", "666666666666").stdout
    values = dict(
        line.removeprefix("export ").split("=", 1)
        for line in exported.splitlines()
        if line.startswith("export ")
    )
    assert values["AWS_ENDPOINT_URL"] == local.aws_url
    identity = boto3.client(
        "sts",
        endpoint_url=values["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
    ).get_caller_identity()
    assert identity["Account"] == "666666666666"

    again = cli.json("local", "admin", TARGET, "--profile", "team-a-admin")
    assert again["reused"] is True  # the profile's key is still the user's: no new key
    for name in ("credentials", "config"):
        assert stat.S_IMODE((cli.home / ".aws" / name).stat().st_mode) == 0o600
    assert f"endpoint_url = {local.aws_url}" in (cli.home / ".aws" / "config").read_text()

    listed = subprocess.run(
        [str(BIN / "aws"), "--profile", "team-a-admin", "cloudformation", "list-stacks", "--output", "json"],
        env=cli.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    names = {s["StackName"] for s in json.loads(listed.stdout)["StackSummaries"]}
    assert "nexus-deployer-bootstrap" in names  # the bootstrap stack, in 111111111111

    remote = cli.run("local", "admin", TARGET, "--endpoint-url", "https://iam.amazonaws.com")
    assert remote.returncode == 2
    assert "not on this machine" in remote.stderr


# -- the command line itself -----------------------------------------------------------------------------


def test_version_completion_and_an_example_in_every_help(cli: Cli) -> None:
    import typer
    from typer.testing import CliRunner

    from nexus_cli.main import app

    assert cli.ok("--version").stdout.startswith("nexus ")
    completed = cli.ok(env={"_NEXUS_COMPLETE": "complete_bash", "COMP_WORDS": "nexus dep", "COMP_CWORD": "1"})
    assert completed.stdout.split() == ["deploy", "deployments"]

    def commands(group: Any, path: list[str]) -> Iterator[list[str]]:
        if hasattr(group, "commands"):  # a group (typer vendors its own click)
            for name, sub in group.commands.items():
                yield from commands(sub, [*path, name])
        else:
            yield path

    every = list(commands(typer.main.get_command(app), []))
    assert len(every) == 28  # 3 top-level commands, 25 in groups
    runner = CliRunner()
    for path in every:
        helped = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert helped.exit_code == 0, path
        assert "Example" in helped.stdout, path
        assert "nexus " + path[0] in helped.stdout.split("Example")[1], path
