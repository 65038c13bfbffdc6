"""Group subscriptions on My page (S10; manual 6.15): the group's owner (the subscriber's
HOLDER, or a member with the role ADMIN) invites users by e-mail, within the plan's
``seats``, and removes them; an invitee accepts with the code the invitation mailed.

A seat is taken by a ``LoginLink`` with the group subscription's id (a member) or by an
open ``Invitation`` (offered, not yet accepted or expired), both rows of the subscriber's
own partition. Counting and taking a seat happen in one decision committed under the
partition's ETag (``unit_of_work.change``), so two owners inviting at once for the last
seat cannot both get it: the second reads again, finds the seats taken and is refused.
The code goes out only after the invitation is committed. Accepting turns the invitation
into the link in one transaction (the seat stays taken) and refreshes the login's access
row right away (``access.refresh_login``); so does removing a member.

Codes for invitations are bound to the invited address (``invite_target``): accepting
needs the code and the address it went to (by default the login's own e-mail claim). A
new invitation of the same address replaces the earlier code; the earlier invitation
keeps its seat until it expires or is removed.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from ..domain.account import Account, Changes
from ..domain.catalogue import Catalogue, SubscriptionPlan
from ..domain.identity import Invitation, LoginLink, Role, group_line
from ..domain.lifecycle import UnknownSubscription
from ..domain.subscriptions import SubscriberError, Subscription, SubscriptionStatus
from ..ports import NotFound, SubscriberPrincipal
from . import access, identity, verification
from .context import Context
from .self_service import authorize, record_of
from .unit_of_work import Seen, change

log = logging.getLogger(__name__)
INVITE_PURPOSE = "invite"
INVITATION_DAYS = 14  # an invitation holds its seat this long unless accepted or removed
MEMBER_ROLES = (Role.ADMIN, Role.USER)


class GroupRefused(SubscriberError):
    """A group change that cannot be made (no group subscription, the seats taken ...): 422."""


@dataclass(frozen=True)
class Seat:
    """A seat of a group subscription as My page shows it: a member or an open invitation."""

    id: str  # the link key of a member, the id of an invitation (``DELETE .../members/{id}``)
    kind: str  # "member" | "invitation"
    email: str
    role: Role
    since: date
    expires: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "email": self.email, "role": self.role.value,
                "since": self.since.isoformat(), "expires": self.expires.isoformat() if self.expires else None}


def seats_of(acc: Account, subscription_id: str, today: date) -> list[Seat]:
    """The seats of a group subscription taken on ``today``: its members, its open invitations."""
    line = group_line(acc, subscription_id)  # the seats follow the group through pauses and restarts
    members = [Seat(link.key, "member", link.email, link.role, link.linked) for link in acc.logins.values()
               if link.subscription_id in line and link.role in MEMBER_ROLES]
    invited = [Seat(i.id, "invitation", i.email, i.role, i.created, i.expires) for i in acc.invitations.values()
               if i.subscription_id in line and i.expires > today]
    return sorted(members, key=lambda s: (s.since, s.id)) + sorted(invited, key=lambda s: (s.since, s.id))


def group_of(acc: Account, catalogue: Catalogue, subscription_id: str) -> tuple[Subscription, SubscriptionPlan]:
    sub = acc.subscriptions.get(subscription_id)
    if sub is None:
        raise UnknownSubscription(f"subscriber {acc.number} has no subscription {subscription_id}")
    plan = catalogue.plans.get(sub.plan_id)
    if plan is None or plan.seats <= 0:
        raise GroupRefused("this subscription is not a group subscription: it has no seats to share")
    return sub, plan


def members(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, subscription_id: str) -> dict[str, Any]:
    authorize(ctx, me, subscriber_no, subscription_id)
    loaded = ctx.accounts.load(me.tenant, subscriber_no)
    if loaded is None:
        raise NotFound(f"subscriber {subscriber_no} not found")
    catalogue = ctx.catalogue.get(me.tenant)
    _sub, plan = group_of(loaded.account, catalogue, subscription_id)
    seats = seats_of(loaded.account, subscription_id, ctx.today(catalogue))
    return {"seats": plan.seats, "used": len(seats), "members": [s.to_json() for s in seats]}


def invite_target(email: str) -> str:
    """What an invitation code is for: the invited address (normalised, never stored plain)."""
    return hashlib.sha256(f"invite\n{email.strip().lower()}".encode()).hexdigest()[:40]


def invitation_id(tenant: str, subscriber_no: int, subscription_id: str, email: str) -> str:
    """Stable per group and address: inviting the same address again takes no second seat."""
    key = f"abonno:{tenant}:{subscriber_no}:{subscription_id}:invite:{email.strip().lower()}"
    return uuid.uuid5(uuid.NAMESPACE_URL, key).hex[:16]


def invite(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, subscription_id: str, email: str,
           role: Role, language: str = "nb") -> dict[str, Any]:
    """Offer a seat to ``email`` (within the plan's seats) and send it the code. Inviting an
    address invited already renews that invitation and sends a new code."""
    if role not in MEMBER_ROLES:
        raise GroupRefused("a member's role is admin or user")
    authorize(ctx, me, subscriber_no, subscription_id, edit=True)
    address = email.strip()
    inv_id = invitation_id(me.tenant, subscriber_no, subscription_id, address)

    def decide(seen: Seen) -> Changes:
        acc, today = seen.account, seen.today
        sub, plan = group_of(acc, seen.catalogue, subscription_id)
        if sub.status_on(today) is SubscriptionStatus.ENDED:
            raise GroupRefused("the subscription has ended: no one can be invited to it")
        if any(link.subscription_id in group_line(acc, subscription_id) and link.email.lower() == address.lower()
               for link in acc.logins.values()):
            raise GroupRefused("this address is a member already")
        taken = [s for s in seats_of(acc, subscription_id, today) if s.id != inv_id]
        if len(taken) >= plan.seats:
            raise GroupRefused(f"all {plan.seats} seats are taken: remove a member or an invitation first")
        invitation = Invitation(inv_id, subscription_id, address, role, today, today + timedelta(days=INVITATION_DAYS))
        return Changes(replace(acc, invitations={**_open(acc, today), inv_id: invitation}))

    done = change(ctx, me.tenant, subscriber_no, decide)
    verification.send_code(ctx, me.tenant, INVITE_PURPOSE, invite_target(address), address,
                           {"subscriber": str(subscriber_no), "subscription": subscription_id, "invitation": inv_id},
                           language)
    try:  # the directory's own invitation where one is configured (Graph); the code above is the invitation
        identity.invite_user(ctx, me.tenant, address, address.split("@", 1)[0])
    except Exception:
        log.exception("the directory did not take the invitation of a group member; the code was sent")
    invitation = done.account.invitations[inv_id]
    return Seat(inv_id, "invitation", invitation.email, invitation.role, invitation.created,
                invitation.expires).to_json()


def _open(acc: Account, today: date) -> dict[str, Invitation]:
    """The invitations not expired (an expired one is dropped when the group next changes)."""
    return {k: i for k, i in acc.invitations.items() if i.expires > today}


def remove(ctx: Context, me: SubscriberPrincipal, subscriber_no: int, subscription_id: str, member: str) -> None:
    """Remove a member (by its link key) or withdraw an invitation (by its id); one already
    gone is no error (DELETE is idempotent)."""
    authorize(ctx, me, subscriber_no, subscription_id, edit=True)
    removed: dict[str, str] = {}

    def decide(seen: Seen) -> Changes:
        acc = seen.account
        group_of(acc, seen.catalogue, subscription_id)
        line = group_line(acc, subscription_id)
        link = acc.logins.get(member)
        if link is not None and link.subscription_id in line and link.role in MEMBER_ROLES:
            removed["login"] = link.login
            return Changes(replace(acc, logins={k: v for k, v in acc.logins.items() if k != member}))
        invitation = acc.invitations.get(member)
        if invitation is not None and invitation.subscription_id in line:
            return Changes(replace(acc, invitations={k: v for k, v in acc.invitations.items() if k != member}))
        return Changes(acc)

    change(ctx, me.tenant, subscriber_no, decide)
    if "login" in removed:
        access.refresh_login(ctx, me.tenant, removed["login"])


def accept(ctx: Context, me: SubscriberPrincipal, code: str, email: str | None = None) -> dict[str, Any]:
    """The invited login takes its seat: the code, redeemed for the address it went to
    (``email``, else the login's own), turns the invitation into a link with its role."""
    address = (email or me.email or "").strip()
    if not address:
        raise verification.CodeRefused("give the e-mail address the invitation was sent to")
    identity.require_room(record_of(ctx, me))  # the login's cap, as every way of linking (before the code is used)
    payload = verification.redeem(ctx, me.tenant, INVITE_PURPOSE, invite_target(address), code)
    subscriber_no, subscription_id, inv_id = int(payload["subscriber"]), payload["subscription"], payload["invitation"]

    def decide(seen: Seen) -> Changes:
        acc, today = seen.account, seen.today
        invitation = acc.invitations.get(inv_id)
        if invitation is None or invitation.expires <= today:
            raise GroupRefused("the invitation was withdrawn or has expired: ask the group's owner for a new one")
        link = LoginLink(me.login, invitation.role, invitation.email, today, subscription_id)
        invitations = {k: v for k, v in acc.invitations.items() if k != inv_id}
        return Changes(replace(acc, logins={**acc.logins, link.key: link}, invitations=invitations))

    done = change(ctx, me.tenant, subscriber_no, decide)
    access.refresh_login(ctx, me.tenant, me.login, (subscriber_no,))  # the record does not name it yet
    link = next(v for v in done.account.logins.values() if v.login == me.login
                and v.subscription_id == subscription_id)
    return {"subscriber": subscriber_no, "subscription_id": subscription_id, "role": link.role.value}
