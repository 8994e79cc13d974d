"""``nexus credentials test``: each sign-in method and each troubleshooting answer, for real.

Every test drives the CLI through Typer's runner against the in-process local AWS, where STS enforces
trust policies, external IDs, MFA, SAML signatures and expiry, and IAM simulates policies. Outputs are
scanned for key IDs and secrets.
"""

from __future__ import annotations

import json
from typing import Any

from localaws.sts import CLOCK, account_credentials, enable_virtual_mfa, totp_code
from tests.cli.conftest import (
    ADFS_READONLY_ROLE,
    ADFS_ROLE,
    EXTERNAL_ID,
    MFA_ROLE,
    OPERATOR_ACCOUNT,
    PARTIAL_ROLE,
    ROLE,
    TARGET,
    TargetAccount,
    assert_no_secrets,
    report_of,
    run,
)

CHECKS = [
    "AWS account access",
    "STS identity verification",
    "Account ID confirmation",
    "Required IAM permissions",
]


def _role_args(role: str = ROLE, external_id: str = EXTERNAL_ID) -> list[str]:
    return [
        "credentials",
        "test",
        "--role-arn",
        role,
        "--external-id",
        external_id,
        "--expect-account",
        TARGET,
    ]


def _failed(document: dict[str, Any], code: str) -> dict[str, Any]:
    failed = [c for c in document["checks"] if c["ok"] is False]
    assert failed, document
    assert failed[0]["code"] == code, failed[0]
    first: dict[str, Any] = failed[0]
    return first


def test_role_arn_method_passes_every_check(target: TargetAccount) -> None:
    result = run([*_role_args(), "--json"], env=target.operator_env())
    assert result.exit_code == 0, result.output
    document = report_of(result)
    assert [c["name"] for c in document["checks"]] == CHECKS
    assert all(c["ok"] for c in document["checks"])
    assert document["account_id"] == TARGET
    assert document["arn"].startswith(f"arn:aws:sts::{TARGET}:assumed-role/NexusDeploymentRole/")
    assert document["principal_arn"] == ROLE
    assert document["missing_actions"] == []
    assert_no_secrets(result)


def test_table_output_mirrors_the_json_checklist(target: TargetAccount) -> None:
    table = run(_role_args(), env=target.operator_env())
    assert table.exit_code == 0, table.output
    for name in CHECKS:
        assert name in table.output
    assert "All checks passed." in table.output


def test_access_keys_method_reads_the_secret_from_a_prompt(target: TargetAccount) -> None:
    env = {**target.operator_env(), "AWS_SECRET_ACCESS_KEY": None}
    args = [
        "credentials",
        "test",
        "--access-key-id",
        target.operator.key,
        "--expect-account",
        TARGET,
        "--json",
    ]
    result = run(args, env=env, stdin=target.operator.secret + "\n")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout[result.stdout.index("{") :])
    assert document["arn"] == target.operator.user_arn
    assert document["principal_arn"] == target.operator.user_arn
    assert all(c["ok"] for c in document["checks"])
    assert_no_secrets(result, target.operator.secret)


