"""The everyday ``nexus`` commands that deploy, run as a user runs them (``.venv/bin/nexus``
subprocesses against a real local mode, fixtures in ``conftest``), checked by exit code and ``--json``
output: ``deploy`` (live view, Ctrl-C, ``--plan`` and ``apply``, failures, usage errors), ``deployments``
(list, events, delete) and ``rollouts``.

Each test deploys its own stack names so the tests stay independent of each other's order.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from nexus_cli.api import ApiClient
from nexus_cli.live import EventCursor
from tests.cli.conftest import APP, TOKEN, Cli
from tests.support.local_mode import BIN, ROOT, LocalMode
from tests.support.polling import until

BROKEN = str(ROOT / "examples" / "broken-stack.json")


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


def _sigint_as_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_watching_not_the_deployment(cli: Cli, target_id: str) -> None:
    args = [
        str(BIN / "nexus"), "deploy", "--target", target_id, "--region", "us-east-1",
        "--stack-name", "daily-interrupted", "--template", APP,
    ]  # fmt: skip
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.env,
        cwd=ROOT,
        # As a terminal's Ctrl-C finds it, whoever started the tests: a shell's background job (`make
        # test &`) ignores SIGINT, and its children inherit that, so Python would never see the signal.
        preexec_fn=_sigint_as_default,
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
