"""The everyday ``nexus`` commands, run as a user runs them: ``.venv/bin/nexus`` subprocesses against a
real local mode (``python -m localaws.run`` on free ports), checked by exit code and ``--json`` output.

One local mode serves the module. Target account 111111111111 is set up once, the way the README
does it: ``targets create``, ``local admin --profile``, ``targets bootstrap --profile``. Each test
deploys its own stack names so the tests stay independent of each other's order.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from nexus_cli.api import ApiClient
from nexus_cli.live import EventCursor
from tests.support.local_mode import BIN, ROOT, LocalMode, clean_env, local_mode
from tests.support.polling import until

TOKEN = "nxs_cli_daily_test_token"
TARGET = "111111111111"
APP = str(ROOT / "examples" / "app-stack.json")
BROKEN = str(ROOT / "examples" / "broken-stack.json")


@dataclass
class Cli:
    env: dict[str, str]
    home: Path
    calls: list[list[str]] = field(default_factory=list)

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        return subprocess.run(
            [str(BIN / "nexus"), *args],
            input=stdin,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, (
            f"nexus {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kwargs).stdout)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    with local_mode(TOKEN, env=clean_env(NEXUS_LOCAL_STACK_SECONDS="1")) as running:
        yield running


@pytest.fixture(scope="module")
def cli(local: LocalMode, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("home")
    env = clean_env(
        HOME=str(home),
        NEXUS_PORT=str(local.api_port),
        NEXUS_AWS_PORT=str(local.aws_port),
        NEXUS_API_TOKEN=TOKEN,
    )
    return Cli(env, home)


@pytest.fixture(scope="module")
def target_id(cli: Cli) -> str:
    """Account 111111111111 registered and bootstrapped by its local admin, as in the README."""
    target = cli.json(
        "targets", "create", "--name", "team-a", "--account-id", TARGET, "--region", "us-east-1"
    )
    cli.ok("local", "admin", TARGET, "--profile", "team-a-admin")
    report = cli.json("targets", "bootstrap", target["target_id"], "--profile", "team-a-admin")
    assert report["ok"] is True, report
    return str(target["target_id"])


def settle(cli: Cli, deployment_id: str) -> dict[str, Any]:
    def shown() -> dict[str, Any]:
        deployment: dict[str, Any] = cli.json("deployments", "show", deployment_id)
        return deployment

    return until(
        shown,
        ready=lambda deployment: deployment["operation"]["status"] not in ("PENDING", "IN_PROGRESS"),
        timeout=60,
        interval=0.3,
        what=f"deployment {deployment_id} to settle",
    )


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


# -- deploy, plan, apply, failures -------------------------------------------------------------------------


def test_deploy_follows_live_events_to_active_and_prints_the_outputs(cli: Cli, target_id: str) -> None:
    shown = cli.ok(
        "deploy", "--target", target_id, "--region", "us-east-1", "--stack-name", "daily-app",
        "--template", APP, "--parameter", "Environment=staging", "--tag", "team=a",
    )  # fmt: skip
    lines = shown.stdout.splitlines()
    for resource in ("ArtifactBucket", "WorkQueue", "StateTable"):
        assert any(resource in line and "CREATE_COMPLETE" in line for line in lines), shown.stdout
    assert any("3/3]" in line for line in lines)  # the progress: 3 of the template's 3 resources
    assert "ACTIVE" in shown.stdout
    outputs = shown.stdout.split("Outputs:")[1]
    assert "Environment" in outputs
    assert "staging" in outputs

    deployment = cli.json("deployments", "list", "--target", target_id)["items"]
    mine = next(d for d in deployment if d["stack_name"] == "daily-app")
    assert mine["status"] == "ACTIVE"
    assert mine["tags"] == {"team": "a"}

    again = cli.json(
        "deploy", "--target", target_id, "--region", "us-east-1", "--stack-name", "daily-app",
        "--parameter", "Environment=prod",
    )  # fmt: skip
    assert again["deployment_id"] == mine["deployment_id"]  # the same stack: an update, not a create
    assert again["operation"]["action"] == "update"
    assert again["status"] == "ACTIVE"
    assert again["outputs"]["Environment"] == "prod"
    assert again["failed_resource"] is None


def test_deploy_on_a_terminal_draws_the_live_view(cli: Cli, target_id: str) -> None:
    args = [
        str(BIN / "nexus"), "deploy", "--target", target_id, "--region", "us-east-1",
        "--stack-name", "daily-tty", "--template", APP,
    ]  # fmt: skip
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        args, stdin=follower, stdout=follower, stderr=follower, env={**cli.env, "COLUMNS": "120"}, cwd=ROOT
    )
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=10) == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert "\x1b[" in text  # drawn with terminal control sequences, not plain lines
    assert "3/3 resources" in text
    assert "Outputs:" in text


def test_ctrl_c_stops_the_watching_not_the_deployment(cli: Cli, target_id: str) -> None:
    args = [
        str(BIN / "nexus"), "deploy", "--target", target_id, "--region", "us-east-1",
        "--stack-name", "daily-interrupted", "--template", APP,
    ]  # fmt: skip
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env, cwd=ROOT
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # the operation's first event: it is being watched
    assert "ACCEPTED" in first, first
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    deployment_id = stderr.split("nexus deployments events ")[1].split()[0]
    assert deployment_id.startswith("dep-"), stderr
    followed = cli.run("deployments", "events", deployment_id, "--follow", "--json", timeout=90)
    assert followed.returncode == 0  # the deployment went on to ACTIVE without the watcher
    assert json.loads(followed.stdout.splitlines()[-1])["status"] == "SUCCEEDED"


def test_plan_shows_the_change_table_and_apply_runs_exactly_it(
    cli: Cli, target_id: str, tmp_path: Path
) -> None:
    base = ["--target", target_id, "--region", "us-east-1", "--stack-name", "daily-plan"]
    parameters = tmp_path / "parameters.json"  # the AWS CLI's create-stack format
    parameters.write_text(json.dumps([{"ParameterKey": "Environment", "ParameterValue": "dev"}]))
    created = cli.json("deploy", *base, "--template", APP, "--parameters-file", str(parameters))
    assert created["parameters"] == {"Environment": "dev"}
    assert created["status"] == "ACTIVE"

    planned = cli.ok("deploy", *base, "--template", APP, "--parameter", "Environment=prod", "--plan")
    assert "Modify" in planned.stdout
    assert "WorkQueue" in planned.stdout
    apply_line = next(line for line in planned.stdout.splitlines() if "nexus apply" in line)
    config_hash = apply_line.split("--config-hash ")[1].strip()
    deployment = cli.json("deployments", "show", created["deployment_id"])
    assert deployment["operation"]["status"] == "PLANNED"
    assert deployment["outputs"]["Environment"] == "dev"  # nothing applied yet

    stale = cli.run("apply", created["deployment_id"], "--config-hash", "0" * 64, "--json")
    assert stale.returncode == 1
    assert json.loads(stale.stdout)["error"]["code"] == "PLAN_STALE"

    applied = cli.json("apply", created["deployment_id"], "--config-hash", config_hash)
    assert applied["status"] == "ACTIVE"
    assert applied["outputs"]["Environment"] == "prod"
    again = cli.run("apply", created["deployment_id"], "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["error"]["code"] == "NO_PLAN"


def test_a_failed_deploy_exits_1_with_the_resource_the_reason_and_the_hint(cli: Cli, target_id: str) -> None:
    base = ["deploy", "--target", target_id, "--region", "us-east-1", "--template", BROKEN]
    shown = cli.run(*base, "--stack-name", "daily-broken")
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert "resource: Subnet (CREATE_FAILED)" in shown.stdout
    assert "VpcID vpc-0123456789abcdef0 does not exist" in shown.stdout.split("reason:")[1]
    assert "hint:" in shown.stdout

    as_json = cli.run(*base, "--stack-name", "daily-broken-json", "--json")
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["status"] == "FAILED"
    assert document["failed_resource"]["resource"] == "Subnet"
    assert document["failed_resource"]["status"] == "CREATE_FAILED"
    assert document["error"]["code"] == "STACK_CREATE_FAILED"
    assert document["error"]["hint"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["deploy", "--region", "us-east-1", "--stack-name", "s", "--template", APP], "--target"),
        (["deploy", "--target", "tgt-x", "--region", "us-east-1", "--stack-name", "s", "--template", "no-such.json"], "no-such.json"),
        (["deploy", "--target", "tgt-x", "--region", "us-east-1", "--stack-name", "s", "--template", APP, "--parameter", "novalue"], "KEY=VALUE"),
        (["deploy", "--target", "tgt-x", "--region", "us-east-1", "--stack-name", "s"], "--template"),
        (["rollouts", "create", "--stack-name", "s", "--template", APP, "--target", "tgt-x", "--max-concurrent", "lots"], "percentage"),
        (["targets", "create", "--name", "n", "--account-id", "111111111111"], "--region"),
        (["local", "admin", "12345"], "12 digits"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_before_any_api_call(cli: Cli, args: list[str], says: str) -> None:
    # The API URL points at nothing: a usage error must be found before any call (else: exit 1, unreachable).
    result = cli.run(*args, env={"NEXUS_API_URL": "http://127.0.0.1:9"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr


def test_a_request_the_api_refuses_as_invalid_exits_2(cli: Cli, target_id: str) -> None:
    result = cli.run(
        "deploy",
        "--target",
        target_id,
        "--region",
        "mars-north-1",
        "--stack-name",
        "s",
        "--template",
        APP,
        "--json",
    )
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["status"] == 422


# -- deployments -----------------------------------------------------------------------------------------


def test_deployments_list_filters(cli: Cli, target_id: str) -> None:
    other = cli.json(
        "targets", "create", "--name", "team-f", "--account-id", "777777777777", "--region", "us-east-1"
    )
    cli.ok("local", "admin", "777777777777", "--profile", "team-f-admin")
    cli.ok("targets", "bootstrap", other["target_id"], "--profile", "team-f-admin", "--json")
    cli.json(
        "deploy",
        "--target",
        other["target_id"],
        "--region",
        "us-east-1",
        "--stack-name",
        "f-app",
        "--template",
        APP,
    )
    failed = cli.run(
        "deploy", "--target", other["target_id"], "--region", "us-east-1", "--stack-name", "f-broken",
        "--template", BROKEN, "--json",
    )  # fmt: skip
    assert failed.returncode == 1

    cli.json(
        "deploy", "--target", target_id, "--region", "us-east-1", "--stack-name", "list-a", "--template", APP
    )
    of_other = cli.json("deployments", "list", "--target", other["target_id"])["items"]
    assert {d["stack_name"] for d in of_other} == {"f-app", "f-broken"}
    failed_ones = cli.json("deployments", "list", "--target", other["target_id"], "--status", "FAILED")[
        "items"
    ]
    assert [d["stack_name"] for d in failed_ones] == ["f-broken"]
    in_account = cli.json("deployments", "list", "--account", "777777777777")["items"]
    assert {d["stack_name"] for d in in_account} == {"f-app", "f-broken"}
    one = cli.json("deployments", "list", "--region", "us-east-1", "--stack-name", "f-app")["items"]
    assert [(d["account_id"], d["stack_name"]) for d in one] == [("777777777777", "f-app")]
    assert (
        cli.json("deployments", "list", "--account", "777777777777", "--region", "eu-west-1")["items"] == []
    )
    active = cli.run("deployments", "forget", one[0]["deployment_id"], "--json")
    assert active.returncode == 1  # its stack exists: delete it instead
    assert json.loads(active.stdout)["error"]["code"] == "STACK_STILL_EXISTS"
    everything = cli.json("deployments", "list")["items"]
    assert {d["target_id"] for d in everything} >= {target_id, other["target_id"]}
    assert len(cli.json("deployments", "list", "--limit", "1")["items"]) == 1
    bad = cli.run("deployments", "list", "--status", "SLEEPING", "--json")
    assert bad.returncode == 2  # the API refuses an unknown status (422)


def test_events_follow_ends_when_the_operation_ends_and_prints_each_event_once(
    cli: Cli, target_id: str
) -> None:
    started = cli.json(
        "deploy", "--target", target_id, "--region", "us-east-1", "--stack-name", "daily-follow",
        "--template", APP, "--no-wait",
    )  # fmt: skip
    assert started["operation"]["status"] in ("PENDING", "IN_PROGRESS")
    began = time.monotonic()
    followed = cli.run("deployments", "events", started["deployment_id"], "--follow", "--json", timeout=90)
    assert followed.returncode == 0, followed.stderr
    assert time.monotonic() - began < 60
    streamed = [json.loads(line) for line in followed.stdout.splitlines()]
    assert streamed[-1]["source"] == "orchestrator"
    assert streamed[-1]["status"] == "SUCCEEDED"
    everything = cli.json("deployments", "events", started["deployment_id"])["items"]
    assert streamed == everything  # every event, in order, none twice

    plain = cli.ok("deployments", "events", started["deployment_id"], "--follow")
    assert plain.stdout.count("CREATE_COMPLETE") >= 4  # the settled operation: its events, then the end
    assert "ACTIVE" in plain.stdout
    assert "Outputs:" in plain.stdout


def test_the_event_cursor_reads_only_new_events_page_by_page(
    local: LocalMode, cli: Cli, target_id: str
) -> None:
    """Against the real API with pages of 2: the cursor's token moves, and nothing repeats or is lost."""
    started = cli.json(
        "deploy", "--target", target_id, "--region", "us-east-1", "--stack-name", "daily-cursor",
        "--template", APP, "--no-wait",
    )  # fmt: skip
    with ApiClient(local.api_url, TOKEN) as api:
        cursor = EventCursor(api, started["deployment_id"], page_size=2)
        seen: list[dict[str, Any]] = []
        polls = 0
        while True:
            operation = api.get(f"/deployments/{started['deployment_id']}")["operation"]["status"]
            seen += cursor.fresh()
            polls += 1
            if operation not in ("PENDING", "IN_PROGRESS"):
                break
            time.sleep(0.2)
        assert cursor.fresh() == []
        everything = list(api.pages(f"/deployments/{started['deployment_id']}/events", limit=100))
    assert polls > 1
    assert seen == everything
    assert len(seen) > 2  # more than one page: the token moved


