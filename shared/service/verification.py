"""One-time codes that prove an e-mail address (issue 12): linking a login to a
subscriber, changing a subscriber's e-mail address, accepting a group invitation.

A code is six random digits (``secrets``), sent to the address through the notices
channel (``ctx.notifier``) in bokmål or English, and stored only as a salted SHA-256
(``OneTimeCode.code_hash``: ``salt$hex``), so a reader of the table learns no code. It
lasts ``CODE_TTL`` (15 minutes), allows ``MAX_TRIES`` wrong tries (then it is dead until
a new one is sent) and is single use: ``redeem`` deletes it under its ETag, so of two
concurrent redeemers of the right code exactly one gets the payload. Every refusal is
the same ``CodeRefused`` text, so a caller cannot tell a wrong code from an expired one
or one for an address that never got a code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from ..ports import ConcurrencyConflict, NotFound, Notice, OneTimeCode
from .context import Context

CODE_TTL = timedelta(minutes=15)
MAX_TRIES = 5
DIGITS = 6
ATTEMPTS = 10  # reads of one code a redeem may take when concurrent tries keep changing it
REFUSED = "the code is not valid: it may be wrong, used or expired; ask for a new one"

TEXTS: dict[str, dict[str, tuple[str, str]]] = {  # purpose -> language -> (subject, body)
    "link": {"nb": ("Din kode for å koble til abonnementet",
                    "Koden din er {code}. Skriv den inn på Min side for å koble innloggingen din til "
                    "abonnementet. Koden gjelder i 15 minutter. Har du ikke bedt om den, kan du se bort fra "
                    "denne e-posten."),
             "en": ("Your code to connect your subscription",
                    "Your code is {code}. Enter it on My page to connect your login to the subscription. "
                    "It is valid for 15 minutes. If you did not ask for it, you can ignore this e-mail.")},
    "email": {"nb": ("Bekreft den nye e-postadressen din",
                     "Koden din er {code}. Skriv den inn på Min side for å bekrefte e-postadressen. Koden "
                     "gjelder i 15 minutter."),
              "en": ("Confirm your new e-mail address",
                     "Your code is {code}. Enter it on My page to confirm the address. It is valid for 15 "
                     "minutes.")},
    "invite": {"nb": ("Du er invitert til et abonnement",
                      "Du er invitert til et gruppeabonnement. Koden din er {code}. Logg inn på Min side og "
                      "skriv inn koden for å ta imot invitasjonen. Koden gjelder i 15 minutter."),
               "en": ("You are invited to a subscription",
                      "You are invited to a group subscription. Your code is {code}. Sign in on My page and "
                      "enter the code to accept. It is valid for 15 minutes.")},
}


class CodeRefused(ValueError):
    """The code is wrong, used, expired or tried too often (one text for all: 422)."""


def code_hash(code: str, salt: str | None = None) -> str:
    """``salt$sha256(salt + code)``; a new random salt unless one is given (to check a code)."""
    salt = salt if salt is not None else secrets.token_hex(16)
    return f"{salt}${hashlib.sha256(f'{salt}{code}'.encode()).hexdigest()}"


def matches(code: str, stored: str) -> bool:
    salt, _, _digest = stored.partition("$")
    return hmac.compare_digest(code_hash(code, salt), stored)


def new_code() -> str:
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def send_code(ctx: Context, tenant: str, purpose: str, target: str, email: str,
              payload: Mapping[str, str], language: str = "nb") -> None:
    """Make a code for ``purpose`` / ``target`` (replacing an earlier one), and send it to
    ``email`` through the notices channel. ``target`` names what the code proves, e.g. a
    digest of the login and the address; ``payload`` is what ``redeem`` hands back."""
    code = new_code()
    now = ctx.clock.now()
    stored = OneTimeCode(tenant, purpose, target, code_hash(code), now + CODE_TTL, dict(payload))
    ctx.codes.put(stored)
    subject, body = notice_text(purpose, language, code)
    notice_id = f"code.{purpose}.{hashlib.sha256(stored.code_hash.encode()).hexdigest()[:24]}"
    ctx.notifier.send(Notice(notice_id, tenant, "email", email, subject, body, ctx.mail_sender,
                             now.date().isoformat()))


def notice_text(purpose: str, language: str, code: str) -> tuple[str, str]:
    texts = TEXTS.get(purpose, TEXTS["link"])
    subject, body = texts.get(language, texts["nb"])
    return subject, body.format(code=code)


def redeem(ctx: Context, tenant: str, purpose: str, target: str, code: str) -> Mapping[str, str]:
    """Use the code up and return its payload; ``CodeRefused`` if it is wrong, used, expired
    or tried too often. Single use also under concurrent redeemers."""
    for _ in range(ATTEMPTS):
        found = ctx.codes.get(tenant, purpose, target)
        if found is None:
            raise CodeRefused(REFUSED)
        stored, etag = found
        try:
            return _try(ctx, stored, etag, code)
        except ConcurrencyConflict:
            continue  # a wrong try or another redeemer changed it meanwhile: read again
        except NotFound as exc:
            raise CodeRefused(REFUSED) from exc
    raise CodeRefused(REFUSED)


def _try(ctx: Context, stored: OneTimeCode, etag: str, code: str) -> Mapping[str, str]:
    if stored.expires <= ctx.clock.now() or stored.attempts >= MAX_TRIES:
        raise CodeRefused(REFUSED)
    if not matches(code.strip(), stored.code_hash):
        ctx.codes.replace(replace(stored, attempts=stored.attempts + 1), etag)
        raise CodeRefused(REFUSED)
    ctx.codes.delete(stored.tenant, stored.purpose, stored.target, etag)  # only one redeemer gets past this
    return stored.payload
