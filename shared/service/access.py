"""Access claims (M1): each login's access row kept up to date, and the lookups publishers ask.

Placeholder of the ground commit: the helper who owns access claims writes it. The
signatures below are the contract the other self-service modules call."""

from __future__ import annotations

from .context import Context


def refresh(ctx: Context, tenant: str, subscriber_no: int) -> None:
    """Recompute the access rows of every login linked to ``subscriber_no`` (and its site
    entries), from the subscriber's account as it now is; idempotent."""
    raise NotImplementedError


def refresh_login(ctx: Context, tenant: str, login: str) -> None:
    """Recompute one login's access row from the accounts of the subscribers it is linked
    to (the record names them); idempotent. Used after a link is made or removed."""
    raise NotImplementedError
