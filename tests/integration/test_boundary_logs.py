"""Logs at INFO carry no e-mail address (GDPR): an order over HTTP, an invoice run, a
dunning visit and the documents they deliver (a refused mail and its print fallback too)
are logged with ids and counts only. Every logger is captured, the Azure SDK's request
logging included."""

from __future__ import annotations

import logging
import re
from datetime import date

import pytest

from devhost.mailbox import Mailbox
from functions import notification_worker
from shared.adapters.bus import NOTICES
from shared.service.billing import bill_one, start_invoice_run
from shared.service.context import Context
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import order, received

EMAIL = re.compile(r"[\w.+-]+(@|%40)[\w-]+\.[\w.-]+", re.IGNORECASE)


def test_an_order_and_a_billing_run_log_no_email_address(ctx: Context, shop: str, mailbox: Mailbox,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    placed = place_order(ctx, order(shop, 3, email="kari.nordmann@example.no"))
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    assert bill_one(ctx, shop, date(2026, 1, 22), placed.subscriber_no) == 1
    start_invoice_run(ctx, shop)
    mailbox.refuse.add("kari.nordmann@example.no")  # the invoices' mails are refused: failure and print logged too
    delivered = [notification_worker.handle(m.encode().encode()) for m in received(ctx, NOTICES)]
    assert delivered and all(rows and rows[-1].channel == "print" for rows in delivered)
    logged = [r.getMessage() for r in caplog.records]
    assert logged, "nothing was logged: the test would prove nothing"
    leaks = [m for m in logged if EMAIL.search(m)]
    assert not leaks, leaks[:3]
