"""A loopback simulator of Swedbank Pay Payment Order v3.1 (card), on the test clock.

It answers the calls ``shared/adapters/swedbankpay.py`` makes, as the published API does
(``shared/references/swedbankpay``: payment-request 3.1, unscheduled purchase, capture,
reversal, callback v3.1, status models):

* ``POST /psp/paymentorders``: ``operation: Purchase`` (``Initialized``, with the
  ``redirect-checkout`` operation to the payment page; ``generateUnscheduledToken: true``
  makes an unscheduled token when the payer pays) or ``operation: UnscheduledPurchase``
  with ``unscheduledToken`` (authorized at once: ``Paid`` with ``transactionType:
  Authorization`` and the ``capture`` operation, or ``Failed`` with the acquirer's problem
  when the card is declined or expired by the clock). ``payeeReference`` is ``[A-Za-z0-9]``,
  at most 30, and unique per payee: a second payment order with one already used is
  refused (409 problem+json).
* ``GET /psp/paymentorders/{id}`` (``?$expand=paid``), and ``/paid``, ``/failed``,
  ``/payeeinfo``, ``/financialtransactions``.
* ``POST {id}/captures``, ``{id}/reversals``, ``{id}/cancellations`` (``transaction``:
  description, amount, vatAmount, payeeReference unique per payee among transactions),
  amounts checked against what is authorized / captured; ``PATCH {id}`` abort.
* Errors are ``application/problem+json``; a missing or unknown bearer token is 401.

The payment page is ``GET /checkout/{token}`` (pay with a card number and expiry, or
cancel). Paying POSTs the v3.1 callback (``{"orderReference", "paymentOrder": {"id",
"instrument", "number"}}``; v3.0's ``payment`` and ``transaction`` nodes for a 3.0 order)
to the order's ``callbackUrl``, after a seeded delay, sometimes twice, retried while the
merchant answers non-2xx: the app must re-read the order, never trust the body. Unscheduled
card purchases send no callback (as the API says).

Test controls (in process, and over HTTP under ``/_sim/``):

* ``complete(order_id, card_number, expiry)`` / ``POST /_sim/paymentorders/{guid}/complete``
  ``{"cardNumber", "expiryDate": "MM/YYYY"}``: the payer pays (a declined or expired card is
  a failed attempt: the order stays ``Initialized``, as the payment page lets the payer try
  again);
* ``abort(order_id)`` / ``POST /_sim/paymentorders/{guid}/abort``: the payer cancels;
* ``decline_card(number, reason)`` / ``POST /_sim/cards/{number}/decline`` ``{"reason"}``,
  ``honour_card`` / ``.../honour``: that card's next purchases fail (``acquirerinsufficientfunds``,
  ``acquirercarddeclined``, ``acquirercardstolen``, ...); the cards in ``DECLINED_CARDS`` always do;
* ``fail_next(status, times, retry_after)`` / ``POST /_sim/faults`` ``{"status", "times",
  "retryAfter"}``: the next API calls answer 429 / 5xx (status 0: the connection drops);
  ``lose_next_answers(times)``: the next calls are done but their answers are lost;
* ``callbacks`` / ``GET /_sim/callbacks``: what was sent and how the merchant answered;
  ``drain()`` waits for the callbacks due;
* ``GET /_sim/clock``, ``POST /_sim/clock`` ``{"now": ISO 8601}``: the simulator's clock
  (in process it is the clock it was given: the app's test clock).

In process: ``sim = SwedbankPaySimulator(clock); sim.start()``, then
``os.environ.update(sim.app_settings("avisa"))`` points ``swedbankpay_from_settings`` at it.
Standalone: ``python -m devhost.swedbankpay_sim --port 8092`` (prints the URL, the merchant's
payee id and token).
"""

from __future__ import annotations

import argparse
import calendar
import heapq
import html
import json
import random
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

from shared.clock import Clock, SettableClock

ORDERS = "/psp/paymentorders"
PAYEE_REFERENCE = re.compile(r"[A-Za-z0-9]{1,30}")
CURRENCIES = ("NOK", "SEK", "DKK", "EUR")
LANGUAGES = ("da-DK", "de-DE", "et-EE", "en-US", "es-ES", "fi-FI", "fr-FR", "lt-LT", "lv-LV", "nb-NO", "pl-PL",
             "ru-RU", "sv-SE")
