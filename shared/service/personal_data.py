"""Personal data on My page (M1, S8): the subscriber's profile, a verified change of its
e-mail address, and the GDPR rights of access (``export``) and erasure (``erase``).

Every call passes ``self_service.authorize`` as the subscriber's HOLDER (a group member
has no say over the group owner's personal data) and changes the subscriber's partition
through ``unit_of_work.change``: one transaction, retried on a conflict.

*E-mail change.* The code goes to the NEW address (``verification.send_code``), bound to
the login and the subscriber (``email_target``), so only the login that asked can confirm
it, and only by proving the mailbox. Confirming moves the e-mail index in three steps,
each safe on its own: the new address is *claimed* for the subscriber first (the index's
create-if-absent: of two subscribers claiming one address only one can win, also against
a concurrent order), then the subscriber row changes (under its ETag, so two changes of
one subscriber serialise, each seeing the address the other left), then the old address
is *released*, only while it still names this subscriber. A failure between leaves an
extra claim that names this subscriber (an order on it is held for customer service),
never two subscribers on one address. Asking reveals nothing: the answer is the same
whether the new address is someone's or nobody's; only its owner, holding the code,
learns that it cannot be used.

*Erasure* (GDPR art. 17, limited by art. 17(3)(b): the Norwegian bokføringsloven
§ 13 keeps the accounting documents five years). The subscriber row is pseudonymised
(name, e-mail, phone, address, organisation number, IP ranges; ``Subscriber.erased``
set) with the orders kept on its payment agreements; the links of its logins and its
open invitations are removed (their access rows are refreshed right after), the e-mail
index entry released and the addresses in its delivery log blanked. Invoices, credit
notes, reminders, the ledger and payments stay as issued. Refused with the reasons while
it owes money, has money or a charge in flight, or has an active or future subscription
or an order awaiting payment approval or held for customer service (a held order carries its
personal data; an order that found its number before the erasure is refused when placed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from ..adapters.codec import to_jsonable
from ..domain.account import Account, Changes
from ..domain.agreements import AgreementStatus
from ..domain.identity import Role
from ..domain.subscriptions import Subscriber, SubscriberError, SubscriptionStatus
from ..ports import ConcurrencyConflict, NotFound, SubscriberPrincipal
from . import access, orders, verification
from .context import Context
from .self_service import authorize
from .unit_of_work import Seen, change

EMAIL_PURPOSE = "email"
PROFILE_FIELDS = ("name", "address", "postal_code", "city", "phone", "country")
ERASED_NAME = "Erased subscriber"


class PersonalDataRefused(SubscriberError):
    """A change of personal data that cannot be made now, with the reason (422)."""


class ErasureRefused(PersonalDataRefused):
    """Erasure refused: ``reasons`` says why (the subscriber owes money, has active or
    future subscriptions ...), each a sentence the subscriber can act on."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("the personal data cannot be erased yet: " + "; ".join(reasons))
        self.reasons = reasons


