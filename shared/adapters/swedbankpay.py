"""Swedbank Pay Payment Order v3.1 (card) over HTTP: ``ports.SwedbankPay``.

The calls (``shared/references/swedbankpay``; locally ``devhost/swedbankpay_sim.py``):

* ``create_purchase``: ``POST /psp/paymentorders`` with ``operation: Purchase`` and
  ``generateUnscheduledToken: true``; the payer is sent to the ``redirect-checkout`` operation.
* ``payment_order``: ``GET {id}?$expand=paid`` (status; captured and reversed from the
  ``remaining*Amount`` fields; the unscheduled token and the card's mask and expiry from
  ``paid``); ``GET {id}/failed`` for why a ``Failed`` one failed and ``GET {id}/payeeinfo``
  for the reference of one that was never paid.
* ``unscheduled_purchase``: ``POST /psp/paymentorders`` with ``operation:
  UnscheduledPurchase`` and the token (authorized at once: ``Paid`` with nothing captured,
  or ``Failed``; a decline answered as an acquirer problem is a ``Failed`` order without an
  id); then ``capture``: ``POST {id}/captures``; ``reversal``: ``POST {id}/reversals``.

Every request carries ``Authorization: Bearer``, ``Content-Type`` / ``Accept:
application/json;version=3.1`` and a correlation id (``Session-Id``, the same on each try of
one call; ``X-Request-Id`` per try). Connection errors, timeouts, 429 (honouring
``Retry-After``) and 5xx are tried again with exponential back-off and jitter, then raise
``ProviderUnavailable`` (at once if ``Retry-After`` asks for longer than ``max_wait``: the
bus tries the message again later rather than a function waiting); a 4xx problem+json
raises ``ProviderRefused(status, detail)``.
Nothing secret (token, unscheduled token, card) is logged; only method, path, status and ids.

``payeeReference`` is ``[A-Za-z0-9]{1,30}`` and unique per payee and operation, so it is
the idempotency of a purchase (a second payment order with a used one is refused:
``PayeeReferenceUsed``). Our ids carry ``-``, which the API refuses: ``payee_reference``
escapes them reversibly (``-`` -> ``XD``, ``X`` -> ``XX``) and ``our_reference`` reads them
back; the raw id goes as ``orderReference`` too (free text, echoed in callbacks). A capture or
reversal tried again after its first try went through is refused as a used reference; the
client then finds it among the order's financial transactions and answers the order as
the first try would have.
"""

from __future__ import annotations

import calendar
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import urlsplit

import requests

from ..ports import CardPaymentOrder, CardPurchase, ProviderRefused, ProviderUnavailable, SwedbankPay

log = logging.getLogger(__name__)

VERSION = "application/json;version=3.1"
USER_AGENT = "Abonno/1.0"
ORDER_ID = re.compile(r"/psp/paymentorders/[A-Za-z0-9-]{1,64}")
EXPIRY = re.compile(r"(0[1-9]|1[0-2])/([0-9]{4}|[0-9]{2})")


@dataclass(frozen=True)
class SwedbankPayCredentials:
    payee_id: str
    token: str

    def __repr__(self) -> str:  # never the token, wherever a credentials object is printed
        return f"SwedbankPayCredentials(payee_id={self.payee_id!r}, token=***)"


class PayeeReferenceUsed(ProviderRefused):
    """The payee reference was used before (for another payment order or transaction): the
    operation was made once already, or the reference is someone else's. Nothing new was made."""


class CardDeclined(ProviderRefused):
    """The acquirer refused the card (a problem whose type names it, e.g.
    ``acquirerinsufficientfunds``): ``reason`` is that type."""

    def __init__(self, status: int, detail: str, reason: str) -> None:
        super().__init__(status, detail)
        self.reason = reason