TEST_CARD = "4925000000000004"
DECLINED_CARDS = {  # card number -> the acquirer's problem type (every purchase with it fails)
    "4000000000000002": "acquirercarddeclined",
    "4000000000009995": "acquirerinsufficientfunds",
    "4000000000009979": "acquirercardstolen",
}
PROBLEM_TITLES = {
    "acquirercarddeclined": "Card declined by the issuer",
    "acquirerinsufficientfunds": "Insufficient funds",
    "acquirercardstolen": "Card reported stolen",
    "acquirercardexpired": "Card expired",
}
DROP = 0  # a "status" that closes the connection without an answer
CALLBACK_RETRIES = (30, 60, 360, 432, 864, 1265, 1265, 1265)  # seconds, as the callback doc lists (scaled)

Answer = tuple[int, Any, dict[str, str]]


def problem(status: int, kind: str, detail: str, *problems: tuple[str, str]) -> Answer:
    body = {"type": f"https://api.payex.com/psp/errordetail/paymentorders/{kind}", "title": kind, "status": status,
            "detail": detail, "problems": [{"name": n, "description": d} for n, d in problems]}
    return status, body, {"Content-Type": "application/problem+json"}


def last_day(expiry: str) -> date | None:
    """``MM/YYYY`` (or ``MM/YY``) -> the last day of that month; None if unreadable."""
    m = re.fullmatch(r"(0[1-9]|1[0-2])/([0-9]{2}|[0-9]{4})", expiry.strip())
    if not m:
        return None
    year = int(m[2]) + (2000 if len(m[2]) == 2 else 0)
    return date(year, int(m[1]), calendar.monthrange(year, int(m[1]))[1])


def mask(number: str) -> str:
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


@dataclass
class Card:
    number: str
    expiry: str  # MM/YYYY

    @property
    def masked(self) -> str:
        return mask(self.number)


@dataclass
class Transaction:
    kind: str  # Authorization | Capture | Reversal | Cancellation
    id: str
    number: int
    amount: int
    vat: int
    description: str
    payee_reference: str
    created: str


@dataclass
class Order:
    guid: str
    payee_id: str
    operation: str
    currency: str
    amount: int
    vat: int
    description: str
    language: str
    urls: dict[str, Any]
    payee_reference: str
    order_reference: str
    generate_token: bool
    version: str
    created: str
    status: str = "Initialized"
    updated: str = ""
    number: int = 0
    checkout_token: str = ""
    card: Card | None = None
    token: str = ""  # the unscheduled token it made (Purchase) or used (UnscheduledPurchase)
    authorized: int = 0
    captured: int = 0
    reversed: int = 0
    cancelled: int = 0
    transactions: list[Transaction] = field(default_factory=list)
    failed: dict[str, Any] | None = None
    failed_attempts: int = 0

    @property
    def id(self) -> str:
        return f"{ORDERS}/{self.guid}"


