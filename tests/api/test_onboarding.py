"""The console's onboarding routes through Chalice's test client against the local AWS.

``POST /credentials/test``, ``POST /saml/roles``, ``POST`` and ``GET /targets/{id}/bootstrap``: typed
credentials used once, checked against the target's account, never answered back; every answer is held
to its route's declared contract by ``call()``. ADFS through a real IdP is the browser journey's
(tests/console/test_connect_journeys.py); here the SSRF guard's refusals are checked at the API.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from localaws.sts import CLOCK, enable_virtual_mfa, totp_code
from tests.conftest import OTHER_ACCOUNT, TARGET_ACCOUNT, call, register_target, stacks_in

EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# AWS's "force MFA" example policy, shortened: everything is allowed, and everything but managing one's
# own MFA is denied to a request made without MFA (long-term keys carry no aws:MultiFactorAuthPresent).
FORCE_MFA = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            "Sid": "DenyAllExceptListedIfNoMFA",
            "Effect": "Deny",
            "NotAction": ["iam:GetUser", "iam:ListMFADevices", "iam:ResyncMFADevice", "sts:GetSessionToken"],
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
    ],
}
MISSING_ID = "tgt-000000000000000000000000"


def user_keys(local_aws: Any, account_id: str, user: str, policy: dict[str, Any]) -> dict[str, str]:
    """Access keys of a new IAM user of ``account_id`` with ``policy``, as the console's fields take them."""
    iam = local_aws.account_session(account_id).client("iam")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="keys", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def admin_keys(local_aws: Any, account_id: str) -> dict[str, str]:
    """What an administrator types: keys allowed everything in ``account_id``."""
    return user_keys(local_aws, account_id, "admin", EVERYTHING)


def credentials_test(client: Any, tenant: Any, keys: dict[str, str], target_id: str) -> dict[str, Any]:
    """POST /credentials/test with typed keys for a target: the checklist (always 200)."""
    response = call(
        client, "POST", "/credentials/test", tenant, {"access_keys": keys, "target_id": target_id}
    )
    assert response.status_code == 200, response.body
    assert keys["secret_access_key"] not in response.body.decode()
    return answer(response)


def answer(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.body)
    return body


def test_typed_keys_pass_every_check_and_are_never_answered(client, tenant, local_aws) -> None:
    target = register_target(client, tenant, local_aws, with_role=False)
    keys = admin_keys(local_aws, TARGET_ACCOUNT)
    report = credentials_test(client, tenant, keys, target["target_id"])
    assert report["ok"] is True
    assert report["account_id"] == TARGET_ACCOUNT
    assert report["arn"] == f"arn:aws:iam::{TARGET_ACCOUNT}:user/admin"
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [
        ("account_access", True),
        ("caller_identity", True),
        ("account_match", True),
        ("bootstrap_permissions", True),
    ]


def test_keys_of_another_account_fail_the_account_check(client, tenant, local_aws) -> None:
    target = register_target(client, tenant, local_aws, with_role=False)
    keys = admin_keys(local_aws, OTHER_ACCOUNT)
    tested = credentials_test(client, tenant, keys, target["target_id"])
    assert tested["ok"] is False
    mismatch = next(c for c in tested["checks"] if c["name"] == "account_match")
    assert (mismatch["ok"], mismatch["code"]) == (False, "ACCOUNT_MISMATCH")
    assert OTHER_ACCOUNT in mismatch["detail"]

    refused = call(client, "POST", f"/targets/{target['target_id']}/bootstrap", tenant, {"access_keys": keys})
    assert refused.status_code == 409, refused.body
    assert answer(refused)["error"]["code"] == "ACCOUNT_MISMATCH"
    assert stacks_in(local_aws, OTHER_ACCOUNT) == []
    assert stacks_in(local_aws, TARGET_ACCOUNT) == []


def test_a_user_missing_bootstrap_actions_is_told_which_by_service(client, tenant, local_aws) -> None:
    target = register_target(client, tenant, local_aws, with_role=False)
    reader = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "iam:Simulate*"], "Resource": "*"}
        ],
    }
    keys = user_keys(local_aws, TARGET_ACCOUNT, "reader", reader)
    report = credentials_test(client, tenant, keys, target["target_id"])
    assert report["ok"] is False
    permissions = report["checks"][-1]
    assert (permissions["name"], permissions["ok"], permissions["code"]) == (
        "bootstrap_permissions",
        False,
        "MISSING_PERMISSIONS",
    )
    assert [group["service"] for group in report["missing_actions"]] == ["cloudformation", "iam", "events"]


