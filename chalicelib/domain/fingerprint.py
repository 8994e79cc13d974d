"""The fingerprint of what one operation deploys: SHA-256 over the template, parameters, tags and role.

Why: a fleet re-run should touch only stacks whose configuration really changed, and an approved plan
must be applied only to the configuration it was computed from. Both compare this one hash.

What goes in, and why:
- the template, canonicalised when it is JSON (key order and whitespace do not change a stack) and
  taken as text otherwise (YAML comments can matter to nobody, but re-serialising YAML is not safe);
- the parameters and tags exactly as sent (a changed default arrives through the template anyway),
  except NoEcho values, which are never kept (chalicelib/domain/noecho.py): a masked one (``****``) is
  left out, so a request that sends a NoEcho value is never "unchanged" by accident: the caller of
  skip_unchanged deploys it whatever the hash says;
- the target's role ARN: a different role may hold different permissions, so a role change redeploys.
The external ID is left out on purpose: it is a per-target anti-confused-deputy value, not part of what
is deployed, and rotating it must not redeploy a fleet. Stack name, account and region are the identity
of the stack, not its configuration: every comparison is made for one stack.
"""

from __future__ import annotations

import hashlib
import json

from chalicelib.domain.model import canonical_json
from chalicelib.domain.templates import NO_ECHO_MASK

FINGERPRINT_VERSION = 2  # bump when the inputs change, so old hashes never match new ones by accident


def canonical_template(template_body: str) -> str:
    try:
        parsed = json.loads(template_body)
    except ValueError:
        return template_body.replace("\r\n", "\n")
    return canonical_json(parsed)


def config_hash(template_body: str, parameters: dict[str, str], tags: dict[str, str], role_arn: str) -> str:
    payload = {
        "v": FINGERPRINT_VERSION,
        "template": canonical_template(template_body),
        "parameters": {k: v for k, v in parameters.items() if v != NO_ECHO_MASK},
        "tags": dict(tags),
        "role_arn": role_arn,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