class SwedbankPaySimulator:
    def __init__(self, clock: Clock | None = None, merchants: Mapping[str, str] | None = None, seed: int = 11,
                 callback_delay: float = 0.0, callback_duplicates: float = 0.0, callback_retry_scale: float = 0.001,
                 host: str = "127.0.0.1", port: int = 0, declines_as_problem: bool = False) -> None:
        """``merchants``: payee id -> bearer token (one made up if none). Callbacks go out after
        up to ``callback_delay`` seconds, a second copy with probability ``callback_duplicates``;
        a refused callback is retried on the API's schedule times ``callback_retry_scale``. With
        ``declines_as_problem`` a declined unscheduled purchase is answered as the acquirer's 403
        problem (its order is still made, ``Failed``) instead of the ``Failed`` order."""
        self.declines_as_problem = declines_as_problem
        self.clock = clock or SettableClock()
        self.merchants = dict(merchants or {"abonno-payee": "sim-" + secrets.token_hex(8)})
        self.rng = random.Random(seed)
        self.callback_delay = callback_delay
        self.callback_duplicates = callback_duplicates
        self.callback_retry_scale = callback_retry_scale
        self.orders: dict[str, Order] = {}
        self.tokens: dict[str, tuple[str, Card]] = {}  # unscheduled token -> (payee, card)
        self.declined: dict[str, str] = dict(DECLINED_CARDS)
        self.callbacks: list[dict[str, Any]] = []  # {"url", "body", "status"} per delivery attempt
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) of API calls
        self._faults: list[tuple[int, str | None]] = []
        self._lose = 0
        self._order_refs: dict[tuple[str, str], str] = {}
        self._transaction_refs: set[tuple[str, str]] = set()
        self._numbers = iter(range(99101548600, 10**12))
        self._lock = threading.RLock()
        self._queue: list[tuple[float, int, str, dict[str, Any], int]] = []
        self._seq = 0
        self._pending = threading.Condition(self._lock)
        self._in_flight = 0
        self._stopping = False
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._threads = [threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True),
                         threading.Thread(target=self._deliver_loop, daemon=True)]

    # ---- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self._server.server_address[0]!s}:{self._server.server_address[1]}"

    def start(self) -> str:
        for thread in self._threads:
            thread.start()
        return self.base_url

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._pending.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def credentials(self, payee_id: str | None = None) -> tuple[str, str]:
        """(payee id, bearer token) of a merchant (the first if not named)."""
        payee = payee_id or next(iter(self.merchants))
        return payee, self.merchants[payee]

    def app_settings(self, *tenants: str, payee_id: str | None = None) -> dict[str, str]:
        """The app settings that point Abonno at this simulator for ``tenants`` (all paying to
        one payee): ``ABONNO_SWEDBANKPAY_URL`` and ``ABONNO_SWEDBANKPAY_CREDENTIALS``."""
        payee, token = self.credentials(payee_id)
        table = {tenant: {"payee_id": payee, "token": token} for tenant in tenants}
        return {"ABONNO_SWEDBANKPAY_URL": self.base_url, "ABONNO_SWEDBANKPAY_CREDENTIALS": json.dumps(table)}

    # ---- test controls --------------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """The next ``times`` API calls answer ``status`` (429, 5xx) without doing anything;
        ``DROP`` (0): the connection is closed without an answer."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * times)

    def lose_next_answers(self, times: int = 1) -> None:
        """The next ``times`` successful API calls are done, then their connection is closed
        before the answer (the caller cannot know it went through)."""
        with self._lock:
            self._lose += times

    def decline_card(self, card_number: str, reason: str = "acquirerinsufficientfunds") -> None:
        with self._lock:
            self.declined[card_number] = reason

    def honour_card(self, card_number: str) -> None:
        with self._lock:
            self.declined.pop(card_number, None)

    def card_of_token(self, token: str) -> str:
        with self._lock:
            return self.tokens[token][1].number

    def complete(self, order_id: str, card_number: str = TEST_CARD, expiry: str = "12/2099") -> str:
        """The payer pays on the payment page; the order's status after it."""
        with self._lock:
            order = self._order(order_id)
            if order.status != "Initialized" or order.operation != "Purchase":
                raise ValueError(f"payment order {order.id} is {order.status}")
            card = Card(card_number, expiry)
            reason = self._refusal(card)
            if reason:
                order.failed_attempts += 1
                self._callback(order, "Authorization")  # a failed transaction: the callback says only "look"
                return order.status
            order.card, order.authorized = card, order.amount
            order.status, order.updated = "Paid", self._now()
            self._transaction(order, "Authorization", order.amount, order.vat, "Purchase", order.payee_reference)
            if order.generate_token:
                order.token = str(uuid.uuid4())
                self.tokens[order.token] = (order.payee_id, card)
            self._callback(order, "Authorization")
            return order.status

    def abort(self, order_id: str) -> None:
        """The payer cancels on the payment page (no transaction, so no callback)."""
        with self._lock:
            order = self._order(order_id)
            if order.status == "Initialized":
                order.status, order.updated = "Aborted", self._now()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every callback due within ``timeout`` has been delivered."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (self._queue or self._in_flight) and time.monotonic() < deadline:
                self._pending.wait(0.02)

    def _order(self, order_id: str) -> Order:
        guid = order_id.rstrip("/").rsplit("/", 1)[-1]
        if guid not in self.orders:
            raise KeyError(order_id)
        return self.orders[guid]

    def _refusal(self, card: Card) -> str:
        """Why the acquirer refuses a purchase with ``card`` now ("" if it does not)."""
        if card.number in self.declined:
            return self.declined[card.number]
        expiry = last_day(card.expiry)
        if expiry is None or expiry < self.clock.now().date():
            return "acquirercardexpired"
        return ""

    def _now(self) -> str:
        return self.clock.now().astimezone(UTC).isoformat().replace("+00:00", "Z")

    def _transaction(self, order: Order, kind: str, amount: int, vat: int, description: str,
                     payee_reference: str) -> Transaction:
        number = next(self._numbers)
        tx = Transaction(kind, f"{order.id}/{kind.lower()}s/{uuid.uuid4()}", number, amount, vat, description,
                         payee_reference, self._now())
        order.transactions.append(tx)
        order.number = number
        return tx

    # ---- the API ---------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        url = urlparse(target)
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        if path.startswith("/_sim/"):
            return self._control(method, path, body)
        if path.startswith("/checkout/"):
            return self._page(method, path, body)
        with self._lock:
            self.requests.append((method, target, dict(headers)))
            if self._faults:
                status, retry_after = self._faults.pop(0)
                if status == DROP:
                    return DROP, None, {}
                answer = problem(status, "systemerror" if status >= 500 else "toomanyrequests", "simulated fault")
                if retry_after is not None:
                    answer[2]["Retry-After"] = retry_after
                return answer
            answer = self._api(method, path, query, headers, body)
            if self._lose and answer[0] < 300:
                self._lose -= 1
                return DROP, None, {}  # done, but the answer never reaches the caller
            return answer

    def _api(self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str],
             body: bytes) -> Answer:
        with self._lock:
            payee = self._payee(headers)
            if payee is None:
                return problem(401, "unauthorized", "missing or unknown bearer token")
            try:
                data = json.loads(body) if body else {}
            except ValueError:
                return problem(400, "inputerror", "the body is not JSON")
            if not isinstance(data, dict):
                return problem(400, "inputerror", "the body is not a JSON object")
            return self._route(method, path, query, headers, data, payee)

    def _payee(self, headers: Mapping[str, str]) -> str | None:
        auth = headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        return next((p for p, t in self.merchants.items() if token and secrets.compare_digest(t, token)), None)

    def _route(self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str],
               data: dict[str, Any], payee: str) -> Answer:
        if path == ORDERS and method == "POST":
            return self._create(headers, data, payee)
        m = re.fullmatch(ORDERS + r"/([0-9a-f-]{36})(?:/([a-z]+))?", path)
        if not m or m[1] not in self.orders or self.orders[m[1]].payee_id != payee:
            return problem(404, "notfound", f"no payment order {path}")
        order, sub = self.orders[m[1]], m[2]
        if method == "GET":
            return self._get(order, sub, query)
        if method == "PATCH" and sub is None:
            return self._patch(order, data)
        if method == "POST" and sub in ("captures", "reversals", "cancellations"):
            return self._post_purchase(order, sub, data, payee)
        return problem(405, "methodnotallowed", f"{method} {path}")

    # ---- create ----------------------------------------------------------------------------------

    def _create(self, headers: Mapping[str, str], data: dict[str, Any], payee: str) -> Answer:
        content_type = headers.get("Content-Type", "")
        if not content_type.startswith("application/json"):
            return problem(415, "unsupportedmediatype", "Content-Type must be application/json")
        version = "3.1" if "version=3.1" in content_type.replace(" ", "") else "3.0"
        po = data.get("paymentorder") or data.get("paymentOrder")
        if not isinstance(po, dict):
            return problem(400, "inputerror", "paymentorder is required", ("paymentorder", "required"))
        errors = _order_errors(po, payee)
        if errors:
            return problem(400, "inputerror", "Error in input data", *errors)
        info = po["payeeInfo"]
        reference = info["payeeReference"]
        if (payee, reference) in self._order_refs:
            return problem(409, "conflict", f"The given payeeReference {reference} has already been used",
                           ("payeeInfo.payeeReference", "already used for another payment order"))
        order = Order(str(uuid.uuid4()), payee, po["operation"], po["currency"], po["amount"], po["vatAmount"],
                      po["description"], po.get("language") or "en-US", dict(po.get("urls") or {}), reference,
                      str(info.get("orderReference") or ""), bool(po.get("generateUnscheduledToken")), version,
                      self._now())
        order.updated = order.created
        if order.operation == "UnscheduledPurchase":
            answer = self._unscheduled(order, str(po["unscheduledToken"]))
            if answer is not None:
                return answer
        else:
            order.checkout_token = secrets.token_hex(32)
        self.orders[order.guid] = order
        self._order_refs[(payee, reference)] = order.guid
        if order.failed and self.declines_as_problem:
            failed = order.failed
            return problem(403, str(failed["type"]), str(failed["detail"]), ("ExternalResponse", str(failed["title"])))
        return 201, self._resource(order, set()), {}

    def _unscheduled(self, order: Order, token: str) -> Answer | None:
        """Authorize an unscheduled purchase at once (one attempt: Paid or Failed)."""
        known = self.tokens.get(token)
        if known is None or known[0] != order.payee_id:
            return problem(400, "inputerror", "unknown unscheduledToken", ("unscheduledToken", "not found"))
        card = known[1]
        order.token, order.card = token, card
        reason = self._refusal(card)
        if reason:
            order.status = "Failed"
            order.failed = {"type": reason, "title": PROBLEM_TITLES.get(reason, "Operation failed"), "status": 403,
                            "detail": "Unable to complete UnscheduledPurchase transaction, look at problem node!",
                            "problems": [{"name": "ExternalResponse", "description": f"REJECTED_BY_ACQUIRER-{reason}"}]}
            return None
        order.status, order.authorized = "Paid", order.amount
        self._transaction(order, "Authorization", order.amount, order.vat, "UnscheduledPurchase", order.payee_reference)
        return None

    # ---- read ------------------------------------------------------------------------------------

    def _get(self, order: Order, sub: str | None, query: Mapping[str, list[str]]) -> Answer:
        if sub is None:
            expand = {e.strip().lower() for q in query.get("$expand", []) for e in q.split(",")}
            return 200, self._resource(order, expand), {}
        nodes = {"paid": self._paid, "failed": self._failed, "payeeinfo": self._payee_info,
                 "financialtransactions": self._financial}
        if sub not in nodes:
            return problem(404, "notfound", f"no resource {sub}")
        return 200, {"paymentOrder": order.id, _node_name(sub): nodes[sub](order)}, {}

    def _resource(self, order: Order, expand: set[str]) -> dict[str, Any]:
        po: dict[str, Any] = {
            "id": order.id, "created": order.created, "updated": order.updated, "operation": order.operation,
            "status": order.status, "currency": order.currency, "amount": order.amount, "vatAmount": order.vat,
            "description": order.description, "initiatingSystemUserAgent": "", "language": order.language,
            "availableInstruments": ["CreditCard"], "implementation": "PaymentsOnly", "instrumentMode": False,
            "guestMode": True,
        }
        if order.authorized:
            po["remainingCaptureAmount"] = order.authorized - order.captured - order.cancelled
            po["remainingCancellationAmount"] = order.authorized - order.captured - order.cancelled
        if order.captured:
            po["remainingReversalAmount"] = order.captured - order.reversed
        for node in ("urls", "payeeInfo", "payer", "orderItems", "history", "failed", "aborted", "paid", "cancelled",
                     "reversed", "financialTransactions", "failedAttempts", "postPurchaseFailedAttempts", "metadata"):
            po[node] = {"id": f"{order.id}/{node.lower()}"}
        builders = {"paid": self._paid, "failed": self._failed, "payeeinfo": self._payee_info,
                    "financialtransactions": self._financial}
        for name in expand & builders.keys():
            po[_node_name(name)] = {"id": f"{order.id}/{name}", **builders[name](order)}
        return {"paymentOrder": po, "operations": self._operations(order)}

    def _operations(self, order: Order) -> list[dict[str, str]]:
        base = f"{self.base_url}{order.id}"
        ops: list[dict[str, str]] = []
        if order.status == "Initialized" and order.operation == "Purchase":
            page = f"{self.base_url}/checkout/{order.checkout_token}"
            ops += [{"method": "GET", "href": page, "rel": "redirect-checkout", "contentType": "text/html"},
                    {"method": "GET", "href": f"{page}/client.js", "rel": "view-checkout",
                     "contentType": "application/javascript"},
                    {"method": "PATCH", "href": base, "rel": "update-order", "contentType": "application/json"},
                    {"method": "PATCH", "href": base, "rel": "abort", "contentType": "application/json"}]
        remaining = order.authorized - order.captured - order.cancelled
        if order.status == "Paid" and remaining > 0:
            ops += [{"method": "POST", "href": f"{base}/{name}", "rel": rel, "contentType": "application/json"}
                    for name, rel in (("cancellations", "cancel"), ("captures", "capture"))]
        if order.captured - order.reversed > 0:
            ops.append({"method": "POST", "href": f"{base}/reversals", "rel": "reversal",
                        "contentType": "application/json"})
        return ops

    def _paid(self, order: Order) -> dict[str, Any]:
        if order.card is None or order.status not in ("Paid", "Reversed", "Cancelled") or not order.authorized:
            return {}
        card = order.card
        paid: dict[str, Any] = {
            "instrument": "CreditCard", "number": order.transactions[0].number, "payeeReference": order.payee_reference,
            "orderReference": order.order_reference, "transactionType": "Authorization", "amount": order.amount,
            "submittedAmount": order.amount, "feeAmount": 0, "discountAmount": 0,
            "paymentTokenGenerated": False,
            "details": {"cardBrand": "Visa" if card.number.startswith("4") else "MasterCard", "cardType": "Credit",
                        "maskedPan": card.masked, "expiryDate": card.expiry, "acquirerTransactionType": "3DSECURE"
                        if order.operation == "Purchase" else "STANDARD",
                        "transactionInitiator": "CARDHOLDER" if order.operation == "Purchase" else "MERCHANT",
                        "bin": card.number[:6]},
        }
        if order.operation == "Purchase" and order.token:
            paid["tokens"] = [{"type": "unscheduled", "token": order.token, "name": card.masked,
                               "expiryDate": card.expiry}]
        return paid

    def _failed(self, order: Order) -> dict[str, Any]:
        return {"problem": order.failed} if order.failed else {}

    def _payee_info(self, order: Order) -> dict[str, Any]:
        return {"payeeId": order.payee_id, "payeeReference": order.payee_reference,
                "orderReference": order.order_reference}

    def _financial(self, order: Order) -> dict[str, Any]:
        money = [t for t in order.transactions if t.kind in ("Capture", "Reversal")]
        return {"financialTransactionsList": [
            {"id": t.id, "created": t.created, "updated": t.created, "type": t.kind, "number": t.number,
             "amount": t.amount, "vatAmount": t.vat, "description": t.description, "payeeReference": t.payee_reference}
            for t in money]}

    # ---- change ----------------------------------------------------------------------------------

    def _patch(self, order: Order, data: dict[str, Any]) -> Answer:
        po = data.get("paymentorder") or data.get("paymentOrder") or {}
        if not isinstance(po, dict) or po.get("operation") != "Abort":
            return problem(400, "inputerror", "only operation Abort is simulated", ("operation", "Abort"))
        if order.status != "Initialized":
            return problem(403, "forbidden", f"the payment order is {order.status}: abort is not available")
        order.status, order.updated = "Aborted", self._now()
        return 200, self._resource(order, set()), {}

    def _post_purchase(self, order: Order, kind: str, data: dict[str, Any], payee: str) -> Answer:
        tx = data.get("transaction")
        if not isinstance(tx, dict):
            return problem(400, "inputerror", "transaction is required", ("transaction", "required"))
        errors = _transaction_errors(tx)
        if errors:
            return problem(400, "inputerror", "Error in input data", *errors)
        amount, vat, reference = tx["amount"], tx["vatAmount"], tx["payeeReference"]
        if (payee, reference) in self._transaction_refs:
            return problem(409, "conflict", f"The given payeeReference {reference} has already been used",
                           ("transaction.payeeReference", "already used for another transaction"))
        available = {"captures": order.authorized - order.captured - order.cancelled,
                     "cancellations": order.authorized - order.captured - order.cancelled,
                     "reversals": order.captured - order.reversed}[kind]
        if order.status not in ("Paid",) or available <= 0:
            return problem(403, "forbidden", f"the payment order is {order.status}: {kind[:-1]} is not available")
        if amount > available:
            return problem(400, "inputerror", f"amount {amount} is above the {available} available",
                           ("transaction.amount", f"at most {available}"))
        self._transaction_refs.add((payee, reference))
        name = {"captures": "Capture", "reversals": "Reversal", "cancellations": "Cancellation"}[kind]
        self._transaction(order, name, amount, vat, str(tx["description"]), reference)
        if kind == "captures":
            order.captured += amount
        elif kind == "reversals":
            order.reversed += amount
            if order.reversed == order.captured and order.captured == order.authorized - order.cancelled:
                order.status = "Reversed"
        else:
            order.cancelled += amount
            if order.captured == 0 and order.cancelled == order.authorized:
                order.status = "Cancelled"
        order.updated = self._now()
        return 200, self._resource(order, set()), {}

    # ---- callbacks -------------------------------------------------------------------------------

    def _callback(self, order: Order, kind: str) -> None:
        url = str(order.urls.get("callbackUrl") or "")
        if not url or order.operation != "Purchase":  # no callback for unscheduled card transactions
            return
        number = order.transactions[-1].number if order.transactions else next(self._numbers)
        body: dict[str, Any] = {"paymentOrder": {"id": order.id, "instrument": "paymentorders", "number": number}}
        if order.order_reference:
            body["orderReference"] = order.order_reference
        if order.version != "3.1":
            body = {"paymentOrder": {"id": order.id, "instrument": "paymentorders"},
                    "payment": {"id": f"/psp/creditcard/payments/{order.guid}", "number": number},
                    "transaction": {"id": f"/psp/creditcard/payments/{order.guid}/{kind.lower()}s/{uuid.uuid4()}",
                                    "number": number}}
        copies = 2 if self.rng.random() < self.callback_duplicates else 1
        for _ in range(copies):
            self._schedule(self.rng.uniform(0, self.callback_delay), url, body, 0)

    def _schedule(self, delay: float, url: str, body: dict[str, Any], attempt: int) -> None:
        with self._lock:
            self._seq += 1
            heapq.heappush(self._queue, (time.monotonic() + delay, self._seq, url, body, attempt))
            self._pending.notify_all()

    def _deliver_loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._pending.wait(wait if wait is None or wait > 0 else 0)
                if self._stopping:
                    return
                _due, _seq, url, body, attempt = heapq.heappop(self._queue)
                self._in_flight += 1
            status = self._post_callback(url, body)
            with self._lock:
                self.callbacks.append({"url": url, "body": body, "status": status, "attempt": attempt})
                if not 200 <= status < 300 and attempt < len(CALLBACK_RETRIES):
                    self._seq += 1
                    due = time.monotonic() + CALLBACK_RETRIES[attempt] * self.callback_retry_scale
                    heapq.heappush(self._queue, (due, self._seq, url, body, attempt + 1))
                self._in_flight -= 1
                self._pending.notify_all()

    @staticmethod
    def _post_callback(url: str, body: dict[str, Any]) -> int:
        try:
            return requests.post(url, json=body, timeout=5).status_code
        except requests.RequestException:
            return 0

    # ---- the payment page and the controls ---------------------------------------------------------

    def _page(self, method: str, path: str, body: bytes) -> Answer:
        token = path[len("/checkout/"):]
        with self._lock:
            order = next((o for o in self.orders.values() if o.checkout_token and o.checkout_token == token), None)
            if order is None:
                return 404, "<h1>No such payment</h1>", {"Content-Type": "text/html; charset=utf-8"}
            if method == "POST":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                if form.get("action") == "cancel":
                    self.abort(order.id)
                    return 303, "", {"Location": str(order.urls.get("cancelUrl") or "/")}
                if order.status == "Initialized":
                    self.complete(order.id, form.get("cardNumber", ""), form.get("expiryDate", ""))
                if order.status == "Paid":
                    return 303, "", {"Location": str(order.urls.get("completeUrl") or "/")}
                return 200, _page_html(order, path, "The card was declined: try another card."), \
                    {"Content-Type": "text/html; charset=utf-8"}
            return 200, _page_html(order, path, ""), {"Content-Type": "text/html; charset=utf-8"}

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = {}
        try:
            return self._control_route(method, path, data if isinstance(data, dict) else {})
        except (KeyError, ValueError) as exc:
            return problem(400, "simulator", str(exc))

    def _control_route(self, method: str, path: str, data: dict[str, Any]) -> Answer:
        m = re.fullmatch(r"/_sim/paymentorders/([0-9a-f-]{36})/(complete|abort)", path)
        if method == "POST" and m:
            if m[2] == "abort":
                self.abort(m[1])
            else:
                self.complete(m[1], str(data.get("cardNumber") or TEST_CARD), str(data.get("expiryDate") or "12/2099"))
            with self._lock:
                return 200, self._resource(self.orders[m[1]], {"paid"}), {}
        m = re.fullmatch(r"/_sim/cards/([0-9]{12,19})/(decline|honour)", path)
        if method == "POST" and m:
            if m[2] == "decline":
                self.decline_card(m[1], str(data.get("reason") or "acquirerinsufficientfunds"))
            else:
                self.honour_card(m[1])
            return 200, {"card": mask(m[1]), "declined": m[2] == "decline"}, {}
        if method == "POST" and path == "/_sim/faults":
            self.fail_next(int(data["status"]), int(data.get("times", 1)),
                           None if data.get("retryAfter") is None else str(data["retryAfter"]))
            return 200, {"queued": len(self._faults)}, {}
        if method == "GET" and path == "/_sim/callbacks":
            with self._lock:
                return 200, {"callbacks": list(self.callbacks)}, {}
        if path == "/_sim/clock" and method == "POST" and isinstance(self.clock, SettableClock):
            self.clock.set(datetime.fromisoformat(str(data["now"])))
        if path == "/_sim/clock" and method in ("GET", "POST"):
            return 200, {"now": self._now()}, {}
        if method == "GET" and path == "/_sim/merchants":
            return 200, {"merchants": [{"payeeId": p, "token": t} for p, t in self.merchants.items()]}, {}
        return problem(404, "simulator", f"no control {method} {path}")


