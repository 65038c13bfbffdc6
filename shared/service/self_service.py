"""My page (M1): what a subscriber's login may see and do for the subscribers it is linked to.

``authorize`` is the one gate every subscriber endpoint passes: the login's access row
(one point read) says which subscribers it acts for (``Role.HOLDER``) and which group
subscriptions it has a seat in. Anything else is ``NotFound``, the same answer as for a
subscriber that does not exist, so a caller learns nothing about other subscribers.
``visible`` is the gate of a read that lists: a holder sees all of the subscriber's
subscriptions and documents, a group ``ADMIN`` only its group subscription's (manual 6.15).

The reads (``subscribers``, ``subscriptions``, ``documents``, ``pdf``) answer from the
subscriber's partition as stored (the account, and for documents its history). The
changes (``stop``, ``restart``, ``pause``, ``change_payment``) are each one transaction in
the subscriber's partition through the unit of work, run by the same domain functions as
customer service's (``lifecycle``), within what the plan lets a subscriber do himself
(manual 6.4, 6.6, 6.13, 6.14.2) and idempotent: asked again, they find it done.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Set
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta

from ..domain import lifecycle
from ..domain.account import AVTALEGIRO_MIN_DAYS, Account, Changes, next_drafts, next_kid, subscription_created
from ..domain.agreements import AgreementStatus, reusable_card
from ..domain.calendar import Period
from ..domain.catalogue import Catalogue, Channel, Organization, PaymentType, StopPolicy, SubscriptionPlan
from ..domain.documents import credit_note_document_id, invoice_document_id, reminder_document_id
from ..domain.identity import AccessRecord, Role
from ..domain.invoicing import Invoice, InvoiceDraft, draft_invoice
from ..domain.letters import receivable
from ..domain.lifecycle import StopRefused, UnknownSubscription
from ..domain.subscriptions import StopKind, Subscription, SubscriptionStatus
from ..ports import History, NotFound, SubscriberPrincipal
from . import documents as document_service
from .checkout import leave_agreement, stopping, switch_checkout, watched
from .context import Context
from .unit_of_work import Decision, Seen, change, drafts_that_fit

RESTART_WITHIN = relativedelta(months=3)  # a subscription stopped less than this long ago restarts on the same terms
SELF_SERVICE = "My page"  # the reason recorded where a subscriber's own change needs one


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


def _account(ctx: Context, tenant: str, subscriber_no: int) -> Account:
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
    account = _account(ctx, me.tenant, subscriber_no)
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
        return cls(account, catalogue, today, {d.subscription_id: d for d in next_drafts(account, catalogue)})

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
    links = sum(1 for link in account.logins.values() if link.subscription_id == subscription_id)
    return links + sum(1 for i in account.invitations.values()
                       if i.subscription_id == subscription_id and i.expires > today)


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
    account = _account(ctx, me.tenant, subscriber_no)
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
    if sub.stop_date is None:
        return "the subscription is not stopped"
    if sub.stop_kind not in (StopKind.CUSTOMER, StopKind.AUTOMATIC):
        return ("a subscription stopped for want of payment is restarted by customer service"
                if sub.stop_kind is StopKind.PAYMENT else "a paused subscription restarts by itself")
    if sub.stop_date <= today and any(s.resumes == sub.id for s in account.subscriptions.values()):
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


# ---- changes -------------------------------------------------------------------------------------


def _subscription(seen: Seen, subscription_id: str) -> tuple[Subscription, SubscriptionPlan | None]:
    sub = seen.account.subscriptions.get(subscription_id)
    if sub is None:
        raise UnknownSubscription(f"no subscription {subscription_id}")
    return sub, seen.catalogue.plans.get(sub.plan_id)


def _invoices_of(seen: Seen, subscription_id: str) -> list[Invoice]:
    assert seen.history is not None
    return [i for i in seen.history.invoices if i.draft.subscription_id == subscription_id]


def _refuse(reason: str | None) -> None:
    if reason is not None:
        raise StopRefused(reason)


def view_of(ctx: Context, tenant: str, account: Account, subscription_id: str) -> dict[str, Any]:
    catalogue = ctx.catalogue.get(tenant)
    return SubscriptionView.on(account, catalogue, ctx.today(catalogue)).of(account.subscriptions[subscription_id])


def stop(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, subscription_id: str, on: date | None,
         code: str | None) -> dict[str, Any]:
    """Stop by the plan's stop policy (manual 6.14.2): at the end of the ongoing period, or
    (``optional``) on a day from today to that end; with one of the organisation's
    self-service stop codes where it has stop codes (6.13). Asked again, the stop is found."""
    authorize(ctx, me, subscriber_no, subscription_id, edit=True)

    def decide(seen: Seen) -> Changes:
        sub, plan = _subscription(seen, subscription_id)
        if sub.stop_kind is StopKind.CUSTOMER and sub.stop_date is not None and on in (None, sub.stop_date):
            return Changes(seen.account)  # stopped so before: nothing more
        _refuse(why_not_stop(sub, plan, seen.today))
        assert plan is not None
        _check_code(seen.catalogue.organizations[sub.organization_id], code)
        at_end = on is None or on == sub.renewal_on(seen.today)
        if not at_end and plan.stop_policy is not StopPolicy.OPTIONAL:
            raise StopRefused("this subscription stops at the end of its period only")
        if on is not None and not seen.today <= on <= sub.renewal_on(seen.today):
            raise StopRefused(f"choose a day from {seen.today} to {sub.renewal_on(seen.today)}")
        command = lifecycle.StopSubscription(subscription_id, at_end, None if at_end else on, code,
                                             "" if code else f"Stopped on {SELF_SERVICE}")
        return lifecycle.stop(seen.account, seen.catalogue, command, _invoices_of(seen, subscription_id),
                              seen.today, seen.number)

    done = change(ctx, me.tenant, subscriber_no, stopping(ctx, me.tenant, decide), documents=True)
    return view_of(ctx, me.tenant, done.account, subscription_id)


def _check_code(org: Organization, code: str | None) -> None:
    offered = self_service_codes(org)
    if code is not None and code not in offered:
        raise StopRefused(f"stop code must be one of {', '.join(offered)}" if offered else "no stop codes here")
    if org.stop_codes and code is None:
        raise StopRefused(f"a stop needs a stop code: one of {', '.join(offered)}")


def restart_id(tenant: str, subscription_id: str) -> str:
    """The id of the one restart a stopped subscription may have on My page (a repeat finds it)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"abonno:{tenant}:{subscription_id}:self-service-restart").hex[:16]


