"""The packaged template's alarms, dashboard, dead-letter queue and tracing (issue 14, section 3).

Every alarm and every dashboard widget must name something that exists: an AWS metric of a resource
of this template (resolved as CloudFormation would resolve it), or a metric the code emits, read from
the code's one catalogue (chalicelib/domain/metrics.py). And cfn-lint finds nothing in the template
after the SAM transform either (aws-sam-translator, as CloudFormation runs it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.metrics import SERVICE_DIMENSION, Metric
from chalicelib.observability import SERVICE_NAME
from chalicelib.settings import TelemetrySettings
from tests.package.conftest import Packaged
from tests.package.test_linters import cfn_lint
from tests.package.test_template import EVENT_HANDLERS, permitted

CATALOGUE = {m.spec.name: m.spec for m in Metric}
# AWS's own metric names, per namespace, that the template may use (AWS's lists, not ours).
AWS_METRICS = {
    "AWS/Lambda": {"Errors", "Throttles", "Duration", "Invocations"},
    "AWS/States": {"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "NumberOfMessagesSent"},
    "AWS/ApiGateway": {"Count", "4XXError", "5XXError", "Latency"},
}
SEARCH = re.compile(r"SEARCH\('\{\"([^\"]+)\",([^}]*)\} MetricName=\"([^\"]+)\"'")
MACHINES = ("DeploymentStateMachine", "RolloutStateMachine")


def alarms(packaged: Packaged) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in packaged.of_type("AWS::CloudWatch::Alarm").items()}


def alarm_metrics(properties: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each metric an alarm reads: {Namespace, MetricName, Dimensions: [{Name, Value}]}."""
    if "MetricName" in properties:
        yield {k: properties.get(k, []) for k in ("Namespace", "MetricName", "Dimensions")}
    for query in properties.get("Metrics", []):
        if "MetricStat" in query:
            yield query["MetricStat"]["Metric"]


def check_metric(packaged: Packaged, namespace: str, name: str, dimensions: dict[str, str]) -> str:
    """Assert the metric exists for this template; return what it belongs to."""
    ours = packaged.resolve({"Ref": "MetricsNamespace"})
    if namespace == ours:
        spec = CATALOGUE[name]  # a KeyError: a metric the code does not emit
        assert dimensions.get(SERVICE_DIMENSION) == SERVICE_NAME, (name, dimensions)
        assert set(dimensions) in ({SERVICE_DIMENSION}, {SERVICE_DIMENSION, *spec.dimensions}), (
            name,
            dimensions,
        )
        if "function" in dimensions:  # the middleware's name of a function of this template
            assert dimensions["function"] in packaged.of_type("AWS::Serverless::Function"), dimensions
        return name
    assert name in AWS_METRICS[namespace], (namespace, name)
    functions = {packaged.physical_name(f): f for f in packaged.of_type("AWS::Serverless::Function")}
    machines = {packaged.arn(m): m for m in packaged.of_type("AWS::StepFunctions::StateMachine")}
    queues = {packaged.physical_name(q): q for q in packaged.of_type("AWS::SQS::Queue")}
    api = packaged.resources["RestAPI"]["Properties"]
    if namespace == "AWS/Lambda":
        return functions[dimensions["FunctionName"]]
    if namespace == "AWS/States":
        return machines[dimensions["StateMachineArn"]]
    if namespace == "AWS/SQS":
        return queues[dimensions["QueueName"]]
    assert dimensions == {"ApiName": packaged.resolve(api["Name"]), "Stage": api["StageName"]}
    return "RestAPI"


def test_every_alarm_reads_a_metric_of_this_template_or_of_the_codes_catalogue(packaged: Packaged) -> None:
    watched: dict[str, set[str]] = {}
    for properties in alarms(packaged).values():
        for metric in alarm_metrics(properties):
            dimensions = {d["Name"]: packaged.resolve(d["Value"]) for d in metric["Dimensions"]}
            owner = check_metric(
                packaged, packaged.resolve(metric["Namespace"]), metric["MetricName"], dimensions
            )
            watched.setdefault(owner, set()).add(metric["MetricName"])
    for function in packaged.of_type("AWS::Serverless::Function"):
        assert {"Errors", "Throttles"} <= watched[function], function
    for machine in MACHINES:
        assert watched[machine] == {"ExecutionsFailed", "ExecutionsTimedOut"}, machine
    assert watched["RestAPI"] == {"5XXError"}
    assert watched["EventHandlerDeadLetterQueue"] == {"ApproximateNumberOfMessagesVisible"}
    assert watched["StackEventDeadLetterQueue"] == {"NumberOfMessagesSent"}
    assert watched[Metric.FALLBACK_RECONCILES.spec.name] == {"FallbackReconciles"}


