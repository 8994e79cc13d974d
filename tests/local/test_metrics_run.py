"""The metrics of a local-mode run, read from what its process writes: a known sequence of operations
through the real HTTP API of ``python -m localaws.run``, then every EMF document of its output summed as
CloudWatch sums them, metric by metric and dimension by dimension.

A fresh process, so that each function's first invocation is a cold start of this run.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.metrics import Metric
from localaws.demo import AccountAdmin, Api, target_body
from tests.local.test_run import APP_STACK, TOKEN, deploy_and_wait
from tests.support.local_mode import clean_env, local_mode
from tests.support.polling import until
from tests.workflow.test_observability import emf_documents, totals

ACCOUNT = "111111111111"
# A subnet in a VPC that does not exist: the local AWS fails its create, as CloudFormation would.
BROKEN = json.dumps(
    {
        "Resources": {
            "Subnet": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {"VpcId": "vpc-00000000deadbeef0", "CidrBlock": "10.0.0.0/24"},
            }
        }
    }
)


def settled(api: Api, deployment_id: str) -> dict[str, Any]:
    return until(
        lambda: api.ok("GET", f"/deployments/{deployment_id}", status=200),
        ready=lambda d: d["operation"]["status"] in ("SUCCEEDED", "FAILED"),
        timeout=60,
        interval=0.1,
        what=f"{deployment_id} to settle",
    )


def test_a_known_sequence_of_operations_emits_each_metric_with_its_value() -> None:
    env = clean_env(NEXUS_LOCAL_STACK_SECONDS="0")
    with local_mode(TOKEN, env=env) as running:
        api = Api(running.api_url, TOKEN)
        target = api.ok("POST", "/targets", target_body("team-a", ACCOUNT), status=201)
        template = api.ok("GET", f"/targets/{target['target_id']}/bootstrap-template", status=200)
        AccountAdmin(running.aws_url, ACCOUNT).deploy_bootstrap(template)

        one = deploy_and_wait(api, target["target_id"], "one")
        assert one["status"] == "ACTIVE", one
        broken = {"target_id": target["target_id"], "region": "us-east-1", "stack_name": "broken"}
        failed = settled(
            api,
            api.ok("POST", "/deployments", broken | {"template_body": BROKEN}, status=202)["deployment_id"],
        )
        assert failed["status"] == "FAILED", failed
        assert failed["error"]["code"] == "STACK_CREATE_FAILED"
        # Its owner's topic is gone: the outcome cannot be published, and the operation still succeeds.
        notified = broken | {
            "stack_name": "notified",
            "template_body": APP_STACK,
            "notifications": {"sns_topic_arn": f"arn:aws:sns:us-east-1:{ACCOUNT}:deleted-topic"},
        }
        alone = settled(api, api.ok("POST", "/deployments", notified, status=202)["deployment_id"])
        assert alone["status"] == "ACTIVE", alone
        rollout = api.ok(
            "POST",
            "/rollouts",
            {
                "stack_name": "fleet",
                "template_body": APP_STACK,
                "targets": [{"target_id": target["target_id"], "regions": ["us-east-1"]}],
            },
            status=202,
        )
        ended = until(
            lambda: api.ok("GET", f"/rollouts/{rollout['rollout_id']}", status=200),
            ready=lambda r: r["status"] in ("SUCCEEDED", "FAILED", "CANCELLED", "PAUSED"),
            timeout=60,
            interval=0.2,
            what="the rollout to end",
        )
        assert ended["status"] == "SUCCEEDED", ended
        api.ok("DELETE", f"/deployments/{one['deployment_id']}", status=202)
        assert settled(api, one["deployment_id"])["status"] == "DELETED"
        output = running.output()

    documents = emf_documents(output)
    assert totals(documents, Metric.DEPLOYMENTS_STARTED) == {
        (("action", "create"),): 4,
        (("action", "delete"),): 1,
    }
    assert totals(documents, Metric.DEPLOYMENTS_SUCCEEDED) == {
        (("action", "create"),): 3,
        (("action", "delete"),): 1,
    }
    assert totals(documents, Metric.DEPLOYMENTS_FAILED) == {(("error_code", "STACK_CREATE_FAILED"),): 1}
    assert totals(documents, Metric.DEPLOYMENTS_CANCELLED) == {}
    durations = [d["OperationDuration"][0] for d in documents if "OperationDuration" in d]
    assert len(durations) == 5
    assert all(0 <= value < 60 for value in durations), durations
    assert totals(documents, Metric.ROLLOUT_ITEMS) == {(("status", "SUCCEEDED"),): 1}
    assert totals(documents, Metric.NOTIFICATIONS_FAILED) == {(("channel", "sns"),): 1}
    assert totals(documents, Metric.THROTTLES_RETRIED) == {}  # no faults in this run
    assert totals(documents, Metric.FALLBACK_RECONCILES) == {}  # every stack event came
    cold = totals(documents, Metric.COLD_STARTS)
    assert set(cold.values()) == {1}, cold  # one cold start per function in this one process
    started = {dict(key)["function"] for key in cold}
    assert started >= {
        "APIHandler",
        "AcquireLock",
        "StartStackOperation",
        "PollStack",
        "ReleaseLock",
        "StackStatusChanged",
        "NextWave",
        "StartItem",
    }, started
