"""``nexus_cli.inputs``: command-line values into request fields, malformed ones refused (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexus_cli.inputs import (
    count_or_percent,
    parameters_of,
    parse_pairs,
    parse_target,
    read_parameters_file,
    region_order,
)
from nexus_cli.signin import UsageProblem


def test_pairs_split_at_the_first_equals_sign_and_the_last_repeat_wins() -> None:
    assert parse_pairs(["A=1", "B=x=y", "A=2", "C="], "--parameter") == {"A": "2", "B": "x=y", "C": ""}
    with pytest.raises(UsageProblem, match="KEY=VALUE"):
        parse_pairs(["novalue"], "--parameter")
    with pytest.raises(UsageProblem):
        parse_pairs(["=value"], "--tag")


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(
            [{"ParameterKey": "Env", "ParameterValue": "prod"}, {"ParameterKey": "N", "ParameterValue": "3"}]
        ),
        json.dumps(["Env=prod", "N=3"]),
        json.dumps({"Env": "prod", "N": 3}),
        "# the production values\nEnv=prod\n\nN=3\n",
    ],
    ids=["create-stack JSON", "deploy JSON list", "JSON object", "K=V lines"],
)
def test_every_parameters_file_format_reads_the_same(tmp_path: Path, content: str) -> None:
    path = tmp_path / "params"
    path.write_text(content)
    assert read_parameters_file(str(path)) == {"Env": "prod", "N": "3"}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (json.dumps([{"ParameterKey": "Env", "UsePreviousValue": True}]), "UsePreviousValue"),
        ("[not json", "not valid JSON"),
        (json.dumps([{"Key": "Env"}]), "each entry"),
        (json.dumps({"Env": True}), "string or a number"),
        ("Env prod\n", "KEY=VALUE"),
    ],
)
def test_malformed_parameters_files_are_usage_errors(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "params"
    path.write_text(content)
    with pytest.raises(UsageProblem, match=says):
        read_parameters_file(str(path))


def test_parameter_options_override_the_file_and_nothing_given_is_none(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps(["Env=dev", "N=3"]))
    assert parameters_of(str(path), ["Env=prod"]) == {"Env": "prod", "N": "3"}
    assert parameters_of(None, None) is None
    with pytest.raises(UsageProblem, match=r"missing\.json"):
        parameters_of(str(tmp_path / "missing.json"), None)


def test_targets_counts_and_region_orders() -> None:
    assert parse_target("tgt-1") == {"target_id": "tgt-1"}
    assert parse_target("tgt-1=us-east-1, eu-west-1") == {
        "target_id": "tgt-1",
        "regions": ["us-east-1", "eu-west-1"],
    }
    with pytest.raises(UsageProblem):
        parse_target("tgt-1=")
    assert count_or_percent("3", "--canary") == 3
    assert count_or_percent("25%", "--max-concurrent") == "25%"
    assert count_or_percent(None, "--max-concurrent") is None
    with pytest.raises(UsageProblem, match="percentage"):
        count_or_percent("lots", "--max-concurrent")
    assert region_order("parallel") == "parallel"
    assert region_order("us-east-1,eu-west-1") == ["us-east-1", "eu-west-1"]
