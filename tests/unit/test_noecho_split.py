"""split_parameters: ``****`` (what a NoEcho value is shown as) is never sent to CloudFormation as a value."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.domain.noecho import split_parameters
from chalicelib.domain.templates import NO_ECHO_MASK, parse_template


def template(no_echo: bool, default: str | None = None) -> str:
    password: dict[str, object] = {"Type": "String", "NoEcho": no_echo}
    if default is not None:
        password["Default"] = default
    return json.dumps({"Parameters": {"Password": password}, "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})


def test_a_mask_for_a_parameter_no_longer_noecho_keeps_the_stacks_value() -> None:
    # The stored parameters hold **** from when the template marked Password NoEcho; an update without
    # parameters sends them back with a template that no longer does.
    split = split_parameters(
        parse_template(template(no_echo=False)), {"Password": NO_ECHO_MASK}, ("Password",)
    )
    assert split.previous == ("Password",)  # UsePreviousValue, not the literal ****
    assert split.secret == {}


def test_a_mask_with_no_previous_value_must_be_sent_again() -> None:
    for body in (template(no_echo=False), template(no_echo=True, default="d3fault")):
        with pytest.raises(UnprocessableRequest) as refused:
            split_parameters(parse_template(body), {"Password": NO_ECHO_MASK}, ())
        assert refused.value.code == "NOECHO_VALUE_REQUIRED"
        assert refused.value.details == {"parameters": ["Password"]}


def test_real_values_are_split_as_before() -> None:
    split = split_parameters(parse_template(template(no_echo=True)), {"Password": "s3cret-value"}, ())
    assert split.public == {"Password": NO_ECHO_MASK}
    assert split.secret == {"Password": "s3cret-value"}
    plain = split_parameters(parse_template(template(no_echo=False)), {"Password": "visible"}, ("Password",))
    assert plain.public == {"Password": "visible"}
    assert plain.previous == ()
