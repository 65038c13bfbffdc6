"""Subscriber logins and what they may access (M1, S10; issue 12).

A *login* is an identity at the tenant's identity provider (Azure AD B2C or Entra
External ID): its issuer and subject. ``login_key`` turns the pair into the key every
table uses, so no character of a subject can break a key and logins of two issuers
never meet.

A login is *linked* to a subscriber by a ``LoginLink`` row in the subscriber's own
partition (``Account.logins``): that row is the truth. A login may be linked to several
subscribers (a household) and a subscriber may have several logins; a group
subscription's members (manual 6.15) are links with the role ``ADMIN`` or ``USER`` and
the group subscription's id.

What a login may access right now is answered from one precomputed ``AccessRecord`` per
login (one point read): the subscribers it acts for and the ``Grant`` of every
subscription it reaches, each an interval of days. A grant is computed when the
subscriber's account changes (``grants_of``) and evaluated against the day when it is
read (``Grant.open_on``), so the passing of time needs no rewrite: a subscription that
ends, or an unpaid invoice whose grace runs out, closes its grant on that day by itself.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the account imports this module for its links: no import back at run time
    from .account import Account
    from .catalogue import Catalogue
    from .subscriptions import Subscription

MAX_LOGINS_PER_SUBSCRIBER = 500  # links in one partition (a group's members included)
MAX_SUBSCRIBERS_PER_LOGIN = 50  # subscribers one login acts for or is a member of
MAX_IP_RANGES = 50  # per site subscriber


class Role(StrEnum):
    HOLDER = "holder"  # acts for the subscriber: everything on My page
    ADMIN = "admin"  # a group member who may edit the group's subscription on My page (manual 6.15)
    USER = "user"  # a group member with access only: no My page


def login_key(issuer: str, subject: str) -> str:
    """The key of a login: ``l`` and 40 hex digits of the SHA-256 of its issuer and subject.

    >>> key = login_key("https://idp.example/v2.0", "0f5c")
    >>> key[0], len(key), key == login_key("https://idp.example/v2.0", "0f5c")
    ('l', 41, True)
    >>> login_key("a", "b\\nc") == login_key("a\\nb", "c")
    False
    """
    return "l" + hashlib.sha256(f"{len(issuer)}:{issuer}\n{subject}".encode()).hexdigest()[:40]


def link_key(login: str, subscription_id: str | None) -> str:
    """The key of a link in ``Account.logins``: the login, and for a group member the group
    subscription (one login may be a member of two of a subscriber's group subscriptions)."""
    return login if subscription_id is None else f"{login}.{subscription_id}"


@dataclass(frozen=True, slots=True)
class LoginLink:
    """A login linked to this subscriber (``Account.logins``, row ``0|lgn|{link_key}``)."""

    login: str  # login_key
    role: Role
    email: str  # the verified e-mail address the link was made by (shown to the group's owner)
    linked: date
    subscription_id: str | None = None  # ADMIN / USER: the group subscription; HOLDER: None

    @property
    def key(self) -> str:
        return link_key(self.login, self.subscription_id)


@dataclass(frozen=True, slots=True)
class Invitation:
    """A group owner's invitation of an e-mail address to a seat (``Account.invitations``,
    row ``0|sea|{id}``): it holds a seat until it is accepted, withdrawn or expires."""

    id: str
    subscription_id: str
    email: str
    role: Role  # ADMIN or USER
    created: date
    expires: date


@dataclass(frozen=True, slots=True)
class Grant:
    """Access to ``products`` through one subscription, from ``start`` up to (not including)
    ``until`` (its stop date; None: open-ended), unless an unpaid invoice's grace ends first
    (``blocked_from``: the first day without access for want of payment)."""

    subscriber_no: int
    subscription_id: str
    products: tuple[str, ...]
    start: date
    until: date | None = None
    blocked_from: date | None = None

    def open_on(self, day: date) -> bool:
        return (self.start <= day and (self.until is None or day < self.until)
                and (self.blocked_from is None or day < self.blocked_from))


@dataclass(frozen=True, slots=True)
class Membership:
    subscriber_no: int
    subscription_id: str
    role: Role  # ADMIN or USER


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """Everything a login may do and reach in one tenant: one row, one point read."""

    login: str
    holder_of: tuple[int, ...] = ()  # subscribers it acts for (role HOLDER)
    member_of: tuple[Membership, ...] = ()  # group subscriptions it has a seat in
    grants: tuple[Grant, ...] = ()
    email: str | None = None  # the last verified e-mail address of the login (for the API connector's lookup)

    def products_on(self, day: date) -> tuple[str, ...]:
        return tuple(sorted({p for g in self.grants if g.open_on(day) for p in g.products}))

    def acts_for(self, subscriber_no: int) -> bool:
        return subscriber_no in self.holder_of

    def membership(self, subscriber_no: int, subscription_id: str) -> Membership | None:
        return next((m for m in self.member_of
                     if m.subscriber_no == subscriber_no and m.subscription_id == subscription_id), None)


@dataclass(frozen=True, slots=True)
class SiteEntry:
    """A site subscriber's IP range (a campus licence) and the grants it carries."""

    subscriber_no: int
    network: str  # CIDR, normalised (``ipaddress.ip_network(..., strict=False)``)
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True, slots=True)
class SiteTable:
    """A tenant's site licences, all in one row (one point read for a lookup by IP)."""

    entries: tuple[SiteEntry, ...] = ()

    def products_for(self, address: str, day: date) -> tuple[str, ...]:
        """The products the site at ``address`` may access on ``day`` (ValueError: not an address)."""
        ip = plain_address(ipaddress.ip_address(address))
        return tuple(sorted({p for e in self.entries if ip in ipaddress.ip_network(e.network)
                             for g in e.grants if g.open_on(day) for p in g.products}))


