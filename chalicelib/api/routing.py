"""The route table: every HTTP route is a short module-level function plus its declared contract.

A route module keeps one ``routes = RouteTable()`` and decorates its functions with it; the decorator
records what the route takes and answers (a ``Route``: path, method, body and query models, path id
kinds, answer models by status, the error codes it can answer, idempotency, authentication) and
``RouteTable.register`` installs every route into the Chalice app behind one wrapper. The same
records generate the OpenAPI document and let the tests check each answer against its contract.

What the wrapper does for every request, in this order, so that no AWS call happens before the input
is valid (only step 5 does I/O before the route function runs):

1. the Authorization header's shape (``http.bearer``);
2. the path ids: an id of the wrong shape is a 404 (``http.path_ids``);
3. the body, into the route's body model (``http.body``);
4. the query string, into the route's query model (``http.query``; its validators see the path ids);
5. the token's tenant (one DynamoDB read);
6. the route function, under the ``Idempotency-Key`` when the route is idempotent (an answer
   replayed for a key seen before carries ``Idempotent-Replayed: true``);

and any exception becomes an answer in ``chalicelib/api/errors.py``, the one error mapping.

How to add a route
------------------
Put it in the route module of its resource (or a new module with its own ``routes = RouteTable()``,
listed in ``chalicelib/api/table.py``). Its function takes the validated ``Call`` and returns a
``Reply``; keep it to 3-8 lines: build the service's input from the models, make one service call,
dump the result::

    @routes.post(
        "/targets/{target_id}/widgets",
        body=WidgetCreate,                      # chalicelib/api/schemas.py: extra="forbid"
        responses={201: "Widget"},              # a model of chalicelib/api/answers.py: its .public()
        errors={409: ("WIDGET_EXISTS",)},       # the service's own codes, by status
        idempotent=True,                        # honours Idempotency-Key (writes only)
        precheck=check_widget,                  # (optional) its checks that need no AWS call, run
    )                                           # before a key's record is written
    def create_widget(call: Call[WidgetCreate, None]) -> Reply:
        \"\"\"Add a widget to a target (first line: the OpenAPI summary; the rest: its description).\"\"\"
        widget = call.services.widgets.create(call.tenant, call.ids["target_id"], call.body.name)
        return Reply(201, widget.public())

Name path parameters after their id kind (``target_id``, ``deployment_id``, ``rollout_id``: see
``http.ID_PATTERNS``). Declare only the route's own error codes: the table adds the common ones
(401 for authentication, 400/413/422 for the body and query, 404 for path ids, the idempotency
codes, 500). Every API test checks that each answer's status is declared, its body validates
against the declared model, and an error's code is one of the declared ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from chalice.app import Chalice, Response
from pydantic import BaseModel

from chalicelib import observability
from chalicelib.api import http
from chalicelib.api.errors import error_response, json_response
from chalicelib.api.schemas import PageQuery
from chalicelib.composition import Container, Services
from chalicelib.domain.errors import DeployerError

BodyT = TypeVar("BodyT")
QueryT = TypeVar("QueryT")
# The content type is checked by http.body, so a wrong one gets our error body, not Chalice's 415.
ALL_CONTENT_TYPES = ["*/*"]
REPLAYED_HEADER = "Idempotent-Replayed"
_PATH_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Call(Generic[BodyT, QueryT]):
    """One validated request, as a route function sees it."""

    tenant: str  # "" on a route that is not authenticated
    ids: Mapping[str, str]  # the path's ids, by parameter name, already checked
    body: BodyT
    query: QueryT
    container: Container

    @property
    def services(self) -> Services:
        return self.container.get()


@dataclass(frozen=True)
class Reply:
    """A route's answer: a status and a JSON-able body (None: no body, as for 204)."""

    status: int
    body: Any = None