def restart(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, subscription_id: str) -> dict[str, Any]:
    """Undo a stop: a stop still ahead is withdrawn (manual 6.5); a subscription ended less than
    3 months ago gets a new subscription from today on the same plan, copies, delivery and
    payment (a Vipps agreement, which belongs to its subscription, is not reused: invoice).
    Asked again, the withdrawn stop or the restart is found; answers the running subscription."""
    authorize(ctx, me, subscriber_no, subscription_id, edit=True)
    new_id = restart_id(me.tenant, subscription_id)

    def decide(seen: Seen) -> Changes:
        sub, _plan = _subscription(seen, subscription_id)
        if new_id in seen.account.subscriptions or (sub.stop_date is None and sub.id != new_id):
            return Changes(seen.account)  # restarted, or the stop withdrawn, before
        _refuse(why_not_restart(seen.account, sub, seen.today))
        assert sub.stop_date is not None
        if sub.stop_date > seen.today:
            command = lifecycle.ChangeStop(subscription_id, None, f"Stop withdrawn on {SELF_SERVICE}")
            return lifecycle.change_stop(seen.account, seen.catalogue, command, _invoices_of(seen, subscription_id),
                                         seen.today, seen.number)
        return _restarted(seen, sub, new_id)

    done = change(ctx, me.tenant, subscriber_no, stopping(ctx, me.tenant, decide), documents=True)
    running = new_id if new_id in done.account.subscriptions else subscription_id
    return view_of(ctx, me.tenant, done.account, running)


