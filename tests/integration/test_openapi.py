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


def test_every_operation_declares_the_statuses_dispatch_can_answer(azurite) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis holds responses to the document, so the document must name them all."""
    for path, operations in served()["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            assert {"400", "404"} <= codes, (path, method)
            if "requestBody" in op:
                assert {"413", "422"} <= codes, (path, method)
            if method in ("post", "put", "delete"):
                assert {"409", "422"} <= codes, (path, method)
            if "security" in op:
                assert {"401", "403"} <= codes, (path, method)


def test_numeric_path_parameters_are_integers_and_ids_have_a_safe_alphabet(azurite) -> None:  # type: ignore[no-untyped-def]
    for path, operations in served()["paths"].items():
        for op in operations.values():
            for param in op.get("parameters", []):
                schema = param["schema"]
                if param["name"] in ("subscriber_no", "invoice_number"):
                    assert schema["type"] == "integer" and schema["minimum"] in (0, 1), path
                elif param["in"] == "path":
                    assert (schema.get("pattern") and schema.get("maxLength", 40) <= 200) or schema.get("enum"), \
                        (path, param)
