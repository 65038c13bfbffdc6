"""HTTP plumbing every HTTP function shares: parse -> one use case -> response.

``endpoint`` registers a handler on a blueprint *and* in the OpenAPI registry, so the
document served at ``/api/openapi.json`` lists exactly the endpoints that exist. Every
route and query parameter is checked by its name's bounded type and every body by its
model (``functions.validation``) before the handler runs. Errors become RFC 9457 problem
documents: a malformed request is 400, a body too large 413, an invalid value 422 with the
field and the constraint, a missing object 404, a lost race or an item in use 409, a
payment provider's refusal 502 and its silence 503 (never the provider's own text). Any
other exception is a server fault: 500 with a generic text and an error id that is
logged with the traceback, never the exception's own text.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from pydantic import TypeAdapter, ValidationError

from shared import bootstrap
from shared.adapters.auth import AuthError, Principal, is_tenant_id
from shared.domain.catalogue import CatalogueError, CatalogueInUse
from shared.domain.credit import CreditRefused
from shared.domain.lifecycle import StopRefused, UnknownSubscription
from shared.domain.money import CurrencyMismatch
from shared.domain.subscriptions import SubscriberError
from shared.ports import (
    BusMessage,
    ConcurrencyConflict,
    NotFound,
    ProviderRefused,
    ProviderUnavailable,
    StorageLimit,
    SubscriberPrincipal,
)
from shared.service.context import Context
from shared.service.delivery import DeliveryInProgress, NoRecipient
from shared.service.documents import NoEhfForm
from shared.service.orders import OrderConflict, OrderRejected
from shared.service.verification import CodeRefused

from . import validation
from .validation import MAX_BODY, BodyTooLarge, UnsupportedMedia

log = logging.getLogger(__name__)
SOURCE = tuple(str(Path(__file__).resolve().parent.parent / d) for d in ("shared", "functions"))

# Exceptions that say something about the request, by class (the most specific listed
# class of an exception wins): status and title. Anything not listed is a server fault.
STATUS_OF: dict[type[BaseException], tuple[int, str]] = {
    BodyTooLarge: (413, "Body too large"),
    UnsupportedMedia: (415, "Unsupported media type"),
    NotFound: (404, "Not found"),
    UnknownSubscription: (404, "Not found"),
    ConcurrencyConflict: (409, "Conflict, try again"),
    CatalogueInUse: (409, "In use"),
    OrderConflict: (409, "Conflict"),
    NoEhfForm: (409, "No EHF form"),
    DeliveryInProgress: (409, "Conflict, try again"),  # another request is delivering it
    NoRecipient: (422, "Not accepted"),  # the channel has no address to send to
    CatalogueError: (422, "Not accepted"),
    OrderRejected: (422, "Not accepted"),
    SubscriberError: (422, "Not accepted"),
    StopRefused: (422, "Not accepted"),
    CodeRefused: (422, "Not accepted"),  # a one-time code wrong, used, expired or tried too often: one answer
    CreditRefused: (422, "Not accepted"),
    CurrencyMismatch: (422, "Not accepted"),
    StorageLimit: (422, "Too large to store"),  # beyond what Table Storage holds: nothing was written
    ProviderRefused: (502, "Payment provider refused"),  # a call of ours to Vipps / Swedbank Pay, refused (4xx)
    ProviderUnavailable: (503, "Payment provider unavailable"),  # no answer after the retries: try again
    ServiceRequestError: (503, "Storage unavailable"),  # not reached after the retries: nothing was written
    ServiceResponseError: (503, "Storage unavailable"),  # no answer we can read: try again (writes are guarded)
    json.JSONDecodeError: (400, "Malformed body"),
    UnicodeDecodeError: (400, "Malformed body"),
    ValueError: (400, "Bad request"),
}
STORAGE_LIMITS = {"PropertyValueTooLarge", "EntityTooLarge", "RequestBodyTooLarge", "OutOfRangeInput",
                  "PropertyNameTooLong", "TooManyProperties", "InvalidInput", "InvalidValueType"}


class BadParameter(ValueError):
    """A route or query parameter that is not of its type: 400 with the field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors


