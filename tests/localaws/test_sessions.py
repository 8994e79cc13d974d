"""The local AWS's botocore sessions are what ``botocore.session.Session()`` makes (localaws/sessions.py)."""

from __future__ import annotations

import boto3
import botocore.handlers
import botocore.session
import moto  # noqa: F401 - its handler is among BUILTIN_HANDLERS, as in every test process
from aws_lambda_powertools import Logger  # noqa: F401 - registers a session initializer, as the app does

from localaws import sessions
from localaws.patching import source_digest

# sha256 of botocore 1.44.8's Session._register_builtin_handlers, which new_core_session reproduces.
_REGISTER_BUILTIN_SHA256 = "0a4060d2bd379dacdcab5b363d65009241e4ae714e6724260578cde77c4b45ba"
EVENTS = [
    "before-call.sts.AssumeRole",
    "before-send.s3.PutObject",
    "needs-retry.dynamodb.Query",
    "before-parameter-build.s3.PutObject",
    "after-call.cloudformation.CreateStack",
    "choose-signer.lambda.Invoke",
    "creating-client-class.s3",
    "request-created.stepfunctions.StartExecution",
    "docs.request-params.s3.PutObject.complete-section",
]


def test_canary_botocore_registers_its_builtin_handlers_as_this_copies_them() -> None:
    registering = botocore.session.Session._register_builtin_handlers  # type: ignore[attr-defined]
    assert source_digest(registering) == _REGISTER_BUILTIN_SHA256


def _handlers(core: botocore.session.Session, event: str) -> list[object]:
    """The handlers of ``event`` in order; by name, since session initializers (Powertools') register a
    closure of their own on each session."""
    found = core._original_handler._handlers.prefix_search(event)  # type: ignore[attr-defined]
    return [(getattr(h, "__module__", None), getattr(h, "__qualname__", type(h).__qualname__)) for h in found]


def test_a_session_has_botocores_handlers_in_botocores_order() -> None:
    plain, ours = botocore.session.Session(), sessions.new_core_session()
    names = {str(spec[0]) for spec in botocore.handlers.BUILTIN_HANDLERS} | set(EVENTS)
    for event in sorted(names):
        assert _handlers(ours, event) == _handlers(plain, event), event


def test_a_handler_one_session_registers_is_not_in_the_next() -> None:
    first = sessions.new_core_session()
    first.register("before-call.sts.AssumeRole", _marker)
    marker = (_marker.__module__, _marker.__qualname__)
    assert marker in _handlers(first, "before-call.sts.AssumeRole")
    assert marker not in _handlers(sessions.new_core_session(), "before-call.sts.AssumeRole")


def test_the_shared_loader_keeps_each_search_path_once() -> None:
    for _ in range(3):
        boto3.Session(botocore_session=sessions.new_core_session(), region_name="us-east-1")
    paths = sessions.shared_loader().search_paths
    assert len(paths) == len(set(paths))


def _marker(**_: object) -> None:
    pass