def _node_name(sub: str) -> str:
    return {"payeeinfo": "payeeInfo", "financialtransactions": "financialTransactions"}.get(sub, sub)


def _order_errors(po: dict[str, Any], payee: str) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    operation = po.get("operation")
    if operation not in ("Purchase", "UnscheduledPurchase"):
        errors.append(("operation", "Purchase or UnscheduledPurchase (the operations simulated)"))
    if po.get("currency") not in CURRENCIES:
        errors.append(("currency", f"one of {', '.join(CURRENCIES)}"))
    amount, vat = po.get("amount"), po.get("vatAmount")
    if type(amount) is not int or amount <= 0:
        errors.append(("amount", "a positive integer (minor units)"))
    if type(vat) is not int or vat < 0 or (type(amount) is int and vat > amount):
        errors.append(("vatAmount", "an integer from 0 to amount"))
    if not isinstance(po.get("description"), str) or not 0 < len(po["description"]) <= 40:
        errors.append(("description", "1-40 characters"))
    if not isinstance(po.get("userAgent"), str) or not po["userAgent"]:
        errors.append(("userAgent", "required"))
    return errors + _url_errors(operation, po) + _payee_info_errors(po.get("payeeInfo"), payee)


def _url_errors(operation: Any, po: dict[str, Any]) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    urls = po.get("urls")
    if operation == "Purchase":
        if not isinstance(urls, dict) or not isinstance(urls.get("hostUrls"), list) or not urls.get("completeUrl"):
            errors.append(("urls", "hostUrls and completeUrl are required"))
    elif urls is not None and not isinstance(urls, dict):
        errors.append(("urls", "an object"))
    if operation == "UnscheduledPurchase" and not isinstance(po.get("unscheduledToken"), str):
        errors.append(("unscheduledToken", "required"))
    return errors


