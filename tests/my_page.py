"""Test support for My page: link a login to a subscriber as the link and its access row
are stored, and call a subscriber endpoint as the host calls it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from typing import Any

from devhost import issuer
from shared.domain.account import Changes
from shared.domain.identity import AccessRecord, LoginLink, Membership, Role, login_key
from shared.service.context import Context
from shared.service.unit_of_work import change
from tests.fixtures import function, http


def access_rows_on(ctx: Context) -> None:
    """The access rows on Azurite; until the access helper's adapter (``AccessRows``) has landed
    in this clone, on the in-memory fake of the same port."""
    try:
        ctx.access.get("probe", "l0")
    except NotImplementedError:
        from tests.fakes.identity import FakeAccessRecords

        ctx.access = FakeAccessRecords()


def login_of(tenant: str, subject: str) -> str:
    return login_key(issuer.SUBSCRIBER_ISSUER.format(tenant=tenant), subject)


def link(ctx: Context, tenant: str, subject: str, subscriber_no: int, role: Role = Role.HOLDER,
         subscription_id: str | None = None) -> str:
    """Link the login ``subject`` to ``subscriber_no`` (a ``LoginLink`` in its partition and the
    login's access row naming it, as the access refresh derives it) and return its token."""
    login = login_of(tenant, subject)
    made = LoginLink(login, role, f"{subject}@example.no", date(2026, 1, 5), subscription_id)
    change(ctx, tenant, subscriber_no, lambda seen: Changes(replace(
        seen.account, logins={**seen.account.logins, made.key: made})))
    record, etag = ctx.access.read(tenant, login)
    base = record or AccessRecord(login)
    if role is Role.HOLDER:
        new = replace(base, holder_of=(*base.holder_of, subscriber_no))
    else:
        assert subscription_id is not None
        new = replace(base, member_of=(*base.member_of, Membership(subscriber_no, subscription_id, role)))
    ctx.access.put(tenant, new, etag)
    return issuer.subscriber_token(tenant, subject, email=f"{subject}@example.no")


def my(name: str, method: str, token: str | None, tenant: str, route: dict[str, Any] | None = None,
       body: Any = None, params: dict[str, str] | None = None) -> tuple[int, Any]:
    """Call My page's function ``name``: status and JSON (bytes for anything else)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    route = {"tenant": tenant} | {k: str(v) for k, v in (route or {}).items()}
    response = function(name)(http(method, f"/api/my/{tenant}", body, headers=headers, route=route,
                                   params=params))
    raw = response.get_body()
    if response.mimetype in ("application/json", "application/problem+json"):
        return response.status_code, json.loads(raw) if raw else None
    return response.status_code, raw
