"""Provider charges for renewal invoices (P6): requested with the invoice, settled by what
the provider says.

* **Requested** (``requests_for``, called by ``account.issue``): an invoice of a subscription
  charged on an ACTIVE Vipps or card agreement, with something to pay, gets a ``Charge`` row
  and a ``ChargeRequested`` event in the transaction that issues it. Its due date keeps the
  provider's lead time (``charge_due``); a card that expires before that day gets no charge
  (the invoice asks for its KID as any other) and a ``ChargeFailed`` says why.
* **Settled** (``settle``): what a re-read of the charge at the provider shows
  (``Observed``) is merged into the row, never backwards (``ChargeState.rank``). Captured:
  the money is booked as a payment through the bank payments' path
  (``account.receive_payment``, matched by external identifier, the settlement policy
  deciding about a difference), and the row goes. Failed, cancelled or never created: the
  row goes, ``ChargeFailed`` is raised, and the dunning process's extra payment requests
  (manual 7.19 step 2) ask again with a new charge; after the last, the open demand is left
  to the ordinary reminders with KID. No row: settled before, nothing to do. So the same
  news twice, or news out of order, books nothing twice and loses nothing.

Pure: no clock (``today`` is given), no I/O. The provider's statuses are mapped here
(``vipps_state``, ``card_state``) so the rule of what counts as captured is in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from .account import Account, Changes, process_of, receive_payment
from .agreements import Charge, ChargeState, PaymentAgreement, Provider, charge_id
from .catalogue import Catalogue, PaymentType
from .events import ChargeFailed, ChargeRequested, Event
from .invoicing import Invoice
from .ledger import VatPart
from .payments import MatchType, ReceivedPayment
from .subscriptions import Subscription

LEAD_DAYS = 2  # Vipps Recurring: a charge is created at least this many days before its due date (we keep 2)
EXTRA_REQUEST_DAYS = LEAD_DAYS  # an extra payment request is due this many days after the failure is known
PROVIDER_OF = {PaymentType.VIPPS: Provider.VIPPS, PaymentType.CARD: Provider.SWEDBANKPAY}
DESCRIPTION_LENGTH = 45  # Vipps: a charge's description, shown in the app


def charge_due(invoice_due: date, booked: date) -> date:
    """The charge's due date: the invoice's, but never sooner than the provider's lead time
    after the day it is requested (a calendar date: month ends and DST change nothing)."""
    return max(invoice_due, booked + timedelta(days=LEAD_DAYS))


def charged_agreement(account: Account, subscription: Subscription | None) -> PaymentAgreement | None:
    """The ACTIVE agreement a subscription is charged on, if it is paid with Vipps or card."""
    if subscription is None or subscription.agreement is None:
        return None
    provider = PROVIDER_OF.get(subscription.payment_type)
    agreement = account.agreements.get(subscription.agreement)
    if provider is None or agreement is None or not agreement.active or agreement.provider is not provider:
        return None
    return agreement


def requests_for(account: Account, invoices: Sequence[Invoice], catalogue: Catalogue,
                 booked: date) -> tuple[dict[str, Charge], list[Event]]:
    """The charges ``invoices`` (just issued, on ``account`` as it was before) ask for: charge
    id -> the new ``Charge`` row, and the events (``ChargeRequested``; ``ChargeFailed`` for a
    card that expires before the due date). Nothing for an invoice paid by anything else."""
    rows: dict[str, Charge] = {}
    events: list[Event] = []
    for invoice in invoices:
        d = invoice.draft
        agreement = charged_agreement(account, account.subscriptions.get(d.subscription_id))
        if agreement is None or invoice.amount_due_minor <= 0:
            continue
        due = charge_due(d.due_date, booked)
        retry = 0 if agreement.provider is Provider.SWEDBANKPAY else _retry_days(catalogue, d.subscription_id, account)
        charge = Charge(charge_id(account.number, invoice.demand_no, 1), agreement.provider, agreement.key,
                        d.organization_id, invoice.demand_no, invoice.amount_due_minor, d.currency, due, retry, 1,
                        changed=booked)
        if agreement.card_expiry is not None and agreement.card_expiry < due:
            events.append(_failed(account.number, charge, ChargeState.CREATION_FAILED,
                                  f"card expires {agreement.card_expiry.isoformat()}, before the due date"))
            continue
        rows[charge.id] = charge
        events.append(requested(account.number, charge))
    return rows, events


def _retry_days(catalogue: Catalogue, subscription_id: str, account: Account) -> int:
    sub = account.subscriptions[subscription_id]
    return catalogue.billing_plan_of(catalogue.plan(sub.plan_id)).retry_days


def requested(subscriber_no: int, charge: Charge) -> ChargeRequested:
    return ChargeRequested(f"charge-requested.{charge.id}", subscriber_no, charge.id, charge.provider.value,
                           charge.organization_id, charge.demand_no, charge.amount_minor, charge.currency, charge.due)


def _failed(subscriber_no: int, charge: Charge, state: ChargeState, reason: str) -> ChargeFailed:
    return ChargeFailed(f"charge-failed.{charge.id}", subscriber_no, charge.id, charge.provider.value,
                        charge.organization_id, charge.demand_no, state.value, reason)


# ---- what the provider says ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """A charge as a re-read at the provider shows it."""

    state: ChargeState
    captured_minor: int = 0
    refunded_minor: int = 0
    failure_reason: str = ""
    provider_ref: str = ""  # Swedbank Pay: the payment order id of the purchase
    currency: str = ""  # of the charge at the provider, where the answer says ("": not said)


class ImplausibleAnswer(ValueError):
    """A provider's answer that cannot be true of the charge we asked for (more captured than
    its amount, "captured" with nothing captured, another currency, negative amounts): it is
    not applied. Nothing is booked from it; the caller's failure path tells customer service."""


