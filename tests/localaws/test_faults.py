"""NEXUS_LOCAL_FAULTS: the setting, and throttling as each service's real error through real botocore clients.

Lost stack events and step crashes are proved end to end by the reliability scenarios
(tests/reliability/), where the real workflow has to survive them.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws import faults
from localaws.faults import FaultSettings
from tests.conftest import local_aws_for_app

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
# (client, a harmless call, the error codes and HTTP status the service throttles with)
CALLS: list[tuple[str, str, dict[str, Any], set[str], int]] = [
    ("sts", "get_caller_identity", {}, {"Throttling"}, 400),
    ("cloudformation", "list_stacks", {}, {"Throttling"}, 400),
    ("dynamodb", "list_tables", {}, {"ThrottlingException", "ProvisionedThroughputExceededException"}, 400),
    ("stepfunctions", "list_state_machines", {}, {"ThrottlingException"}, 400),
    ("events", "list_rules", {}, {"ThrottlingException"}, 400),
    ("lambda", "list_functions", {}, {"TooManyRequestsException"}, 429),
    ("sns", "list_topics", {}, {"Throttling"}, 400),
]


def test_the_setting_parses_and_is_off_by_default() -> None:
    assert FaultSettings.from_env({}) == faults.NO_FAULTS
    assert not faults.NO_FAULTS.active
    parsed = FaultSettings.parse(
        "throttle=0.3, drop_stack_events=0.2,crash_after=AcquireLock+PollStack,time_out=PollItem,seed=7"
    )
    assert parsed == FaultSettings(
        0.3, 0.2, frozenset({"AcquireLock", "PollStack"}), 7, frozenset({"PollItem"})
    )
    assert parsed.describe() == (
        "throttle=0.3, drop_stack_events=0.2, crash_after=AcquireLock+PollStack, time_out=PollItem, seed=7"
    )
    assert FaultSettings.parse("time_out=PollItem").active


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("throttle=-0.1", "throttle must be a fraction from 0 to 1"),
        ("throttle=lots", "throttle must be a fraction from 0 to 1"),
        ("drop_stack_events=2", "drop_stack_events must be a fraction"),
        ("seed=x", "seed must be a whole number"),
        ("throttle", "is not name=value"),
        ("throttle=0.1,throttle=0.2", "throttle is given twice"),
        ("crash_after=Start Stack", "crash_after names Lambda functions"),
        ("time_out=Poll+", "time_out names Lambda functions, got ''"),
        ("explode=1", "unknown fault 'explode'"),
    ],
)
def test_a_bad_setting_is_refused_naming_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        FaultSettings.parse(text)


def test_every_service_call_is_throttled_with_that_services_error_and_status() -> None:
    with local_aws_for_app(faults=FaultSettings(throttle=1.0, seed=1)) as aws:
        session = aws.role_session(aws.central.service_role_arn)  # a role session, as the functions call AWS
        for service, method, kwargs, codes, status in CALLS:
            client: Any = session.client(service, config=NO_RETRY)  # type: ignore[call-overload]
            with pytest.raises(ClientError) as raised:
                getattr(client, method)(**kwargs)
            error = raised.value.response
            assert error["Error"]["Code"] in codes, (service, error)
            assert error["ResponseMetadata"]["HTTPStatusCode"] == status, (service, error)
        # An account administrator's calls are spared (setup, `nexus local admin`).
        admin = aws.account_session("123456789012")
        assert admin.client("dynamodb", config=NO_RETRY).list_tables()["TableNames"]
        counted = faults.counts()
    expected = {"sts", "cloudformation", "dynamodb", "states", "events", "lambda", "sns"}
    assert counted == {f"throttle:{service}": 1 for service in expected}


def test_a_throttled_dynamodb_transaction_is_cancelled_as_dynamodb_cancels_it() -> None:
    """TransactWriteItems throttled: TransactionCanceledException, one reason per item, the throttled
    item's ThrottlingError or ProvisionedThroughputExceeded and "None" for the others; botocore's standard
    retries leave it alone (one attempt), where they retry a throttled PutItem. Nothing is written."""
    with local_aws_for_app(faults=FaultSettings(throttle=1.0, seed=3)) as aws:
        session = aws.role_session(aws.central.service_role_arn)
        retrying: Any = session.client(
            "dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 4})
        )
        table = aws.central.table_name
        puts = [
            {"Put": {"TableName": table, "Item": {"pk": {"S": f"t{n}"}, "sk": {"S": "x"}}}} for n in range(3)
        ]
        with pytest.raises(ClientError) as raised:
            retrying.transact_write_items(TransactItems=puts)
        attempts = raised.value.response["ResponseMetadata"]["RetryAttempts"]
        reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
        counted = faults.counts()
        admin = aws.account_session(aws.central.account_id).client("dynamodb")
        written = admin.scan(
            TableName=table,
            ScanFilter={"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]}},
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert len(reasons) == 3
    assert reasons.count("None") == 2
    assert set(reasons) - {"None"} <= {"ThrottlingError", "ProvisionedThroughputExceeded"}
    assert attempts == 0  # not retried by botocore
    assert counted == {"throttle:dynamodb": 1}
    assert written["Count"] == 0


def test_botocores_retries_get_through_a_partial_throttle_and_the_same_seed_repeats_the_faults() -> None:
    def run() -> tuple[list[str], dict[str, int]]:
        outcomes: list[str] = []
        with local_aws_for_app(faults=FaultSettings(throttle=0.3, seed=11)) as aws:
            session = aws.role_session(aws.central.service_role_arn)
            once = session.client("sts", config=NO_RETRY)
            for _ in range(20):
                try:
                    once.get_caller_identity()
                    outcomes.append("ok")
                except ClientError as error:
                    outcomes.append(error.response["Error"]["Code"])
            retried = session.client(
                "sts", config=Config(retries={"mode": "standard", "total_max_attempts": 6})
            )
            for _ in range(3):
                assert retried.get_caller_identity()["Account"]  # botocore retries the throttles away
            return outcomes, faults.counts()

    first, second = run(), run()
    assert first == second
    assert 0 < first[0].count("ok") < 20
    assert first[1]["throttle:sts"] > first[0].count("Throttling")  # the retried client was throttled too
    assert faults.counts() == {}  # the faults ended with their local AWS


def test_a_transaction_the_local_aws_throttled_is_written_by_the_adapters_next_attempt() -> None:
    """botocore leaves a throttled transaction alone (above); the service's adapter sends it again
    (chalicelib/adapters/errors.py transact_write_items), as botocore would any other throttled call."""
    from chalicelib.adapters.errors import transact_write_items

    with local_aws_for_app(faults=FaultSettings(throttle=0.5, seed=11)) as aws:
        session = aws.role_session(aws.central.service_role_arn)
        client: Any = session.client(
            "dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 10})
        )
        table = aws.central.table_name
        puts = [
            {"Put": {"TableName": table, "Item": {"pk": {"S": f"r{n}"}, "sk": {"S": "y"}}}} for n in range(2)
        ]
        for _ in range(5):
            transact_write_items(client, puts, sleep=lambda seconds: None)
        counted = faults.counts()
        admin = aws.account_session(aws.central.account_id).client("dynamodb")
        written = admin.get_item(TableName=table, Key={"pk": {"S": "r1"}, "sk": {"S": "y"}})
    assert counted.get("throttle:dynamodb", 0) >= 1  # some attempts were throttled, and taken again
    assert written["Item"]["sk"] == {"S": "y"}
