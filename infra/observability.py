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
* any message in the event handlers' dead-letter queue, whose events are lost unless someone acts (a
  redeploy not made, a stopped execution's deployment left unrecorded); and at least
  ``StackEventDeadLettersAlarmThreshold`` sent to the stack events' own queue within an hour. A stack
  event that failed every attempt only made its operation wait for its reconcile, which ended it anyway
  (counted by FallbackReconciles, whose alarm watches their rate; its account and region then poll for
  a while), so the few left by a burst of throttling page no one; a handler that keeps failing (throttled
  for good, timing out, unable to start) sends many. A handler's bug is logged and the event dropped,
  never retried (``guarded``), so it reaches neither queue;
* fallback reconciles above their anomaly-detection band: lost stack events (a target account or
  region whose forwarding broke) show as a rise of reconciles after the wait's timeout.

The dashboard shows every catalogue metric (its total, and a SEARCH by its own dimensions), the
workflows' executions, the functions' errors, throttles and durations, the API and the queues.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from chalicelib.domain.metrics import SERVICE_DIMENSION, Metric
from chalicelib.observability import SERVICE_NAME

STATE_MACHINES = ("DeploymentStateMachine", "RolloutStateMachine")
DEAD_LETTER_QUEUE = "EventHandlerDeadLetterQueue"
STACK_EVENT_DEAD_LETTER_QUEUE = "StackEventDeadLetterQueue"  # StackStatusChanged's: see the docstring
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


def _sum_alarm(description: str, metric: str, function_names: list[str]) -> dict[str, Any]:
    """One alarm on the sum of a Lambda metric over several functions (metric math)."""
    queries = [
        _query(f"m{n}", "AWS/Lambda", metric, {"FunctionName": {"Ref": name}})
        for n, name in enumerate(function_names)
    ]
    total = {"Id": "total", "Expression": f"SUM([{','.join(q['Id'] for q in queries)}])", "ReturnData": True}
    return _threshold_alarm(description, [*queries, total])


def _errors_alarm(description: str, function_names: list[str]) -> dict[str, Any]:
    """The Lambda errors of several functions, each function's less its ``RetriesRequested``.

    A step that hands a throttled AWS back to its Retry (TransientAwsError) is a Lambda error too, and
    would otherwise page on every throttle. Each function's errors are discounted by its own retries
    only, never below 0 (a retry elsewhere must not hide a real error); missing data counts as 0. A
    retry's data point and its Lambda error can fall in adjacent 5-minute periods when an invocation
    spans a period's end (a step runs for about a second of the 300): the error then counts once."""
    queries: list[dict[str, Any]] = []
    own: list[dict[str, Any]] = []
    for n, name in enumerate(function_names):
        queries.append(_query(f"m{n}", "AWS/Lambda", "Errors", {"FunctionName": {"Ref": name}}))
        dimensions = {SERVICE_DIMENSION: SERVICE_NAME, "function": name}
        queries.append(
            _query(f"r{n}", {"Ref": "MetricsNamespace"}, Metric.RETRIES_REQUESTED.spec.name, dimensions)
        )
        errors, retries = f"FILL(m{n}, 0)", f"FILL(r{n}, 0)"
        own.append(
            {
                "Id": f"e{n}",
                "Expression": f"IF({errors} > {retries}, {errors} - {retries}, 0)",
                "ReturnData": False,
            }
        )
    total = {"Id": "total", "Expression": f"SUM([{','.join(q['Id'] for q in own)}])", "ReturnData": True}
    return _threshold_alarm(description, [*queries, *own, total])


def _threshold_alarm(description: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return _alarm(
        description,
        Metrics=metrics,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def _groups(role: str, names: list[str], size: int) -> Iterator[tuple[str, list[str]]]:
    """The role's functions in groups of at most ``size``, each with its alarm's label (numbered when
    there is more than one group)."""
    for part, start in enumerate(range(0, len(names), size)):
        yield f"{role}{part + 1 if len(names) > size else ''}", names[start : start + size]


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
        for label, group in _groups(role, names, MAX_ALARM_METRICS):
            found[f"{label}FunctionThrottlesAlarm"] = _sum_alarm(
                f"Lambda throttled invocations (concurrency exhausted) of {', '.join(group)}.",
                "Throttles",
                group,
            )
        # The errors alarm reads two metrics per function (its errors, its retries requested).
        for label, group in _groups(role, names, MAX_ALARM_METRICS // 2):
            found[f"{label}FunctionErrorsAlarm"] = _errors_alarm(
                f"Lambda errors (a handler raised, timed out or ran out of memory) in {', '.join(group)}, "
                "each function's less its invocations that handed a throttled AWS back to be retried "
                "(RetriesRequested).",
                group,
            )
    found["ApiServerErrorsAlarm"] = _metric_alarm(
        "The HTTP API answered 5xx: a fault of the service (client errors are 4xx).",
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": API_NAME, "Stage": API_STAGE},
    )
    found["DeadLetterQueueAlarm"] = _metric_alarm(
        "An event failed every attempt of its handler and waits in the dead-letter queue: a redeploy not "
        "made, a template object's or an ended execution's event not handled, until someone acts.",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": [DEAD_LETTER_QUEUE, "QueueName"]}},
        statistic="Maximum",
    )
    # A rate, not the queue's depth: nothing empties the queue, so its depth would count every burst of
    # the last 4 days, then stay in ALARM (notifying once) when the handler really starts failing. Lambda
    # sends dead letters with SendMessage, which NumberOfMessagesSent counts (a redrive would not).
    found["StackEventDeadLettersAlarm"] = _metric_alarm(
        "At least StackEventDeadLettersAlarmThreshold stack events failed every attempt of StackStatusChanged "
        "within an hour: the handler keeps failing. Each operation still ends, by its wait's timeout and a "
        "reconcile, and the account and region then poll for a while (see FallbackReconciles).",
        "AWS/SQS",
        "NumberOfMessagesSent",
        {"QueueName": {"Fn::GetAtt": [STACK_EVENT_DEAD_LETTER_QUEUE, "QueueName"]}},
        period=3600,
        threshold={"Ref": "StackEventDeadLettersAlarmThreshold"},
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
            "Event handlers' dead-letter queues",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${" + queue + ".QueueName}"]
                for queue in (DEAD_LETTER_QUEUE, STACK_EVENT_DEAD_LETTER_QUEUE)
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