def test_a_user_that_must_use_mfa_is_told_so_then_passes_with_the_code(client, tenant, local_aws) -> None:
    target = register_target(client, tenant, local_aws, with_role=False)
    keys = user_keys(local_aws, TARGET_ACCOUNT, "deployer", FORCE_MFA)
    serial, seed = enable_virtual_mfa(
        local_aws.account_session(TARGET_ACCOUNT).client("iam"), "deployer", "phone"
    )

    # Without MFA the policy denies the simulation itself, in words that never name MFA: nothing says
    # MFA would help, so the refusal keeps its code and its hint names the user's device.
    without = credentials_test(client, tenant, keys, target["target_id"])
    assert [(c["name"], c["ok"], c["code"]) for c in without["checks"]] == [
        ("account_access", True, None),
        ("caller_identity", True, None),
        ("account_match", True, None),
        ("bootstrap_permissions", False, "ACCESS_DENIED"),
    ]
    refused = without["checks"][-1]
    assert "explicit deny" in refused["detail"]
    assert "MFA" not in refused["detail"].replace(serial, "")
    assert f"Enter the MFA device {serial}" in refused["hint"]

    # With the code, GetSessionToken's session is simulated with aws:MultiFactorAuthPresent: allowed.
    code = totp_code(seed)
    with_mfa = credentials_test(
        client, tenant, {**keys, "mfa_serial": serial, "mfa_code": code}, target["target_id"]
    )
    assert with_mfa["ok"] is True, with_mfa
    assert "MFA session from GetSessionToken" in with_mfa["checks"][0]["detail"]
    # AWS accepts each code once: the same code again is refused, and the hint says to wait for the next.
    again = credentials_test(
        client, tenant, {**keys, "mfa_serial": serial, "mfa_code": code}, target["target_id"]
    )
    assert (again["checks"][0]["ok"], again["checks"][0]["code"]) == (False, "MFA_REQUIRED")
    assert "AWS accepts each code once" in again["checks"][0]["hint"]
    assert code not in json.dumps(again)
    following = totp_code(seed, CLOCK.time() + 30)
    assert credentials_test(
        client, tenant, {**keys, "mfa_serial": serial, "mfa_code": following}, target["target_id"]
    )["ok"]


# Everything allowed but iam:CreateRole, which is denied unless MFA is present; SimulatePrincipalPolicy
# itself is allowed, so the refused actions can be simulated again as if with MFA.
CREATE_ROLE_NEEDS_MFA = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "iam:CreateRole",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
    ],
}
NO_CREATE_ROLE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "NotAction": "iam:CreateRole", "Resource": "*"}],
}


@pytest.mark.parametrize(
    ("policy", "code"), [(CREATE_ROLE_NEEDS_MFA, "MFA_REQUIRED"), (NO_CREATE_ROLE, "MISSING_PERMISSIONS")]
)
def test_refused_actions_are_called_an_mfa_matter_only_when_mfa_would_allow_them(
    client: Any, tenant: Any, local_aws: Any, policy: dict[str, Any], code: str
) -> None:
    """A user with an MFA device, refused iam:CreateRole: MFA_REQUIRED only when the same simulation
    with aws:MultiFactorAuthPresent allows it; a policy that simply lacks the action stays
    MISSING_PERMISSIONS, with its own hint."""
    target = register_target(client, tenant, local_aws, with_role=False)
    user = f"refused-{code.lower().replace('_', '-')}"
    keys = user_keys(local_aws, TARGET_ACCOUNT, user, policy)
    serial, _ = enable_virtual_mfa(local_aws.account_session(TARGET_ACCOUNT).client("iam"), user, "phone")
    refused = credentials_test(client, tenant, keys, target["target_id"])["checks"][-1]
    assert (refused["name"], refused["ok"], refused["code"]) == ("bootstrap_permissions", False, code)
    assert "1 of" in refused["detail"]  # iam:CreateRole alone
    if code == "MFA_REQUIRED":
        assert f"Enter the MFA device {serial}" in refused["hint"]
    else:
        assert "Attach a policy that allows the missing actions" in refused["hint"]
        assert serial not in refused["hint"]


def test_a_denied_user_without_an_mfa_device_is_not_told_to_use_one(client, tenant, local_aws) -> None:
    target = register_target(client, tenant, local_aws, with_role=False)
    keys = user_keys(local_aws, TARGET_ACCOUNT, "no-device", FORCE_MFA)
    report = credentials_test(client, tenant, keys, target["target_id"])
    refused = report["checks"][-1]
    assert (refused["name"], refused["ok"], refused["code"]) == (
        "bootstrap_permissions",
        False,
        "ACCESS_DENIED",
    )
    assert "MFA device" not in (refused["hint"] or "")


