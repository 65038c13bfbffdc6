"""Access claims (M1): each login's access row kept up to date, and the lookups publishers ask.

The links in the subscribers' partitions are the truth (``Account.logins``); each login's
``AccessRecord`` and each tenant's ``SiteTable`` are derived from them (``identity.
access_record``, ``identity.site_entries``) and written whole, under their ETags:

* ``refresh(ctx, tenant, n)``: after subscriber ``n``'s account changed (the access worker,
  on ``AccessChanged``), every login linked to it is rebuilt, and its site entries.
* ``refresh_login(ctx, tenant, login, subscribers=())``: one login rebuilt from the
  subscribers its record names and ``subscribers`` (the one a link was just made on, which
  the record does not name yet); after an unlink the record still names the subscriber,
  whose account no longer links the login, so it drops out.

A rebuild reads the record (and its ETag) *before* the accounts and writes under that
ETag, so of two racing rebuilds the one that read older accounts loses and reads again:
the row always ends as the accounts last committed say. The lookups (``claims``,
``site_products``, ``connector_claims``) are one point read each and never write.

``marked(loaded, changes)`` is how the unit of work raises ``AccessChanged``: only for an
account that has (or had) logins or IP ranges, so nobody else pays a row or a round trip.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from ..domain.account import Account, Changes
from ..domain.events import AccessChanged
from ..domain.identity import (
    AccessRecord,
    access_record,
    is_empty,
    login_key,
    needs_access,
    normalise_network,
    site_entries,
    with_site,
)
from ..ports import ConcurrencyConflict, Loaded
from .context import Context

if TYPE_CHECKING:
    from .unit_of_work import Seen

log = logging.getLogger(__name__)
ATTEMPTS = 10  # rebuilds of one row racing others before the conflict is the caller's (the queue retries)


@dataclass(frozen=True)
class Claims:
    """What a login may access on ``as_of``: the products, sorted."""

    products: tuple[str, ...]
    as_of: date

    def json(self) -> dict[str, object]:
        return {"products": list(self.products), "as_of": self.as_of.isoformat()}


# ---- the trigger ---------------------------------------------------------------------------------


def marked(loaded: Loaded | None, changes: Changes) -> Changes:
    """``changes`` with an ``AccessChanged`` event if the account has or had logins or IP ranges
    (else ``changes`` itself: no entity, no round trip). The logins are those linked before or
    after; the id is a digest of the partition's ETag before the commit (of a new subscriber:
