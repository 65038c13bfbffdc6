"""Builders shared by the tests: HTTP requests, the app's functions, the messages on a queue; the newspaper
catalogue and orders come from ``devhost.builders`` (the benchmarks use them too)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import azure.functions as func

from devhost.builders import install_catalogue, order
from shared.adapters.bus import unpack
from shared.ports import BusMessage
from shared.service.context import Context
from tests.fakes import FakeBus

__all__ = ["app_functions", "function", "http", "install_catalogue", "order", "queued", "received"]


def queued(ctx: Context, queue: str) -> list[BusMessage]:
    """The messages waiting on ``queue`` (left there), on Azurite's queues or the fake bus."""
    if isinstance(ctx.bus, FakeBus):
        return ctx.bus.messages(queue)
    client = ctx.bus.service.get_queue_client(queue)  # type: ignore[attr-defined]
    return [m for x in client.peek_messages(max_messages=32) for m in unpack(x.content)]


def received(ctx: Context, queue: str, max_messages: int = 32) -> list[BusMessage]:
    """Messages taken off ``queue`` (what its worker is handed); empty when none wait."""
    if isinstance(ctx.bus, FakeBus):
        return ctx.bus.take(queue)
    client = ctx.bus.service.get_queue_client(queue)  # type: ignore[attr-defined]
    taken: list[BusMessage] = []
    for message in client.receive_messages(max_messages=max_messages, visibility_timeout=30):
        taken += unpack(message.content)  # the host hands each message in an envelope over
        client.delete_message(message)
        if len(taken) >= max_messages:
            break
    return taken


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