def plain_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, as a dual-stack proxy reports an IPv4
    visitor) as the IPv4 address it is; any other address as it is.

    >>> str(plain_address(ipaddress.ip_address("::ffff:192.0.2.1")))
    '192.0.2.1'
    """
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return mapped if mapped is not None else ip


def normalise_network(text: str) -> str:
    """A CIDR range as stored (ValueError if it is none; ranges wider than /8 or /32 for IPv6 are refused;
    a range in the IPv4-mapped form is the IPv4 range it stands for, held to the IPv4 limit).

    >>> normalise_network("192.0.2.17/24")
    '192.0.2.0/24'
    >>> normalise_network("2001:db8::1/48")
    '2001:db8::/48'
    """
    net: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.network_address.ipv4_mapped is not None:
        net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")  # IPv4, written as IPv6
    if net.prefixlen < (8 if net.version == 4 else 32):
        raise ValueError(f"the range {text!r} is too wide")
    return str(net)


# ---- building the records (pure): what each login and each site may reach -------------------------


def blocked_from(account: Account, subscription: Subscription, grace_days: int | None) -> date | None:
    """The first day without access for want of payment: ``grace_days`` after the due date of
    the oldest unpaid invoice of the subscription (or of any it continues: a restart after a
    pause or on My page, again and again),
    so with 0 days access lasts through the due date. None: nothing unpaid, or the dunning
    process keeps access until its payment stop ends the subscription (``grace_days`` None).
    An invoice counts as unpaid while any of its principal is open; unpaid reminder fees
    alone close nothing.

    >>> from .account import Account
    >>> from .calendar import Frequency
    >>> from .catalogue import PaymentType
    >>> from .demands import DemandTerms, OpenDemand
    >>> from .subscriptions import Subscriber, Subscription
    >>> sub = Subscription("s1", "p", "o", Frequency.MONTHLY, date(2026, 1, 1), PaymentType.INVOICE)
    >>> owed = OpenDemand(1, DemandTerms(1, "o", "s1", date(2026, 1, 15)), open_minor=100)
    >>> account = Account(Subscriber(1, "A", "a@example.no"), {"s1": sub}, open_demands={1: owed})
    >>> blocked_from(account, sub, 7), blocked_from(account, sub, None)
    (datetime.date(2026, 1, 23), None)
    """
    if grace_days is None:
        return None
    ids, earlier = {subscription.id}, subscription.resumes
    while earlier is not None and earlier not in ids:  # every subscription the restarts continue
        ids.add(earlier)
        before = account.subscriptions.get(earlier)
        earlier = before.resumes if before is not None else None
    dues = [d.terms.due_date for d in account.open_demands.values()
            if d.terms.subscription_id in ids and d.principal_open_minor > 0]
    return min(dues) + timedelta(days=grace_days + 1) if dues else None


def grants_of(account: Account, catalogue: Catalogue, today: date) -> tuple[Grant, ...]:
    """A grant for every subscription of ``account`` that gives access on ``today`` or later.

    The interval is the subscription's own: from its start to its stop date (a stop, a
    payment stop, a pause: the restart after a pause is a subscription of its own, so the
    paused days have none), closed early by an unpaid invoice past the dunning process's
    ``access_grace_days`` (``blocked_from``). A subscription already ended, or of a plan the
    catalogue no longer has, grants nothing. A subscriber erased (GDPR) grants nothing.
    """
    if account.subscriber.erased is not None:
        return ()
    grants = []
    for sub in sorted(account.subscriptions.values(), key=lambda s: s.id):
        plan = catalogue.plans.get(sub.plan_id)
        if plan is None or (sub.stop_date is not None and sub.stop_date <= max(today, sub.anchor)):
            continue
        dunning = catalogue.dunning_of(plan.id) if plan.billing_plan_id in catalogue.billing_plans else None
        grants.append(Grant(account.number, sub.id, tuple(sorted(plan.product_ids)), sub.anchor, sub.stop_date,
                            blocked_from(account, sub, dunning.access_grace_days if dunning else None)))
    return tuple(grants)


def group_line(account: Account, subscription_id: str) -> frozenset[str]:
    """The subscriptions that are one group subscription over time: ``subscription_id`` and
    every subscription linked to it by ``resumes`` either way (the restart after a pause, a
    restart on My page). A member's seat is in the line, not in one of its subscriptions, so
    the seat, its access and its admin's say follow the group through pauses and restarts.

    >>> from .account import Account
    >>> from .calendar import Frequency
    >>> from .catalogue import PaymentType
    >>> from .subscriptions import Subscriber, Subscription
    >>> s = Subscription("s1", "p", "o", Frequency.MONTHLY, date(2026, 1, 1), PaymentType.INVOICE)
    >>> subs = {"s1": s, "s2": replace(s, id="s2", resumes="s1"), "s3": replace(s, id="s3", resumes="s2"),
    ...         "x": replace(s, id="x")}
    >>> sorted(group_line(Account(Subscriber(1, "A", "a@example.no"), subs), "s2"))
    ['s1', 's2', 's3']
    """
    line = {subscription_id}
    grown = True
    while grown:
        more = {s.id for s in account.subscriptions.values() if s.resumes in line}
        more |= {s.resumes for s in account.subscriptions.values() if s.id in line and s.resumes}
        grown = not more <= line
        line |= more
    return frozenset(line)


def seat_grant(grant: Grant, catalogue: Catalogue, plan_id: str) -> Grant:
    """What a group member's seat gives of the group subscription's grant: the plan's
    ``seat_product_ids`` (all its products when it names none), on the same days."""
    plan = catalogue.plans.get(plan_id)
    seat = plan.seat_product_ids if plan is not None and plan.seat_product_ids else grant.products
    return replace(grant, products=tuple(sorted(seat)))


def access_record(login: str, accounts: Iterable[Account], catalogue: Catalogue, today: date) -> AccessRecord:
    """The access row of ``login`` from the accounts of the subscribers it may be linked to.

    The links in each account are the truth: a holder's link gives every grant of the
    subscriber; a group member's link (``ADMIN`` / ``USER``) gives the seat of its group
    subscription only. An account that does not link ``login`` contributes nothing, so
    passing a subscriber the login was unlinked from removes it. The e-mail address is
    that of the latest link (the API connector's lookup)."""
    holder: list[int] = []
    members: list[Membership] = []
    grants: list[Grant] = []
    latest: LoginLink | None = None
    for account in sorted(accounts, key=lambda a: a.number):
        links = sorted((k for k in account.logins.values() if k.login == login), key=lambda k: k.key)
        if not links:
            continue
        own = {g.subscription_id: g for g in grants_of(account, catalogue, today)}
        for link in links:
            latest = link if latest is None or link.linked >= latest.linked else latest
            if link.role is Role.HOLDER:
                holder.append(account.number)
                grants += own.values()
            elif link.subscription_id is not None:
                members.append(Membership(account.number, link.subscription_id, link.role))
                for sub_id in sorted(group_line(account, link.subscription_id) - {link.subscription_id}):
                    if sub_id in own:  # the seat follows the group onto its running restarts (the row stays small)
                        members.append(Membership(account.number, sub_id, link.role))
                for sub_id in sorted(group_line(account, link.subscription_id)):
                    if sub_id in own:
                        plan_id = account.subscriptions[sub_id].plan_id
                        grants.append(seat_grant(own[sub_id], catalogue, plan_id))
    return AccessRecord(login, tuple(dict.fromkeys(holder)), tuple(dict.fromkeys(members)),
                        tuple(dict.fromkeys(grants)), latest.email if latest else None)


def is_empty(record: AccessRecord) -> bool:
    """Linked to nothing: the same as no record at all."""
    return not (record.holder_of or record.member_of)


def site_entries(account: Account, catalogue: Catalogue, today: date) -> tuple[SiteEntry, ...]:
    """The site table's entries of one subscriber: each of its IP ranges with all its grants."""
    if not account.subscriber.ip_ranges or account.subscriber.erased is not None:
        return ()
    grants = grants_of(account, catalogue, today)
    networks = dict.fromkeys(normalise_network(r) for r in account.subscriber.ip_ranges)
    return tuple(SiteEntry(account.number, network, grants) for network in networks)


def with_site(table: SiteTable, subscriber_no: int, entries: Iterable[SiteEntry]) -> SiteTable:
    """``table`` with the entries of ``subscriber_no`` replaced by ``entries`` (none: removed)."""
    kept = [e for e in table.entries if e.subscriber_no != subscriber_no]
    return SiteTable(tuple(sorted([*kept, *entries], key=lambda e: (e.subscriber_no, e.network))))


def needs_access(account: Account | None) -> bool:
    """Whether a change of ``account`` can change anyone's access: it has logins or IP ranges."""
    return account is not None and bool(account.logins or account.subscriber.ip_ranges)