its account), so a retry of the same commit raises the same event and no two commits share one
(the bus's duplicate detection drops only true repeats)."""
    before = loaded.account if loaded is not None else None
    after = changes.account
    if not (needs_access(before) or needs_access(after)) or any(isinstance(e, AccessChanged) for e in changes.events):
        return changes
    logins = sorted({k.login for a in (before, after) if a is not None for k in a.logins.values()})
    sites = any(a is not None and bool(a.subscriber.ip_ranges) for a in (before, after))
    names = loaded.etag if loaded is not None and loaded.etag else repr(after)  # one commit per ETag
    digest = hashlib.sha256(f"{after.number}|{names}".encode()).hexdigest()[:32]
    event = AccessChanged(f"access-{after.number}-{digest}", after.number, tuple(logins), sites)
    return replace(changes, events=(*changes.events, event))


# ---- keeping the rows ----------------------------------------------------------------------------


def refresh(ctx: Context, tenant: str, subscriber_no: int, logins: Iterable[str] = (), sites: bool = True) -> None:
    """Recompute the access rows of every login linked to ``subscriber_no`` (and ``logins``:
    those linked before a change), and its site entries; idempotent."""
    loaded = ctx.accounts.load(tenant, subscriber_no)
    account = loaded.account if loaded is not None else None
    linked = {k.login for k in account.logins.values()} if account is not None else set()
    for login in sorted(linked | set(logins)):
        refresh_login(ctx, tenant, login, (subscriber_no,))
    if sites:
        refresh_sites(ctx, tenant, subscriber_no, account)


def refresh_login(ctx: Context, tenant: str, login: str, subscribers: Iterable[int] = ()) -> None:
    """Recompute one login's access row from the accounts of the subscribers its record names
    and ``subscribers`` (pass the subscriber a link was just made on); idempotent. A login
    linked to nothing keeps no row."""
    for _ in range(ATTEMPTS):
        current, etag = ctx.access.read(tenant, login)
        named = set(subscribers)
        if current is not None:
            named |= set(current.holder_of) | {m.subscriber_no for m in current.member_of}
        record = build(ctx, tenant, login, named)
        if current == record or (current is None and is_empty(record)):
            return
        try:
            if is_empty(record) and etag is not None:
                ctx.access.delete(tenant, login, etag)
            else:
                ctx.access.put(tenant, record, etag)
            return
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(f"access row of {login} kept changing")


def build(ctx: Context, tenant: str, login: str, subscribers: Iterable[int]) -> AccessRecord:
    catalogue = ctx.catalogue.get(tenant)
    accounts = [loaded.account for n in sorted(set(subscribers))
                if (loaded := ctx.accounts.load(tenant, n)) is not None]
    return access_record(login, accounts, catalogue, ctx.today(catalogue))


def refresh_sites(ctx: Context, tenant: str, subscriber_no: int, account: Account | None) -> None:
    """Put the subscriber's IP ranges and grants into the tenant's site table (or take them out)."""
    catalogue = ctx.catalogue.get(tenant)
    entries = site_entries(account, catalogue, ctx.today(catalogue)) if account is not None else ()
    for _ in range(ATTEMPTS):
        table, etag = ctx.access.sites(tenant)
        updated = with_site(table, subscriber_no, entries)
        if updated == table:
            return
        try:
            ctx.access.put_sites(tenant, updated, etag)
            return
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(f"site table of {tenant} kept changing")


# ---- the lookups ---------------------------------------------------------------------------------


def today(ctx: Context, tenant: str) -> date:
    """The tenant's day (the catalogue is cached: no round trip on the hot path)."""
    return ctx.today(ctx.catalogue.get(tenant))


def claims(ctx: Context, tenant: str, login: str, day: date | None = None) -> Claims:
    """The products ``login`` may access on ``day`` (the tenant's today): one point read."""
    day = day or today(ctx, tenant)
    record = ctx.access.get(tenant, login)
    return Claims(record.products_on(day) if record is not None else (), day)


def site_products(ctx: Context, tenant: str, ip: str, day: date | None = None) -> Claims:
    """The products the site at address ``ip`` may access on ``day`` (ValueError: not an address)."""
    day = day or today(ctx, tenant)
    table, _etag = ctx.access.sites(tenant)
    return Claims(table.products_for(ip, day), day)


def connector_claims(ctx: Context, tenant: str, issuer: str, subject: str, day: date | None = None) -> Claims:
    """The products for the token the identity provider is about to issue (the B2C API
    connector, External ID's token issuance start): the login is the tenant's issuer and the
    user's object id, exactly as ``subscriber_auth`` makes it from the token."""
    return claims(ctx, tenant, login_key(issuer, subject), day)


def set_ip_ranges(ctx: Context, tenant: str, subscriber_no: int, ranges: Iterable[str]) -> tuple[str, ...]:
    """Set a site subscriber's IP ranges (one transaction in its partition), then its site
    entries at once (the worker's refresh on ``AccessChanged`` does it again, harmlessly)."""
    from .unit_of_work import change  # the unit of work imports ``marked`` from here

    networks = tuple(dict.fromkeys(normalise_network(r) for r in ranges))

    def decide(seen: Seen) -> Changes:
        account = seen.account
        return Changes(replace(account, subscriber=replace(account.subscriber, ip_ranges=networks)))

    changed = change(ctx, tenant, subscriber_no, decide)
    refresh_sites(ctx, tenant, subscriber_no, changed.account)
    return networks