def _payee_info_errors(info: Any, payee: str) -> list[tuple[str, str]]:
    if not isinstance(info, dict):
        return [("payeeInfo", "required")]
    errors: list[tuple[str, str]] = []
    if info.get("payeeId") != payee:
        errors.append(("payeeInfo.payeeId", "not the payee of the access token"))
    if not isinstance(info.get("payeeReference"), str) or not PAYEE_REFERENCE.fullmatch(info["payeeReference"]):
        errors.append(("payeeInfo.payeeReference", "1-30 of A-Z a-z 0-9"))
    reference = info.get("orderReference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 50):
        errors.append(("payeeInfo.orderReference", "at most 50 characters"))
    return errors


def _transaction_errors(tx: dict[str, Any]) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    amount, vat = tx.get("amount"), tx.get("vatAmount")
    if type(amount) is not int or amount <= 0:
        errors.append(("transaction.amount", "a positive integer (minor units)"))
    if type(vat) is not int or vat < 0 or (type(amount) is int and vat > amount):
        errors.append(("transaction.vatAmount", "an integer from 0 to amount"))
    if not isinstance(tx.get("description"), str) or not tx["description"]:
        errors.append(("transaction.description", "required"))
    if not isinstance(tx.get("payeeReference"), str) or not PAYEE_REFERENCE.fullmatch(tx["payeeReference"]):
        errors.append(("transaction.payeeReference", "1-30 of A-Z a-z 0-9"))
    return errors


def _page_html(order: Order, path: str, message: str) -> str:
    amount = f"{order.amount // 100},{order.amount % 100:02d} {order.currency}"
    note = f'<p class="error">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Swedbank Pay (simulator)</title></head>
<body><h1>Swedbank Pay (simulator)</h1><p>{html.escape(order.description)}: <b>{amount}</b></p>{note}
<form method="post" action="{html.escape(path)}">
<label>Card number <input name="cardNumber" value="{TEST_CARD}"></label>
<label>Expiry (MM/YYYY) <input name="expiryDate" value="12/2099"></label>
<button name="action" value="pay">Pay</button> <button name="action" value="cancel">Cancel</button>
</form></body></html>"""


def _handler(sim: SwedbankPaySimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                status, payload, headers = sim.handle(self.command, self.path, dict(self.headers.items()), body)
            except Exception as exc:  # the simulator answers 500 as the API would
                status, payload, headers = problem(500, "systemerror", f"simulator error: {exc}")
            if status == DROP:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(payload, str):
                data = payload.encode()
                content_type = headers.pop("Content-Type", "text/html; charset=utf-8")
            else:
                data = json.dumps(payload).encode()
                content_type = headers.pop("Content-Type", "application/json; charset=utf-8; version=3.1")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def main(argv: list[str] | None = None, serve: Callable[[], None] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--payee", default="abonno-payee")
    parser.add_argument("--token", default="sim-token")
    parser.add_argument("--callback-delay", type=float, default=1.0)
    parser.add_argument("--callback-duplicates", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    sim = SwedbankPaySimulator(SettableClock(running=True), {args.payee: args.token}, args.seed, args.callback_delay,
                               args.callback_duplicates, 1.0, args.host, args.port)
    url = sim.start()
    print(json.dumps({"url": url, "payee_id": args.payee, "token": args.token}), flush=True)
    try:
        (serve or (lambda: threading.Event().wait()))()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