@dataclass
class Call:
    request: func.HttpRequest
    ctx: Context
    principal: Principal | None
    body: Any
    route: Mapping[str, Any]  # validated: numbers are ints, ids safe strings
    query: Mapping[str, str]  # validated by name; the handler parses them
    login: SubscriberPrincipal | None = None  # a subscriber endpoint's caller (``Endpoint.subscriber``)

    @property
    def tenant(self) -> str:
        if self.login is not None:
            return self.login.tenant
        assert self.principal is not None
        return self.principal.tenant

    @property
    def me(self) -> SubscriberPrincipal:
        """The subscriber's login on a subscriber endpoint."""
        assert self.login is not None
        return self.login

    def number(self, name: str) -> int:
        """A numeric route parameter (subscriber or invoice number), checked by dispatch."""
        return int(self.route[name])


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
    types: Mapping[str, Any] = field(default_factory=dict)  # a parameter's type, where not its name's
    media: str | None = None  # a binary answer's media type (application/pdf ...) instead of JSON
    accepts: Sequence[str] = ()  # a raw body of one of these media types (the handler gets the bytes)
    max_body: int = MAX_BODY  # of a raw body, in bytes
    subscriber: bool = False  # a subscriber endpoint: the tenant's subscriber token or My page's session (``Call.me``)
    cors: bool | None = None  # answers the organisations' ``origins`` (CORS); None: by route (``CORS_ROUTES``)

    @property
    def cross_origin(self) -> bool:
        return self.route.startswith(CORS_ROUTES) if self.cors is None else self.cors


REGISTRY: list[Endpoint] = []
# CORS: the JSON a publisher's own sites call from the browser (My page's API, access claims).
CORS_ROUTES = ("my/", "access/")
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-CSRF-Token, Idempotency-Key"
CORS_EXPOSE_HEADERS = "Retry-After, Content-Disposition"
CORS_MAX_AGE = "600"
_CORS_METHODS: dict[str, set[str]] = {}  # route -> the methods its endpoints answer (the preflight's Allow-Methods)
Handler = Callable[[Call], Any]


def queue_signal(call: Call, queue: str, message: BusMessage, what: str) -> Any | None:
    """Send a provider's signal (a webhook, a callback) to ``queue`` before answering it: None
    once it is sent; else the 503 that makes the provider send it again, since a signal we
    answered 2xx must already be durable."""
    try:
        call.ctx.bus.send(queue, [message])
    except Exception:
        log.exception("%s: %s not queued", what, message.id)
        return problem(503, "Unavailable", f"the {what} could not be queued; send it again",
                       headers={"Retry-After": "5"})
    return None


def problem(status: int, title: str, detail: str = "", errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> func.HttpResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/problem+json",
                             headers=headers)


def json_response(payload: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload, default=str), status_code=status, mimetype="application/json")


def read_body(req: func.HttpRequest) -> dict[str, Any]:
    """JSON, or an HTML form post (the sales poster is a form), within the size and depth
    limits; 413 if too large, 400 if neither parses."""
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY:
        raise BodyTooLarge(f"the body is larger than {MAX_BODY // 1024} KiB")
    if _is_form(req) and raw:
        form = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=False, max_num_fields=100)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    if not raw.strip():
        return {}
    data = validation.parse_json(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _body(req: func.HttpRequest, spec: Endpoint) -> Any:
    """The body as the endpoint's model, or its raw bytes (``accepts``), or None."""
    if spec.body is not None:
        return _validated_body(req, spec.body)
    return raw_body(req, spec) if spec.accepts else None


def raw_body(req: func.HttpRequest, spec: Endpoint) -> bytes:
    """The body as bytes, of one of the media types the endpoint takes and within its limit
    (415, 413); what the bytes are is the handler's to check."""
    ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype not in spec.accepts:
        raise UnsupportedMedia(f"the body must be one of {', '.join(spec.accepts)}")
    raw = req.get_body() or b""
    if len(raw) > spec.max_body:
        raise BodyTooLarge(f"the body is larger than {spec.max_body // 1024} KiB")
    return raw


def binary(data: bytes, media: str, filename: str) -> func.HttpResponse:
    """A file to download (a PDF, an EHF XML): its media type and a file name."""
    return func.HttpResponse(data, status_code=200, mimetype=media,
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _validated_body(req: func.HttpRequest, model: Any) -> Any:
    """The body as ``model``: a form's strings converted, JSON strictly (``true`` is no number)."""
    data = read_body(req)
    if _is_form(req):
        return TypeAdapter(model).validate_python(data)
    return TypeAdapter(model).validate_json(json.dumps(data), strict=True)


def _is_form(req: func.HttpRequest) -> bool:
    ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    return ctype in ("application/x-www-form-urlencoded", "multipart/form-data")


def _reason(msg: str) -> str:
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _field_errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in prefix + tuple(e["loc"])) or "body", "reason": _reason(e["msg"])}
            for e in exc.errors(include_url=False, include_input=False)]


