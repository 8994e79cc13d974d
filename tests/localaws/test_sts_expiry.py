"""Expiry of the credentials the AWS-faithful STS patches in ``localaws.sts`` hand out: an assumed role's
credentials expire after their duration (one hour by default) on the patches' clock, answer in each
protocol's shape once expired, and are refused for role chaining; also through a threaded moto server.

The setup shared with the other ``test_sts_*`` modules (``sts_aws``) and the helpers are in this
package's ``conftest``.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from localaws.sts import CLOCK
from tests.localaws.conftest import (
    DEFAULT_CALLER,
    OTHER,
    TARGET,
    assume,
    client,
    create_role,
    expired,
    session_kwargs,
    threaded_moto_server,
    trust,
)

pytestmark = pytest.mark.usefixtures("sts_aws")


# ---------------------------------------------------------------------------------------- step 2: expiry
def test_assumed_role_credentials_expire_after_their_duration() -> None:
    arn = create_role("deployer", trust("*"))
    credentials = assume(arn, DurationSeconds=900)["Credentials"]
    creds = session_kwargs(credentials)
    sts = client("sts", creds)
    lifetime = credentials["Expiration"].timestamp() - CLOCK.time()
    assert 895 < lifetime <= 900

    CLOCK.advance(890)
    assert sts.get_caller_identity()["Account"] == TARGET
    CLOCK.advance(11)

    with pytest.raises(ClientError) as exc:
        sts.get_caller_identity()
    expired(exc)
    with pytest.raises(ClientError) as exc:
        client("iam", creds).list_roles()
    expired(exc)
    with pytest.raises(ClientError) as exc:
        client("cloudformation", creds).list_stacks()
    expired(exc)


def test_expired_credentials_answer_in_each_protocols_shape() -> None:
    arn = create_role("deployer", trust("*"))
    creds = session_kwargs(assume(arn, DurationSeconds=900)["Credentials"])
    CLOCK.advance(901)

    with pytest.raises(ClientError) as exc:
        client("dynamodb", creds).list_tables()
    expired(exc, "ExpiredTokenException", 400)
    with pytest.raises(ClientError) as exc:
        client("stepfunctions", creds).list_state_machines()
    expired(exc, "ExpiredTokenException", 400)
    with pytest.raises(ClientError) as exc:
        client("s3", creds).list_buckets()
    assert exc.value.response["Error"] == {
        "Code": "ExpiredToken",
        "Message": "The provided token has expired.",
    }
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_expiry_only_affects_the_expired_session() -> None:
    arn = create_role("deployer", trust("*"))
    short = session_kwargs(assume(arn, DurationSeconds=900)["Credentials"])
    long = session_kwargs(assume(arn, DurationSeconds=3600)["Credentials"])
    CLOCK.advance(1000)

    with pytest.raises(ClientError):
        client("sts", short).get_caller_identity()
    assert client("sts", long).get_caller_identity()["Account"] == TARGET
    assert client("sts").get_caller_identity()["Arn"] == DEFAULT_CALLER


def test_default_duration_is_one_hour() -> None:
    arn = create_role("deployer", trust("*"))
    credentials = assume(arn)["Credentials"]

    assert 3595 < credentials["Expiration"].timestamp() - CLOCK.time() <= 3600
    CLOCK.advance(3601)
    with pytest.raises(ClientError) as exc:
        client("sts", session_kwargs(credentials)).get_caller_identity()
    expired(exc)


def test_expiration_follows_the_clock_so_new_sessions_are_valid_after_advancing() -> None:
    arn = create_role("deployer", trust("*"))
    CLOCK.advance(24 * 3600)

    credentials = assume(arn, DurationSeconds=900)["Credentials"]

    assert 895 < credentials["Expiration"].timestamp() - CLOCK.time() <= 900
    assert client("sts", session_kwargs(credentials)).get_caller_identity()["Account"] == TARGET


def test_expired_credentials_cannot_assume_another_role() -> None:
    first = create_role("first", trust("*"), account=OTHER)
    second = create_role("second", trust("*"))
    creds = session_kwargs(assume(first, DurationSeconds=900)["Credentials"])
    CLOCK.advance(901)

    with pytest.raises(ClientError) as exc:
        assume(second, creds)
    expired(exc)


def test_expiry_is_enforced_through_a_threaded_moto_server() -> None:
    with threaded_moto_server() as endpoint:
        arn = create_role("deployer", trust("*"))
        credentials = client("sts", endpoint_url=endpoint).assume_role(
            RoleArn=arn, RoleSessionName="deploy", DurationSeconds=900
        )["Credentials"]
        CLOCK.advance(901)

        with pytest.raises(ClientError) as exc:
            client("sts", session_kwargs(credentials), endpoint_url=endpoint).get_caller_identity()
        expired(exc)
        with pytest.raises(ClientError) as exc:
            client("dynamodb", session_kwargs(credentials), endpoint_url=endpoint).list_tables()
        expired(exc, "ExpiredTokenException", 400)