RouteFunction = Callable[[Call[Any, Any]], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: RouteFunction
    body: type[BaseModel] | None
    body_optional: bool
    query: type[BaseModel] | None
    # Each status's answer model, by its name in chalicelib/api/answers.py (None: no body). By name, so
    # that the handler's import does not build those models: only the OpenAPI document and the contract
    # tests read them (``answer_models``).
    responses: Mapping[int, str | None]
    errors: Mapping[int, tuple[str, ...]]  # the route's own codes and the common ones, by status
    idempotent: bool
    authenticated: bool
    # The route's checks that need no AWS call, run before an Idempotency-Key's record is written: an
    # invalid request under a key costs no write (the route runs them again itself).
    precheck: Callable[[Call[Any, Any]], None] | None = None

    @property
    def name(self) -> str:
        return self.function.__name__

    def answer_models(self) -> dict[int, type[BaseModel] | None]:
        """``responses`` with each name replaced by its model (AttributeError for a name that is none)."""
        from chalicelib.api import answers

        return {
            status: None if name is None else getattr(answers, name)
            for status, name in self.responses.items()
        }

    @property
    def id_params(self) -> tuple[str, ...]:
        return tuple(_PATH_PARAM.findall(self.path))

    @property
    def summary(self) -> str:
        return (self.function.__doc__ or self.name).strip().splitlines()[0]

    @property
    def description(self) -> str:
        lines = (self.function.__doc__ or "").strip().splitlines()[1:]
        return " ".join(line.strip() for line in lines).strip()

    def matches(self, method: str, path: str) -> bool:
        mine, theirs = self.path.split("/"), path.split("?", 1)[0].split("/")
        return (
            method == self.method
            and len(mine) == len(theirs)
            and all(a == b or (a.startswith("{") and b != "") for a, b in zip(mine, theirs, strict=True))
        )


def common_errors(
    *,
    authenticated: bool,
    has_ids: bool,
    body: type[BaseModel] | None,
    query: type[BaseModel] | None,
    idempotent: bool,
) -> dict[int, tuple[str, ...]]:
    """The error codes the wrapper itself can answer for a route of this shape."""
    found: dict[int, list[str]] = {500: ["INTERNAL_ERROR"]}

    def add(status: int, *codes: str) -> None:
        found.setdefault(status, []).extend(codes)

    if authenticated:
        add(401, "MISSING_TOKEN", "INVALID_TOKEN")
    if has_ids:
        add(404, "NOT_FOUND")
    if body is not None:
        add(400, "MALFORMED_JSON", "BODY_TOO_DEEP", "EXTERNAL_ID_NOT_ALLOWED")
        add(413, "BODY_TOO_LARGE", "TEMPLATE_TOO_LARGE")
        add(422, "VALIDATION_FAILED")
    if query is not None:
        add(422, "VALIDATION_FAILED")
        if issubclass(query, PageQuery):
            add(400, "INVALID_NEXT_TOKEN")
    if idempotent:
        add(400, "INVALID_IDEMPOTENCY_KEY")
        add(409, "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_PROGRESS")
    return {status: tuple(dict.fromkeys(codes)) for status, codes in found.items()}


def _merge(*tables: Mapping[int, Iterable[str]]) -> dict[int, tuple[str, ...]]:
    merged: dict[int, list[str]] = {}
    for table in tables:
        for status, codes in table.items():
            merged.setdefault(status, []).extend(codes)
    return {status: tuple(dict.fromkeys(merged[status])) for status in sorted(merged)}


@dataclass
class RouteTable:
    routes: list[Route] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        responses: Mapping[int, str | None],
        body: type[BaseModel] | None = None,
        body_optional: bool = False,
        query: type[BaseModel] | None = None,
        errors: Mapping[int, Iterable[str]] | None = None,
        idempotent: bool = False,
        authenticated: bool = True,
        precheck: Callable[[Call[Any, Any]], None] | None = None,
    ) -> Callable[[RouteFunction], RouteFunction]:
        def record(function: RouteFunction) -> RouteFunction:
            common = common_errors(
                authenticated=authenticated,
                has_ids=bool(_PATH_PARAM.search(path)),
                body=body,
                query=query,
                idempotent=idempotent,
            )
            self.routes.append(
                Route(
                    method=method,
                    path=path,
                    function=function,
                    body=body,
                    body_optional=body_optional,
                    query=query,
                    responses=dict(responses),
                    errors=_merge(errors or {}, common),
                    idempotent=idempotent,
                    authenticated=authenticated,
                    precheck=precheck,
                )
            )
            return function

        return record

    def get(self, path: str, **options: Any) -> Callable[[RouteFunction], RouteFunction]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[RouteFunction], RouteFunction]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[RouteFunction], RouteFunction]:
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[RouteFunction], RouteFunction]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[RouteFunction], RouteFunction]:
        return self.route("DELETE", path, **options)

    def __add__(self, other: RouteTable) -> RouteTable:
        return RouteTable([*self.routes, *other.routes])

    def find(self, method: str, path: str) -> Route | None:
        """The route that answers ``method`` on a concrete ``path`` (ids filled in), if any."""
        return next((r for r in self.routes if r.matches(method, path)), None)

    def register(self, app: Chalice, container: Container) -> None:
        for route in self.routes:
            app.route(route.path, methods=[route.method], content_types=ALL_CONTENT_TYPES, name=route.name)(
                _view(app, container, route)
            )


def _view(app: Chalice, container: Container, route: Route) -> Callable[..., Response]:
    def view(**params: str) -> Response:
        try:
            return _answer(app, container, route, params)
        except Exception as error:  # noqa: BLE001 - the one place errors become HTTP answers
            return error_response(error)

    view.__name__ = route.name
    view.__doc__ = route.function.__doc__
    return view


def _answer(app: Chalice, container: Container, route: Route, params: Mapping[str, str]) -> Response:
    request = app.current_request
    if request is None:  # Chalice sets it before it calls a view
        raise DeployerError("No current request.")
    authorization = http.bearer(request) if route.authenticated else None
    ids = http.path_ids(params)
    body = http.body(request, route.body, optional=route.body_optional) if route.body else None
    query = http.query(request, route.query, ids) if route.query else None
    tenant = container.get().auth.tenant_for(authorization) if authorization else ""
    observability.bind(tenant_id=tenant or None)  # on every log line of this request from here on
    call: Call[Any, Any] = Call(tenant, ids, body, query, container)
    ran: list[bool] = []

    def produce() -> dict[str, Any]:
        ran.append(True)
        reply = route.function(call)
        return {"status": reply.status, "body": reply.body}

    if route.idempotent:
        payload = {
            "body": body.model_dump() if body else None,
            "query": query.model_dump() if query else None,
        }
        path = _PATH_PARAM.sub(lambda m: ids[m.group(1)], route.path)
        check = route.precheck
        precheck = (lambda: check(call)) if check is not None else None
        record = http.idempotent(
            request, path, tenant, call.services.idempotency, payload, produce, app.lambda_context, precheck
        )
    else:
        record = produce()
    # The first answer to an Idempotency-Key, given again: the route did not run this time.
    headers: dict[str, str] = {REPLAYED_HEADER: "true"} if not ran else {}
    if record["body"] is None:
        return Response(body="", status_code=record["status"], headers=dict(headers))
    return json_response(record["status"], record["body"], headers)
