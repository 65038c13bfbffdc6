"""Builders shared by the tests: the newspaper catalogue, orders, HTTP requests."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from typing import Any

import azure.functions as func
from pydantic import TypeAdapter

from devhost.demo import catalogue as demo_catalogue
from shared.adapters.bus import unpack
from shared.adapters.catalogue_store import KINDS
from shared.domain.catalogue import PaymentType
from shared.ports import BusMessage
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.orders import PlaceOrder
from tests.fakes import FakeBus

SEGMENT_KIND = {"organizations": "organization", "products": "product", "billing-plans": "billing_plan",
                "plans": "plan", "dunning-processes": "dunning_process"}


def install_catalogue(ctx: Context, tenant: str) -> None:
    for segment, item_id, body in demo_catalogue():
        kind = SEGMENT_KIND[segment]
        put_item(ctx, tenant, kind, TypeAdapter(KINDS[kind]).validate_python(body | {"id": item_id}))


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


def order(tenant: str, n: int = 1, plan: str = "digital-monthly", start: date | None = None,
          ref: str | None = None, email: str | None = None) -> PlaceOrder:
    return PlaceOrder(tenant=tenant, plan_id=plan, payment_type=PaymentType.INVOICE, name=f"Kari Nordmann {n}",
                      email=email or f"kari{n}@example.no", start_date=start, order_ref=ref)


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