def implausible(charge: Charge, seen: Observed) -> str:
    """Why ``seen`` cannot be believed of ``charge`` ("" if it can). The provider is the truth
    about what happened, but only within what we asked for: a charge is of our amount, in our
    currency, so an answer outside that is a broken or forged answer, never money to book."""
    if seen.currency and seen.currency != charge.currency:
        return f"the provider says {seen.currency}, the charge is in {charge.currency}"
    if seen.captured_minor < 0 or seen.refunded_minor < 0:
        return "a negative amount"
    if seen.captured_minor > charge.amount_minor:
        return f"{seen.captured_minor} captured of a charge of {charge.amount_minor}"
    if captured(seen.state) and max(seen.captured_minor, charge.captured_minor) <= 0:
        return f"{seen.state.value} with nothing captured"
    if seen.refunded_minor > max(seen.captured_minor, charge.captured_minor):
        return f"{seen.refunded_minor} refunded of {max(seen.captured_minor, charge.captured_minor)} captured"
    return ""


_VIPPS = {"PENDING": ChargeState.PENDING, "DUE": ChargeState.DUE, "PROCESSING": ChargeState.PROCESSING,
          "RESERVED": ChargeState.RESERVED, "CHARGED": ChargeState.CHARGED,
          "PARTIALLY_CAPTURED": ChargeState.CHARGED,  # what was captured is money: booked
          "PARTIALLY_REFUNDED": ChargeState.PARTIALLY_REFUNDED, "REFUNDED": ChargeState.REFUNDED,
          "FAILED": ChargeState.FAILED, "CANCELLED": ChargeState.CANCELLED}
_CARD = {"Initialized": ChargeState.PROCESSING, "Paid": ChargeState.CHARGED, "Reversed": ChargeState.REFUNDED,
         "Failed": ChargeState.FAILED, "Cancelled": ChargeState.CANCELLED, "Aborted": ChargeState.CANCELLED}


def vipps_state(status: str) -> ChargeState:
    """Our state of a Vipps charge status; an unknown status is no news (PENDING, rank 1)."""
    return _VIPPS.get(status.upper(), ChargeState.PENDING)


def card_state(status: str, captured_minor: int) -> ChargeState:
    """Our state of a Swedbank Pay payment order status; an unknown one is no news. ``Paid``
    with nothing captured is an authorization (RESERVED): no money was taken yet."""
    if status == "Paid" and captured_minor <= 0:
        return ChargeState.RESERVED
    return _CARD.get(status, ChargeState.PENDING)


def captured(state: ChargeState) -> bool:
    """Money was taken: a refund afterwards does not undo that the payment came in."""
    return state in (ChargeState.CHARGED, ChargeState.PARTIALLY_REFUNDED, ChargeState.REFUNDED)


def merged(charge: Charge, seen: Observed, today: date) -> Charge:
    """The row after the news: a state of lower rank than the row's is news from the past
    and changes nothing; amounts only grow."""
    if seen.state.rank < charge.state.rank or (seen.state.rank == charge.state.rank and charge.state.final):
        return charge
    after = replace(charge, state=seen.state, captured_minor=max(charge.captured_minor, seen.captured_minor),
                    refunded_minor=max(charge.refunded_minor, seen.refunded_minor),
                    failure_reason=seen.failure_reason or charge.failure_reason,
                    provider_ref=seen.provider_ref or charge.provider_ref)
    return charge if after == charge else replace(after, changed=today)


