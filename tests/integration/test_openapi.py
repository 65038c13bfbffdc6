"""Every HTTP endpoint is in the OpenAPI document, and the document is valid OpenAPI."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from functions.openapi_http import PARAM
from tests.fixtures import app_functions, function, http


def served() -> dict:  # type: ignore[type-arg]
    response = function("openapi_document")(http("GET", "/api/openapi.json"))
    assert response.status_code == 200
    return json.loads(response.get_body())  # type: ignore[no-any-return]


def test_every_http_function_of_the_app_is_documented(azurite) -> None:  # type: ignore[no-untyped-def]
    doc = served()
    for fn in app_functions().values():
        trigger = fn.get_trigger()
        if trigger.get_binding_name() != "httpTrigger":
            continue
        path = "/api/" + PARAM.sub(lambda m: "{" + m.group(1) + "}", trigger.route)
        for method in trigger.methods:
            assert str(getattr(method, "value", method)).lower() in doc["paths"][path], (path, method)


def test_the_document_is_valid_openapi_3_1(azurite) -> None:  # type: ignore[no-untyped-def]
    validate(served())


def test_the_order_form_schema_names_its_fields(azurite) -> None:  # type: ignore[no-untyped-def]
    doc = served()
    body = doc["paths"]["/api/salesposter/{tenant}/orders"]["post"]["requestBody"]["content"]
    ref = body["application/x-www-form-urlencoded"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"plan_id", "payment_type", "email"} <= set(doc["components"]["schemas"][ref]["properties"])
