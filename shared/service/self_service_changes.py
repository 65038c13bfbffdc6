"""My page's changes (M1): what a subscriber may change himself, within the plan's rules.

Each is one transaction in the subscriber's partition through the unit of work, run by the
same domain decisions as customer service's (``lifecycle.stop`` / ``change_stop`` / ``pause``;
a restart issued as an order is), under ``checkout.stopping`` so a Vipps agreement stops with
its subscriptions; within the plan's self-service rules (``StopPolicy``, ``pause_allowed``, the
organisation's self-service stop codes; manual 6.4, 6.5, 6.6, 6.13, 6.14.2); and idempotent:
each decision first looks whether it is done already, so a repeat or a racer finds it done.
Every change passes ``self_service.authorize`` first (a group ADMIN only on its group
subscription). A change of payment moves a running subscription to invoice by e-mail or EHF,
says how to sign AvtaleGiro in the bank, or makes a Vipps / card checkout on the rails of
``checkout`` (``switch_checkout``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from ..domain import lifecycle
from ..domain.account import AVTALEGIRO_MIN_DAYS, Account, Changes, issue, next_kid, subscription_created
from ..domain.agreements import reusable_card
from ..domain.catalogue import Channel, Organization, PaymentType, StopPolicy, SubscriptionPlan
from ..domain.dunning_visit import order_blocked
from ..domain.invoicing import Invoice
from ..domain.letters import receivable
from ..domain.lifecycle import StopRefused, UnknownSubscription
from ..domain.subscriptions import StopKind, Subscription
from ..ports import SubscriberPrincipal
from .checkout import leave_agreement, stopping, switch_checkout, watched
from .context import Context
from .self_service import (
    SubscriptionView,
    account_of,
    authorize,
    payment_of,
    self_service_codes,
    why_not_pause,
    why_not_restart,
    why_not_stop,
)
from .unit_of_work import Decision, Seen, change, drafts_that_fit

SELF_SERVICE = "My page"  # the reason recorded where a subscriber's own change needs one



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
        if sub.stop_date > seen.today and not _credited_beyond(sub):
            command = lifecycle.ChangeStop(subscription_id, None, f"Stop withdrawn on {SELF_SERVICE}")
            return lifecycle.change_stop(seen.account, seen.catalogue, command, _invoices_of(seen, subscription_id),
                                         seen.today, seen.number)
        return _restarted(seen, sub, new_id, max(seen.today, sub.stop_date))

    done = change(ctx, me.tenant, subscriber_no, stopping(ctx, me.tenant, decide), documents=True)
    running = new_id if new_id in done.account.subscriptions else subscription_id
    return view_of(ctx, me.tenant, done.account, running)


def _credited_beyond(sub: Subscription) -> bool:
    """Whether the stop credited invoiced days after it: the subscription was invoiced past its
    stop day (an invoice of a later period, or of the period a stop on a date cuts). Withdrawn,
    such a stop would leave those days credited for good (``lifecycle.change_stop``: manual 6.5,
    customer service's call), and one period is never invoiced twice (its natural key): so a
    subscriber's own restart of such a stop is a new subscription from the stop day instead,
    invoiced as any restart is."""
    assert sub.stop_date is not None
    return sub.next_period > 0 and sub.period(sub.next_period - 1).end > sub.stop_date


def _restarted(seen: Seen, sub: Subscription, new_id: str, start: date) -> Changes:
    """The new subscription of a restart from ``start``, with its first invoice issued as an order's is."""
    plan = seen.catalogue.plan(sub.plan_id)
    blocked = order_blocked(seen.account, seen.catalogue, plan.organization_id)
    if blocked:
        raise StopRefused(f"cannot restart: {blocked}")
    payment, agreement = _restart_payment(seen, sub)
    new = Subscription(new_id, plan.id, plan.organization_id, seen.catalogue.billing_plan_of(plan).frequency,
                       start, payment, sub.copies, delivery=sub.delivery, buyer_reference=sub.buyer_reference,
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
        if sub.stop_date is not None and sub.stop_date <= seen.today:
            raise StopRefused(f"subscription {subscription_id} has ended")
        receivable(channel, seen.account.subscriber, seen.catalogue.organizations[sub.organization_id])
        changed = replace(sub, payment_type=PaymentType.INVOICE, delivery=channel, agreement=None)
        if changed == sub:
            return Changes(seen.account)
        account = leave_agreement(seen.account.with_subscription(changed), sub.agreement, seen.today)
        return Changes(account, (changed,))

    return watched(ctx, tenant, decide)


def _avtalegiro(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str,
                language: str) -> PaymentChange:
    account = account_of(ctx, tenant, subscriber_no)
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
    account = account_of(ctx, tenant, subscriber_no)
    return PaymentChange(payment_of(account, account.subscriptions[subscription_id]),
                         redirect_url=made.redirect_url if made is not None else None)
