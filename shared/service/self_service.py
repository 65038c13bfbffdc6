"""My page (M1): what a subscriber's login may see and do for the subscribers it is linked to.

``authorize`` is the one gate every subscriber endpoint passes: the login's access row
(one point read) says which subscribers it acts for (``Role.HOLDER``) and which group
subscriptions it has a seat in. Anything else is ``NotFound``, the same answer as for a
subscriber that does not exist, so a caller learns nothing about other subscribers.
"""

from __future__ import annotations

from ..domain.identity import AccessRecord, Role
from ..ports import NotFound, SubscriberPrincipal
from .context import Context


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
