"""Templates refused before any AWS call, with CloudFormation's limits in the message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.domain.templates import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    NO_ECHO_MASK,
    parse_template,
)


def laughs(levels: int) -> str:
    """The "billion laughs": each level an anchor of 9 aliases of the one before."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + f"\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n    Metadata: *l{levels - 1}\n"


def refused(body: str) -> UnprocessableRequest:
    with pytest.raises(UnprocessableRequest) as caught:
        parse_template(body)
    return caught.value


def details_of(error: UnprocessableRequest) -> dict[str, Any]:
    assert isinstance(error.details, dict)
    return error.details


def queue_template(**sections: object) -> str:
    return json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, **sections})


@pytest.mark.parametrize(
    ("section", "count", "limit"),
    [("Parameters", 201, 200), ("Outputs", 201, 200), ("Mappings", 201, 200)],
)
def test_sections_over_cloudformations_limits(section, count, limit):
    entries: dict[str, Any] = {
        f"E{n}": ({"Type": "String"} if section == "Parameters" else {"Value": "x"}) for n in range(count)
    }
    if section == "Mappings":
        entries = {f"E{n}": {"k": {"v": "x"}} for n in range(count)}
    error = refused(queue_template(**{section: entries}))
    assert error.code == "TEMPLATE_LIMIT_EXCEEDED"
    noun = section.lower()
    assert f"Number of {noun}, {count}, is greater than the maximum allowed, {limit}" in error.message
    assert details_of(error)["limit"] == limit
    # At the limit it is accepted.
    trimmed = dict(list(entries.items())[:limit])
    parse_template(queue_template(**{section: trimmed}))


def test_more_than_500_resources():
    many = json.dumps({"Resources": {f"R{n}": {"Type": "AWS::SQS::Queue"} for n in range(4700)}})
    error = refused(many)
    assert "Number of resources, 4700, is greater than the maximum allowed, 500" in error.message
    assert (
        parse_template(
            json.dumps({"Resources": {f"R{n}": {"Type": "AWS::SQS::Queue"} for n in range(500)}})
        ).resource_count
        == 500
    )


def test_billion_laughs_is_refused_without_expanding_it():
    body = laughs(9)  # 9**9 = 387 million nodes once expanded; a few hundred bytes of text
    assert len(body) < 600
    error = refused(body)
    assert error.code == "TEMPLATE_LIMIT_EXCEEDED"
    assert details_of(error)["limit"] == MAX_EXPANDED_NODES
    parse_template(laughs(3))  # 9**3 = 729 nodes: an alias used as aliases are meant to be


def test_a_recursive_alias_is_refused():
    assert refused("a: &a [*a]\nResources: {Q: {Type: AWS::SQS::Queue}}\n").code == "INVALID_TEMPLATE"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 2000])
@pytest.mark.parametrize("form", ["json", "yaml"])
def test_deep_nesting_is_refused(depth, form):
    nested = "[" * depth + "]" * depth
    body = (
        '{"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Metadata": ' + nested + "}}}"
        if form == "json"
        else "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Metadata: " + nested + "\n"
    )
    error = refused(body)
    assert error.code == "TEMPLATE_LIMIT_EXCEEDED"
    assert details_of(error)["what"] == "depth"


def test_nesting_within_the_bound_is_accepted():
    nested = "[" * (MAX_DEPTH - 4) + "]" * (MAX_DEPTH - 4)
    summary = parse_template('{"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Metadata": ' + nested + "}}}")
    assert summary.resource_count == 1


def test_an_unpaired_surrogate_is_not_a_template():
    error = refused('{"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Metadata": "\ud800"}}}')
    assert error.code == "INVALID_TEMPLATE"
    assert "surrogate" in details_of(error)["errors"][0]


def test_noecho_parameters_are_known():
    summary = parse_template(
        "Parameters:\n  A: {Type: String, NoEcho: true}\n  B: {Type: String, NoEcho: 'true', Default: x}\n"
        "  C: {Type: String, NoEcho: false}\nResources:\n  Q: {Type: AWS::SQS::Queue}\n"
    )
    assert summary.no_echo == {"A", "B"}
    assert NO_ECHO_MASK == "****"


@pytest.mark.parametrize(
    ("default", "size"),
    [
        ("x" * 4097, 4097),
        ("é" * 2049, 4098),  # bytes, not characters: 2,049 characters
        (["a" * 2048, "b" * 2048], 4097),  # a YAML list: joined with commas, as CloudFormation takes it
    ],
)
def test_a_parameter_default_over_a_parameter_values_4096_bytes(default: Any, size: int) -> None:
    secret = {"Type": "String", "NoEcho": True, "Default": default}
    error = refused(queue_template(Parameters={"Big": secret}))
    assert error.code == "TEMPLATE_LIMIT_EXCEEDED"
    assert "Parameter 'Big' default value is" in error.message
    assert details_of(error) == {
        "field": "template_body",
        "what": "parameter default",
        "parameter": "Big",
        "bytes": size,
        "limit": 4096,
    }
    assert "xxxx" not in error.message + error.hint  # a NoEcho default is not repeated


def test_a_parameter_default_of_4096_bytes_is_accepted() -> None:
    summary = parse_template(queue_template(Parameters={"Big": {"Type": "String", "Default": "é" * 2048}}))
    assert summary.parameters == {"Big": True}
    yaml_number = (
        "Parameters:\n  N:\n    Type: Number\n    Default: 5\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n"
    )
    assert parse_template(yaml_number).parameters == {"N": True}
