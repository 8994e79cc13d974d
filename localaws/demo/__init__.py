"""The demo (``make demo``, or ``python -m localaws.demo``): local mode doing a real job, end to end.

It starts local mode (``python -m localaws.run``) as a child process on free ports, waits for
``/health``, and then does what a portal and a target account's administrator do, through the
public HTTP API only:

1. register a target in account 111111111111 (the service runs in 123456789012);
2. deploy the target's bootstrap template there (GET /targets/{id}/bootstrap-template: the
   deployment role with the trust policy the API returned and the guide's permissions), as that
   account's admin would (CloudFormation against the embedded AWS, acting in that account); then
   the guide's "Test Credentials": POST /targets/{id}/validate, printed as a checklist;
3. deploy ``examples/app-stack.json`` (bucket, queue, table, parameters, outputs) and
4. follow its events live with a progress bar; 5. print its outputs;
6. change a parameter (PUT) and show the changed output;
7. deploy ``examples/broken-stack.json`` and show FAILED with the error's reason and hint;
8. register a second target whose role trusts a wrong external ID: validate fails at assume_role
   with the fix, and a deployment is FAILED with the same ACCESS_DENIED and no stack in that account;
9. delete the first stack and show DELETED;
10. a fleet of three accounts: 111111111111 already runs ``demo-fleet`` with exactly the rollout's
    configuration, 333333333333 (registered and bootstrapped like the first target) runs an older
    one, 444444444444 none;
11. POST /rollouts with ``"mode": "plan"`` and a canary of 1: each item's change set (Add, Modify,
    Remove, replacements, IAM) and the fleet summary; nothing is applied yet;
12. POST /rollouts/{id}/apply: the waves as they run (the canary alone, then the rest), then each
    item: 111111111111 SKIPPED (its plan had no changes: CloudFormation itself found the stack already
    at that configuration), the others SUCCEEDED, and DescribeStacks in each account;
13. stop the service (SIGINT, which must exit 0).

Why it checks as it goes: a demo that prints green while the stacks are not where it says proves
nothing, so it asks CloudFormation in the target account (DescribeStacks against the embedded AWS)
that the stack exists after the create and is gone after the delete (and, for the rollout, that the
skipped stack was never updated and the others are at the new configuration), checks that no later
wave started before the canary ended, and exits 0 only when every step behaved as expected.
``NEXUS_LOCAL_STACK_SECONDS`` (default 3) sets how long each stack operation takes; the wall time
is printed at the end.

The target account's admin reaches the embedded AWS with the ``x-moto-account-id`` header (added
by a botocore ``before-sign`` hook): moto picks the account from it, and no STS call is involved.

The package: ``base`` (the constants, ``DemoFailed`` and ``expect``), ``clients`` (the HTTP API and
an account's admin), ``following`` (a deployment's events and a rollout's waves, live), ``printing``,
``story`` (the steps) and ``service`` (the child process and ``main``). Every name is re-exported here
(``from localaws.demo import Api``).
"""

from localaws.demo.base import (
    EXAMPLES,
    FLEET_STACK,
    HOST,
    ITEM_ENDED,
    MISCONFIGURED_ACCOUNT,
    NEW_ACCOUNT,
    REGION,
    ROLE_NAME,
    ROLLOUT_ENDED,
    ROOT,
    SETTLED,
    STOP_STEP,
    TARGET_ACCOUNT,
    UPDATED_ACCOUNT,
    DemoFailed,
    expect,
)
from localaws.demo.clients import AccountAdmin, Api, target_body, wait_deployment, wait_rollout
from localaws.demo.following import Follower, watch_rollout
from localaws.demo.printing import format_event, print_error, print_outputs, print_plan, print_report
from localaws.demo.service import main, start_service, stop_service, wait_until_healthy
from localaws.demo.story import resource_count, run_fleet_story, run_story

__all__ = [
    "EXAMPLES",
    "FLEET_STACK",
    "HOST",
    "ITEM_ENDED",
    "MISCONFIGURED_ACCOUNT",
    "NEW_ACCOUNT",
    "REGION",
    "ROLE_NAME",
    "ROLLOUT_ENDED",
    "ROOT",
    "SETTLED",
    "STOP_STEP",
    "TARGET_ACCOUNT",
    "UPDATED_ACCOUNT",
    "AccountAdmin",
    "Api",
    "DemoFailed",
    "Follower",
    "expect",
    "format_event",
    "main",
    "print_error",
    "print_outputs",
    "print_plan",
    "print_report",
    "resource_count",
    "run_fleet_story",
    "run_story",
    "start_service",
    "stop_service",
    "target_body",
    "wait_deployment",
    "wait_rollout",
    "wait_until_healthy",
    "watch_rollout",
]
