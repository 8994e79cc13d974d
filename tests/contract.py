"""Every answer the tests see is checked against its route's declared contract (chalicelib/api/routing.py).

``check_answer`` fails when a status is not declared for the route, when a body does not validate
against the declared answer model (strictly: unknown keys and wrong types fail), or when an error's
code is not one the route declares for that status. ``tests/conftest.py``'s ``call`` runs it on every
answer, so the whole API suite holds the route table to what the routes really answer.
"""

from __future__ import annotations

from chalicelib.api import answers
from chalicelib.api.table import ROUTES


def check_answer(method: str, path: str, status: int, body: bytes | str) -> None:
    route = ROUTES.find(method, path)
    if route is None:
        return  # not a route of the table: Chalice answers it (see tests/api/test_contract.py)
    raw = body.decode() if isinstance(body, bytes) else body
    where = f"{method} {path} answered {status}"
    if status in route.responses:
        model = route.answer_models()[status]
        if model is None:
            assert raw == "", f"{where} with a body, but declares none"
        else:
            model.model_validate_json(raw, strict=True)
        return
    assert status in route.errors, f"{where}, which {route.name} does not declare: {raw[:300]}"
    code = answers.Error.model_validate_json(raw, strict=True).error.code
    assert code in route.errors[status], f"{where} {code}, not among {route.errors[status]} declared"
