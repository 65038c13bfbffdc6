"""Customer service on one subscriber: stop, change stop, pause, credit notes,
corrections, write-offs, additional invoices, postponed reminders, order blockage
(S4, S5, S7, L4-L6, D1; manual 6.4-6.6, 6.9, 7.5, 7.6, 7.9, 7.10, 7.15).

Each operation is a pure function from ``shared.domain`` run by
``unit_of_work.change``: load, number, index, commit in one transaction, and on a
conflict reload and run again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ..adapters.codec import to_jsonable
from ..domain import credit, dunning_visit, lifecycle
from ..domain.account import Changes, Correction, OrderBlock
from ..domain.calendar import Frequency
from ..domain.catalogue import Catalogue, CatalogueError
from ..domain.invoicing import DocumentKind, Invoice, InvoiceLine, line
from ..domain.letters import receivable
from ..domain.lifecycle import UnknownSubscription
from ..domain.subscriptions import SubscriptionStatus
from ..ports import NotFound
from .checkout import stopping
from .context import Context
from .isolation import reason as why
from .unit_of_work import Seen, change

log = logging.getLogger(__name__)


def _invoices_of(seen: Seen, subscription_id: str) -> list[Invoice]:
    assert seen.history is not None
    return [i for i in seen.history.invoices if i.draft.subscription_id == subscription_id]


def stop(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str, at_period_end: bool,
         stop_on: date | None, code: str | None, reason: str) -> Changes:
    command = lifecycle.StopSubscription(subscription_id, at_period_end, stop_on, code, reason)
    return change(ctx, tenant, subscriber_no, stopping(ctx, tenant, lambda seen: lifecycle.stop(
        seen.account, seen.catalogue, command, _invoices_of(seen, subscription_id), seen.today, seen.number)),
        documents=True)


def change_stop(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str, stop_on: date | None,
                reason: str) -> Changes:
    command = lifecycle.ChangeStop(subscription_id, stop_on, reason)
    return change(ctx, tenant, subscriber_no, stopping(ctx, tenant, lambda seen: lifecycle.change_stop(
        seen.account, seen.catalogue, command, _invoices_of(seen, subscription_id), seen.today, seen.number)),
        documents=True)


def pause(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str, restart_on: date,
          plan_id: str | None) -> Changes:
    new_id = uuid.uuid5(uuid.NAMESPACE_URL, f"abonno:{tenant}:{subscription_id}:restart:{restart_on}").hex[:16]
    command = lifecycle.PauseSubscription(subscription_id, restart_on, new_id, plan_id)
    return change(ctx, tenant, subscriber_no, lambda seen: _restart_on_agreement(lifecycle.pause(
        seen.account, seen.catalogue, command, _invoices_of(seen, subscription_id), seen.today, seen.number),
        subscription_id, new_id), documents=True)


def _restart_on_agreement(changes: Changes, subscription_id: str, restart_id: str) -> Changes:
    """The restart after a pause resumes the subscription: it is charged on the same agreement
    (a Vipps agreement belongs to its subscription; a pause does not stop it)."""
    paused = changes.account.subscriptions[subscription_id]
    restart = changes.account.subscriptions.get(restart_id)
    if paused.agreement is None or restart is None or restart.agreement == paused.agreement:
        return changes
    restart = replace(restart, agreement=paused.agreement)
    return replace(changes, account=changes.account.with_subscription(restart),
                   subscriptions=tuple(restart if s.id == restart_id else s for s in changes.subscriptions))


def credit_invoice(ctx: Context, tenant: str, subscriber_no: int, invoice_number: int, reason: str) -> Changes:
    def decide(seen: Seen) -> Changes:
        assert seen.history is not None
        inv = next((i for i in seen.history.invoices if i.number == invoice_number), None)
        if inv is None:
            raise NotFound(f"invoice {invoice_number} of subscriber {subscriber_no}")
        if not reason.strip():
            raise credit.CreditRefused("a credit note needs a reason")
        return credit.credit_issued(seen.account, inv, reason, seen.today, seen.number)

    return change(ctx, tenant, subscriber_no, decide, documents=True)


def add_correction(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, amount_minor: int,
                   text: str, correction_id: str) -> Changes:
    return change(ctx, tenant, subscriber_no, lambda seen: credit.add_correction(
        seen.account, Correction(correction_id, _org(seen.catalogue, organization_id), amount_minor, text,
                                 seen.today)))


def delete_correction(ctx: Context, tenant: str, subscriber_no: int, correction_id: str) -> Changes:
    return change(ctx, tenant, subscriber_no, lambda seen: credit.delete_correction(seen.account, correction_id))


WRITE_OFFS_PER_PART = 40  # a ledger entry and a demand row each: one part fits a transaction
WRITE_OFF_PARTS = 1000  # 40,000 demands: more than any subscriber has


def write_off(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, reason: str) -> Changes:
    """Write off in parts of ``WRITE_OFFS_PER_PART`` demands, each part one transaction
    (each leaves the account consistent; a write-off cut short is finished by running it again)."""
    if not reason.strip():
        raise credit.CreditRefused("a write-off needs a reason")
    return change(ctx, tenant, subscriber_no, lambda seen: credit.write_off(
        seen.account, _org(seen.catalogue, organization_id), seen.catalogue.organizations[organization_id].currency,
        reason, seen.today, limit=WRITE_OFFS_PER_PART), parts=WRITE_OFF_PARTS)


@dataclass
class BulkWriteOff:
    subscribers: int = 0
    amount_minor: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # subscriber -> why: one never stops the rest


def bulk_write_off(ctx: Context, tenant: str, organization_id: str, reason: str, due_from: date, due_to: date,
                   ) -> BulkWriteOff:
    """Manual 7.6 "Accounting write-off": subscribers whose subscriptions with the
    organisation have all ended, and who have a demand due in [from, to] or debt no
    demand asks for, get all they owe the organisation written off. An admin operation:
    it reads the tenant (a scan, never on a hot path). Cannot be undone, but a second
    run finds nothing left to write off."""
    catalogue = ctx.catalogue.get(tenant)
    _org(catalogue, organization_id)
    today = ctx.today(catalogue)
    result = BulkWriteOff()
    for loaded, _history in ctx.accounts.scan_tenant(tenant):
        acc = loaded.account
        subs = [s for s in acc.subscriptions.values() if s.organization_id == organization_id]
        if not subs or any(s.status_on(today) is not SubscriptionStatus.ENDED for s in subs):
            continue
        demands = [d for d in acc.open_demands.values()
                   if d.terms.organization_id == organization_id and due_from <= d.terms.due_date <= due_to]
        if not demands and acc.unbilled_debt(organization_id) == 0:
            continue
        try:
            done = write_off(ctx, tenant, acc.number, organization_id, reason)
        except Exception as exc:  # this subscriber's alone: reported, the others written off
            log.warning("bulk write-off of subscriber %s failed: %s", acc.number, why(exc))
            result.failed[acc.number] = why(exc)
            continue
        if done.ledger:
            result.subscribers += 1
            result.amount_minor += sum(e.amount_minor for e in done.ledger)
    return result


@dataclass(frozen=True)
class LineSpec:
    text: str | None = None
    amount_minor: int | None = None  # gross, per unit
    vat_rate_bp: int = 0
    product_id: str | None = None
    quantity: int = 1
    frequency: Frequency = Frequency.MONTHLY  # which of the product's prices, when no amount is given


def additional_invoice(ctx: Context, tenant: str, subscriber_no: int, organization_id: str,
                       lines: list[LineSpec], ref: str, due_days: int) -> Changes:
    def decide(seen: Seen) -> Changes:
        acc, cat, h = seen.account, seen.catalogue, seen.history
        assert h is not None
        built = [_line(cat, spec, seen.today) for spec in lines]
        if any(i.draft.kind is DocumentKind.ADDITIONAL and i.draft.ref == f"{acc.number}.{ref}" for i in h.invoices):
            return Changes(acc)  # posted before: issued once
        command = credit.AdditionalInvoice(_org(cat, organization_id), tuple(built), ref, due_days)
        return credit.additional_invoice(acc, cat, command, seen.today, seen.number)

    return change(ctx, tenant, subscriber_no, decide, documents=True)


def _line(cat: Catalogue, spec: LineSpec, today: date) -> InvoiceLine:
    if spec.product_id is not None:
        product = cat.products.get(spec.product_id)
        if product is None:
            raise CatalogueError(f"unknown product {spec.product_id!r}")
        amount = product.price_on(spec.frequency, today) if spec.amount_minor is None else spec.amount_minor
        return line(spec.text or product.name, spec.quantity, amount, product.vat_rate_bp, product.id)
    if spec.text is None or spec.amount_minor is None:
        raise credit.CreditRefused("a free line needs a text and an amount")
    return line(spec.text, spec.quantity, spec.amount_minor, spec.vat_rate_bp)


def postpone_reminder(ctx: Context, tenant: str, subscriber_no: int, invoice_number: int, to: date,
                      reason: str) -> Changes:
    def decide(seen: Seen) -> Changes:
        demand = next((d for d in seen.account.open_demands.values() if d.terms.invoice_number == invoice_number),
                      None)
        if demand is None:
            raise NotFound(f"no open invoice {invoice_number}")
        return dunning_visit.postpone(seen.account, demand.demand_no, to, reason, seen.today)

    return change(ctx, tenant, subscriber_no, decide)


def set_order_block(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, reason: str | None) -> Changes:
    """Add (``reason``) or remove (None) a manual order blockage (manual 6.9)."""
    def decide(seen: Seen) -> Changes:
        acc = seen.account
        blocks = {k: v for k, v in acc.order_blocks.items() if k != organization_id}
        if reason is not None:  # a block names a known organisation; removing one always works
            blocks[_org(seen.catalogue, organization_id)] = (acc.order_blocks.get(organization_id)
                                                             or OrderBlock(reason, seen.today))
        return Changes(replace(acc, order_blocks=blocks))

    return change(ctx, tenant, subscriber_no, decide)


DELIVERY_FIELDS = ("delivery", "buyer_reference")


def set_delivery(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str,
                 settings: Mapping[str, Any]) -> Changes:
    """How a subscription's documents go (L7, D3; manual 16): ``delivery`` (a channel, or
    None for the organisation's default) and ``buyer_reference`` (the subscriber's order
    reference, shown on invoices and sent as the EHF BuyerReference); a field not given
    stays. A channel the subscriber cannot receive is refused (EHF needs an organisation
    number and an organisation that sends EHF, SMS a phone number). Documents issued
    already keep the reference they were issued with (their letter)."""
    unknown = set(settings) - set(DELIVERY_FIELDS)
    if unknown:
        raise ValueError(f"not a delivery setting: {', '.join(sorted(unknown))}")

    def decide(seen: Seen) -> Changes:
        acc = seen.account
        sub = acc.subscriptions.get(subscription_id)
        if sub is None:
            raise UnknownSubscription(f"subscriber {subscriber_no} has no subscription {subscription_id}")
        changed = replace(sub, **settings)
        if changed.delivery is not None:
            receivable(changed.delivery, acc.subscriber, seen.catalogue.organizations.get(sub.organization_id))
        if changed == sub:
            return Changes(acc)
        return Changes(acc.with_subscription(changed), (changed,))

    return change(ctx, tenant, subscriber_no, decide)


def _org(cat: Catalogue, organization_id: str) -> str:
    if organization_id not in cat.organizations:
        raise CatalogueError(f"unknown organization {organization_id!r}")
    return organization_id


def summary_of(changes: Changes) -> dict[str, Any]:
    """What an operation did, for the HTTP response."""
    return {
        "subscriptions": [to_jsonable(s) for s in changes.subscriptions],
        "invoices": [to_jsonable(i) | {"total_minor": i.total_minor, "amount_due_minor": i.amount_due_minor,
                                       "kind": i.draft.kind.value} for i in changes.invoices],
        "credit_notes": [to_jsonable(c) for c in changes.credit_notes],
        "ledger": [to_jsonable(e) for e in changes.ledger],
        "events": [e.type for e in changes.events],
    }