def settle(account: Account, charge_id_: str, seen: Observed, catalogue: Catalogue, today: date) -> Changes:
    """Apply what the provider says about a charge (see the module's doc). A charge with no
    row was settled before (or never ours): nothing changes."""
    charge = account.charges.get(charge_id_)
    if charge is None:
        return Changes(account)
    why = implausible(charge, seen)
    if why:
        raise ImplausibleAnswer(f"charge {charge.id}: {why}")
    after = merged(charge, seen, today)
    if after == charge:
        return Changes(account)
    rest = {k: c for k, c in account.charges.items() if k != charge.id}
    if captured(after.state):
        return _book(replace(account, charges=rest), after, catalogue, today)
    if after.state.final:
        return failed(replace(account, charges=rest), after, catalogue, today)
    return Changes(replace(account, charges={**account.charges, charge.id: after}))


def payment_id(charge: Charge) -> str:
    """The booked payment of a captured charge: the same charge is never booked twice."""
    return f"{charge.provider.value}.{charge.id}"


def _book(account: Account, charge: Charge, catalogue: Catalogue, today: date) -> Changes:
    amount = charge.captured_minor  # what the provider shows captured (``implausible``: 0 < it <= the amount)
    kid = kid_of(account, catalogue, charge)
    payment = ReceivedPayment(payment_id(charge), charge.organization_id, charge.currency, amount, today,
                              charge.provider.value, MatchType.EXTERNAL_IDENTIFIER, kid, charge.demand_no or None,
                              provider_ref=charge.provider_ref)
    return receive_payment(account, payment, catalogue, today)


def failed(account: Account, charge: Charge, catalogue: Catalogue, today: date) -> Changes:
    """A charge that ended without money (its row already gone from ``account``): ``ChargeFailed``,
    and an extra payment request while the dunning process allows one and the demand is open."""
    events: list[Event] = [_failed(account.number, charge, charge.state, charge.failure_reason)]
    extra = extra_request(account, charge, catalogue, today)
    if extra is not None:
        account = replace(account, charges={**account.charges, extra.id: extra})
        events.append(requested(account.number, extra))
    return Changes(account, events=tuple(events))


def extra_request(account: Account, charge: Charge, catalogue: Catalogue, today: date) -> Charge | None:
    """Manual 7.19 step 2: the next attempt at a failed charge's demand, if the dunning
    process has extra payment requests left, the demand is still open and the agreement is
    still active; else None (the ordinary dunning goes on with reminders with KID)."""
    demand = account.open_demands.get(charge.demand_no)
    if demand is None or not payable(account, charge):
        return None
    process = process_of(account, catalogue, demand)
    agreement = account.agreements.get(charge.agreement_key)
    if process is None or charge.attempt > process.extra_payment_requests or agreement is None or not agreement.active:
        return None
    due = today + timedelta(days=EXTRA_REQUEST_DAYS)
    if agreement.card_expiry is not None and agreement.card_expiry < due:
        return None
    return Charge(charge_id(account.number, charge.demand_no, charge.attempt + 1), charge.provider,
                  charge.agreement_key, charge.organization_id, charge.demand_no, demand.open_minor, charge.currency,
                  due, charge.retry_days, charge.attempt + 1, changed=today)


def kid_of(account: Account, catalogue: Catalogue, charge: Charge) -> str | None:
    """The KID of the demand a charge pays (its reference, as a bank payment of it would have)."""
    org = catalogue.organizations.get(charge.organization_id)
    if org is None or not charge.demand_no:
        return None
    return org.kid.encode(account.number, charge.demand_no)


def description(account: Account, catalogue: Catalogue, charge: Charge) -> str:
    """What the payer sees under the charge (Vipps: at most 45 characters): the plan's name."""
    demand = account.open_demands.get(charge.demand_no)
    sub = account.subscriptions.get(demand.terms.subscription_id) if demand is not None else None
    plan = catalogue.plans.get(sub.plan_id) if sub is not None else None
    text = plan.name if plan is not None else f"Invoice {demand.terms.invoice_number}" if demand else charge.id
    return text[:DESCRIPTION_LENGTH]


def vat_share(account: Account, charge: Charge) -> int:
    """The VAT in a charge's amount (Swedbank Pay asks for it): the invoice's VAT, pro rata."""
    demand = account.open_demands.get(charge.demand_no)
    return pro_rata_vat(demand.terms.vat, charge.amount_minor) if demand is not None else 0


def pro_rata_vat(parts: Sequence[VatPart], amount_minor: int) -> int:
    """The VAT in ``amount_minor`` of a demand whose VAT per rate is ``parts`` (rounded down)."""
    gross = sum(p.gross_minor for p in parts)
    return sum(p.vat_minor for p in parts) * amount_minor // gross if gross > 0 else 0


def payable(account: Account, charge: Charge) -> bool:
    """Whether the charge's demand is still open: one paid meanwhile (by bank, say) is not charged."""
    demand = account.open_demands.get(charge.demand_no)
    return demand is not None and demand.open_minor > 0
