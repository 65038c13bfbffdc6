"""Notices to subscribers (D3; manual 6.19 "Send SMS", 7.9 "Reminders"): the text of a
reminder and of "payment stop in N days", made from the outbox event the dunning
visit wrote (which already chose the channel: SMS, or e-mail when there is no phone
number), and handed to the notification port.

A notice that cannot be made or sent for a reason a retry will not change (an event
missing a field, a currency we do not know) is recorded as needing attention for its
subscriber (``isolation``) and its message completes, so it never blocks the queue; a
passing storage failure raises, and the bus redelivers it."""

from __future__ import annotations

import re
from typing import Any

from ..domain.events import PaymentStopNotice, ReminderIssued
from ..domain.money import Money
from ..ports import Notice, Notifier, transient
from .context import Context
from .isolation import record

NOTICE_RUN = "notice"
TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}\Z")


def render(message_id: str, tenant: str, kind: str, p: dict[str, Any]) -> Notice:
    """The notice for one event, from its payload as the bus carries it (``bus.event_message``);
    raises ``ValueError`` for an event that is not a notice."""
    amount = Money(p["amount_minor"] if kind == ReminderIssued.TYPE else p["owed_minor"], p["currency"])
    pay = f"Pay {amount} to account {p.get('bank_account') or '-'} with KID {p.get('kid') or '-'}"
    if kind == ReminderIssued.TYPE:
        subject = f"Reminder {p['step']}: invoice {p['invoice_number']} is unpaid"
        text = (f"Dear {p['name']},\n\nwe have not received payment of invoice {p['invoice_number']}. "
                f"{pay} by {p['due_date']}.")
        if p.get("fee_minor"):
            text += f" A reminder fee of {Money(p['fee_minor'], p['currency'])} is included."
    elif kind == PaymentStopNotice.TYPE:
        subject = f"Your subscription will be stopped on {p['stop_date']}"
        text = (f"Dear {p['name']},\n\nyou owe {amount}. Unless it is paid, your subscription will be "
                f"stopped on {p['stop_date']}. {pay}, or contact us to change how you pay.")
    else:
        raise ValueError(f"{kind} is not a notice")
    text += f"\n\n{p.get('organization_name') or p['organization_id']}\n"
    return Notice(message_id, tenant, p["channel"], p["to"], subject, text,
                  p.get("organization_name") or p["organization_id"], p["day"])


def deliver(notifier: Notifier, message_id: str, body: dict[str, Any]) -> Notice:
    """Render and send; the file (or message) is named by the event, so a redelivery is harmless."""
    notice = render(message_id, body["tenant"], body["type"], body["payload"])
    notifier.send(notice)
    return notice


def send(ctx: Context, notifier: Notifier, message_id: str, body: dict[str, Any]) -> Notice | None:
    """``deliver``, or record why it could not be for the subscriber it is for; None then.
    A message that names no tenant and subscriber raises: it is for the poison queue."""
    try:
        return deliver(notifier, message_id, body)
    except Exception as exc:
        tenant, number = body.get("tenant"), (body.get("payload") or {}).get("subscriber_no")
        if transient(exc) or not (isinstance(tenant, str) and TENANT.match(tenant) and isinstance(number, int)):
            raise
        record(ctx, tenant, NOTICE_RUN, number, ctx.clock.now().date(), exc, ref=message_id)
        return None
