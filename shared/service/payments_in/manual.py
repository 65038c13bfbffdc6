"""Payments and refunds customer service books by hand, and the search over booked payments (P4).

A payment registered by hand is identified by the merchant's ``external_id``, a refund by
its external reference: registering either twice books it once. ``book_one`` is how every
payment booked by hand lands (a resolve, an approval, a registration).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ...adapters.codec import to_jsonable
from ...domain.account import BookRefund, Changes, refund
from ...domain.catalogue import Catalogue, Organization
from ...domain.import_report import Outcome
from ...domain.ledger import EntryKind
from ...domain.payments import MatchType, ReceivedPayment
from ...ports import NotFound
from ..context import Context
from ..unit_of_work import Seen, UnitOfWork
from .booking import book


class PaymentRefused(ValueError):
    """A set-aside record that cannot be handled the way asked (a reversal resolved as a payment)."""


@dataclass
class ImportResult:
    """What booking one payment by hand did (resolve, approve, register)."""

    file: str
    format: str
    payments: int = 0
    booked: int = 0
    already_booked: int = 0
    requires_processing: int = 0
    amount_booked_minor: int = 0


def register_payment(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, amount_minor: int,
                     payment_date: date, external_id: str, invoice_number: int | None = None,
                     comment: str = "") -> ImportResult:
    """A payment registered by hand (P4); ``external_id`` makes registering it twice harmless."""
    payment = assigned(ctx, tenant, f"manual.{external_id}", subscriber_no, organization_id, invoice_number,
                        amount_minor, payment_date, "manual", comment or None)
    return book_one(ctx, tenant, subscriber_no, payment, "manual", ctx.today(ctx.catalogue.get(tenant)))


def book_refund(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, amount_minor: int,
                external_reference: str, comment: str) -> bool:
    """Book a refund once per external reference; False if it was booked before."""
    catalogue = ctx.catalogue.get(tenant)
    org = organization(catalogue, organization_id)
    before = False

    def decide(seen: Seen) -> Changes:
        nonlocal before
        if seen.attempt:  # a conflict: perhaps the same refund, booked by a call that raced this one
            _, ledger = ctx.accounts.history(tenant, subscriber_no)
            before = any(e.kind is EntryKind.REFUND and e.reference == external_reference
                         and e.organization_id == org.id for e in ledger)
            if before:
                return Changes(seen.account)
        command = BookRefund(f"{org.id}.{external_reference}", org.id, org.currency, amount_minor, external_reference,
                             comment)
        return refund(seen.account, command, seen.today)

    with UnitOfWork(ctx, tenant, catalogue=catalogue) as uow:
        uow.change(subscriber_no, decide, visits=False)
    return not before


def search(ctx: Context, tenant: str, date_from: date | None = None, date_to: date | None = None,
           subscriber_no: int | None = None, invoice_number: int | None = None,
           source: str | None = None) -> list[dict[str, object]]:
    """Booked payments by date range, subscriber, invoice and source (customer service, not a hot path)."""
    found = []
    for payer, booked in ctx.inbox.booked_payments(tenant, subscriber_no):
        p = booked.payment
        numbers = {a.demand_no for a in booked.allocations}
        if ((date_from and p.payment_date < date_from) or (date_to and p.payment_date > date_to)
                or (source and p.source != source)):
            continue
        if invoice_number is not None and not _pays_invoice(ctx, tenant, payer, numbers, invoice_number):
            continue
        found.append({"subscriber_no": payer} | to_jsonable(booked))
    return found


def _pays_invoice(ctx: Context, tenant: str, subscriber_no: int, demand_nos: set[int], invoice_number: int) -> bool:
    return any((inv := ctx.accounts.invoice(tenant, subscriber_no, d)) is not None and inv.number == invoice_number
               for d in demand_nos)


def organization(catalogue: Catalogue, organization_id: str) -> Organization:
    org = catalogue.organizations.get(organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id}")
    return org


def assigned(ctx: Context, tenant: str, payment_id: str, subscriber_no: int, organization_id: str,
              invoice_number: int | None, amount_minor: int, payment_date: date, source: str,
              reference: str | None) -> ReceivedPayment:
    """A payment customer service assigned to a subscriber (and perhaps an invoice) by hand."""
    org = organization(ctx.catalogue.get(tenant), organization_id)
    demand_no = _demand_of(ctx, tenant, subscriber_no, invoice_number)
    match_type = MatchType.SUBSCRIBER_AND_INVOICE if demand_no else MatchType.NO_INVOICE
    return ReceivedPayment(payment_id, org.id, org.currency, amount_minor, payment_date, source, match_type,
                           reference, demand_no)


def _demand_of(ctx: Context, tenant: str, subscriber_no: int, invoice_number: int | None) -> int | None:
    if invoice_number is None:
        return None
    loaded = ctx.accounts.load(tenant, subscriber_no)
    if loaded is None:
        raise NotFound(f"subscriber {subscriber_no}")
    for demand in loaded.account.open_demands.values():
        if demand.terms.invoice_number == invoice_number:
            return demand.demand_no
    return None  # paid or unknown: the payment is booked without an invoice match


def book_one(ctx: Context, tenant: str, subscriber_no: int, payment: ReceivedPayment, file: str,
              today: date) -> ImportResult:
    if ctx.accounts.load(tenant, subscriber_no) is None:
        raise NotFound(f"subscriber {subscriber_no}")
    with UnitOfWork(ctx, tenant, today) as uow:
        ((where, _, why),) = book(uow, subscriber_no, [payment]).values()
    if where is Outcome.SET_ASIDE:
        raise PaymentRefused(why)
    booked = where is Outcome.BOOKED
    return ImportResult(file, payment.source, 1, int(booked), int(where is Outcome.ALREADY_BOOKED), 0,
                        payment.amount_minor if booked else 0)
