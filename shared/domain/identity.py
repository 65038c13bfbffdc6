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
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

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
        ip = ipaddress.ip_address(address)
        return tuple(sorted({p for e in self.entries if ip in ipaddress.ip_network(e.network)
                             for g in e.grants if g.open_on(day) for p in g.products}))


def normalise_network(text: str) -> str:
    """A CIDR range as stored (ValueError if it is none; ranges wider than /8 or /32 for IPv6 are refused).

    >>> normalise_network("192.0.2.17/24")
    '192.0.2.0/24'
    >>> normalise_network("2001:db8::1/48")
    '2001:db8::/48'
    """
    net = ipaddress.ip_network(text.strip(), strict=False)
    if net.prefixlen < (8 if net.version == 4 else 32):
        raise ValueError(f"the range {text!r} is too wide")
    return str(net)