def test_bootstrap_with_typed_keys_deploys_the_role_then_the_role_reads_it(client, tenant, local_aws) -> None:
    target = register_target(client, tenant, local_aws, with_role=False)
    tid = target["target_id"]
    waiting = answer(call(client, "GET", f"/targets/{tid}/bootstrap", tenant))
    assert [s["status"] for s in waiting["stacks"]] == ["WAITING_FOR_ROLE", "WAITING_FOR_ROLE"]
    assert waiting["settled"] is False

    keys = admin_keys(local_aws, TARGET_ACCOUNT)
    response = call(client, "POST", f"/targets/{tid}/bootstrap", tenant, {"access_keys": keys})
    assert response.status_code == 200, response.body
    report = answer(response)
    assert (report["ok"], report["settled"], report["error"]) == (True, True, None)
    assert [(s["region"], s["status"]) for s in report["stacks"]] == [
        ("us-east-1", "CREATE_COMPLETE"),
        ("eu-west-1", "CREATE_COMPLETE"),
    ]
    assert keys["secret_access_key"] not in response.body.decode()

    followed = answer(call(client, "GET", f"/targets/{tid}/bootstrap", tenant))
    assert [(s["stack_name"], s["status"]) for s in followed["stacks"]] == [
        ("nexus-deployer-bootstrap", "CREATE_COMPLETE"),
        ("nexus-deployer-bootstrap-events", "CREATE_COMPLETE"),
    ]
    validated = answer(call(client, "POST", f"/targets/{tid}/validate", tenant))
    assert validated["ok"] is True, validated["checks"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        # not https, or a host off the operator's allow-list (empty here): refused before any request
        ({"adfs_url": "http://adfs.example.com/adfs/ls/", "username": "u", "password": "p"}, 422, None),
        (
            {"adfs_url": "https://adfs.example.com/adfs/ls/", "username": "u", "password": "p"},
            400,
            "ADFS_URL_REFUSED",
        ),
        (
            {"adfs_url": "https://169.254.169.254/latest/", "username": "u", "password": "p"},
            400,
            "ADFS_URL_REFUSED",
        ),
        # malformed: an unclosed IPv6 bracket, a bad port, text that is not a URL on the wire
        ({"adfs_url": "https://[adfs.example.com/", "username": "u", "password": "p"}, 422, None),
        ({"adfs_url": "https://adfs.example.com:99999/", "username": "u", "password": "p"}, 422, None),
        ({"adfs_url": "https://adfs.example.com/é", "username": "u", "password": "p"}, 422, None),
        ({"adfs_url": "https://adfs.example.com/a b", "username": "u", "password": "p"}, 422, None),
    ],
)
def test_fetch_roles_refuses_urls_off_the_allow_list(client, tenant, body, status, code) -> None:
    response = call(client, "POST", "/saml/roles", tenant, body)
    assert response.status_code == status, response.body
    error = answer(response)["error"]
    assert error["code"] == (code or "VALIDATION_FAILED")
    assert error["hint"]


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    "body",
    [
        {"access_keys": {"access_key_id": "lower-case-id", "secret_access_key": SECRET}},
        {
            "access_keys": {
                "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "secret_access_key": SECRET,
                "mfa_code": "12",
            }
        },
        {
            "access_keys": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": SECRET},
            "adfs": {"adfs_url": "https://a.example", "username": "u", "password": SECRET, "role_arn": "x"},
        },
        {
            "access_keys": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": SECRET},
            "extra": SECRET,
        },
    ],
)
def test_malformed_credentials_are_refused_without_echoing_a_secret(client, tenant, aws_calls, body) -> None:
    aws_calls.clear()
    response = call(client, "POST", "/credentials/test", tenant, body)
    assert response.status_code == 422, response.body
    assert answer(response)["error"]["code"] == "VALIDATION_FAILED"
    assert SECRET not in response.body.decode()
    assert aws_calls.calls == []  # refused before any AWS call, even the token's tenant read


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("POST", {"access_keys": None})])
def test_bootstrap_of_an_unknown_target_is_404(client, tenant, method, body) -> None:
    keys = {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": SECRET}
    payload = {"access_keys": keys} if body is not None else None
    response = call(client, method, f"/targets/{MISSING_ID}/bootstrap", tenant, payload)
    assert response.status_code == 404, response.body
    assert answer(response)["error"]["code"] == "TARGET_NOT_FOUND"


def test_bootstrap_refuses_an_adfs_url_off_the_allow_list_before_reading_the_target(
    client, tenant, local_aws, aws_calls
) -> None:
    """The allow-list needs no network: a URL off it is refused before the target is read, as Fetch
    Roles refuses it (the host is not resolved either)."""
    tid = register_target(client, tenant, local_aws, with_role=False)["target_id"]
    adfs = {
        "adfs_url": "https://adfs.example.com/adfs/ls/",
        "username": "u",
        "password": SECRET,
        "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/ADFS-Admin",
    }
    aws_calls.clear()
    response = call(client, "POST", f"/targets/{tid}/bootstrap", tenant, {"adfs": adfs})
    assert response.status_code == 400, response.body
    assert answer(response)["error"]["code"] == "ADFS_URL_REFUSED"
    assert aws_calls.calls == []  # the token's tenant read was cached by register_target above

    # The refusal quotes the host: a password typed into the URL by mistake is masked there too.
    typed = {**adfs, "adfs_url": "https://hunter2pw.example.com/adfs/ls/", "password": "hunter2pw"}
    response = call(client, "POST", f"/targets/{tid}/bootstrap", tenant, {"adfs": typed})
    assert response.status_code == 400, response.body
    assert "hunter2pw" not in response.body.decode()
    assert "****.example.com" in answer(response)["error"]["message"]