def _parameters(req: func.HttpRequest, spec: Endpoint) -> tuple[dict[str, Any], dict[str, str]]:
    """Route and query parameters checked by their names' types (400 with the fields)."""
    route: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    wanted = [("path", k, v) for k, v in req.route_params.items() if k != "tenant"]
    wanted += [("query", k, v) for k, v in req.params.items() if k in spec.params]
    errors += [{"field": f"query.{k}", "reason": "unknown query parameter"} for k in req.params if k not in spec.params]
    if "idempotency-key" in req.headers:  # makes a retried post harmless; it becomes part of a key
        wanted.append(("header", "idempotency-key", req.headers["idempotency-key"]))
    for where, name, raw in wanted:
        try:
            value = validation.parameter(name, raw, spec.types.get(name))
        except ValidationError as exc:
            errors += _field_errors(exc, (where, name))
            continue
        if where == "path":
            route[name] = value
    if errors:
        raise BadParameter(errors)
    if "tenant" in req.route_params:
        route["tenant"] = req.route_params["tenant"]
    return route, {k: v for k, v in req.params.items() if k in spec.params}


def allowed_origin(req: func.HttpRequest) -> str | None:
    """The request's ``Origin`` if it is one of the route tenant's organisations' ``origins``
    (from the cached catalogue: no storage round trip on a warm instance), else None."""
    origin = (req.headers.get("origin") or "").strip()
    tenant = req.route_params.get("tenant", "")
    if not origin or not is_tenant_id(tenant):
        return None
    try:
        catalogue = bootstrap.context().catalogue.get(tenant)
    except Exception:  # no catalogue to ask: no origin is allowed, and the answer itself says why it failed
        log.warning("CORS: the catalogue of %s could not be read", tenant, exc_info=True)
        return None
    wanted = origin.lower()
    allowed = {o.lower() for org in catalogue.organizations.values() for o in org.origins}
    return origin if wanted in allowed else None


def with_cors(req: func.HttpRequest, response: func.HttpResponse) -> func.HttpResponse:
    """``response`` with the Access-Control-* headers for an allowed origin; for any other
    origin only ``Vary: Origin`` (so a cache never hands one origin's answer to another)."""
    response.headers["Vary"] = "Origin"
    origin = allowed_origin(req)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    return response


def preflight(req: func.HttpRequest, route: str) -> func.HttpResponse:
    """A CORS preflight (``OPTIONS``): 204 with what the route allows for an allowed origin,
    else 403 without any Access-Control-* header (the browser then refuses the call)."""
    origin = allowed_origin(req)
    if origin is None:
        refused = problem(403, "Forbidden", "this origin is not one of the organisation's sites")
        refused.headers["Vary"] = "Origin"
        return refused
    return func.HttpResponse(status_code=204, headers={
        "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": ", ".join(sorted(_CORS_METHODS.get(route, ()))),
        "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS, "Access-Control-Max-Age": CORS_MAX_AGE,
        "Vary": "Origin"})


def dispatch(req: func.HttpRequest, spec: Endpoint, handler: Handler) -> func.HttpResponse:
    response = _dispatch(req, spec, handler)
    if spec.subscriber:  # one person's data (or that there is none): no browser or proxy cache may keep it
        response.headers["Cache-Control"] = "no-store"
    return with_cors(req, response) if spec.cross_origin and "OPTIONS" not in spec.methods else response