def test_each_errors_alarm_discounts_each_functions_own_retries(packaged: Packaged) -> None:
    """A step that raises TransientAwsError for its Retry is a Lambda error too: each errors alarm
    subtracts, function by function, that function's RetriesRequested (never below 0, missing data as
    0), and sums the rest; at most 10 metrics and 20 queries (CloudWatch's limits for metric math)."""
    ours = packaged.resolve({"Ref": "MetricsNamespace"})
    covered: list[str] = []
    for name, properties in alarms(packaged).items():
        if not name.endswith("FunctionErrorsAlarm"):
            continue
        queries = {q["Id"]: q for q in properties["Metrics"]}
        reads = {i: q["MetricStat"]["Metric"] for i, q in queries.items() if "MetricStat" in q}
        assert len(reads) <= 10, name
        assert len(queries) <= 20, name
        owners: dict[str, str] = {}
        for query_id, metric in reads.items():
            dimensions = {d["Name"]: packaged.resolve(d["Value"]) for d in metric["Dimensions"]}
            namespace = packaged.resolve(metric["Namespace"])
            owner = check_metric(packaged, namespace, metric["MetricName"], dimensions)
            if query_id.startswith("r"):
                assert (namespace, metric["MetricName"]) == (ours, Metric.RETRIES_REQUESTED.spec.name)
                owner = dimensions["function"]
            else:
                assert (namespace, metric["MetricName"]) == ("AWS/Lambda", "Errors")
            owners[query_id] = owner
        functions = sorted({owners[i] for i in reads if i.startswith("m")})
        parts = []
        for n in range(len(functions)):
            errors, retries = f"m{n}", f"r{n}"
            assert owners[errors] == owners[retries], name  # the same function's errors and retries
            filled = f"FILL({errors}, 0)", f"FILL({retries}, 0)"
            clamped = f"IF({filled[0]} > {filled[1]}, {filled[0]} - {filled[1]}, 0)"
            assert queries[f"e{n}"]["Expression"] == clamped, name
            parts.append(f"e{n}")
        (watched,) = [i for i, q in queries.items() if q.get("ReturnData")]
        assert queries[watched]["Expression"] == f"SUM([{','.join(parts)}])", name
        covered += functions
    assert sorted(covered) == sorted(packaged.of_type("AWS::Serverless::Function"))


def test_every_function_is_told_its_name_in_the_template(packaged: Packaged) -> None:
    """CloudFormation names a function ``<stack>-<logical id>-<random suffix>``: the metrics' ``function``
    dimension (which the errors alarms read) comes from NEXUS_FUNCTION_NAME, its logical id."""
    for name, function in packaged.of_type("AWS::Serverless::Function").items():
        assert "FunctionName" not in function["Properties"]  # so CloudFormation names it, with a suffix
        assert function["Properties"]["Environment"]["Variables"]["NEXUS_FUNCTION_NAME"] == name


def test_the_fallback_reconcile_alarm_fires_on_a_rise_above_its_anomaly_band(packaged: Packaged) -> None:
    properties = alarms(packaged)["FallbackReconcilesRisingAlarm"]
    band = next(q for q in properties["Metrics"] if q["Id"] == properties["ThresholdMetricId"])
    assert band["Expression"].startswith("ANOMALY_DETECTION_BAND(reconciles")
    assert properties["ComparisonOperator"] == "GreaterThanUpperThreshold"


