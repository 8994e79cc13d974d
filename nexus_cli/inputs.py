"""Command-line values into API request fields: ``K=V`` pairs, parameter files, templates, targets.

Pure functions: a malformed value raises ``UsageProblem`` (exit code 2) before any API call.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nexus_cli.signin import UsageProblem

_PERCENT = re.compile(r"^\d{1,3}%$")


def parse_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` -> ``{"A": "1", "B": "x=y"}``; the last of a repeated key wins."""
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise UsageProblem(f"{option} takes KEY=VALUE, got {value!r}")
        pairs[key.strip()] = rest
    return pairs


def read_parameters_file(path: str) -> dict[str, str]:
    """Parameters from a file in one of the AWS CLI's formats, or ``KEY=VALUE`` lines.

    * ``[{"ParameterKey": "Env", "ParameterValue": "prod"}, ...]`` (``create-stack --parameters file://``);
    * ``["Env=prod", ...]`` or ``{"Env": "prod"}`` (``deploy --parameter-overrides file://``);
    * ``Env=prod`` lines; blank lines and lines starting with ``#`` are skipped.
    """
    text = _read(path, "--parameters-file")
    stripped = text.lstrip()
    if not stripped.startswith(("[", "{")):
        lines = [line.strip() for line in text.splitlines()]
        return parse_pairs([line for line in lines if line and not line.startswith("#")], path)
    try:
        document = json.loads(text)
    except ValueError as error:
        raise UsageProblem(f"--parameters-file {path} is not valid JSON: {error}") from None
    if isinstance(document, dict):
        return {str(k): _scalar(v, path, str(k)) for k, v in document.items()}
    parameters: dict[str, str] = {}
    for entry in document:
        if isinstance(entry, str):
            parameters.update(parse_pairs([entry], path))
        elif isinstance(entry, dict) and "ParameterKey" in entry:
            if entry.get("UsePreviousValue"):
                raise UsageProblem(
                    f"{path}: UsePreviousValue is not supported; leave the parameters out and the "
                    "deployment keeps its values"
                )
            key = str(entry["ParameterKey"])
            parameters[key] = _scalar(entry.get("ParameterValue"), path, key)
        else:
            raise UsageProblem(
                f"{path}: each entry must be KEY=VALUE or {{'ParameterKey': ..., 'ParameterValue': ...}}"
            )
    return parameters


def _scalar(value: Any, path: str, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageProblem(f"{path}: the value of {key} must be a string or a number")
    return str(value)


def read_template(path: str) -> str:
    body = _read(path, "--template")
    if not body.strip():
        raise UsageProblem(f"--template {path} is empty")
    return body


def _read(path: str, option: str) -> str:
    try:
        return Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageProblem(
            f"{option} {path}: {error.strerror if isinstance(error, OSError) else error}"
        ) from None


def parameters_of(parameters_file: str | None, parameter: list[str] | None) -> dict[str, str] | None:
    """The file's parameters overridden by each ``--parameter``; None when neither was given."""
    if parameters_file is None and not parameter:
        return None
    merged = read_parameters_file(parameters_file) if parameters_file else {}
    merged.update(parse_pairs(parameter, "--parameter"))
    return merged


def parse_target(value: str) -> dict[str, Any]:
    """``tgt-...`` or ``tgt-...=us-east-1,eu-west-1`` -> a rollout's ``{"target_id", "regions"?}``."""
    target_id, sep, regions = value.partition("=")
    if not target_id:
        raise UsageProblem(f"--target takes TARGET_ID or TARGET_ID=REGION[,REGION...], got {value!r}")
    if not sep:
        return {"target_id": target_id}
    listed = [r.strip() for r in regions.split(",") if r.strip()]
    if not listed:
        raise UsageProblem(f"--target {value}: name at least one region after '='")
    return {"target_id": target_id, "regions": listed}


def count_or_percent(value: str | None, option: str) -> int | str | None:
    """``"3"`` -> 3, ``"25%"`` -> ``"25%"``; the API checks the range."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    if _PERCENT.match(value):
        return value
    raise UsageProblem(f"{option} takes a number or a percentage such as 25%, got {value!r}")


def region_order(value: str | None) -> list[str] | str | None:
    if value is None or value == "parallel":
        return value
    return [r.strip() for r in value.split(",") if r.strip()]
