"""A secret value over 65,536 bytes is refused, as Secrets Manager refuses it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from localaws import secretsmanager
from localaws.environment import LocalAws


def test_canary_the_operations_it_wraps_are_still_there() -> None:
    secretsmanager.check_moto_internals()


def test_a_value_over_65536_bytes_is_refused_on_every_write_and_one_of_65536_kept() -> None:
    limit = secretsmanager.MAX_SECRET_BYTES
    with LocalAws() as aws:
        sm = aws.central_session().client("secretsmanager")
        sm.create_secret(Name="fits", SecretString="x" * limit)
        assert len(sm.get_secret_value(SecretId="fits")["SecretString"]) == limit
        over = "é" * (limit // 2 + 1)  # 32,769 characters, 65,538 bytes
        for call in (
            lambda: sm.create_secret(Name="over", SecretString=over),
            lambda: sm.put_secret_value(SecretId="fits", SecretString=over),
            lambda: sm.update_secret(SecretId="fits", SecretString=over),
            lambda: sm.create_secret(Name="bytes", SecretBinary=b"\0" * (limit + 1)),
        ):
            with pytest.raises(ClientError) as refused:
                call()
            error = refused.value.response["Error"]
            assert error["Code"] == "ValidationException"
            assert f"less than or equal to {limit}" in error["Message"]
            assert over not in error["Message"]
        assert sm.get_secret_value(SecretId="fits")["SecretString"] == "x" * limit
        names = [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert names == ["fits"]
