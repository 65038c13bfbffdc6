"""My page (M1): what a subscriber's login may see and do for the subscribers it is linked to.

``authorize`` is the one gate every subscriber endpoint passes: the login's access row
(one point read) says which subscribers it acts for (``Role.HOLDER``) and which group
subscriptions it has a seat in. Anything else is ``NotFound``, the same answer as for a
subscriber that does not exist, so a caller learns nothing about other subscribers.
``visible`` is the gate of a read that lists: a holder sees all of the subscriber's
subscriptions and documents, a group ``ADMIN`` only its group subscription's (manual 6.15).

The reads (``subscribers``, ``subscriptions``, ``documents``, ``pdf``) answer from the
subscriber's partition as stored (the account, and for documents its history), and the
rules of what a subscriber may change himself (``why_not_stop`` / ``restart`` / ``pause``)
say what My page offers; the changes are ``self_service_changes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta

from ..domain.account import Account, next_drafts
from ..domain.agreements import AgreementStatus
from ..domain.calendar import Period
from ..domain.catalogue import Catalogue, Organization, PaymentType, StopPolicy, SubscriptionPlan
from ..domain.documents import credit_note_document_id, invoice_document_id, reminder_document_id
from ..domain.identity import AccessRecord, Role, group_line
from ..domain.invoicing import Invoice, InvoiceDraft, draft_invoice
from ..domain.subscriptions import StopKind, Subscription, SubscriptionStatus
from ..ports import History, NotFound, SubscriberPrincipal
from . import documents as document_service
from .context import Context

RESTART_WITHIN = relativedelta(months=3)  # a subscription stopped less than this long ago restarts on the same terms


def record_of(ctx: Context, me: SubscriberPrincipal) -> AccessRecord:
    """The login's access row (an empty one if it is linked to nothing yet)."""
    return ctx.access.get(me.tenant, me.login) or AccessRecord(me.login)


def authorize(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, subscription_id: str | None = None,
              edit: bool = False) -> Role:
    """The role ``me`` has for ``subscriber_no`` (and ``subscription_id``), or ``NotFound``.

    A holder may do everything for the subscriber. A group member with the role ``ADMIN``
    may see and (``edit``) change only the group subscription it has a seat in; a ``USER``
    member has access claims only, no My page (manual 6.15)."""
    record = record_of(ctx, me)
    if record.acts_for(subscriber_no):
        return Role.HOLDER
    if subscription_id is not None:
        seat = record.membership(subscriber_no, subscription_id)
        if seat is not None and seat.role is Role.ADMIN:
            return Role.ADMIN
    raise NotFound(f"subscriber {subscriber_no} not found")