def test_profile_method_with_a_static_profile(target: TargetAccount, tmp_path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[deploy]\naws_access_key_id = {target.operator.key}\naws_secret_access_key = {target.operator.secret}\n"
    )
    env = {
        **target.operator_env(),
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }
    result = run(
        ["credentials", "test", "--profile", "deploy", "--expect-account", TARGET, "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert report_of(result)["arn"] == target.operator.user_arn
    assert_no_secrets(result, target.operator.secret)


def test_adfs_method_lists_roles_then_signs_in_with_the_chosen_one(target: TargetAccount) -> None:
    env = {**target.operator_env(), "NEXUS_ADFS_PASSWORD": "correct horse"}
    base = ["credentials", "test", "--adfs-url", target.adfs.sign_on_url, "--username", "alice"]
    listed = run([*base, "--list-roles", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [r["role_arn"] for r in report_of(listed)["roles"]] == [ADFS_ROLE, ADFS_READONLY_ROLE]

    result = run([*base, "--role", ADFS_ROLE, "--expect-account", TARGET, "--json"], env=env)
    assert result.exit_code == 0, result.output
    document = report_of(result)
    assert document["arn"].startswith(f"arn:aws:sts::{TARGET}:assumed-role/AdfsDeployer/")
    assert all(c["ok"] for c in document["checks"])
    assert target.adfs.sign_ins == ["alice", "alice"]
    assert_no_secrets(result, "correct horse")


def test_adfs_password_from_a_no_echo_prompt_and_the_role_read_only_lacks_permissions(
    target: TargetAccount,
) -> None:
    env = {**target.operator_env(), "NEXUS_ADFS_PASSWORD": None}
    args = ["credentials", "test", "--adfs-url", target.adfs.sign_on_url, "--username", "alice"]
    result = run([*args, "--role", ADFS_READONLY_ROLE], env=env, stdin="correct horse\n")
    assert result.exit_code == 1, result.output
    assert "ACCESS_DENIED" in result.output
    assert "Missing permissions:" in result.output
    assert "correct horse" not in result.output


def test_adfs_wrong_password_is_access_denied(target: TargetAccount) -> None:
    env = {**target.operator_env(), "NEXUS_ADFS_PASSWORD": "wrong"}
    args = ["credentials", "test", "--adfs-url", target.adfs.sign_on_url, "--username", "alice", "--json"]
    result = run([*args, "--role", ADFS_ROLE], env=env)
    assert result.exit_code == 1
    check = _failed(report_of(result), "ACCESS_DENIED")
    assert "Incorrect user ID or password" in check["detail"]
    assert target.adfs.sign_ins == []


def test_wrong_external_id_is_access_denied(target: TargetAccount) -> None:
    result = run([*_role_args(external_id="not-the-external-id"), "--json"], env=target.operator_env())
    assert result.exit_code == 1
    document = report_of(result)
    check = _failed(document, "ACCESS_DENIED")
    assert check["name"] == "AWS account access"
    assert "sts:ExternalId" in check["hint"]
    assert [c["ok"] for c in document["checks"][1:]] == [None, None, None]


def test_missing_permission_is_access_denied_with_the_actions_by_service(target: TargetAccount) -> None:
    result = run([*_role_args(role=PARTIAL_ROLE), "--json"], env=target.operator_env())
    assert result.exit_code == 1
    document = report_of(result)
    check = _failed(document, "ACCESS_DENIED")
    assert check["name"] == "Required IAM permissions"
    assert check["hint"]
    assert {g["service"] for g in document["missing_by_service"]} == {"ecs"}
    assert "ecs:CreateCluster" in document["missing_actions"]


def test_malformed_role_arn_is_a_usage_error_before_any_aws_call(target: TargetAccount, aws_calls) -> None:
    result = run(
        ["credentials", "test", "--role-arn", "arn:aws:iam::12345:role/x", "--external-id", EXTERNAL_ID]
    )
    assert result.exit_code == 2
    assert "arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME" in result.output
    assert aws_calls.calls == []


def test_no_method_or_two_methods_are_usage_errors(target: TargetAccount) -> None:
    assert run(["credentials", "test"]).exit_code == 2
    two = run(["credentials", "test", "--profile", "x", "--access-key-id", target.operator.key])
    assert two.exit_code == 2
    assert "not access-keys and profile" in two.output or "choose one" in two.output


def test_role_that_does_not_exist_is_invalid_role_arn(target: TargetAccount) -> None:
    # The operator is the target account's own administrator, so GetRole can tell "missing" from "refused".
    env = target.env(*account_credentials(TARGET))
    missing = f"arn:aws:iam::{TARGET}:role/NoSuchRole"
    result = run([*_role_args(role=missing), "--json"], env=env)
    assert result.exit_code == 1
    check = _failed(report_of(result), "INVALID_ROLE_ARN")
    assert "arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME" in check["hint"]


def test_role_missing_in_another_account_stays_access_denied_and_says_why(target: TargetAccount) -> None:
    missing = f"arn:aws:iam::{TARGET}:role/NoSuchRole"
    result = run([*_role_args(role=missing), "--json"], env=target.operator_env())
    check = _failed(report_of(result), "ACCESS_DENIED")
    assert f"your credentials are in account {OPERATOR_ACCOUNT}" in check["detail"]


def test_expired_session_is_session_expired(target: TargetAccount) -> None:
    sts = target.aws.account_session(TARGET).client(
        "sts", aws_access_key_id=target.operator.key, aws_secret_access_key=target.operator.secret
    )
    session = sts.get_session_token(DurationSeconds=900)["Credentials"]
    CLOCK.advance(901)
    env = {**target.operator_env(), "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"]}
    args = ["credentials", "test", "--access-key-id", session["AccessKeyId"], "--json"]
    result = run([*args, "--session-token", session["SessionToken"]], env=env)
    assert result.exit_code == 1
    check = _failed(report_of(result), "SESSION_EXPIRED")
    assert "Sign in again" in check["hint"]
    assert_no_secrets(result, session["SecretAccessKey"], session["SessionToken"])


def test_mfa_protected_role_needs_the_code(target: TargetAccount) -> None:
    iam = target.aws.account_session(TARGET).client("iam")
    serial, seed = enable_virtual_mfa(iam, "ops", "ops-phone")
    env = target.env(target.operator.key, target.operator.secret)
    without = run(
        ["credentials", "test", "--role-arn", MFA_ROLE, "--external-id", EXTERNAL_ID, "--json"], env=env
    )
    assert without.exit_code == 1
    check = _failed(report_of(without), "MFA_REQUIRED")
    assert "6-digit code" in check["hint"]

    args = ["credentials", "test", "--role-arn", MFA_ROLE, "--external-id", EXTERNAL_ID, "--json"]
    with_code = run([*args, "--mfa-serial", serial, "--mfa-code", totp_code(seed)], env=env)
    assert with_code.exit_code == 0, with_code.output
    assert all(c["ok"] for c in report_of(with_code)["checks"])
    assert_no_secrets(with_code, target.operator.secret)


def test_mfa_with_access_keys_uses_get_session_token(target: TargetAccount) -> None:
    iam = target.aws.account_session(TARGET).client("iam")
    serial, seed = enable_virtual_mfa(iam, "ops", "ops-phone")
    env = target.env(target.operator.key, target.operator.secret)
    args = ["credentials", "test", "--access-key-id", target.operator.key, "--mfa-serial", serial]
    wrong = run(
        [*args, "--mfa-code", "000000" if totp_code(seed) != "000000" else "111111", "--json"], env=env
    )
    assert wrong.exit_code == 1
    assert _failed(report_of(wrong), "MFA_REQUIRED")["name"] == "AWS account access"
    right = run([*args, "--mfa-code", totp_code(seed), "--json"], env=env)
    assert right.exit_code == 0, right.output
    assert report_of(right)["arn"] == target.operator.user_arn


def test_wrong_expected_account_fails_the_account_check(target: TargetAccount) -> None:
    args = ["credentials", "test", "--role-arn", ROLE, "--external-id", EXTERNAL_ID, "--json"]
    result = run([*args, "--expect-account", "333333333333"], env=target.operator_env())
    assert result.exit_code == 1
    document = report_of(result)
    assert _failed(document, "ACCOUNT_MISMATCH")["name"] == "Account ID confirmation"
