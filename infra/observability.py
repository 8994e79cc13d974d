"""The cloud template's alarms and dashboard, built from the merge template and the metric catalogue.

``infra/package.py`` adds these resources to the merge template before chalice merges it. They are
built rather than written by hand so that every function, both state machines and every metric the
code emits (chalicelib/domain/metrics.py) is covered, and a function or metric added later is too.

Alarms (each notifies ``AlarmTopicArn`` when one is given, going into ALARM and back to OK):

* failed executions of each workflow (at least ``FailedExecutionsAlarmThreshold`` in 15 minutes) and
  any timed-out execution;
* Lambda errors (less the invocations that raised TransientAwsError on purpose, to be retried) and
  throttles, one alarm each per group of functions that share a role (a metric math alarm reads at
  most 10 metrics, so a larger group is split);
* API Gateway 5xx answers;
* any message in the event handlers' dead-letter queue;
* fallback reconciles above their anomaly-detection band: lost stack events (a target account or
  region whose forwarding broke) show as a rise of reconciles after the wait's timeout.

The dashboard shows every catalogue metric (its total, and a SEARCH by its own dimensions), the
workflows' executions, the functions' errors, throttles and durations, the API and the queue.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.metrics import SERVICE_DIMENSION, Metric
from chalicelib.observability import SERVICE_NAME

STATE_MACHINES = ("DeploymentStateMachine", "RolloutStateMachine")
DEAD_LETTER_QUEUE = "EventHandlerDeadLetterQueue"
API = "RestAPI"
API_NAME = {"Fn::Sub": "${AWS::StackName}-api"}  # the RestAPI's Name in the merge template
API_STAGE = "api"  # .chalice/config.json api_gateway_stage
MAX_ALARM_METRICS = 10  # CloudWatch: a metric math alarm reads at most 10 metrics
ACTIONS = {"Fn::If": ["AlarmTopicGiven", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
DASHBOARD = "Dashboard"


def functions(merge_template: dict[str, Any]) -> dict[str, str]:
    """Every chalice function of the merge template (the entries without a Type) and its role."""
    return {
        name: str(resource["Properties"]["Role"]["Fn::GetAtt"][0])
        for name, resource in merge_template["Resources"].items()
        if "Type" not in resource
    }


def _alarm(description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": ACTIONS,
            "OKActions": ACTIONS,
            "TreatMissingData": "notBreaching",
            **properties,
        },
    }


def _metric_alarm(
    description: str,
    namespace: str,
    metric: str,
    dimensions: dict[str, Any],
    *,
    statistic: str = "Sum",
    period: int = 300,
    threshold: Any = 1,
) -> dict[str, Any]:
    return _alarm(
        description,
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        Statistic=statistic,
        Period=period,
        EvaluationPeriods=1,
        Threshold=threshold,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def _query(query_id: str, namespace: Any, metric: str, dimensions: dict[str, Any]) -> dict[str, Any]:
    """A metric math alarm's read of one metric, summed over 5 minutes."""
    return {
        "Id": query_id,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
            "Period": 300,
            "Stat": "Sum",
        },
    }