def _restarted(seen: Seen, sub: Subscription, new_id: str) -> Changes:
    """The new subscription of a restart, with its first invoice issued as an order's is."""
    from ..domain.account import issue  # the order's way of issuing the first invoice
    from ..domain.dunning_visit import order_blocked

    plan = seen.catalogue.plan(sub.plan_id)
    blocked = order_blocked(seen.account, seen.catalogue, plan.organization_id)
    if blocked:
        raise StopRefused(f"cannot restart: {blocked}")
    payment, agreement = _restart_payment(seen, sub)
    new = Subscription(new_id, plan.id, plan.organization_id, seen.catalogue.billing_plan_of(plan).frequency,
                       seen.today, payment, sub.copies, delivery=sub.delivery, buyer_reference=sub.buyer_reference,
                       agreement=agreement, resumes=sub.id)
    account = seen.account.with_subscription(new)
    drafts = drafts_that_fit(seen.loaded, account, seen.catalogue, seen.today, extra_entities=1)
    numbers = {d.natural_key: seen.number(d.organization_id, d.natural_key) for d in drafts}
    base = Changes(account, (new,), events=(subscription_created(account.number, new),))
    return issue(account, drafts, numbers, seen.catalogue, seen.today, base)


def _restart_payment(seen: Seen, sub: Subscription) -> tuple[PaymentType, str | None]:
    if sub.payment_type is PaymentType.CARD:
        card = reusable_card(seen.account.agreements, sub.organization_id, seen.today)
        return (PaymentType.CARD, card.key) if card is not None else (PaymentType.INVOICE, None)
    if sub.payment_type is PaymentType.VIPPS:
        return PaymentType.INVOICE, None
    if sub.payment_type is PaymentType.AVTALEGIRO:
        mandate = seen.account.mandates.get(sub.organization_id)
        return (PaymentType.AVTALEGIRO if mandate is not None and mandate.active else PaymentType.INVOICE), None
    return sub.payment_type, None


def pause_id(tenant: str, subscription_id: str, restart_on: date) -> str:
    """The restart of a pause: the id customer service's pause gives it (``customer_service.pause``)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"abonno:{tenant}:{subscription_id}:restart:{restart_on}").hex[:16]


def pause(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, subscription_id: str,
          restart_on: date) -> dict[str, Any]:
    """Pause from the end of the ongoing period until ``restart_on`` where the plan allows it
    (manual 6.6); the same pause asked again is found."""
    authorize(ctx, me, subscriber_no, subscription_id, edit=True)
    new_id = pause_id(me.tenant, subscription_id, restart_on)

    def decide(seen: Seen) -> Changes:
        sub, plan = _subscription(seen, subscription_id)
        if sub.stop_kind is StopKind.PAUSE and new_id in seen.account.subscriptions:
            return Changes(seen.account)  # paused so before
        _refuse(why_not_pause(sub, plan, seen.today))
        command = lifecycle.PauseSubscription(subscription_id, restart_on, new_id)
        changes = lifecycle.pause(seen.account, seen.catalogue, command, _invoices_of(seen, subscription_id),
                                  seen.today, seen.number)
        return _resume_on_agreement(changes, sub, new_id)

    done = change(ctx, me.tenant, subscriber_no, stopping(ctx, me.tenant, decide), documents=True)
    return view_of(ctx, me.tenant, done.account, subscription_id)


def _resume_on_agreement(changes: Changes, paused: Subscription, new_id: str) -> Changes:
    """The restart after a pause is charged on the paused subscription's agreement, as
    customer service's pause does (a pause does not stop the agreement)."""
    restart_ = changes.account.subscriptions.get(new_id)
    if paused.agreement is None or restart_ is None:
        return changes
    restart_ = replace(restart_, agreement=paused.agreement)
    return replace(changes, account=changes.account.with_subscription(restart_),
                   subscriptions=tuple(restart_ if s.id == new_id else s for s in changes.subscriptions))


# ---- payment -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentChange:
    """What a change of payment answers: the payment as it now is, where the payer approves a
    Vipps or card agreement (``redirect_url``), or how to sign AvtaleGiro (``instructions``)."""

    payment: dict[str, Any]
    redirect_url: str | None = None
    instructions: str | None = None

    def json(self) -> dict[str, Any]:
        return {"payment": self.payment, "redirect_url": self.redirect_url, "instructions": self.instructions}


INVOICE_CHANNELS = {"email": Channel.EMAIL, "ehf": Channel.EHF}


