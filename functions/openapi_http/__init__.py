"""HTTP: ``GET /api/openapi.json``, the OpenAPI 3.1 document of every HTTP endpoint,
built from the registry that ``functions.http.endpoint`` fills as functions register.
"""

from __future__ import annotations

import re
from typing import Any

import azure.functions as func
from pydantic import TypeAdapter

from functions.http import REGISTRY, Call, Endpoint, endpoint
from functions.validation import MAX_BODY, parameter_schema

bp = func.Blueprint()
ROUTE_PREFIX = "/api/"
PARAM = re.compile(r"{(\w+)(?::[^}]*)?\??}")


def _schemas() -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """Request and response schemas of every endpoint, sharing one set of components."""
    inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = []
    for spec in REGISTRY:
        if spec.body is not None:
            inputs.append(((spec.name, "body"), "validation", TypeAdapter(spec.body)))
        if spec.response is not None:
            inputs.append(((spec.name, "response"), "serialization", TypeAdapter(spec.response)))
    refs, defs = TypeAdapter.json_schemas(inputs, ref_template="#/components/schemas/{model}")
    return {key: schema for (key, _mode), schema in refs.items()}, defs.get("$defs", {})


def _operation(spec: Endpoint, refs: dict[tuple[str, str], Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": spec.name, "summary": spec.summary, "tags": [spec.tag]}
    params = [{"name": p, "in": "path", "required": True, "schema": _parameter(p, spec)}
              for p in PARAM.findall(spec.route)]
    params += [{"name": n, "in": "query", "required": False, "description": d,
                "schema": parameter_schema(n, spec.types.get(n))} for n, d in spec.params.items()]
    if params:
        op["parameters"] = params
    if (spec.name, "body") in refs:
        schema = refs[(spec.name, "body")]
        content = {"application/json": {"schema": schema}}
        if spec.tag == "Sales poster":
            content["application/x-www-form-urlencoded"] = {"schema": schema}
        op["requestBody"] = {"required": True, "content": content}
    elif spec.accepts:
        raw = {"type": "string", "format": "binary", "maxLength": spec.max_body}
        op["requestBody"] = {"required": True, "content": {media: {"schema": raw} for media in spec.accepts}}
    ok: dict[str, Any] = {"description": "OK"}
    if (spec.name, "response") in refs:
        ok["content"] = {"application/json": {"schema": refs[(spec.name, "response")]}}
    elif spec.media is not None:
        ok["content"] = {spec.media: {"schema": {"type": "string", "format": "binary"}}}
    op["responses"] = {str(spec.status): ok, **_errors(spec)}
    for code, text in spec.statuses.items():  # more answers: 2xx with the response's schema, else a problem
        body = {"content": ok["content"]} if code < 300 and "content" in ok else {} if code < 300 else {
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        op["responses"][str(code)] = {"description": text, **body}
    if spec.roles is not None:
        op["security"] = [{"bearer": []}]
    if spec.subscriber:  # the tenant's subscriber token, or My page's session cookie (with X-CSRF-Token)
        op["security"] = [{"subscriber": []}, {"session": []}]
    return op


def _parameter(name: str, spec: Endpoint) -> dict[str, Any]:
    if name == "tenant":
        return {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"}
    return parameter_schema(name, spec.types.get(name))


def _errors(spec: Endpoint) -> dict[str, Any]:
    """Every status ``functions.http.dispatch`` can answer for this endpoint, and its own."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    codes = {"400": "Malformed request or parameter, with the field and the reason", "404": "Not found"}
    if spec.body is not None or spec.accepts or set(spec.methods) & {"POST", "PUT", "PATCH", "DELETE"}:
        codes |= {"409": "Conflict: try again, or the item is in use", "422": "Invalid or not accepted, with the "
                  "field and the reason"}
    if spec.body is not None or spec.accepts:
        codes["413"] = f"Body larger than {spec.max_body // 1024 if spec.accepts else MAX_BODY // 1024} KiB"
    if spec.accepts:
        codes["415"] = f"The body is not one of {', '.join(spec.accepts)}"
    if spec.roles is not None:
        codes |= {"401": "No valid bearer token", "403": "Role missing, or the token's tenant is not valid"}
    if spec.subscriber:
        codes |= {"401": "No valid subscriber token or session", "403": "A state-changing call without the "
                  "session's X-CSRF-Token"}
    return {code: {"description": text, "content": problem} for code, text in sorted(codes.items())}


PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "reason": {"type": "string"}}}},
    },
    "required": ["title", "status"],
}


def document() -> dict[str, Any]:
    refs, defs = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for spec in REGISTRY:
        path = ROUTE_PREFIX + PARAM.sub(lambda m: "{" + m.group(1) + "}", spec.route)
        for method in spec.methods:
            paths.setdefault(path, {})[method.lower()] = _operation(spec, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Abonno", "version": "0.1.0",
                 "description": "Subscription and membership billing for Nordic publishers, unions and associations."},
        "paths": paths,
        "components": {"schemas": defs | {"Problem": PROBLEM},
                       "securitySchemes": {
                           "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                      "description": "a merchant token (Entra ID app roles)"},
                           "subscriber": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                          "description": "a subscriber token of the tenant's Azure AD B2C or "
                                          "Entra External ID"},
                           "session": {"type": "apiKey", "in": "cookie", "name": "abonno_session",
                                       "description": "My page's session (state-changing calls also send the "
                                       "X-CSRF-Token header)"}}},
    }


@endpoint(bp, Endpoint("openapi_document", "openapi.json", ["GET"], "This OpenAPI document", "Meta"))
def openapi(call: Call) -> Any:
    return document()
