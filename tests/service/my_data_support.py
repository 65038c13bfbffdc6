"""What the personal data and group tests share: a login linked to a subscriber as its
holder (the link in the partition, then the login's access row refreshed, as signin's
confirm_link does), a group plan, and the codes the notices channel sent to an address."""

from __future__ import annotations

import email
import re
from dataclasses import replace

from shared.adapters.notify import BlobNotifier
from shared.domain.account import Changes
from shared.domain.identity import LoginLink, Role, login_key
from shared.ports import SubscriberPrincipal
from shared.service import access
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.unit_of_work import change
from tests.fakes import FakeNotifier

ISSUER = "https://abonno.local/dev-idp/{tenant}/v2.0"
GROUP_PLAN = "group-monthly"


def principal(tenant: str, subject: str, address: str | None = None) -> SubscriberPrincipal:
    issuer = ISSUER.format(tenant=tenant)
    return SubscriberPrincipal(tenant, login_key(issuer, subject), issuer, subject, address)


def link_holder(ctx: Context, tenant: str, subscriber_no: int, subject: str,
                address: str | None = None) -> SubscriberPrincipal:
    """``subject``'s login linked to ``subscriber_no`` as its holder, its access row made."""
    me = principal(tenant, subject, address)

    def decide(seen):  # type: ignore[no-untyped-def]
        link = LoginLink(me.login, Role.HOLDER, address or seen.account.subscriber.email, seen.today)
        return Changes(replace(seen.account, logins={**seen.account.logins, link.key: link}))

    change(ctx, tenant, subscriber_no, decide)
    access.refresh_login(ctx, tenant, me.login, (subscriber_no,))
    return me


def install_group_plan(ctx: Context, tenant: str, seats: int) -> str:
    """A copy of the monthly digital plan with ``seats`` seats for a group's users."""
    plan = ctx.catalogue.get(tenant).plans["digital-monthly"]
    put_item(ctx, tenant, "plan", replace(plan, id=GROUP_PLAN, name="Avisa for grupper", seats=seats))
    return GROUP_PLAN


def codes_sent(ctx: Context, tenant: str, address: str) -> list[str]:
    """The codes mailed to ``address`` by the notices channel, oldest first."""
    notifier = ctx.notifier
    bodies: list[tuple[str, str]] = []
    if isinstance(notifier, FakeNotifier):
        bodies = [(n.to, n.body) for n in notifier.delivered.values() if n.tenant == tenant]
    else:
        assert isinstance(notifier, BlobNotifier)
        box = notifier.container
        for blob in sorted(box.list_blobs(name_starts_with=f"{tenant}/"), key=lambda b: b.last_modified):
            if blob.name.endswith(".eml"):
                message = email.message_from_bytes(box.download_blob(blob.name).readall())
                bodies.append((str(message["To"]), message.get_payload(decode=True).decode()))  # type: ignore[union-attr]
    return [m.group(1) for to, body in bodies if to.strip().lower() == address.strip().lower()
            for m in [re.search(r"\b([0-9]{6})\b", body)] if m]


def last_code(ctx: Context, tenant: str, address: str) -> str:
    codes = codes_sent(ctx, tenant, address)
    assert codes, f"no code was sent to {address}"
    return codes[-1]
