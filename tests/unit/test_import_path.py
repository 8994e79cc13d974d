"""The HTTP handler module must stay light: no moto, no boto3 clients, no heavy Powertools at import."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.api.rollout_schemas import RolloutCreate


def fresh_interpreter(probe: str) -> Any:
    """What ``probe`` prints as JSON, run in a fresh interpreter (nothing imported yet)."""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={"PATH": ""}
    )
    return json.loads(out.stdout)


def test_importing_app_loads_no_heavy_modules_and_reads_no_aws():
    probe = (
        "import sys, json; import app; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('moto', 'boto3', 'aws_xray_sdk', 'localaws') or m.startswith('aws_lambda_powertools.utilities.idempotency') "
        # the answer models: only the OpenAPI document and the contract tests need them
        "or m == 'chalicelib.api.answers')))"
    )
    assert fresh_interpreter(probe) == []


def test_importing_app_builds_no_pydantic_model():
    """Every request and event model is built (``defer_build``) when the first request or event needs
    it: building them all cost each cold start of every function about 30 ms (BENCHMARKS.md section 1),
    for the one or two models a request uses."""
    probe = (
        "import json, sys; import app; from pydantic import BaseModel\n"
        "def subclasses(cls):\n"
        "    for sub in cls.__subclasses__():\n"
        "        yield sub\n"
        "        yield from subclasses(sub)\n"
        "ours = [c for c in subclasses(BaseModel) if c.__module__.startswith(('chalicelib', 'app'))]\n"
        "print(json.dumps({'models': len(ours), "
        "'built': sorted(c.__qualname__ for c in ours if c.__pydantic_complete__)}))"
    )
    found = fresh_interpreter(probe)
    assert found["models"] >= 20  # the request and event models are all there, unbuilt
    assert found["built"] == []


def test_a_deferred_model_validates_and_documents_as_before():
    """Deferred, a model still refuses what it refused and documents its defaults (the rollout's
    strategy default, a factory now, is still in the document)."""
    schema = RolloutCreate.model_json_schema()
    assert schema["properties"]["strategy"]["default"] == {
        "canary": 0,
        "max_concurrent": 10,
        "failure_tolerance": 0,
        "region_order": "parallel",
    }
    with pytest.raises(ValidationError) as refused:
        RolloutCreate.model_validate({"stack_name": "s", "template_body": "{}", "targets": [], "extra": 1})
    assert {e["loc"][0] for e in refused.value.errors()} == {"targets", "extra"}