def _dispatch(req: func.HttpRequest, spec: Endpoint, handler: Handler) -> func.HttpResponse:
    try:
        ctx = bootstrap.context()
        refused = spec.guard(req, ctx) if spec.guard is not None else None
        if refused is not None:
            return refused
        principal = None
        if spec.roles is not None:
            principal = bootstrap.token_validator().authenticate(req.headers.get("authorization"))
            principal.require(spec.roles)
        if "tenant" in req.route_params and not is_tenant_id(req.route_params["tenant"]):
            return problem(400, "Bad request", "tenant must be 1-40 lowercase letters, digits or '-'")
        login = None
        if spec.subscriber:  # the tenant in the route picks the identity provider the token must be from
            login = bootstrap.subscriber_authenticator().authenticate(req.headers, req.method,
                                                                     req.route_params.get("tenant", ""))
        route, query = _parameters(req, spec)
        result = handler(Call(req, ctx, principal, _body(req, spec), route, query, login))
        if isinstance(result, func.HttpResponse):
            return result
        return json_response(result, spec.status)
    except AuthError as exc:
        return problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden", exc.reason)
    except BadParameter as exc:
        return problem(400, "Bad request", "see errors", exc.errors)
    except ValidationError as exc:
        return problem(422, "Invalid request", "see errors", _field_errors(exc))
    except HttpResponseError as exc:
        if getattr(exc, "error_code", None) in STORAGE_LIMITS:
            return problem(422, "Not accepted", "a value is too large or out of range to be stored")
        return _server_fault(req, exc)
    except Exception as exc:
        return _expected(exc) or _server_fault(req, exc)


def _expected(exc: Exception) -> func.HttpResponse | None:
    """The problem document for an exception that is about the request, else None."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            status, title = STATUS_OF[cls]
            return problem(status, title, _detail(exc, cls))
    return None


def _detail(exc: Exception, cls: type[BaseException]) -> str:
    """The exception's text when our code wrote it; a library's text is not shown."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8"
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):  # the library's text names hosts and objects
        return "storage could not be reached or its answer could not be read; try again"
    if isinstance(exc, (ProviderRefused, ProviderUnavailable)):  # the provider's text is not the caller's to see
        return "the payment provider could not do what the request needs; try again later"
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "not found"
    if cls is not ValueError or _raised_by_us(exc):
        return str(exc)
    return "a value is not valid"


def _raised_by_us(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.startswith(SOURCE)


def _server_fault(req: func.HttpRequest, exc: BaseException) -> func.HttpResponse:
    error_id = uuid.uuid4().hex[:12]
    log.error("error %s: %s %s failed", error_id, req.method, urllib.parse.urlsplit(req.url).path,
              exc_info=(type(exc), exc, exc.__traceback__))
    return problem(500, "Internal error", f"the request failed on our side; quote error {error_id} to support")


def endpoint(bp: func.Blueprint, spec: Endpoint) -> Callable[[Handler], Handler]:
    REGISTRY.append(spec)
    if spec.cross_origin and "OPTIONS" not in spec.methods:
        _preflight_for(bp, spec)

    def register(handler: Handler) -> Handler:
        def function(req: func.HttpRequest) -> func.HttpResponse:
            return dispatch(req, spec, handler)

        function.__name__ = spec.name
        bp.function_name(spec.name)(bp.route(route=spec.route, methods=list(spec.methods),
                                             auth_level=func.AuthLevel.ANONYMOUS)(function))
        return handler

    return register


def _preflight_for(bp: func.Blueprint, spec: Endpoint) -> None:
    """One ``OPTIONS`` endpoint per CORS route (the first endpoint of a route registers it;
    the others add their methods to what it allows). Azure's own CORS setting of the
    function app must stay empty: it would answer every preflight itself, for fixed origins."""
    first = spec.route not in _CORS_METHODS
    _CORS_METHODS.setdefault(spec.route, set()).update(m.upper() for m in spec.methods)
    if not first:
        return
    route = spec.route
    endpoint(bp, Endpoint(f"{spec.name}_preflight", route, ["OPTIONS"], "CORS preflight for the organisation's sites",
                          "CORS", status=204, cors=True, types=spec.types,
                          statuses={403: "The Origin is not one of the organisation's sites"}))(
        lambda call: preflight(call.request, route))