def payee_reference(ours: str) -> str:
    """Our id as a payeeReference (``[A-Za-z0-9]``): ``-`` -> ``XD``, ``X`` -> ``XX``.

    >>> payee_reference("c12-3-1")
    'c12XD3XD1'
    >>> our_reference(payee_reference("aX-9"))
    'aX-9'
    """
    return ours.replace("X", "XX").replace("-", "XD")


def our_reference(reference: str) -> str:
    """``payee_reference`` read back; a reference that is not one of ours is returned as it is."""
    out, i = [], 0
    while i < len(reference):
        if reference[i] == "X":
            pair = reference[i:i + 2]
            if pair not in ("XX", "XD"):
                return reference
            out.append("X" if pair == "XX" else "-")
            i += 2
        else:
            out.append(reference[i])
            i += 1
    return "".join(out)


def card_expiry(value: str) -> date | None:
    """The card's ``MM/YYYY`` (or ``MM/YY``) as the last day it is valid; None if unreadable.

    >>> card_expiry("02/2028")
    datetime.date(2028, 2, 29)
    """
    m = EXPIRY.fullmatch(value.strip())
    if not m:
        return None
    year = int(m[2]) + (2000 if len(m[2]) == 2 else 0)
    return date(year, int(m[1]), calendar.monthrange(year, int(m[1]))[1])


