"""The HTTP handler module must stay light: no moto, no boto3 clients, no heavy Powertools at import."""

from __future__ import annotations

import json
import subprocess
import sys


def test_importing_app_loads_no_heavy_modules_and_reads_no_aws():
    probe = (
        "import sys, json; import app; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('moto', 'boto3', 'aws_xray_sdk', 'localaws') or m.startswith('aws_lambda_powertools.utilities.idempotency') "
        # the answer models: only the OpenAPI document and the contract tests need them
        "or m == 'chalicelib.api.answers')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={"PATH": ""}
    )
    assert json.loads(out.stdout) == []
