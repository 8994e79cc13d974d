"""An administrator of one account of the embedded local AWS (``make run``), for a person's own tools.

Local mode has many accounts (the central 123456789012 and any 12-digit target account) behind one
endpoint. moto picks a request's account from its access key when the key belongs to an IAM user of
that account, so an admin user created *in* the target account gives ordinary keys that act there:
the AWS CLI, boto3 and ``nexus targets bootstrap --profile`` need nothing special. The user is created
(or found) with the ``x-moto-account-id`` header, which only the embedded AWS understands; that is
also why the endpoint must be on this machine (loopback): these keys are for the local AWS only.

Keys: IAM keeps at most two per user and never shows a secret twice. A profile that already holds a
key of this user is reused as it is; otherwise a new key is made (the oldest one goes when the user
already has two).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from nexus_cli.signin import UsageProblem

DEFAULT_USER = "nexus-local-admin"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")


@dataclass(frozen=True)
class AdminKeys:
    account_id: str
    user_arn: str
    access_key_id: str
    secret_access_key: str | None  # None when a profile's existing key was reused
    endpoint_url: str
    region: str
    reused: bool

    def export_lines(self) -> list[str]:
        return [
            f"export AWS_ACCESS_KEY_ID={self.access_key_id}",
            f"export AWS_SECRET_ACCESS_KEY={self.secret_access_key}",
            f"export AWS_ENDPOINT_URL={self.endpoint_url}",
            f"export AWS_REGION={self.region}",
            "unset AWS_SESSION_TOKEN AWS_PROFILE",
        ]


def local_endpoint(given: str | None, environ: Mapping[str, str]) -> str:
    """``--endpoint-url``, else ``AWS_ENDPOINT_URL``, else local mode's ``http://127.0.0.1:$NEXUS_AWS_PORT``."""
    url = (
        given
        or environ.get("AWS_ENDPOINT_URL")
        or f"http://127.0.0.1:{environ.get('NEXUS_AWS_PORT') or 5000}"
    )
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if parsed.scheme not in ("http", "https") or not host:
        raise UsageProblem(f"the endpoint must be http(s)://host:port, got {url!r}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageProblem(
            f"{url} is not on this machine: nexus local admin only talks to the embedded AWS of make run"
        )
    return url.rstrip("/")


def _iam(endpoint_url: str, account_id: str, region: str) -> Any:
    import boto3

    from nexus_cli.signin import client_config

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local-admin",  # the embedded AWS checks no signature; the header picks the account
        aws_secret_access_key="local-admin",  # noqa: S106
        config=client_config(),
    )

    def pick_account(request: Any, **kwargs: Any) -> None:
        request.headers["x-moto-account-id"] = account_id

    iam.meta.events.register("before-sign.*.*", pick_account)
    return iam


def ensure_admin(
    account_id: str,
    endpoint_url: str,
    region: str,
    user_name: str = DEFAULT_USER,
    reuse_key_id: str | None = None,
) -> AdminKeys:
    """The admin user of ``account_id`` (created if missing) and a key: ``reuse_key_id`` if it is one of
    the user's keys, else a new one."""
    iam = _iam(endpoint_url, account_id, region)
    try:
        user = iam.get_user(UserName=user_name)["User"]
    except iam.exceptions.NoSuchEntityException:
        user = iam.create_user(UserName=user_name)["User"]
    iam.put_user_policy(
        UserName=user_name, PolicyName="administrator", PolicyDocument=json.dumps(ADMIN_POLICY)
    )
    keys = sorted(
        iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"], key=lambda k: str(k.get("CreateDate"))
    )
    if reuse_key_id and any(k["AccessKeyId"] == reuse_key_id for k in keys):
        return AdminKeys(account_id, str(user["Arn"]), reuse_key_id, None, endpoint_url, region, reused=True)
    while len(keys) >= 2:
        iam.delete_access_key(UserName=user_name, AccessKeyId=keys.pop(0)["AccessKeyId"])
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return AdminKeys(
        account_id,
        str(user["Arn"]),
        str(key["AccessKeyId"]),
        str(key["SecretAccessKey"]),
        endpoint_url,
        region,
        reused=False,
    )


# -- the AWS CLI's files ------------------------------------------------------------------------------


def credentials_file(environ: Mapping[str, str]) -> Path:
    return Path(
        environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials"
    ).expanduser()


def config_file(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config").expanduser()


def profile_key_id(environ: Mapping[str, str], profile: str) -> str | None:
    """The access key ID the credentials file holds for ``profile``, if any."""
    section = _read_sections(credentials_file(environ)).get(profile, [])
    for line in section:
        name, sep, value = line.partition("=")
        if sep and name.strip() == "aws_access_key_id":
            return value.strip()
    return None


def write_profile(environ: Mapping[str, str], profile: str, keys: AdminKeys) -> tuple[Path, Path]:
    """``[profile]`` in the credentials file and ``[profile NAME]`` (region, endpoint_url) in the config
    file; every other section and line is left as it was. Both files are mode 0600."""
    credentials, config = credentials_file(environ), config_file(environ)
    if keys.secret_access_key is not None:
        _replace_section(
            credentials,
            profile,
            [
                f"aws_access_key_id = {keys.access_key_id}",
                f"aws_secret_access_key = {keys.secret_access_key}",
            ],
        )
    config_section = "default" if profile == "default" else f"profile {profile}"
    _replace_section(
        config,
        config_section,
        [f"region = {keys.region}", f"endpoint_url = {keys.endpoint_url}", "output = json"],
    )
    return credentials, config


def _read_sections(path: Path) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    try:
        text = path.read_text()
    except FileNotFoundError:
        return sections
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            current = sections.setdefault(match.group(1).strip(), [])
        elif current is not None:
            current.append(line)
    return sections


def _replace_section(path: Path, name: str, body: list[str]) -> None:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    kept: list[str] = []
    skipping = False
    for line in lines:
        match = _SECTION.match(line)
        if match:
            skipping = match.group(1).strip() == name
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    if kept:
        kept.append("")
    kept += [f"[{name}]", *body]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, ("\n".join(kept) + "\n").encode())
    finally:
        os.close(descriptor)
