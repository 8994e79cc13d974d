"""Local mode's ADFS: the test identity provider over HTTPS, with a user and roles in one target account.

So that the console's fourth method (ADFS URL, Username, Password, Fetch Roles) works against
``make run`` with no corporate ADFS: ``LocalAdfs`` starts ``localaws.adfs.AdfsProvider`` with TLS on a
free port of 127.0.0.1 and, in the target account (``NEXUS_LOCAL_ADFS_ACCOUNT``, default 111111111111),
creates its SAML provider and two roles it releases to the user ``alice``: ``AdfsAdmin`` (every action:
enough to deploy the bootstrap stack) and ``AdfsReadOnly``. The service may fetch only that
``host:port`` (``NEXUS_ADFS_HOSTS``), trusting the provider's certificate (``NEXUS_ADFS_CA_BUNDLE``): the
SSRF guard stays on, with the local IdP on its allow-list.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from localaws.adfs import AWS_SIGNIN_URL, AdfsProvider, AdfsUser

if TYPE_CHECKING:
    from localaws.environment import LocalAws

USER = "alice"
PROVIDER_NAME = "local-adfs"
ROLES = ("AdfsAdmin", "AdfsReadOnly")


@dataclass
class LocalAdfs:
    aws: LocalAws
    account_id: str
    password: str = ""
    provider: AdfsProvider | None = None

    def __enter__(self) -> LocalAdfs:
        self.password = self.password or secrets.token_urlsafe(12)
        self._dir = tempfile.TemporaryDirectory(prefix="nexus-adfs-")
        saml_provider = f"arn:aws:iam::{self.account_id}:saml-provider/{PROVIDER_NAME}"
        roles = [(f"arn:aws:iam::{self.account_id}:role/{name}", saml_provider) for name in ROLES]
        self.provider = AdfsProvider({USER: AdfsUser(self.password, roles)}, tls_dir=self._dir.name).start()
        iam = self.aws.account_session(self.account_id).client("iam")
        iam.create_saml_provider(Name=PROVIDER_NAME, SAMLMetadataDocument=self.provider.metadata_xml())
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": saml_provider},
                    "Action": "sts:AssumeRoleWithSAML",
                    "Condition": {"StringEquals": {"SAML:aud": AWS_SIGNIN_URL}},
                }
            ],
        }
        for name in ROLES:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_role_policy(RoleName="AdfsAdmin", PolicyName="admin", PolicyDocument=json.dumps(admin))
        read = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "cloudformation:Describe*", "Resource": "*"}],
        }
        iam.put_role_policy(RoleName="AdfsReadOnly", PolicyName="read", PolicyDocument=json.dumps(read))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.provider is not None:
            self.provider.stop()
        self._dir.cleanup()

    @property
    def url(self) -> str:
        assert self.provider is not None
        return self.provider.sign_on_url

    def settings_env(self) -> dict[str, str]:
        assert self.provider is not None
        assert self.provider.ca_file is not None
        return {"NEXUS_ADFS_HOSTS": self.provider.host_port, "NEXUS_ADFS_CA_BUNDLE": self.provider.ca_file}
