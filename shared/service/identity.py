"""Linking a subscriber's login to subscribers (M1, S10; issue 12): only by proof.

A login is linked to a subscriber by a ``LoginLink`` in the subscriber's own partition
(``Account.logins``, the truth; the login's ``AccessRecord`` is derived from it and
refreshed right after, ``access.refresh`` / ``refresh_login``). The proof is one of:

* a one-time code sent to the subscriber's *stored* e-mail address (``start_link``,
  ``confirm_link``): the identity provider's e-mail claim is never enough;
* the checkout: a subscriber made by an order posted with the login's token or session
  is linked in the order's own transaction (``orders.take_order``, ``link_changes``).

``start_link`` answers the same whatever the address is (a subscriber's or nobody's, an
erased one): it stores a code either way (one for nobody can never be redeemed: its
payload names no subscriber) and sends one only to a subscriber's address, so neither the
answer nor the storage work tells the caller whether the address is a subscriber's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import date

from ..domain.account import Account, Changes
from ..domain.identity import (
    MAX_LOGINS_PER_SUBSCRIBER,
    MAX_SUBSCRIBERS_PER_LOGIN,
    AccessRecord,
    LoginLink,
    Role,
    link_key,
)
from ..domain.subscriptions import SubscriberError
from ..ports import NotFound, OneTimeCode, SubscriberPrincipal
from . import access, verification
from .context import Context
from .self_service import record_of
from .unit_of_work import Seen, change
from .verification import CodeRefused

LINK = "link"


def link_target(me: SubscriberPrincipal, email: str) -> str:
    """What a link code proves: this login and this address (a digest: no address in a key)."""
    return hashlib.sha256(f"{me.tenant}\n{me.login}\n{normal(email)}".encode()).hexdigest()[:40]


def normal(email: str) -> str:
    return email.strip().lower()


def start_link(ctx: Context, me: SubscriberPrincipal, email: str, language: str = "nb") -> None:
    """Send a code to ``email`` if it is a subscriber's stored address; the same for the
    caller either way (see the module's text)."""
    owner = ctx.emails.find(me.tenant, normal(email))
    loaded = ctx.accounts.load(me.tenant, owner) if owner is not None else None
    subscriber = loaded.account.subscriber if loaded is not None else None
    if subscriber is None or subscriber.erased is not None or normal(subscriber.email or "") != normal(email):
        nobody = verification.code_hash(verification.new_code())  # a code redeemable by nobody: no payload
        expires = ctx.clock.now() + verification.CODE_TTL
        ctx.codes.put(OneTimeCode(me.tenant, LINK, link_target(me, email), nobody, expires))
        return
    verification.send_code(ctx, me.tenant, LINK, link_target(me, email), str(subscriber.email),
                           {"subscriber": str(subscriber.number), "email": normal(email)}, language)


def confirm_link(ctx: Context, me: SubscriberPrincipal, email: str, code: str) -> list[int]:
    """Redeem the code sent by ``start_link`` and link the login to the subscriber it was
    sent for; the subscriber numbers linked (``CodeRefused`` for any wrong code)."""
    payload = verification.redeem(ctx, me.tenant, LINK, link_target(me, email), code)
    if "subscriber" not in payload:
        raise CodeRefused(verification.REFUSED)
    number = int(payload["subscriber"])
    require_room(record_of(ctx, me), number)

    def decide(seen: Seen) -> Changes:
        subscriber = seen.account.subscriber  # the code proves the mailbox it went to: still the subscriber's?
        if subscriber.erased is not None or normal(subscriber.email or "") != payload["email"]:
            raise CodeRefused(verification.REFUSED)
        return Changes(linked(seen.account, me.login, payload["email"], seen.today))

    change(ctx, me.tenant, number, decide)
    refresh_links(ctx, me, number)
    return [number]


def has_room(record: AccessRecord, number: int | None = None) -> bool:
    """Whether the login of ``record`` may be linked to subscriber ``number``: it is already,
    or it acts for fewer than ``MAX_SUBSCRIBERS_PER_LOGIN`` (its access row is one entity,
    and each refresh of it reads every subscriber it names). Every way of making a link
    (a code, a checkout, a group invitation) asks this first."""
    if number is not None and record.acts_for(number):
        return True
    return len(record.holder_of) + len(record.member_of) < MAX_SUBSCRIBERS_PER_LOGIN


def require_room(record: AccessRecord, number: int | None = None) -> None:
    if not has_room(record, number):
        raise SubscriberError(f"a login may be linked to at most {MAX_SUBSCRIBERS_PER_LOGIN} subscribers")


def linked(account: Account, login: str, email: str, today: date) -> Account:
    """``account`` with ``login`` linked as a holder (as it was, if it is already)."""
    key = link_key(login, None)
    if key in account.logins:
        return account
    if len(account.logins) >= MAX_LOGINS_PER_SUBSCRIBER:
        raise SubscriberError(f"a subscriber may have at most {MAX_LOGINS_PER_SUBSCRIBER} logins")
    return replace(account, logins={**account.logins, key: LoginLink(login, Role.HOLDER, normal(email), today)})


def link_changes(me: SubscriberPrincipal, email: str) -> Callable[[Seen, Changes], Changes]:
    """What an order's transaction adds to link the buyer's login to the subscriber it makes
    (a ``Then`` of ``orders._place``)."""

    def then(seen: Seen, changes: Changes) -> Changes:
        return replace(changes, account=linked(changes.account, me.login, email, seen.today))

    return then


def unlink(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> None:
    """Remove the login's holder link to ``subscriber_no`` (``NotFound`` if it has none: the
    same answer as for a subscriber that does not exist). Unlinking again is harmless."""
    if not record_of(ctx, me).acts_for(subscriber_no):
        raise NotFound(f"subscriber {subscriber_no} not found")

    def decide(seen: Seen) -> Changes:
        logins = {k: v for k, v in seen.account.logins.items() if k != link_key(me.login, None)}
        return Changes(replace(seen.account, logins=logins))

    change(ctx, me.tenant, subscriber_no, decide)
    refresh_links(ctx, me, subscriber_no)


def refresh_links(ctx: Context, me: SubscriberPrincipal, subscriber_no: int) -> None:
    """The login's access row as the links now are (read-your-writes for My page; the outbox
    refreshes it too)."""
    access.refresh(ctx, me.tenant, subscriber_no, logins=(me.login,), sites=False)


def invite_user(ctx: Context, tenant: str, email: str, name: str) -> bool:
    """Invite ``email`` to the tenant's directory (Microsoft Graph) so the person can sign in
    to accept a group seat; False where no directory is configured (locally): the one-time
    code the group's owner sends is the invitation then."""
    from ..bootstrap import graph_inviter  # the composition root: imported when used

    return graph_inviter().invite(tenant, email, name, f"{ctx.public_url}/api/pages/{tenant}/my")