def visible(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> Set[str] | None:
    """The subscriptions of ``subscriber_no`` that ``me`` may see: None for all (a holder),
    else the group subscriptions it is an ``ADMIN`` of; ``NotFound`` if none."""
    record = record_of(ctx, me)
    if record.acts_for(subscriber_no):
        return None
    groups = {m.subscription_id for m in record.member_of if m.subscriber_no == subscriber_no and m.role is Role.ADMIN}
    if not groups:
        raise NotFound(f"subscriber {subscriber_no} not found")
    return groups


def account_of(ctx: Context, tenant: str, subscriber_no: int) -> Account:
    loaded = ctx.accounts.load(tenant, subscriber_no)
    if loaded is None:  # linked, yet gone: the same answer as for anyone else's
        raise NotFound(f"subscriber {subscriber_no} not found")
    return loaded.account


def _shown(subscription_id: str, mine: Set[str] | None) -> bool:
    return mine is None or subscription_id in mine


# ---- reads ---------------------------------------------------------------------------------------


def subscribers(ctx: Context, me: SubscriberPrincipal) -> list[dict[str, Any]]:
    """The subscribers the login acts for (holder) or administers a group subscription of
    (admin), each once, with its name; a group USER's seat gives access only, no My page."""
    record = record_of(ctx, me)
    roles: dict[int, Role] = {n: Role.HOLDER for n in record.holder_of}
    for m in record.member_of:
        if m.role is Role.ADMIN:
            roles.setdefault(m.subscriber_no, Role.ADMIN)
    out = []
    for number, role in sorted(roles.items()):
        loaded = ctx.accounts.load(me.tenant, number)
        if loaded is not None:
            out.append({"number": number, "name": loaded.account.subscriber.name, "role": role.value})
    return out


def subscriptions(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> list[dict[str, Any]]:
    """The subscriber's subscriptions (active, future and ended) as My page shows them."""
    mine = visible(ctx, me, subscriber_no)
    account = account_of(ctx, me.tenant, subscriber_no)
    catalogue = ctx.catalogue.get(me.tenant)
    view = SubscriptionView.on(account, catalogue, ctx.today(catalogue))
    subs = sorted(account.subscriptions.values(), key=lambda s: (s.anchor, s.id), reverse=True)
    return [view.of(s) for s in subs if _shown(s.id, mine)]


@dataclass(frozen=True)
class SubscriptionView:
    """One account's subscriptions as My page shows them, on ``today``."""

    account: Account
    catalogue: Catalogue
    today: date
    upcoming: Mapping[str, InvoiceDraft]  # subscription id -> its next invoice as the run would issue it

    @classmethod
    def on(cls, account: Account, catalogue: Catalogue, today: date) -> SubscriptionView:
        priced = replace(account, subscriptions={k: s for k, s in account.subscriptions.items()
                                                 if s.plan_id in catalogue.plans})  # a plan withdrawn: no next invoice
        return cls(account, catalogue, today, {d.subscription_id: d for d in next_drafts(priced, catalogue)})

    def of(self, sub: Subscription) -> dict[str, Any]:
        plan = self.catalogue.plans.get(sub.plan_id)
        org = self.catalogue.organizations.get(sub.organization_id)
        status = sub.status_on(self.today)
        period = current_period(sub, self.today)
        return {
            "id": sub.id, "plan_id": sub.plan_id, "plan_name": plan.name if plan else sub.plan_id,
            "status": status.value, "start": sub.anchor.isoformat(),
            "stop_date": sub.stop_date.isoformat() if sub.stop_date else None,
            "stop_kind": sub.stop_kind.value if sub.stop_kind else None,
            "current_period": {"start": period.start.isoformat(), "end": period.last_day.isoformat()}
            if period else None,
            "price": self.price(sub, org), "next_invoice": self.next_invoice(sub),
            "payment": payment_of(self.account, sub),
            "stop_policy": (plan.stop_policy if plan else StopPolicy.NONE).value,
            "stop_codes": list(self_service_codes(org)) if org else [],
            "can_stop": why_not_stop(sub, plan, self.today) is None,
            "can_restart": why_not_restart(self.account, sub, self.today) is None,
            "can_pause": why_not_pause(sub, plan, self.today) is None,
            "group": self.group(sub, plan),
        }

    def price(self, sub: Subscription, org: Organization | None) -> dict[str, Any] | None:
        """What a period of its products costs, as the catalogue prices them (its copies included;
        an invoice fee of the billing plan comes on the invoice: ``next_invoice``)."""
        plan = self.catalogue.plans.get(sub.plan_id)
        if plan is None or org is None:
            return None
        billing = self.catalogue.billing_plan_of(plan)
        draft = draft_invoice(replace(sub, stop_date=None), max(sub.next_period, 0), self.today, billing, org,
                              self.catalogue.products_of(plan))
        products = sum(li.gross_minor for li in draft.lines if li.product_id is not None)  # fees come on invoices
        return {"amount_minor": products, "currency": draft.currency, "frequency": sub.frequency.value}

    def next_invoice(self, sub: Subscription) -> dict[str, Any] | None:
        draft = self.upcoming.get(sub.id)
        if draft is None:
            return None
        return {"date": max(draft.issue_date, self.today).isoformat(), "amount_minor": draft.total_minor,
                "currency": draft.currency}

    def group(self, sub: Subscription, plan: SubscriptionPlan | None) -> dict[str, int] | None:
        if plan is None or plan.seats <= 0:
            return None
        return {"seats": plan.seats, "used": seats_used(self.account, sub.id, self.today)}


def current_period(sub: Subscription, today: date) -> Period | None:
    """The period running on ``today`` (None before the start and after the stop)."""
    if sub.status_on(today) is not SubscriptionStatus.ACTIVE:
        return None
    index = 0
    while sub.period(index).end <= today:
        index += 1
    return sub.period(index)


def seats_used(account: Account, subscription_id: str, today: date) -> int:
    """A group subscription's seats taken: its members' links and its open invitations."""
    line = group_line(account, subscription_id)  # the seats follow the group through pauses and restarts
    links = sum(1 for link in account.logins.values() if link.subscription_id in line)
    return links + sum(1 for i in account.invitations.values()
                       if i.subscription_id in line and i.expires > today)


def payment_of(account: Account, sub: Subscription) -> dict[str, Any]:
    """How the subscription is paid, and the agreement behind it: a Vipps or card agreement
    (the one it is charged on, else one being made for it), an AvtaleGiro mandate."""
    agreement = account.agreements.get(sub.agreement) if sub.agreement else None
    if agreement is None:
        agreement = next((a for a in account.agreements.values()
                          if a.subscription_id == sub.id and a.order is None and a.status is AgreementStatus.PENDING),
                         None)
    shown: dict[str, Any] | None = None
    if agreement is not None:
        shown = {"provider": agreement.provider.value, "status": agreement.status.value}
    elif sub.payment_type is PaymentType.AVTALEGIRO or sub.organization_id in account.mandates:
        mandate = account.mandates.get(sub.organization_id)
        if mandate is not None:
            shown = {"provider": "avtalegiro", "status": "active" if mandate.active else "deleted"}
    return {"type": sub.payment_type.value, "agreement": shown}


def self_service_codes(org: Organization) -> tuple[str, ...]:
    """The stop codes My page offers (manual 6.13): the organisation's choice, else all."""
    return org.self_service_stop_codes if org.self_service_stop_codes is not None else org.stop_codes


def documents(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> list[dict[str, Any]]:
    """Invoices, credit notes and reminders, newest first, with what is open of each."""
    mine = visible(ctx, me, subscriber_no)
    account = account_of(ctx, me.tenant, subscriber_no)
    catalogue = ctx.catalogue.get(me.tenant)
    history = ctx.accounts.documents(me.tenant, subscriber_no)
    pdf = f"/api/my/{me.tenant}/subscribers/{subscriber_no}/invoices"
    credited = {c.invoice_number for c in history.credit_notes}  # ``Account.credited`` is not stored: the notes say it
    out = [_invoice(account, catalogue, i, pdf, credited) for i in history.invoices
           if _shown(i.draft.subscription_id, mine)]
    out += [{"kind": "credit_note", "number": c.number, "demand_no": None, "issued": c.issue_date.isoformat(),
             "due": None, "amount_minor": -c.total_minor, "open_minor": 0, "currency": c.currency,
             "status": "credited", "kid": None, "account": _bank_account(catalogue, c.organization_id),
             "pdf": f"{pdf}/{c.number}/pdf"}
            for c in history.credit_notes if _shown(c.subscription_id, mine)]
    for r in history.reminders:
        if _shown(r.subscription_id, mine):
            demand = account.open_demands.get(r.invoice_demand_no)
            status = "reminded" if demand is not None else _settled(credited, r.invoice_number)
            out.append({"kind": "reminder", "number": r.invoice_number, "demand_no": r.reminder.demand_no,
                        "issued": r.reminder.produced.isoformat(), "due": r.reminder.due_date.isoformat(),
                        "amount_minor": r.reminder.amount_minor, "open_minor": demand.open_minor if demand else 0,
                        "currency": r.currency, "status": status, "kid": r.reminder.kid or None,
                        "account": _bank_account(catalogue, r.organization_id),
                        "pdf": f"{pdf}/{r.invoice_number}/pdf?reminder={r.reminder.demand_no}"})
    return sorted(out, key=lambda d: (d["issued"], d["kind"] != "reminder", d["number"]), reverse=True)


def _invoice(account: Account, catalogue: Catalogue, invoice: Invoice, pdf: str, credited: Set[int]) -> dict[str, Any]:
    d = invoice.draft
    demand = account.open_demands.get(invoice.demand_no)
    if demand is not None:
        status = "reminded" if demand.dunning.reminders else "open"
    else:
        status = _settled(credited, invoice.number)
    return {"kind": "invoice", "number": invoice.number, "demand_no": invoice.demand_no,
            "issued": d.issue_date.isoformat(), "due": d.due_date.isoformat(),
            "amount_minor": invoice.amount_due_minor, "open_minor": demand.open_minor if demand else 0,
            "currency": d.currency, "status": status, "kid": invoice.kid or None,
            "account": _bank_account(catalogue, d.organization_id), "pdf": f"{pdf}/{invoice.number}/pdf"}


def _settled(credited: Set[int], invoice_number: int) -> str:
    return "credited" if invoice_number in credited else "paid"


def _bank_account(catalogue: Catalogue, organization_id: str) -> str | None:
    org = catalogue.organizations.get(organization_id)
    return org.bank_account if org else None


def pdf(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, number: int,
        reminder: int | None = None) -> tuple[bytes, str]:
    """The PDF of the invoice (or credit note) ``number``, or of its reminder ``reminder``
    (its demand number), as the documents capability renders it; and its file name."""
    mine = visible(ctx, me, subscriber_no)
    history = ctx.accounts.documents(me.tenant, subscriber_no)
    document_id, subscription_id = _document_of(history, number, reminder)
    if document_id is None or not _shown(subscription_id, mine):
        raise NotFound(f"subscriber {subscriber_no} has no document {number}")
    return document_service.pdf(ctx, me.tenant, subscriber_no, document_id), f"{document_id}.pdf"


def _document_of(history: History, number: int, reminder: int | None) -> tuple[str | None, str]:
    if reminder is not None:
        found = next((r for r in history.reminders
                      if r.invoice_number == number and r.reminder.demand_no == reminder), None)
        return (reminder_document_id(reminder), found.subscription_id) if found else (None, "")
    invoice = next((i for i in history.invoices if i.number == number), None)
    if invoice is not None:
        return invoice_document_id(invoice.demand_no), invoice.draft.subscription_id
    note = next((c for c in history.credit_notes if c.number == number), None)
    return (credit_note_document_id(note.number), note.subscription_id) if note else (None, "")


# ---- what a subscriber may change himself (None: allowed; else why not) --------------------------


def why_not_stop(sub: Subscription, plan: SubscriptionPlan | None, today: date) -> str | None:
    if plan is None or plan.stop_policy is StopPolicy.NONE:
        return "this subscription is stopped by customer service, not on My page"
    if sub.stop_date is not None:
        return f"the subscription stops on {sub.stop_date} already" if sub.stop_date > today else "it has ended"
    return None


def why_not_restart(account: Account, sub: Subscription, today: date) -> str | None:
    if account.subscriber.erased is not None:  # nothing is ordered for a pseudonym
        return "the personal data were erased: order anew as a new customer"
    if sub.stop_date is None:
        return "the subscription is not stopped"
    if sub.stop_kind is StopKind.AUTOMATIC:  # manual 7.8: to continue after an offer, a new order from the stop day
        return "an offer ends after its period: order a subscription to continue"
    if sub.stop_kind is not StopKind.CUSTOMER:
        return ("a subscription stopped for want of payment is restarted by customer service"
                if sub.stop_kind is StopKind.PAYMENT else "a paused subscription restarts by itself")
    if any(s.resumes == sub.id for s in account.subscriptions.values()):  # restarted already (from its stop day)
        return "the subscription has been restarted already"
    if sub.stop_date + RESTART_WITHIN <= today:
        return "a subscription stopped 3 months ago or more is ordered anew"
    return None


def why_not_pause(sub: Subscription, plan: SubscriptionPlan | None, today: date) -> str | None:
    if plan is None or not plan.pause_allowed:
        return "this subscription cannot be paused"
    if sub.status_on(today) is not SubscriptionStatus.ACTIVE or sub.stop_date is not None:
        return "only a running subscription without a stop can be paused"
    return None