def test_every_alarm_notifies_the_alarm_topic_when_one_is_given(packaged: Packaged) -> None:
    parameter = packaged.template["Parameters"]["AlarmTopicArn"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "arn:aws:sns:eu-west-1:123456789012:pager")
    assert not re.fullmatch(parameter["AllowedPattern"], "arn:aws:sqs:eu-west-1:123456789012:pager")
    expected = {"Fn::If": ["AlarmTopicGiven", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert packaged.template["Conditions"]["AlarmTopicGiven"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    assert len(alarms(packaged)) >= 12
    for alarm, properties in alarms(packaged).items():
        assert properties["AlarmActions"] == expected, alarm
        assert properties["OKActions"] == expected, alarm
        assert properties["ActionsEnabled"] is True, alarm


def dashboard_metrics(packaged: Packaged) -> Iterator[tuple[str, str, dict[str, str]]]:
    (dashboard,) = packaged.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(packaged.resolve(dashboard["Properties"]["DashboardBody"]))
    assert body["widgets"], "an empty dashboard"
    for widget in body["widgets"]:
        properties = widget["properties"]
        if widget["type"] == "alarm":
            alarm_arns = {packaged.arn(a) for a in alarms(packaged)}
            assert set(properties["alarms"]) == alarm_arns  # every alarm, and only alarms of this stack
            continue
        assert properties["region"] == "eu-west-1"
        for line in properties["metrics"]:
            fields = [f for f in line if not isinstance(f, dict)]
            if fields:
                namespace, name, *pairs = fields
                yield namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))
                continue
            found = SEARCH.match(line[0]["expression"])
            assert found, line
            namespace, keys, name = found.groups()
            yield namespace, name, dict.fromkeys(keys.split(","), SERVICE_NAME)


def test_every_dashboard_widget_reads_a_metric_of_this_template_or_of_the_codes_catalogue(
    packaged: Packaged,
) -> None:
    shown: dict[str, set[str]] = {}
    for namespace, name, dimensions in dashboard_metrics(packaged):
        if namespace == packaged.resolve({"Ref": "MetricsNamespace"}) and set(dimensions) != {
            SERVICE_DIMENSION
        }:
            # a SEARCH by the metric's own dimensions: exactly the ones it is emitted with
            assert set(dimensions) == {SERVICE_DIMENSION, *CATALOGUE[name].dimensions}, name
            shown.setdefault(name, set()).add("by dimension")
            continue
        owner = check_metric(packaged, namespace, name, dimensions)
        shown.setdefault(owner, set()).add(name)
    for metric in Metric:  # every metric the code emits: its total, and by its dimensions
        assert metric.spec.name in shown[metric.spec.name], metric
        assert "by dimension" in shown[metric.spec.name], metric
    for function in packaged.of_type("AWS::Serverless::Function"):
        assert {"Errors", "Throttles", "Duration"} <= shown[function], function
    for machine in MACHINES:
        assert "ExecutionsFailed" in shown[machine]


def test_check_metric_refuses_a_metric_the_code_does_not_emit_and_a_missing_function(
    packaged: Packaged,
) -> None:
    with pytest.raises(KeyError):
        check_metric(packaged, "NexusDeployer", "DeploymentsExploded", {SERVICE_DIMENSION: SERVICE_NAME})
    with pytest.raises(KeyError):
        check_metric(packaged, "AWS/Lambda", "Errors", {"FunctionName": "nexus-NoSuchFunction"})


def test_every_function_sends_metrics_to_the_namespace_parameter(packaged: Packaged) -> None:
    parameter = packaged.template["Parameters"]["MetricsNamespace"]
    assert TelemetrySettings.from_env({"NEXUS_METRICS_NAMESPACE": parameter["Default"]}).metrics_namespace
    for name, function in packaged.of_type("AWS::Serverless::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["NEXUS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}, name


def test_asynchronous_event_handlers_keep_failed_events_in_the_dead_letter_queue(packaged: Packaged) -> None:
    """A failed stack event has a queue of its own (its operation ends anyway, by its reconcile): one
    there pages no one, as one in the other queue does (a redeploy or an execution's end not handled).
    Work not done is kept SQS's longest, 14 days; a stack event, only worth reading for why it failed
    (a replay would at most reconcile an operation that ended), SQS's default 4."""
    days = {"EventHandlerDeadLetterQueue": 14, "StackEventDeadLetterQueue": 4}
    for queue_name, kept in days.items():
        queue = packaged.resources[queue_name]["Properties"]
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["MessageRetentionPeriod"] == kept * 24 * 3600
    asynchronous = set(EVENT_HANDLERS)  # EventBridge rules, the SNS subscription, the schedule
    assert asynchronous == {
        "RedeployRequested",
        "RedeployMessage",
        "StackStatusChanged",
        "TemplateObjectCreated",
        "DriftCheck",
        "DeploymentExecutionEnded",
        "RolloutExecutionEnded",
    }
    for name, function in packaged.of_type("AWS::Serverless::Function").items():
        letters = function["Properties"].get("DeadLetterQueue")
        if name not in asynchronous:
            assert letters is None, name  # invoked synchronously: the caller sees the error
            continue
        queue_name = (
            "StackEventDeadLetterQueue" if name == "StackStatusChanged" else "EventHandlerDeadLetterQueue"
        )
        assert letters == {"Type": "SQS", "TargetArn": {"Fn::GetAtt": [queue_name, "Arn"]}}, name
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        assert permitted(packaged, role, "sqs:SendMessage", packaged.arn(queue_name)), name
        assert not permitted(packaged, role, "sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:other")


def test_a_dead_lettered_stack_event_pages_only_in_numbers(packaged: Packaged) -> None:
    """Any event in the handlers' queue pages; stack events page by their rate (their queue is never
    emptied, so its depth would count every burst of its 4 days, and then stay in ALARM)."""
    found = alarms(packaged)
    every = found["DeadLetterQueueAlarm"]
    assert (every["Threshold"], every["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    stack_events = found["StackEventDeadLettersAlarm"]
    assert (stack_events["MetricName"], stack_events["Statistic"]) == ("NumberOfMessagesSent", "Sum")
    assert (stack_events["Period"], stack_events["EvaluationPeriods"]) == (3600, 1)
    assert stack_events["Threshold"] == {"Ref": "StackEventDeadLettersAlarmThreshold"}
    assert stack_events["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["StackEventDeadLetterQueue", "QueueName"]}}
    ]
    parameter = packaged.template["Parameters"]["StackEventDeadLettersAlarmThreshold"]
    assert (parameter["Type"], parameter["MinValue"]) == ("Number", 1)
    assert parameter["Default"] > 1


def test_functions_state_machines_and_the_api_are_traced_and_may_write_traces(packaged: Packaged) -> None:
    for name, function in packaged.of_type("AWS::Serverless::Function").items():
        assert function["Properties"]["Tracing"] == "Active", name
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        assert permitted(packaged, role, "xray:PutTraceSegments", "*"), name
    for machine in MACHINES:
        properties = packaged.resources[machine]["Properties"]
        assert properties["TracingConfiguration"] == {"Enabled": True}
        role = properties["RoleArn"]["Fn::GetAtt"][0]
        assert permitted(packaged, role, "xray:PutTraceSegments", "*"), machine
    assert packaged.resources["RestAPI"]["Properties"]["TracingEnabled"] is True


@pytest.fixture(scope="module")
def transformed(packaged: Packaged, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sam_transform(packaged.template, tmp_path_factory.mktemp("transformed") / "cloudformation.json")


def sam_transform(template: dict[str, Any], out: Path) -> Path:
    """What CloudFormation's AWS::Serverless transform makes of the template, after
    ``aws cloudformation package`` put the code in S3."""
    import os

    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # the template uses inline policies only
        def load(self) -> dict[str, str]:
            return {}

    packaged = json.loads(json.dumps(template))
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://nexus-artifacts/deployment.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")  # samtranslator resolves AWS::Region
    out.write_text(json.dumps(transform(packaged, {}, NoManagedPolicies()), indent=1))
    return out


def test_cfn_lint_finds_nothing_after_the_sam_transform(transformed: Path) -> None:
    template = json.loads(transformed.read_text())
    assert "Transform" not in template
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::ApiGateway::RestApi", "AWS::CloudWatch::Alarm"} <= kinds
    matches = cfn_lint(transformed)
    assert [f"{m['Level']} {m['Rule']['Id']} {m['Message']}" for m in matches] == []


def test_cfn_lint_after_the_transform_checks_the_alarms(packaged: Packaged, tmp_path: Path) -> None:
    broken = json.loads(json.dumps(packaged.template))
    broken["Resources"]["ApiServerErrorsAlarm"]["Properties"]["ComparisonOperator"] = "BiggerThan"
    rules = {m["Rule"]["Id"] for m in cfn_lint(sam_transform(broken, tmp_path / "broken.json"))}
    assert "E3030" in rules  # not one of the allowed values