def _holder(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> Account:
    """The account of a subscriber ``me`` acts for as its holder (else ``NotFound``)."""
    if authorize(ctx, me, subscriber_no) is not Role.HOLDER:
        raise NotFound(f"subscriber {subscriber_no} not found")
    loaded = ctx.accounts.load(me.tenant, subscriber_no)
    if loaded is None:
        raise NotFound(f"subscriber {subscriber_no} not found")
    return loaded.account


def profile_of(subscriber: Subscriber) -> dict[str, Any]:
    return {"number": subscriber.number, "name": subscriber.name, "email": subscriber.email,
            "phone": subscriber.phone, "address": subscriber.address, "postal_code": subscriber.postal_code,
            "city": subscriber.city, "country": subscriber.country,
            "organization_number": subscriber.organization_number,
            "erased": subscriber.erased.isoformat() if subscriber.erased else None}


def profile(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> dict[str, Any]:
    return profile_of(_holder(ctx, me, subscriber_no).subscriber)


def change_profile(ctx: Context, me: SubscriberPrincipal, subscriber_no: int,
                   fields: Mapping[str, str | None]) -> dict[str, Any]:
    """Change the given fields (``PROFILE_FIELDS``; a field not given stays; the name and
    country cannot be blanked). Changing nothing commits nothing."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not a profile field: {', '.join(sorted(unknown))}")
    if fields.get("name", "x") is None or fields.get("country", "x") is None:
        raise PersonalDataRefused("name and country cannot be removed")
    _holder(ctx, me, subscriber_no)

    def decide(seen: Seen) -> Changes:
        acc = seen.account
        _not_erased(acc.subscriber)
        given: dict[str, Any] = dict(fields)
        changed = replace(acc.subscriber, **given)  # Subscriber checks itself (an orgnr of the country ...)
        return Changes(acc) if changed == acc.subscriber else Changes(replace(acc, subscriber=changed))

    return profile_of(change(ctx, me.tenant, subscriber_no, decide).account.subscriber)


def _not_erased(subscriber: Subscriber) -> None:
    if subscriber.erased is not None:
        raise PersonalDataRefused(f"the personal data were erased on {subscriber.erased.isoformat()}")


# ---- e-mail change --------------------------------------------------------------------------


def email_target(me: SubscriberPrincipal, subscriber_no: int) -> str:
    """What an e-mail change code is for: this login changing this subscriber's address
    (one pending change each; a new request replaces the code of the one before)."""
    return hashlib.sha256(f"email\n{me.login}\n{subscriber_no}".encode()).hexdigest()[:40]


def request_email_change(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, email: str,
                         language: str = "nb") -> None:
    """Send a code to ``email``, the new address. The same answer whoever owns the address."""
    acc = _holder(ctx, me, subscriber_no)
    _not_erased(acc.subscriber)
    verification.send_code(ctx, me.tenant, EMAIL_PURPOSE, email_target(me, subscriber_no), email,
                           {"subscriber": str(subscriber_no), "email": email.strip()}, language)


def confirm_email_change(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, code: str) -> dict[str, Any]:
    """Redeem the code and move the subscriber (and the e-mail index) to the new address."""
    _holder(ctx, me, subscriber_no)
    payload = verification.redeem(ctx, me.tenant, EMAIL_PURPOSE, email_target(me, subscriber_no), code)
    if payload.get("subscriber") != str(subscriber_no) or not payload.get("email"):
        raise verification.CodeRefused("the code is wrong, used or expired")
    return profile_of(move_email(ctx, me.tenant, subscriber_no, payload["email"]))


class EmailInUse(PersonalDataRefused):
    """The new address belongs to another subscriber (told only to whoever proved it)."""


def move_email(ctx: Context, tenant: str, subscriber_no: int, email: str) -> Subscriber:
    """Claim ``email`` for the subscriber, change its row, release the address it had."""
    new = email.strip()
    owner = orders.claim_email(ctx, tenant, new, subscriber_no)
    if owner != subscriber_no:
        raise EmailInUse("this e-mail address is already used by another customer account; "
                         "contact customer service to merge the accounts")
    before: dict[str, str] = {}

    def decide(seen: Seen) -> Changes:
        acc = seen.account
        _not_erased(acc.subscriber)
        before["email"] = acc.subscriber.email
        if _same(acc.subscriber.email, new):
            return Changes(acc)
        return Changes(replace(acc, subscriber=replace(acc.subscriber, email=new)))

    try:
        done = change(ctx, tenant, subscriber_no, decide)
    except Exception:
        _release_unless_used(ctx, tenant, subscriber_no, new)
        raise
    if "email" in before and not _same(before["email"], new):
        ctx.emails.release(tenant, before["email"], subscriber_no)
    return done.account.subscriber


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def _release_unless_used(ctx: Context, tenant: str, subscriber_no: int, email: str) -> None:
    """A claim whose change did not commit: released unless the row has the address after all."""
    loaded = ctx.accounts.load(tenant, subscriber_no)
    if loaded is None or not _same(loaded.account.subscriber.email, email):
        ctx.emails.release(tenant, email, subscriber_no)


# ---- GDPR: export ---------------------------------------------------------------------------


AGREEMENT_SECRETS = ("token", "confirmation_url")  # a card's token is never shown; the mask is


def export(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> dict[str, Any]:
    """Everything stored about the subscriber (GDPR art. 15 and 20), as JSON."""
    acc = _holder(ctx, me, subscriber_no)
    tenant = me.tenant
    docs = ctx.accounts.documents(tenant, subscriber_no)
    return {
        "format": "abonno-subscriber-export/1",
        "exported": ctx.clock.now().isoformat(),
        "profile": profile_of(acc.subscriber),
        "ip_ranges": list(acc.subscriber.ip_ranges),
        "created": acc.subscriber.created.isoformat() if acc.subscriber.created else None,
        "subscriptions": [to_jsonable(s) for s in acc.subscriptions.values()],
        "invoices": [to_jsonable(i) | {"total_minor": i.total_minor, "amount_due_minor": i.amount_due_minor}
                     for i in docs.invoices],
        "credit_notes": [to_jsonable(c) for c in docs.credit_notes],
        "reminders": [to_jsonable(r) for r in docs.reminders],
        "ledger": [to_jsonable(e) for e in docs.ledger],
        "balances": dict(acc.balances),
        "open_demands": [to_jsonable(d) for d in acc.open_demands.values()],
        "payments": [to_jsonable(p) for p in ctx.accounts.payments(tenant, subscriber_no)],
        "agreements": [{k: v for k, v in to_jsonable(a).items() if k not in AGREEMENT_SECRETS}
                       for a in acc.agreements.values()],
        "avtalegiro_mandates": {org: to_jsonable(m) for org, m in acc.mandates.items()},
        "deliveries": [{k: v for k, v in to_jsonable(d).items() if k != "etag"}
                       for d in ctx.deliveries.list(tenant, subscriber_no)],
        "logins": [{"login": link.login, "role": link.role.value, "email": link.email,
                    "linked": link.linked.isoformat(), "subscription_id": link.subscription_id}
                   for link in acc.logins.values()],
        "invitations": [to_jsonable(i) for i in acc.invitations.values()],
        "order_blocks": {org: to_jsonable(b) for org, b in acc.order_blocks.items()},
        "corrections": [to_jsonable(c) for c in acc.corrections],
    }


# ---- GDPR: erasure --------------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    subscriber_no: int
    erased: date
    kept: tuple[str, ...] = ("invoices", "credit_notes", "reminders", "ledger", "payments")


def erasure_refusals(acc: Account, today: date, held_orders: int = 0) -> list[str]:
    """Why the subscriber's data cannot be erased today (empty: it can); ``held_orders``:
    orders on its e-mail held for customer service (they carry its personal data)."""
    reasons = []
    orgs = set(acc.balances) | {d.terms.organization_id for d in acc.open_demands.values()}
    owed = sum(acc.open_total(org) + acc.unbilled_debt(org) for org in orgs)
    credit = sum(max(0, acc.balances.get(org, 0) + acc.open_total(org)) for org in orgs)
    if owed > 0:
        reasons.append("there is money owing: pay the open invoices first")
    elif credit > 0:
        reasons.append("there is money to your credit: ask customer service to pay it back first")
    running = sorted(s.id for s in acc.subscriptions.values()
                     if s.status_on(today) in (SubscriptionStatus.ACTIVE, SubscriptionStatus.FUTURE))
    if running:
        reasons.append(f"subscriptions are active or start later ({', '.join(running)}): stop them first")
    if acc.charges:
        reasons.append("a card or Vipps charge is in progress: try again when it is settled")
    if any(a.status is AgreementStatus.PENDING for a in acc.agreements.values()):
        reasons.append("an order is waiting for payment approval: finish or cancel it first")
    if held_orders:
        reasons.append("an order is waiting for customer service: ask them to confirm or reject it first")
    return reasons


def pseudonymised(subscriber: Subscriber, today: date) -> Subscriber:
    n = subscriber.number
    return replace(subscriber, name=f"{ERASED_NAME} {n}", email=f"erased-{n}@invalid", phone=None, address=None,
                   postal_code=None, city=None, organization_number=None, ip_ranges=(), erased=today)


def erase(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> Erased:
    """Pseudonymise the subscriber (see the module's docstring); erasing again does nothing more.

    The steps after the pseudonymising commit (the e-mail index, the delivery log) come before
    the logins are removed, the last commit: if one fails, the holder is still linked and asks
    again, and the repeat does what is left (an index claim left behind is released by the next
    claim of the address, ``orders.claim_email``)."""
    _holder(ctx, me, subscriber_no)
    before: dict[str, Account] = {}
    held = sum(1 for p in orders.pending_orders(ctx, me.tenant) if p.subscriber_no == subscriber_no)

    def decide(seen: Seen) -> Changes:
        acc = seen.account
        if acc.subscriber.erased is not None:
            return Changes(acc)
        reasons = erasure_refusals(acc, seen.today, held)
        if reasons:
            raise ErasureRefused(reasons)
        before["account"] = acc
        agreements = {k: replace(a, order=None) for k, a in acc.agreements.items()}  # the orders they were made for
        return Changes(replace(acc, subscriber=pseudonymised(acc.subscriber, seen.today), invitations={},
                               agreements=agreements))

    done = change(ctx, me.tenant, subscriber_no, decide)
    old = before.get("account")
    if old is not None:
        ctx.emails.release(me.tenant, old.subscriber.email, subscriber_no)
    _blank_deliveries(ctx, me.tenant, subscriber_no)
    unlinked: set[str] = set()

    def unlink_all(seen: Seen) -> Changes:
        unlinked.update(link.login for link in seen.account.logins.values())
        return Changes(replace(seen.account, logins={}))

    if done.account.logins:
        change(ctx, me.tenant, subscriber_no, unlink_all)
    for login in sorted(unlinked):
        access.refresh_login(ctx, me.tenant, login)
    erased = done.account.subscriber.erased
    assert erased is not None
    return Erased(subscriber_no, erased)


def _blank_deliveries(ctx: Context, tenant: str, subscriber_no: int) -> None:
    """The addresses the documents went to, blanked in the delivery log (the log stays)."""
    for delivery in ctx.deliveries.list(tenant, subscriber_no):
        if delivery.recipient:
            try:
                ctx.deliveries.update(tenant, subscriber_no, replace(delivery, recipient=""))
            except ConcurrencyConflict:  # a sender has it: nothing is sent for an erased subscriber's ended plans
                continue