class SwedbankPayClient:
    def __init__(self, base_url: str, credentials: Callable[[str], SwedbankPayCredentials], session: Any = None,
                 timeout: float = 10.0, *, retries: int = 4, backoff: float = 0.5, max_wait: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.rng = rng or random.Random()

    # ---- the port ------------------------------------------------------------------------------

    def create_purchase(self, tenant: str, purchase: CardPurchase) -> CardPaymentOrder:
        payee = self.credentials(tenant)
        host = urlsplit(purchase.complete_url)
        body = {"paymentorder": {
            "operation": "Purchase", "currency": purchase.currency, "amount": purchase.amount_minor,
            "vatAmount": purchase.vat_minor, "description": purchase.description[:40], "userAgent": USER_AGENT,
            "language": purchase.language, "generateUnscheduledToken": True,
            "urls": {"hostUrls": [f"{host.scheme}://{host.netloc}"], "completeUrl": purchase.complete_url,
                     "cancelUrl": purchase.cancel_url, "callbackUrl": purchase.callback_url},
            "payeeInfo": self._payee_info(payee, purchase.payee_reference),
        }}
        answer = self._call(tenant, "POST", "/psp/paymentorders", body)
        return self._order(answer, purchase.payee_reference)

    def payment_order(self, tenant: str, payment_order_id: str) -> CardPaymentOrder:
        path = _order_path(payment_order_id)
        order = self._order(self._call(tenant, "GET", f"{path}?$expand=paid"), "")
        if order.status == "Failed":
            order = self._with_failure(tenant, order)
        if not order.payee_reference:
            info = self._call(tenant, "GET", f"{path}/payeeinfo").get("payeeInfo") or {}
            order = replace(order, payee_reference=our_reference(str(info.get("payeeReference") or "")))
        return order

    def unscheduled_purchase(self, tenant: str, token: str, payee_reference: str, amount_minor: int,
                             vat_minor: int, currency: str, description: str) -> CardPaymentOrder:
        payee = self.credentials(tenant)
        body = {"paymentorder": {
            "operation": "UnscheduledPurchase", "unscheduledToken": token, "currency": currency,
            "amount": amount_minor, "vatAmount": vat_minor, "description": description[:40],
            "userAgent": USER_AGENT, "language": "nb-NO",
            "payeeInfo": self._payee_info(payee, payee_reference),
        }}
        try:
            answer = self._call(tenant, "POST", "/psp/paymentorders", body)
        except CardDeclined as declined:  # refused as a problem rather than a Failed order: failed all the same
            return CardPaymentOrder("", "Failed", amount_minor, currency, payee_reference,
                                    failure_reason=declined.reason)
        order = self._order(answer, payee_reference)
        return self._with_failure(tenant, order) if order.status == "Failed" else order

    def capture(self, tenant: str, payment_order_id: str, amount_minor: int, vat_minor: int,
                payee_reference: str) -> CardPaymentOrder:
        return self._transaction(tenant, payment_order_id, "captures", "Capture", amount_minor, vat_minor,
                                 payee_reference, "Capture")

    def reversal(self, tenant: str, payment_order_id: str, amount_minor: int, vat_minor: int,
                 payee_reference: str) -> CardPaymentOrder:
        return self._transaction(tenant, payment_order_id, "reversals", "Reversal", amount_minor, vat_minor,
                                 payee_reference, "Refund")

    # ---- the calls -------------------------------------------------------------------------------

    def _transaction(self, tenant: str, payment_order_id: str, operation: str, kind: str, amount: int, vat: int,
                     reference: str, description: str) -> CardPaymentOrder:
        path = _order_path(payment_order_id)
        body = {"transaction": {"description": description, "amount": amount, "vatAmount": vat,
                                "payeeReference": payee_reference(reference)}}
        try:
            answer = self._call(tenant, "POST", f"{path}/{operation}", body)
        except PayeeReferenceUsed:
            if not self._made(tenant, path, kind, reference, amount):
                raise
            return self.payment_order(tenant, payment_order_id)
        return self._order(answer, "")

    def _made(self, tenant: str, path: str, kind: str, reference: str, amount: int) -> bool:
        """Whether the order has a ``kind`` transaction of ``amount`` with our ``reference``."""
        node = self._call(tenant, "GET", f"{path}/financialtransactions").get("financialTransactions") or {}
        ours = payee_reference(reference)
        return any(t.get("type") == kind and t.get("payeeReference") == ours and t.get("amount") == amount
                   for t in node.get("financialTransactionsList") or [])

    def _with_failure(self, tenant: str, order: CardPaymentOrder) -> CardPaymentOrder:
        failed = self._call(tenant, "GET", f"{_order_path(order.id)}/failed").get("failed") or {}
        problem = failed.get("problem") or {}
        reason = str(problem.get("type") or "").rsplit("/", 1)[-1] or "failed"
        return replace(order, failure_reason=reason)

    @staticmethod
    def _payee_info(payee: SwedbankPayCredentials, ours: str) -> dict[str, str]:
        return {"payeeId": payee.payee_id, "payeeReference": payee_reference(ours), "orderReference": ours}

    def _order(self, answer: dict[str, Any], reference: str) -> CardPaymentOrder:
        po = answer.get("paymentOrder") or answer.get("paymentorder")
        if not isinstance(po, dict) or not isinstance(po.get("id"), str):
            raise ProviderUnavailable("Swedbank Pay answered without a payment order")
        amount = int(po.get("amount") or 0)
        paid: dict[str, Any] = po["paid"] if isinstance(po.get("paid"), dict) else {}
        details: dict[str, Any] = paid.get("details") or {}
        token: dict[str, Any] = next((t for t in paid.get("tokens") or []
                                      if str(t.get("type", "")).lower() == "unscheduled"), {})
        status = str(po.get("status") or "")
        captured, reversed_ = _money(status, amount, po)
        redirect = next((o.get("href", "") for o in answer.get("operations") or []
                         if o.get("rel") == "redirect-checkout"), "")
        return CardPaymentOrder(
            id=po["id"], status=status, amount_minor=amount, currency=str(po.get("currency") or ""),
            payee_reference=our_reference(str(paid.get("payeeReference") or "")) or reference,
            redirect_url=redirect if status == "Initialized" else "", captured_minor=captured,
            reversed_minor=reversed_, token=str(token.get("token") or ""),
            card_mask=str(details.get("maskedPan") or token.get("name") or ""),
            card_expiry=card_expiry(str(details.get("expiryDate") or token.get("expiryDate") or "")))

    def _call(self, tenant: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        payee = self.credentials(tenant)
        correlation = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {payee.token}", "Accept": VERSION, "Session-Id": correlation}
        if body is not None:
            headers["Content-Type"] = VERSION
        route = path.split("?", 1)[0]
        for attempt in range(self.retries + 1):
            headers["X-Request-Id"] = str(uuid.uuid4())
            wait: float | None = None
            try:
                response = self.session.request(method, self.base_url + path, json=body, headers=headers,
                                                timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                log.warning("swedbankpay %s %s: %s (try %d, session %s)", method, route, type(exc).__name__,
                            attempt + 1, correlation)
                why = type(exc).__name__
            else:
                status = response.status_code
                log.info("swedbankpay %s %s -> %d (try %d, session %s)", method, route, status, attempt + 1,
                         correlation)
                if status < 400:
                    return _json(response)
                if status != 429 and status < 500:
                    raise _refusal(status, response)
                why, wait = f"HTTP {status}", _retry_after(response.headers.get("Retry-After"))
            if attempt == self.retries or (wait is not None and wait > self.max_wait):
                raise ProviderUnavailable(f"Swedbank Pay {method} {route}: {why} after {attempt + 1} tries")
            self.sleep(wait if wait is not None else min(self.max_wait, self._backoff(attempt)))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with full jitter: a random wait up to ``backoff * 2**attempt``."""
        return self.rng.uniform(0, self.backoff * 2 ** attempt)


def _order_path(payment_order_id: str) -> str:
    """The id as a path on the API; anything else (an id from a callback body is anyone's
    text) is refused before a request is made."""
    if not ORDER_ID.fullmatch(payment_order_id):
        raise ProviderRefused(404, "not a payment order id")
    return payment_order_id


def _money(status: str, amount: int, po: dict[str, Any]) -> tuple[int, int]:
    """(captured, reversed) from a v3.1 payment order's ``remaining*Amount`` fields: an
    authorization has no ``remainingReversalAmount`` until something is captured; a fully
    reversed order is ``Reversed``. (We never cancel part of an authorization, which these
    fields would not tell apart from a capture.)"""
    remaining_reversal = po.get("remainingReversalAmount")
    if status == "Reversed":
        return amount, amount - int(remaining_reversal or 0)
    if status != "Paid" or remaining_reversal is None:
        return 0, 0
    captured = amount - int(po.get("remainingCaptureAmount") or 0)
    return captured, captured - int(remaining_reversal)


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderUnavailable("Swedbank Pay answered with something that is not JSON") from exc
    return cast(dict[str, Any], data) if isinstance(data, dict) else {}


def _refusal(status: int, response: Any) -> ProviderRefused:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    problems = body.get("problems") or []
    parts = [str(body.get("detail") or body.get("title") or f"HTTP {status}")]
    parts += [f"{p.get('name')}: {p.get('description')}" for p in problems if isinstance(p, dict)]
    detail = "; ".join(parts)
    kind = str(body.get("type") or "").rsplit("/", 1)[-1].lower()
    if kind.startswith("acquirer") or kind in ("cardblocked", "carddeclined", "cardexpired"):
        return CardDeclined(status, detail, kind)
    if status == 409 or any("payeereference" in str(p.get("name", "")).lower() and "used" in
                            str(p.get("description", "")).lower() for p in problems if isinstance(p, dict)):
        return PayeeReferenceUsed(status, detail)
    return ProviderRefused(status, detail)


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def swedbankpay_from_settings() -> SwedbankPay:
    import json
    import os

    table = json.loads(os.environ.get("ABONNO_SWEDBANKPAY_CREDENTIALS") or "{}")

    def credentials(tenant: str) -> SwedbankPayCredentials:
        if tenant not in table:
            raise ProviderRefused(403, f"no Swedbank Pay payee is configured for tenant {tenant}")
        return SwedbankPayCredentials(**table[tenant])

    return cast(SwedbankPay, SwedbankPayClient(os.environ.get("ABONNO_SWEDBANKPAY_URL")
                                               or "https://api.externalintegration.payex.com", credentials))
