"""moto's action lookup answers as moto's own listing would (localaws/actions.py)."""

from __future__ import annotations

import importlib

import pytest

from localaws import actions
from localaws.environment import LocalAws


def test_canary_the_action_lookup_it_replaces_is_still_there() -> None:
    actions.check_moto_internals()


@pytest.mark.parametrize(
    "module",
    [
        "moto.cloudformation.responses",
        "moto.dynamodb.responses",
        "moto.iam.responses",
        "moto.stepfunctions.responses",
        "moto.awslambda.responses",
        "moto.sts.responses",
    ],
)
def test_the_same_names_as_moto_lists(module: str) -> None:
    from moto.core.responses import BaseResponse
    from moto.core.utils import method_names_from_class

    with LocalAws():  # patches installed, so the classes hold the operations the local AWS adds
        classes = [
            c
            for c in vars(importlib.import_module(module)).values()
            if isinstance(c, type) and issubclass(c, BaseResponse)
        ]
        assert classes
        for cls in classes:
            listed = set(method_names_from_class(cls))
            names = actions.FunctionNames(cls)
            for name in {*dir(cls), "no_such_action", "create_stack", "describe_stacks"}:
                assert (name in names) == (name in listed), (cls, name)