def _sum_alarm(
    description: str, metric: str, function_names: list[str], *, discount_retries: bool = False
) -> dict[str, Any]:
    """One alarm on the sum of a Lambda metric over several functions (metric math).

    ``discount_retries``: less the invocations that raised TransientAwsError on purpose (our
    ``RetriesRequested``, by function), which Lambda counts as errors too: a throttled AWS handed back
    for the step's Retry is not a fault, and it would otherwise page on every one. Each period the
    retries are summed with missing data as 0, so that an error in a period without retries still
    alarms. A data point and its Lambda error can fall in adjacent periods when an invocation spans a
    period's end (a step runs for about a second of the 300)."""
    queries = [
        _query(f"m{n}", "AWS/Lambda", metric, {"FunctionName": {"Ref": name}})
        for n, name in enumerate(function_names)
    ]
    summed = f"SUM([{','.join(q['Id'] for q in queries)}])"
    expressions: list[dict[str, Any]] = [{"Id": "total", "Expression": summed, "ReturnData": True}]
    if discount_retries:
        retries = [
            _query(
                f"r{n}",
                {"Ref": "MetricsNamespace"},
                Metric.RETRIES_REQUESTED.spec.name,
                {SERVICE_DIMENSION: SERVICE_NAME, "function": name},
            )
            for n, name in enumerate(function_names)
        ]
        queries += retries
        expressions = [
            {"Id": "errors", "Expression": summed, "ReturnData": False},
            {
                "Id": "retries",
                "Expression": f"FILL(SUM([{','.join(q['Id'] for q in retries)}]), 0)",
                "ReturnData": False,
            },
            {"Id": "total", "Expression": "errors - retries", "ReturnData": True},
        ]
    return _alarm(
        description,
        Metrics=[*queries, *expressions],
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def alarms(merge_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for machine in STATE_MACHINES:
        arn = {"Ref": machine}
        found[f"{machine}FailedAlarm"] = _metric_alarm(
            f"{machine}: failed executions in 15 minutes reached FailedExecutionsAlarmThreshold.",
            "AWS/States",
            "ExecutionsFailed",
            {"StateMachineArn": arn},
            period=900,
            threshold={"Ref": "FailedExecutionsAlarmThreshold"},
        )
        found[f"{machine}TimedOutAlarm"] = _metric_alarm(
            f"{machine}: an execution timed out.",
            "AWS/States",
            "ExecutionsTimedOut",
            {"StateMachineArn": arn},
        )
    by_role: dict[str, list[str]] = {}
    for function, role in functions(merge_template).items():
        by_role.setdefault(role, []).append(function)
    for role, names in sorted(by_role.items()):
        # The errors alarm reads two metrics per function (its errors, its retries requested).
        per_alarm = MAX_ALARM_METRICS // 2
        for part, start in enumerate(range(0, len(names), per_alarm)):
            group = names[start : start + per_alarm]
            label = f"{role}{part + 1 if len(names) > per_alarm else ''}"
            listed = ", ".join(group)
            found[f"{label}FunctionErrorsAlarm"] = _sum_alarm(
                f"Lambda errors (a handler raised, timed out or ran out of memory) in {listed}, less "
                "the invocations that handed a throttled AWS back to be retried (RetriesRequested).",
                "Errors",
                group,
                discount_retries=True,
            )
            found[f"{label}FunctionThrottlesAlarm"] = _sum_alarm(
                f"Lambda throttled invocations (concurrency exhausted) of {listed}.", "Throttles", group
            )
    found["ApiServerErrorsAlarm"] = _metric_alarm(
        "The HTTP API answered 5xx: a fault of the service (client errors are 4xx).",
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": API_NAME, "Stage": API_STAGE},
    )
    found["DeadLetterQueueAlarm"] = _metric_alarm(
        "An event handler's event failed every attempt and waits in the dead-letter queue.",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": [DEAD_LETTER_QUEUE, "QueueName"]}},
        statistic="Maximum",
    )
    reconciles = Metric.FALLBACK_RECONCILES.spec
    found["FallbackReconcilesRisingAlarm"] = _alarm(
        "Reconciles after a wait that no event ended rose above their usual band: stack events are lost "
        "(a target account's forwarding rule or the bus policy) and operations finish only by timeout.",
        Metrics=[
            {
                "Id": "reconciles",
                "ReturnData": True,
                "MetricStat": {
                    "Metric": {
                        "Namespace": {"Ref": "MetricsNamespace"},
                        "MetricName": reconciles.name,
                        "Dimensions": [{"Name": SERVICE_DIMENSION, "Value": SERVICE_NAME}],
                    },
                    "Period": 900,
                    "Stat": "Sum",
                },
            },
            {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(reconciles, 3)", "ReturnData": True},
        ],
        ThresholdMetricId="band",
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        ComparisonOperator="GreaterThanUpperThreshold",
    )
    return found


# -- the dashboard ---------------------------------------------------------------------------------

WIDTH = 12
HEIGHT = 6


def _widget(
    title: str, metrics: list[list[Any]], *, stat: str = "Sum", kind: str = "timeSeries"
) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": WIDTH,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "view": kind,
            "region": "${AWS::Region}",
            "stat": stat,
            "period": 300,
            "metrics": metrics,
        },
    }


def _search(metric: Metric) -> str:
    spec = metric.spec
    keys = ",".join([SERVICE_DIMENSION, *spec.dimensions])
    return f"SEARCH('{{\"${{MetricsNamespace}}\",{keys}}} MetricName=\"{spec.name}\"', 'Sum', 300)"


def metric_widgets() -> list[dict[str, Any]]:
    """Every catalogue metric: its total (dimension ``service``), and by its own dimensions."""
    widgets: list[dict[str, Any]] = []
    for metric in Metric:
        spec = metric.spec
        stat = "Average" if spec.unit == "Seconds" else "Sum"
        total = ["${MetricsNamespace}", spec.name, SERVICE_DIMENSION, SERVICE_NAME]
        lines: list[list[Any]] = [[*total, {"label": f"{spec.name} (all)", "stat": stat}]]
        if spec.unit == "Seconds":
            lines += [[*total, {"label": f"{spec.name} p90", "stat": "p90"}]]
        if spec.dimensions:
            lines.append([{"expression": _search(metric), "id": f"by{len(widgets)}", "label": ""}])
        widgets.append(_widget(f"{spec.name}: {spec.description}", lines, stat=stat))
    return widgets


def aws_widgets(merge_template: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(functions(merge_template))
    executions = [
        ["AWS/States", metric, "StateMachineArn", "${" + machine + "}", {"label": f"{machine} {metric}"}]
        for machine in STATE_MACHINES
        for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut")
    ]
    return [
        _widget("Workflow executions", executions),
        _widget("Lambda errors", [["AWS/Lambda", "Errors", "FunctionName", "${" + n + "}"] for n in names]),
        _widget(
            "Lambda throttles", [["AWS/Lambda", "Throttles", "FunctionName", "${" + n + "}"] for n in names]
        ),
        _widget(
            "Lambda duration p90",
            [["AWS/Lambda", "Duration", "FunctionName", "${" + n + "}"] for n in names],
            stat="p90",
        ),
        _widget(
            "HTTP API answers",
            [
                ["AWS/ApiGateway", metric, "ApiName", "${AWS::StackName}-api", "Stage", API_STAGE]
                for metric in ("Count", "4XXError", "5XXError")
            ],
        ),
        _widget(
            "Event handlers' dead-letter queue",
            [
                [
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    "${" + DEAD_LETTER_QUEUE + ".QueueName}",
                ]
            ],
            stat="Maximum",
        ),
    ]


def dashboard(merge_template: dict[str, Any], alarm_names: list[str]) -> dict[str, Any]:
    alarm_widget = {
        "type": "alarm",
        "width": 24,
        "height": 3,
        "properties": {"title": "Alarms", "alarms": ["${" + name + ".Arn}" for name in sorted(alarm_names)]},
    }
    widgets = [alarm_widget, *metric_widgets(), *aws_widgets(merge_template)]
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardBody": {"Fn::Sub": json.dumps({"widgets": widgets}, separators=(",", ":"))}},
    }


def resources(merge_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The alarms and the dashboard to add to ``merge_template``."""
    found = alarms(merge_template)
    found[DASHBOARD] = dashboard(merge_template, list(found))
    return found
