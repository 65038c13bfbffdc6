"""One-time codes that prove an e-mail address (issue 12): linking a login to a
subscriber, changing a subscriber's e-mail address, accepting a group invitation.

Placeholder of the ground commit: the helper who owns sign-in writes it. The signatures
below are the contract the other self-service modules call."""

from __future__ import annotations

from collections.abc import Mapping

from .context import Context


class CodeRefused(ValueError):
    """The code is wrong, used, expired or tried too often (one text for all: 422)."""


def send_code(ctx: Context, tenant: str, purpose: str, target: str, email: str,
              payload: Mapping[str, str], language: str = "nb") -> None:
    """Make a code for ``purpose`` / ``target`` (replacing an earlier one), and send it to
    ``email`` through the notices channel. ``target`` names what the code proves, e.g. a
    digest of the login and the address; ``payload`` is what ``redeem`` hands back."""
    raise NotImplementedError


def redeem(ctx: Context, tenant: str, purpose: str, target: str, code: str) -> Mapping[str, str]:
    """Use the code up and return its payload; ``CodeRefused`` if it is wrong, used, expired
    or tried too often. Single use also under concurrent redeemers."""
    raise NotImplementedError