def test_delete_follows_to_deleted(cli: Cli, target_id: str) -> None:
    created = cli.json(
        "deploy",
        "--target",
        target_id,
        "--region",
        "us-east-1",
        "--stack-name",
        "daily-delete",
        "--template",
        APP,
    )
    deleted = cli.json("deployments", "delete", created["deployment_id"])
    assert deleted["status"] == "DELETED"
    assert deleted["operation"]["action"] == "delete"
    cancel = cli.run("deployments", "cancel", created["deployment_id"], "--json")
    assert cancel.returncode == 1  # nothing runs: the API refuses (409)


# -- rollouts ----------------------------------------------------------------------------------------------


def test_rollouts_create_watch_show(cli: Cli, target_id: str) -> None:
    targets = [target_id]
    for account in ("333333333333", "444444444444"):
        created = cli.json(
            "targets",
            "create",
            "--name",
            f"fleet-{account[:1]}",
            "--account-id",
            account,
            "--region",
            "us-east-1",
        )
        cli.ok("local", "admin", account, "--profile", f"admin-{account}")
        cli.ok("targets", "bootstrap", created["target_id"], "--profile", f"admin-{account}", "--json")
        targets.append(created["target_id"])
    flags = [arg for t in targets for arg in ("--target", t)]
    started = cli.json(
        "rollouts", "create", "--stack-name", "daily-fleet", "--template", APP, "--parameter", "Environment=prod",
        *flags, "--canary", "1", "--max-concurrent", "2", "--no-wait",
    )  # fmt: skip
    rollout_id = started["rollout_id"]
    assert [w["name"] for w in started["waves"]] == ["canary", "all"]

    watched = cli.ok("rollouts", "watch", rollout_id, timeout=120)
    lines = watched.stdout.splitlines()
    for account in ("111111111111", "333333333333", "444444444444"):
        assert any(f"{account}/us-east-1" in line and "SUCCEEDED" in line for line in lines), watched.stdout
    canary_done = next(i for i, line in enumerate(lines) if "(canary) SUCCEEDED" in line)
    others_start = [i for i, line in enumerate(lines) if "(all) IN_PROGRESS" in line]
    assert others_start
    assert min(others_start) >= canary_done
    assert any(line.startswith(f"Rollout {rollout_id}") and "SUCCEEDED" in line for line in lines)

    listed = cli.json("rollouts", "list", "--stack-name", "daily-fleet")["items"]
    assert [r["rollout_id"] for r in listed] == [rollout_id]
    assert listed[0]["status"] == "SUCCEEDED"
    assert [r["rollout_id"] for r in cli.json("rollouts", "list", "--target", targets[1])["items"]] == [
        rollout_id
    ]
    assert cli.json("rollouts", "list", "--status", "FAILED", "--stack-name", "daily-fleet")["items"] == []
    shown = cli.json("rollouts", "show", rollout_id)
    assert shown["status"] == "SUCCEEDED"
    ended = cli.run("rollouts", "pause", rollout_id)  # an ended rollout cannot be paused
    assert ended.returncode == 1
    assert "ROLLOUT_NOT_RUNNING" in ended.stderr + ended.stdout
    assert sorted(i["account_id"] for i in shown["items"]) == ["111111111111", "333333333333", "444444444444"]
    assert {i["status"] for i in shown["items"]} == {"SUCCEEDED"}

    planned = cli.json(
        "rollouts", "create", "--stack-name", "daily-fleet", "--template", APP, "--parameter", "Environment=dev",
        *flags, "--plan",
    )  # fmt: skip
    assert planned["status"] == "PLANNED"
    applied = cli.json("rollouts", "apply", planned["rollout_id"], timeout=120)
    assert applied["status"] == "SUCCEEDED"
    failed_only = cli.json("rollouts", "show", planned["rollout_id"], "--status", "FAILED")
    assert failed_only["items"] == []


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