def change_payment(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, subscription_id: str,
                   method: str, language: str = "nb") -> PaymentChange:
    """Pay the subscription by invoice by e-mail or EHF (at once, from its next invoice), by
    AvtaleGiro (signed in the payer's bank: the answer says how; the subscription moves when
    the bank's mandate arrives, manual 7.24) or by Vipps / card (a checkout for this
    subscription: it moves to the agreement when the provider says it is approved)."""
    authorize(ctx, me, subscriber_no, subscription_id, edit=True)
    if method in INVOICE_CHANNELS:
        done = change(ctx, me.tenant, subscriber_no, watched_invoice(ctx, me.tenant, subscription_id,
                                                                     INVOICE_CHANNELS[method]))
        return PaymentChange(payment_of(done.account, done.account.subscriptions[subscription_id]))
    if method == "avtalegiro":
        return _avtalegiro(ctx, me.tenant, subscriber_no, subscription_id, language)
    if method in ("vipps", "card"):
        return _provider_checkout(ctx, me.tenant, subscriber_no, subscription_id, PaymentType(method))
    raise ValueError(f"unknown payment method {method!r}")


def watched_invoice(ctx: Context, tenant: str, subscription_id: str, channel: Channel) -> Decision:
    """The decision that puts a subscription on invoice by ``channel``, off the Vipps or card
    agreement it was charged on (``leave_agreement``)."""

    def decide(seen: Seen) -> Changes:
        sub, _plan = _subscription(seen, subscription_id)
        receivable(channel, seen.account.subscriber, seen.catalogue.organizations[sub.organization_id])
        changed = replace(sub, payment_type=PaymentType.INVOICE, delivery=channel, agreement=None)
        if changed == sub:
            return Changes(seen.account)
        account = leave_agreement(seen.account.with_subscription(changed), sub.agreement, seen.today)
        return Changes(account, (changed,))

    return watched(ctx, tenant, decide)


def _avtalegiro(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str,
                language: str) -> PaymentChange:
    account = _account(ctx, tenant, subscriber_no)
    sub = account.subscriptions.get(subscription_id)
    if sub is None:
        raise UnknownSubscription(f"no subscription {subscription_id}")
    if not sub.frequency.months and sub.frequency.days < AVTALEGIRO_MIN_DAYS:
        raise StopRefused("AvtaleGiro is for subscriptions paid for four weeks or more at a time")
    org = ctx.catalogue.get(tenant).organizations[sub.organization_id]
    if not org.bank_account:
        raise StopRefused(f"{org.name} takes no AvtaleGiro")
    mandate = account.mandates.get(org.id)
    kid = mandate.kid if mandate is not None and mandate.active else next_kid(org.kid, subscriber_no, 1)[1]
    return PaymentChange(payment_of(account, sub), instructions=avtalegiro_instructions(org, kid, language))


def avtalegiro_instructions(org: Organization, kid: str, language: str) -> str:
    """How the payer signs AvtaleGiro in the online bank, with the organisation's account and KID."""
    if language == "en":
        return (f"Log in to your online bank and choose AvtaleGiro (under payments or agreements). Search for "
                f"{org.name}, or enter account number {org.bank_account}, and give the KID {kid}. Set a maximum "
                f"amount per charge at least as high as the price. The subscription is paid by AvtaleGiro from "
                f"the first invoice after the bank confirms the agreement to {org.name}; until then, pay the "
                f"invoices as usual.")
    return (f"Logg inn i nettbanken og velg AvtaleGiro (under betaling eller avtaler). Søk opp {org.name}, eller "
            f"oppgi kontonummer {org.bank_account}, og KID {kid}. Sett et beløpstak per trekk som er minst like "
            f"høyt som prisen. Abonnementet betales med AvtaleGiro fra første faktura etter at banken har "
            f"bekreftet avtalen til {org.name}; frem til da betaler du fakturaene som vanlig.")


def _provider_checkout(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str,
                       payment_type: PaymentType) -> PaymentChange:
    made = switch_checkout(ctx, tenant, subscriber_no, subscription_id, payment_type)
    account = _account(ctx, tenant, subscriber_no)
    return PaymentChange(payment_of(account, account.subscriptions[subscription_id]),
                         redirect_url=made.redirect_url if made is not None else None)
