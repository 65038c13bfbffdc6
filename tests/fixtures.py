"""Builders shared by the tests: HTTP requests and the app's functions; the newspaper
catalogue and orders come from ``devhost.builders`` (the benchmarks use them too)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import azure.functions as func

from devhost.builders import install_catalogue, order

__all__ = ["app_functions", "function", "http", "install_catalogue", "order"]


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         route: dict[str, str] | None = None, params: dict[str, str] | None = None,
         form: bool = False) -> func.HttpRequest:
    hdrs = dict(headers or {})
    if form:
        from urllib.parse import urlencode

        raw = urlencode(body).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    elif isinstance(body, (bytes, str)):
        raw = body.encode() if isinstance(body, str) else body
        hdrs.setdefault("Content-Type", "application/json")
    else:
        raw = json.dumps(body).encode() if body is not None else b""
        hdrs["Content-Type"] = "application/json"
    return func.HttpRequest(method, url, headers=hdrs, params=params or {}, route_params=route or {}, body=raw)


@cache
def app_functions() -> dict[str, Any]:
    """The app's functions by name (``get_functions`` may be called only once per app)."""
    import function_app
    from devhost.host import functions_of

    return {fn.get_function_name(): fn for fn in functions_of(function_app.app)}


def function(name: str) -> Any:
    """The user function of the app's function ``name``, to call directly (Azure's test pattern)."""
    return app_functions()[name].get_user_function()
