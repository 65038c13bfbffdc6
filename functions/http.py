"""HTTP plumbing every HTTP function shares: parse -> one use case -> response.

``endpoint`` registers a handler on a blueprint *and* in the OpenAPI registry, so the
document served at ``/api/openapi.json`` lists exactly the endpoints that exist. Errors
become RFC 9457 problem documents: bad input is 400/422 with the field and the reason,
a missing object 404, a lost race 409; never a 500 for anything the caller sent.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from pydantic import TypeAdapter, ValidationError

from shared import bootstrap
from shared.adapters.auth import AuthError, Principal
from shared.adapters.tables import ConcurrencyConflict, StorageLimit
from shared.domain.catalogue import CatalogueError
from shared.domain.credit import CreditRefused
from shared.domain.lifecycle import StopRefused
from shared.domain.subscriptions import SubscriberError
from shared.service.context import Context
from shared.service.orders import OrderConflict, OrderRejected
from shared.service.queries import NotFound

log = logging.getLogger(__name__)
TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")  # tenant ids go into table keys: no '|', no surprises


@dataclass
class Call:
    request: func.HttpRequest
    ctx: Context
    principal: Principal | None
    body: Any
    route: Mapping[str, str]
    query: Mapping[str, str]

    @property
    def tenant(self) -> str:
        assert self.principal is not None
        return self.principal.tenant

    def number(self, name: str) -> int:
        """A numeric route parameter (subscriber or invoice number); 400 if it is not one."""
        value = self.route[name]
        if not value.isdigit():
            raise ValueError(f"{name} must be a number")
        return int(value)


@dataclass
class Endpoint:
    name: str
    route: str
    methods: Sequence[str]
    summary: str
    tag: str
    body: Any = None
    response: Any = None
    roles: Sequence[str] | None = None
    status: int = 200
    params: Mapping[str, str] = field(default_factory=dict)  # query parameters: name -> description
    guard: Callable[[func.HttpRequest, Context], func.HttpResponse | None] | None = None  # runs before parsing
    statuses: Mapping[int, str] = field(default_factory=dict)  # other statuses it answers: code -> meaning


REGISTRY: list[Endpoint] = []
Handler = Callable[[Call], Any]


def problem(status: int, title: str, detail: str = "", errors: list[dict[str, str]] | None = None) -> func.HttpResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/problem+json")


def json_response(payload: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload, default=str), status_code=status, mimetype="application/json")


def read_body(req: func.HttpRequest) -> dict[str, Any]:
    """JSON, or an HTML form post (the sales poster is a form); 400 if neither parses."""
    raw = req.get_body() or b""
    ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data") and raw:
        form = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=False)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]} for e in exc.errors()]


def dispatch(req: func.HttpRequest, spec: Endpoint, handler: Handler) -> func.HttpResponse:
    try:
        ctx = bootstrap.context()
        refused = spec.guard(req, ctx) if spec.guard is not None else None
        if refused is not None:
            return refused
        principal = None
        if spec.roles is not None:
            principal = bootstrap.token_validator().authenticate(req.headers.get("authorization"))
            principal.require(spec.roles)
            if not TENANT.match(principal.tenant):
                raise AuthError(403, "the token's tenant is not a valid tenant id")
        if "tenant" in req.route_params and not TENANT.match(req.route_params["tenant"]):
            return problem(400, "Bad request", "tenant must be 1-40 lowercase letters, digits or '-'")
        body = None
        if spec.body is not None:
            data = read_body(req)
            body = TypeAdapter(spec.body).validate_python(data | _body_extras(req))
        result = handler(Call(req, ctx, principal, body, dict(req.route_params), dict(req.params)))
        if isinstance(result, func.HttpResponse):
            return result
        return json_response(result, spec.status)
    except AuthError as exc:
        return problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden", exc.reason)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return problem(400, "Malformed body", str(exc))
    except ValidationError as exc:
        return problem(422, "Invalid request", "see errors", _field_errors(exc))
    except (CatalogueError, OrderRejected, SubscriberError, StopRefused, CreditRefused) as exc:
        return problem(422, "Not accepted", str(exc))
    except StorageLimit as exc:  # a value or an operation beyond what Table Storage holds: nothing was written
        return problem(422, "Too large to store", str(exc))
    except (NotFound, KeyError) as exc:
        return problem(404, "Not found", str(exc).strip("'"))
    except ConcurrencyConflict as exc:
        return problem(409, "Conflict, try again", str(exc))
    except OrderConflict as exc:
        return problem(409, "Conflict", str(exc))
    except ValueError as exc:
        return problem(400, "Bad request", str(exc))


def _body_extras(req: func.HttpRequest) -> dict[str, Any]:
    """Route parameters named like body fields (``id``) fill them in."""
    return {k: v for k, v in req.route_params.items() if k == "id"}


def endpoint(bp: func.Blueprint, spec: Endpoint) -> Callable[[Handler], Handler]:
    REGISTRY.append(spec)

    def register(handler: Handler) -> Handler:
        def function(req: func.HttpRequest) -> func.HttpResponse:
            return dispatch(req, spec, handler)

        function.__name__ = spec.name
        bp.function_name(spec.name)(bp.route(route=spec.route, methods=list(spec.methods),
                                             auth_level=func.AuthLevel.ANONYMOUS)(function))
        return handler

    return register
