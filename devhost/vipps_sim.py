"""A Vipps MobilePay simulator on loopback: the Access Token API, the Recurring API v3 calls
Abonno makes, and the Webhooks API's signed deliveries, on the test clock.

It follows the published API (``shared/references/vipps/``) for the calls we make: the same
paths, bodies and statuses, RFC 7807 problems (``application/problem+json``), and its rules:

- ``POST /accesstoken/get`` (``client_id``, ``client_secret``, ``Ocp-Apim-Subscription-Key``,
  ``Merchant-Serial-Number``) gives a Bearer token valid ``token_ttl`` seconds (real time);
  every other call needs it (401 ``not-authorized`` otherwise) and the subscription key and MSN.
- ``Idempotency-Key`` (1-40 characters, none of ``# ? / \\``) on every POST/PATCH/DELETE: the
  same key with the same request gets the first answer again (a 4xx too); with another
  request 409 ``idempotency-conflict``.
- Agreements: ``POST /recurring/v3/agreements`` (LEGACY pricing, an optional DIRECT_CAPTURE
  initial charge whose ``orderId`` becomes its charge id) is PENDING until the payer approves
  (ACTIVE), rejects (STOPPED, event ``-rejected``) or lets it lie ``pending_ttl`` by the clock
  (EXPIRED); a failed initial charge expires it. ``PATCH`` changes the price of an ACTIVE
  agreement or stops it (alone: ``status`` with another field is 400); STOPPED is for good.
- Charges only on an ACTIVE agreement, at most 5 times its price (LEGACY; checked per charge,
  not summed per interval), ``due`` at least ``lead_days`` ahead of today (Oslo)
  and at most two years, ``retryDays`` 0-14, ``orderId`` unique per MSN, at most 2000 per bulk
  call (``POST /recurring/v3/agreements/charges``: a JSON array of charges, each with its
  ``agreementId``; the answer lists ``chargeSuccesses`` and ``chargeFailures`` item by item).
  ``process(day)`` moves the charges due by then, by the scenario of their agreement or
  payer: CHARGED, or DUE and retried day by day until ``retryDays`` run out, then FAILED.
- Cancel (``DELETE``) a PENDING, DUE or RESERVED charge; refund (``POST .../refund``) at most
  what was captured, within 365 days of the capture.

Scenarios, in process (the methods) or over HTTP (JSON bodies):

=========================================== =============================================================
``payer(who, behaviour)``                   ``POST /_sim/payers {"who", "behaviour"}``: approve | reject |
                                            ignore, by phone or agreement id (``*``: the default), at ``process``
``charge_outcome(who, outcome, days)``      ``POST /_sim/outcomes {"who", "outcome", "days"}``: succeed | fail |
                                            fail_days (N days, then succeed) | creation_fail
``approve/reject/expire/user_stop(id)``     ``POST /_sim/agreements/{id}/approve|reject|expire|stop``
                                            (``?redirect=1``: 303 to the merchant's redirect URL)
``fail_next(times, status, path, ...)``     ``POST /_sim/faults {"times", "status", "path", "retryAfter"}``
``process(day)``                            ``POST /_sim/process {"day"?}``: the day's batch
``flush(timeout)``                          ``POST /_sim/flush``: wait for the webhooks made so far
``webhook_url``/``secret``/``duplicates``,  ``POST /_sim/webhooks {"url", "msn"?, "secret"?, "duplicates"?,
``reorder``/``max_delay``                   "reorder"?, "max_delay"?}``
``clock.set`` (a ``SettableClock``)         ``POST /_sim/clock {"now"}``
``state()``, ``events``                     ``GET /_sim/state``, ``GET /_sim/events``
=========================================== =============================================================

The payer's confirmation page is served at the agreement's ``vippsConfirmationUrl``
(``/confirm/{id}``), with buttons that approve or reject and return to the merchant.

Webhooks: each event (``recurring.agreement-*.v1``, ``recurring.charge-*.v1``; payload with
``msn``, ``agreementId``, ``agreementExternalId``, ``chargeId``, ``chargeExternalId``,
``amount``, ``currency``, ``eventType``, ``occurred``, ``actor``, ``failureReason``, ``eventId``)
is signed with ``shared.adapters.vipps.sign_webhook`` and posted by a sender thread to the
URL of the merchant's registration (``webhook_url``: one URL, a mapping or a function of the
MSN). Seeded options duplicate, delay and reorder deliveries; ``sent`` counts them.

    python -m devhost.vipps_sim --port 8090 --webhook-url http://127.0.0.1:7071/api/vipps/demo/webhook
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import queue
import random
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import requests

from shared.adapters.vipps import sign_webhook
from shared.clock import Clock, SettableClock

OSLO = ZoneInfo("Europe/Oslo")
PROBLEMS = "https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems#"
KEY = re.compile(r"[^#?/\\]{1,40}")
ORDER_ID = re.compile(r"[A-Za-z0-9-]{1,50}")
CURRENCIES = ("NOK", "DKK", "EUR")
UNITS = ("YEAR", "MONTH", "WEEK", "DAY")
BEHAVIOURS = ("approve", "reject", "ignore")
OUTCOMES = ("succeed", "fail", "fail_days", "creation_fail")

Answer = tuple[int, Any, dict[str, str]]
Target = str | Mapping[str, str] | Callable[[str], str] | None


class Problem(Exception):
    def __init__(self, status: int, kind: str, detail: str, field_name: str = "") -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.field_name = status, kind, detail, field_name

    def body(self, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {"type": PROBLEMS + self.kind, "title": self.kind.replace("-", " ").capitalize(),
                                "status": self.status, "detail": self.detail, "instance": instance,
                                "contextId": str(uuid.uuid4())}
        if self.field_name:
            body["extraDetails"] = [{"field": self.field_name, "text": self.detail}]
        return body


@dataclass
class Agreement:
    id: str
    msn: str
    status: str
    body: dict[str, Any]
    created: datetime
    start: datetime | None = None
    stop: datetime | None = None
    actor: str = ""
    initial_charge: str = ""
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def phone(self) -> str:
        return str(self.body.get("phoneNumber") or "")

    @property
    def external_id(self) -> str:
        return str(self.body.get("externalId") or "")


@dataclass
class Charge:
    id: str
    msn: str
    agreement_id: str
    amount: int
    currency: str
    description: str
    due: date
    retry_days: int
    kind: str  # INITIAL | RECURRING
    transaction_type: str
    external_id: str = ""
    status: str = "PENDING"
    captured: int = 0
    refunded: int = 0
    cancelled: int = 0
    failure_reason: str = ""
    captured_at: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class VippsSimulator:
    """See the module docstring. ``clock`` is the test clock (``shared.clock.SettableClock``)."""

    def __init__(self, clock: Clock, secret: str | Mapping[str, str] | Callable[[str], str] = "vipps-sim-secret",
                 webhook_url: Target = None, *, port: int = 0, seed: int = 0, lead_days: int = 1,
                 pending_ttl: timedelta = timedelta(minutes=10), token_ttl: int = 3600,
                 duplicates: float = 0.0, reorder: float = 0.0, max_delay: float = 0.0,
                 default_payer: str = "ignore", webhook_retries: int = 3, page_size: int = 100) -> None:
        self.clock = clock
        self.secret = secret
        self.webhook_url = webhook_url
        self.lead_days = lead_days
        self.pending_ttl = pending_ttl
        self.token_ttl = token_ttl
        self.duplicates, self.reorder, self.max_delay = duplicates, reorder, max_delay
        self.default_payer = default_payer
        self.default_outcome: tuple[str, int] = ("succeed", 0)
        self.webhook_retries = webhook_retries
        self.page_size = page_size
        self.agreements: dict[str, Agreement] = {}
        self.charges: dict[tuple[str, str], Charge] = {}  # (msn, charge id)
        self.payers: dict[str, str] = {}  # phone or agreement id -> approve | reject | ignore
        self.outcomes: dict[str, tuple[str, int]] = {}  # phone or agreement id -> (outcome, days)
        self.events: list[dict[str, Any]] = []  # every event made, in order (before duplicates/reordering)
        self.sent: Counter[str] = Counter()  # deliveries by event type; "delivered" / "failed" by answer
        self.token_calls: Counter[str] = Counter()  # per MSN
        self.calls: Counter[str] = Counter()  # "METHOD /path-template"
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (msn, valid until, monotonic)
        self._keys: dict[tuple[str, str], tuple[str, Answer]] = {}  # (msn, key) -> (request fingerprint, answer)
        self._faults: list[tuple[int, str, float]] = []  # (status, path fragment, Retry-After) per next call
        self._random = random.Random(seed)
        self._held: list[tuple[str, dict[str, Any]]] = []  # an event held back, sent after the next one
        self._outbox: queue.Queue[tuple[str, bytes, str, float] | None] = queue.Queue()
        self._pending_sends = 0
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._ids = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._serving = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                         name="vipps-sim")
        self._sender = threading.Thread(target=self._send_loop, daemon=True, name="vipps-sim-webhooks")

    # ---- life ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        self._serving.start()
        self._sender.start()
        return self.base_url

    def stop(self) -> None:
        if self._serving.is_alive():
            self._outbox.put(None)
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> VippsSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def today(self) -> date:
        return self.clock.now().astimezone(OSLO).date()

    # ---- scenarios ----------------------------------------------------------------------------

    def payer(self, who: str, behaviour: str) -> None:
        """What the payer with this phone number (or of this agreement id; ``*``: every other) does with a draft:
        ``approve``, ``reject`` or ``ignore`` (left PENDING until it expires). Applied by
        ``process``; ``approve``/``reject`` below act at once."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"payer behaviour {behaviour!r} is not one of {BEHAVIOURS}")
        with self._lock:
            if who == "*":
                self.default_payer = behaviour
            else:
                self.payers[who] = behaviour

    def charge_outcome(self, who: str, outcome: str, days: int = 0) -> None:
        """How the charges of this phone number / agreement id (``*`` for everyone else) go:
        ``succeed``; ``fail`` (every attempt, FAILED when the retry days run out); ``fail_days``
        (fail ``days`` days, then succeed); ``creation_fail`` (bulk-created, then refused)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"charge outcome {outcome!r} is not one of {OUTCOMES}")
        with self._lock:
            if who == "*":
                self.default_outcome = (outcome, days)
            else:
                self.outcomes[who] = (outcome, days)

    def fail_next(self, times: int, status: int = 503, path: str = "", retry_after: float = 0.0) -> None:
        """The next ``times`` calls (whose path contains ``path``) answer ``status`` (429 or 5xx)."""
        with self._lock:
            self._faults.extend([(status, path, retry_after)] * times)

    def revoke_tokens(self) -> None:
        """Every access token given so far is refused from now on (as after a key rotation)."""
        with self._lock:
            self._tokens.clear()

    def approve(self, agreement_id: str) -> None:
        with self._lock:
            agreement = self._pending(agreement_id)
            now = self.clock.now()
            charge = self.charges.get((agreement.msn, agreement.initial_charge)) if agreement.initial_charge else None
            if charge is not None and self._outcome_of(agreement)[0] in ("fail", "fail_days"):
                self._fail(charge, now)  # a DIRECT_CAPTURE initial charge that fails expires the agreement
                self._end_pending(agreement, "EXPIRED", "recurring.agreement-expired.v1")
                return
            agreement.status, agreement.start = "ACTIVE", now
            self._event("recurring.agreement-activated.v1", agreement)
            if charge is not None:
                self._settle_initial(charge, now)

    def reject(self, agreement_id: str) -> None:
        with self._lock:
            self._end_pending(self._pending(agreement_id), "STOPPED", "recurring.agreement-rejected.v1")

    def expire(self, agreement_id: str) -> None:
        with self._lock:
            self._end_pending(self._pending(agreement_id), "EXPIRED", "recurring.agreement-expired.v1")

    def user_stop(self, agreement_id: str) -> None:
        """The payer stops the agreement in the app (RESERVED charges are left to the merchant)."""
        with self._lock:
            agreement = self.agreements[agreement_id]
            if agreement.status == "ACTIVE":
                self._stop(agreement, "USER")

    def process(self, day: date | None = None) -> dict[str, int]:
        """Vipps' batch for ``day`` (today by the clock): drafts the payer answers or that
        expire, charges made DUE within 30 days, and charges due by ``day`` charged, retried or
        failed. Returns what it did, by new status."""
        day = day or self.today()
        done: Counter[str] = Counter()
        with self._lock:
            for agreement in [a for a in self.agreements.values() if a.status == "PENDING"]:
                done[self._answer_draft(agreement)] += 1
            for charge in list(self.charges.values()):
                if charge.status in ("PENDING", "DUE") and charge.kind == "RECURRING":
                    done[self._process_charge(charge, day)] += 1
            self._release_held()  # an event held back is sent by the end of the batch
        done.pop("", None)
        return dict(done)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every webhook made so far has been delivered (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._release_held()
            while self._pending_sends:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"agreements": dict(Counter(a.status for a in self.agreements.values())),
                    "charges": dict(Counter(c.status for c in self.charges.values())),
                    "webhooks": dict(self.sent), "events": len(self.events),
                    "token_calls": dict(self.token_calls), "calls": dict(self.calls), "today": str(self.today())}

    # ---- the rules ------------------------------------------------------------------------------

    def _pending(self, agreement_id: str) -> Agreement:
        agreement = self.agreements.get(agreement_id)
        if agreement is None:
            raise KeyError(agreement_id)
        if agreement.status != "PENDING":
            raise ValueError(f"agreement {agreement_id} is {agreement.status}")
        return agreement

    def _end_pending(self, agreement: Agreement, status: str, event: str) -> None:
        agreement.status, agreement.stop = status, self.clock.now()
        self._event(event, agreement)
        charge = self.charges.get((agreement.msn, agreement.initial_charge))
        if charge is not None and charge.status in ("PENDING", "DUE"):
            self._cancel(charge, self.clock.now())

    def _stop(self, agreement: Agreement, actor: str) -> None:
        now = self.clock.now()
        agreement.status, agreement.stop, agreement.actor = "STOPPED", now, actor
        self._event("recurring.agreement-stopped.v1", agreement, actor=actor)
        ends = ("PENDING", "DUE") if actor == "USER" else ("PENDING", "DUE", "RESERVED")
        for charge in self.charges.values():
            if charge.agreement_id == agreement.id and charge.status in ends:
                self._cancel(charge, now)

    def _answer_draft(self, agreement: Agreement) -> str:
        behaviour = self.payers.get(agreement.id) or self.payers.get(agreement.phone) or self.default_payer
        if behaviour == "approve":
            self.approve(agreement.id)
        elif behaviour == "reject":
            self.reject(agreement.id)
        elif self.clock.now() - agreement.created >= self.pending_ttl:
            self.expire(agreement.id)
        return agreement.status if agreement.status != "PENDING" else ""

    def _outcome_of(self, agreement: Agreement) -> tuple[str, int]:
        return self.outcomes.get(agreement.id) or self.outcomes.get(agreement.phone) or self.default_outcome

    def _process_charge(self, charge: Charge, day: date) -> str:
        if charge.due > day:
            if charge.status == "PENDING" and (charge.due - day).days <= 30:
                charge.status = "DUE"
                return "DUE"
            return ""
        outcome, days = self._outcome_of(self.agreements[charge.agreement_id])
        tried = (day - charge.due).days  # attempts before today's
        now = self.clock.now()
        if outcome == "succeed" or (outcome == "fail_days" and tried >= days):
            self._capture(charge, now)
        elif tried >= charge.retry_days:
            self._fail(charge, now)
        else:
            charge.status = "DUE"
            return "retrying"
        return charge.status

    def _capture(self, charge: Charge, now: datetime) -> None:
        if charge.transaction_type == "RESERVE_CAPTURE":
            charge.status = "RESERVED"
            charge.history.append(_history("RESERVE", charge.amount, now))
            self._charge_event("recurring.charge-reserved.v1", charge)
            return
        charge.status, charge.captured, charge.captured_at = "CHARGED", charge.amount, now
        charge.history.append(_history("CAPTURE", charge.amount, now))
        self._charge_event("recurring.charge-captured.v1", charge)

    def _settle_initial(self, charge: Charge, now: datetime) -> None:
        self._capture(charge, now)

    def _fail(self, charge: Charge, now: datetime, reason: str = "user_action_required",
              event: str = "recurring.charge-failed.v1") -> None:
        charge.status, charge.failure_reason = "FAILED", reason
        charge.history.append(_history("FAIL", charge.amount, now, success=False))
        self._charge_event(event, charge)

    def _cancel(self, charge: Charge, now: datetime) -> None:
        charge.cancelled = charge.amount - charge.captured
        charge.status = "CANCELLED"
        charge.history.append(_history("CANCEL", charge.cancelled, now))
        self._charge_event("recurring.charge-canceled.v1", charge)

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self._random.getrandbits(40):010x}{self._ids}"

    # ---- webhooks -------------------------------------------------------------------------------

    def _event(self, event_type: str, agreement: Agreement, charge: Charge | None = None, **extra: Any) -> None:
        payload: dict[str, Any] = {
            "msn": agreement.msn, "agreementId": agreement.id, "agreementExternalId": agreement.external_id,
            "eventType": event_type, "occurred": self.clock.now().isoformat().replace("+00:00", "Z"),
            "eventId": str(uuid.UUID(int=self._random.getrandbits(128), version=4)),
        }
        if charge is not None:
            payload |= {"chargeId": charge.id, "chargeExternalId": charge.external_id, "amount": charge.amount,
                        "currency": charge.currency, "chargeType": charge.kind}
            if charge.failure_reason:
                payload["failureReason"] = charge.failure_reason
        payload |= extra
        self.events.append(payload)
        self._enqueue(agreement.msn, payload)

    def _charge_event(self, event_type: str, charge: Charge) -> None:
        self._event(event_type, self.agreements[charge.agreement_id], charge)

    def _enqueue(self, msn: str, payload: dict[str, Any]) -> None:
        """Decide (seeded) whether this event is held back behind the next one and duplicated."""
        if self.reorder and not self._held and self._random.random() < self.reorder:
            self._held.append((msn, payload))
            return
        self._post(msn, payload)
        self._release_held()

    def _release_held(self) -> None:
        while self._held:
            self._post(*self._held.pop(0))

    def _post(self, msn: str, payload: dict[str, Any]) -> None:
        url = _target(self.webhook_url, msn)
        if not url:
            return
        copies = 2 if self.duplicates and self._random.random() < self.duplicates else 1
        body = json.dumps(payload).encode()
        for _ in range(copies):
            delay = self._random.uniform(0, self.max_delay) if self.max_delay else 0.0
            self._pending_sends += 1
            self._outbox.put((url, body, msn, delay))

    def _send_loop(self) -> None:
        while (item := self._outbox.get()) is not None:
            url, body, msn, delay = item
            if delay:
                time.sleep(delay)
            try:
                self._deliver(url, body, msn)
            finally:
                with self._lock:
                    self._pending_sends -= 1
                    self._idle.notify_all()

    def _deliver(self, url: str, body: bytes, msn: str) -> None:
        parts = urlparse(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        event_type = json.loads(body)["eventType"]
        for attempt in range(self.webhook_retries + 1):
            headers = sign_webhook(_target(self.secret, msn) or "", path, parts.netloc, self.clock.now(), body)
            headers.pop("host")  # requests sends Host itself: the same value
            headers["Content-Type"] = "application/json"
            try:
                answer = requests.post(url, data=body, headers=headers, timeout=10)
                ok = 200 <= answer.status_code < 300
            except requests.RequestException:
                ok = False
            with self._lock:
                self.sent[event_type] += 1
                self.sent["delivered" if ok else "failed"] += 1
            if ok:
                return
            time.sleep(min(0.05 * 2 ** attempt, 1.0))

    # ---- HTTP -----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: every answer carries its Content-Length
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = sim.handle(method, self.path, dict(self.headers.items()), raw)
                if isinstance(body, str):
                    data, kind = body.encode(), "text/html; charset=utf-8"
                elif body is None:
                    data, kind = b"", ""
                else:
                    data = json.dumps(body).encode()
                    kind = "application/problem+json" if status >= 400 else "application/json"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if kind:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler

    def handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> Answer:
        path = urlparse(target).path
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            if path.startswith("/_sim/") or path.startswith("/confirm/"):
                return self._control(method, path, parse_qs(urlparse(target).query), raw)
            with self._lock:
                fault = self._fault(path)
            if fault is not None:
                return fault
            if method == "POST" and path == "/accesstoken/get":
                return self._token(lower)
            msn = self._authorized(lower)
            return self._idempotent(msn, method, path, lower, raw)
        except Problem as problem:
            return problem.status, problem.body(path), {}

    def _fault(self, path: str) -> Answer | None:
        for i, (status, fragment, retry_after) in enumerate(self._faults):
            if fragment in path:
                del self._faults[i]
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after else {}
                kind = "too-many-requests" if status == 429 else "internal-error"
                return status, Problem(status, kind, "simulated").body(path), headers
        return None

    def _token(self, headers: Mapping[str, str]) -> Answer:
        msn = headers.get("merchant-serial-number", "")
        if not (headers.get("client_id") and headers.get("client_secret") and headers.get("ocp-apim-subscription-key")
                and msn):
            raise Problem(401, "not-authorized", "client_id, client_secret, Ocp-Apim-Subscription-Key and "
                          "Merchant-Serial-Number are required")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.token_calls[msn] += 1
            self._tokens[token] = (msn, time.monotonic() + self.token_ttl)
        now = int(time.time())
        return 200, {"token_type": "Bearer", "expires_in": str(self.token_ttl), "ext_expires_in": "0",
                     "expires_on": str(now + self.token_ttl), "not_before": str(now),
                     "resource": "00000002-0000-0000-c000-000000000000", "access_token": token}, {}

    def _authorized(self, headers: Mapping[str, str]) -> str:
        bearer = headers.get("authorization", "")
        token = bearer[7:] if bearer.startswith("Bearer ") else ""
        with self._lock:
            known = self._tokens.get(token)
        if known is None or known[1] < time.monotonic():
            raise Problem(401, "not-authorized", "the access token is missing, invalid or expired")
        msn = headers.get("merchant-serial-number", "")
        if not headers.get("ocp-apim-subscription-key") or msn != known[0]:
            raise Problem(401, "not-authorized", "Ocp-Apim-Subscription-Key and the token's "
                          "Merchant-Serial-Number are required")
        return msn

    def _idempotent(self, msn: str, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Answer:
        if method == "GET":
            with self._lock:
                return self._route(msn, method, path, None, headers.get("continuation-token", ""))
        key = headers.get("idempotency-key", "")
        if not KEY.fullmatch(key):
            raise Problem(400, "idempotency-key-header", "Idempotency-Key must be 1-40 characters, "
                          "none of # ? / \\", "Idempotency-Key")
        body = _parse(raw)
        fingerprint = hashlib.sha256(f"{method} {path}\n".encode() + json.dumps(body, sort_keys=True).encode())
        with self._lock:
            seen = self._keys.get((msn, key))
            if seen is not None:
                if seen[0] != fingerprint.hexdigest():
                    raise Problem(409, "idempotency-conflict", f"Idempotency-Key {key} was used for another request")
                return seen[1]
            try:
                answer = self._route(msn, method, path, body)
            except Problem as problem:
                answer = (problem.status, problem.body(path), {})
            self._keys[(msn, key)] = (fingerprint.hexdigest(), answer)
            return answer

    def _route(self, msn: str, method: str, path: str, body: Any, continuation: str = "") -> Answer:
        parts = path.strip("/").split("/")
        if parts[:3] != ["recurring", "v3", "agreements"]:
            raise Problem(404, "resource-not-found", f"no such resource {path}")
        rest = parts[3:]
        template = "charges" if rest == ["charges"] else "/".join("{id}" if i in (0, 2) else p
                                                                  for i, p in enumerate(rest))
        self.calls[f"{method} /recurring/v3/agreements/{template}".rstrip("/")] += 1
        match (method, rest):
            case ("POST", []):
                return self._draft(msn, body)
            case ("POST", ["charges"]):
                return self._bulk(msn, body)
            case ("GET", [agreement_id]):
                return 200, self._agreement_json(self._agreement(msn, agreement_id)), {}
            case ("PATCH", [agreement_id]):
                return self._patch(self._agreement(msn, agreement_id), body)
            case ("POST", [agreement_id, "charges"]):
                charge = self._create_charge(msn, {**_object(body), "agreementId": agreement_id})
                return 201, {"chargeId": charge.id}, {}
            case ("GET", [agreement_id, "charges"]):
                return self._list_charges(self._agreement(msn, agreement_id), continuation)
            case ("GET", [agreement_id, "charges", charge_id]):
                return 200, _charge_json(self._charge(msn, agreement_id, charge_id)), {}
            case ("DELETE", [agreement_id, "charges", charge_id]):
                return self._cancel_charge(self._charge(msn, agreement_id, charge_id))
            case ("POST", [agreement_id, "charges", charge_id, "refund"]):
                return self._refund(self._charge(msn, agreement_id, charge_id), body)
        raise Problem(404, "resource-not-found", f"no such resource {method} {path}")

    # ---- agreements ---------------------------------------------------------------------------

    def _agreement(self, msn: str, agreement_id: str) -> Agreement:
        agreement = self.agreements.get(agreement_id)
        if agreement is None or agreement.msn != msn:
            raise Problem(404, "resource-not-found", f"agreement {agreement_id} not found")
        return agreement

    def _draft(self, msn: str, body: Any) -> Answer:
        body = _object(body)
        _validate_draft(body)
        agreement = Agreement(self._new_id("agr"), msn, "PENDING", body, self.clock.now())
        initial = body.get("initialCharge")
        if initial:
            agreement.initial_charge = self._initial_charge(msn, agreement, initial)
        self.agreements[agreement.id] = agreement
        return 201, {"agreementId": agreement.id, "uuid": agreement.uuid,
                     "vippsConfirmationUrl": self._confirmation_url(agreement),
                     "chargeId": agreement.initial_charge or None}, {}

    def _initial_charge(self, msn: str, agreement: Agreement, initial: Mapping[str, Any]) -> str:
        charge_id = str(initial.get("orderId") or self._new_id("chr"))
        _require(ORDER_ID.fullmatch(charge_id) is not None, "initialCharge.orderId", "orderId: 1-50 of A-Z a-z 0-9 -")
        if (msn, charge_id) in self.charges:
            raise Problem(409, "conflict", f"orderId {charge_id} is used", "initialCharge.orderId")
        amount = initial.get("amount")
        _require(isinstance(amount, int) and amount >= 100, "initialCharge.amount", "amount: at least 100")
        kind = initial.get("transactionType")
        _require(kind in ("DIRECT_CAPTURE", "RESERVE_CAPTURE"), "initialCharge.transactionType", "transactionType")
        pricing = agreement.body["pricing"]
        charge = Charge(charge_id, msn, agreement.id, int(amount), str(pricing["currency"]),
                        str(initial.get("description") or "")[:45], self.today(), 0, "INITIAL", str(kind),
                        str(initial.get("externalId") or ""))
        charge.history.append(_history("CREATE", charge.amount, self.clock.now()))
        self.charges[(msn, charge_id)] = charge
        return charge_id

    def _confirmation_url(self, agreement: Agreement) -> str:
        return f"{self.base_url}/confirm/{agreement.id}"

    def _agreement_json(self, agreement: Agreement) -> dict[str, Any]:
        body = agreement.body
        interval = body.get("interval") or {}
        return {
            "id": agreement.id, "uuid": agreement.uuid, "status": agreement.status,
            "created": _stamp(agreement.created), "start": _stamp(agreement.start), "stop": _stamp(agreement.stop),
            "pricing": {"type": "LEGACY", **body["pricing"]},
            "interval": {"unit": interval.get("unit"), "count": interval.get("count"),
                         "text": f"every {interval.get('count')} {str(interval.get('unit')).lower()}"},
            "productName": body.get("productName"), "productDescription": body.get("productDescription"),
            "merchantAgreementUrl": body.get("merchantAgreementUrl"),
            "merchantRedirectUrl": body.get("merchantRedirectUrl"), "externalId": agreement.external_id or None,
            "countryCode": "NO", "campaign": None, "sub": None, "userinfoUrl": None,
            "vippsConfirmationUrl": self._confirmation_url(agreement) if agreement.status == "PENDING" else None,
        }

    def _patch(self, agreement: Agreement, body: Any) -> Answer:
        body = _object(body)
        if "status" in body:
            _require(body == {"status": "STOPPED"}, "status", "status STOPPED must be sent alone")
            if agreement.status == "ACTIVE" or agreement.status == "PENDING":
                self._stop(agreement, "MERCHANT")
            elif agreement.status != "STOPPED":
                raise Problem(400, "illegal-agreement-update", f"agreement {agreement.id} is {agreement.status}")
            return 204, None, {}
        if agreement.status != "ACTIVE":
            raise Problem(400, "illegal-agreement-update", f"agreement {agreement.id} is {agreement.status}")
        pricing = body.get("pricing")
        if pricing is not None:
            amount = _object(pricing).get("amount")
            _require(isinstance(amount, int) and amount >= 100, "pricing.amount", "amount: at least 100")
            agreement.body = {**agreement.body, "pricing": {**agreement.body["pricing"], "amount": amount}}
        for name in ("productName", "productDescription", "merchantAgreementUrl"):
            if name in body:
                agreement.body = {**agreement.body, name: body[name]}
        return 204, None, {}

    # ---- charges ------------------------------------------------------------------------------

    def _charge(self, msn: str, agreement_id: str, charge_id: str) -> Charge:
        charge = self.charges.get((msn, charge_id))
        if charge is None or charge.agreement_id != agreement_id:
            raise Problem(404, "resource-not-found", f"charge {charge_id} not found on {agreement_id}")
        return charge

    def _create_charge(self, msn: str, body: Mapping[str, Any]) -> Charge:
        agreement = self._agreement(msn, str(body.get("agreementId") or ""))
        amount, due_text, retry = body.get("amount"), body.get("due"), body.get("retryDays")
        _require(isinstance(amount, int) and amount >= 100, "amount", "amount: an integer of at least 100")
        _require(isinstance(retry, int) and 0 <= retry <= 14, "retryDays", "retryDays: 0-14")
        _require(body.get("transactionType") in ("DIRECT_CAPTURE", "RESERVE_CAPTURE"), "transactionType",
                 "transactionType: DIRECT_CAPTURE or RESERVE_CAPTURE")
        description = body.get("description")
        _require(isinstance(description, str) and 1 <= len(description) <= 45, "description", "description: 1-45")
        try:
            due = date.fromisoformat(str(due_text))
        except ValueError:
            raise Problem(400, "validation-error", "due: YYYY-MM-DD", "due") from None
        if agreement.status != "ACTIVE":
            raise Problem(400, "charge-creation-failed", f"agreement {agreement.id} is {agreement.status}")
        if due < self.today() + timedelta(days=self.lead_days):
            raise Problem(400, "charge-due-too-soon", f"due must be at least {self.lead_days} day(s) ahead", "due")
        price = int(agreement.body["pricing"]["amount"])
        if amount > 5 * price:  # LEGACY pricing: at most 5 times the agreement's price
            raise Problem(400, "charge-amount-too-high", f"amount above 5 times the price {price}", "amount")
        if due > self.today() + timedelta(days=730):
            raise Problem(400, "charge-due-in-too-long", "due must be at most 2 years ahead", "due")
        charge_id = str(body.get("orderId") or self._new_id("chr"))
        _require(ORDER_ID.fullmatch(charge_id) is not None, "orderId", "orderId: 1-50 of A-Z a-z 0-9 -")
        if (msn, charge_id) in self.charges:
            raise Problem(409, "conflict", f"orderId {charge_id} is used", "orderId")
        charge = Charge(charge_id, msn, agreement.id, amount, str(agreement.body["pricing"]["currency"]),
                        description, due, retry, "RECURRING", str(body["transactionType"]),
                        str(body.get("externalId") or ""))
        charge.history.append(_history("CREATE", amount, self.clock.now()))
        if (due - self.today()).days <= 30:
            charge.status = "DUE"
        self.charges[(msn, charge_id)] = charge
        if self._outcome_of(agreement)[0] == "creation_fail":
            self._fail(charge, self.clock.now(), "non_technical_error", "recurring.charge-creation-failed.v1")
        return charge

    def _bulk(self, msn: str, body: Any) -> Answer:
        _require(isinstance(body, list) and 1 <= len(body) <= 2000, "charges", "1-2000 charges a call")
        successes, failures = [], []
        for item in body:
            item = _object(item)
            try:
                charge = self._create_charge(msn, item)
                successes.append({"agreementId": charge.agreement_id, "chargeId": charge.id})
            except Problem as problem:
                failures.append({"agreementId": item.get("agreementId"), "chargeId": item.get("orderId"),
                                 "error": problem.body("/recurring/v3/agreements/charges")})
        return 200, {"chargeSuccesses": successes, "chargeFailures": failures}, {}

    def _list_charges(self, agreement: Agreement, continuation: str) -> Answer:
        """A page of ``page_size`` charges; ``Continuation-Token`` names the next page, if any."""
        mine = [c for c in self.charges.values() if c.msn == agreement.msn and c.agreement_id == agreement.id]
        start = int(continuation[1:]) if re.fullmatch(r"p\d+", continuation) else 0
        page = mine[start:start + self.page_size]
        more = {"Continuation-Token": f"p{start + self.page_size}"} if start + self.page_size < len(mine) else {}
        return 200, [_charge_json(c) for c in page], more

    def _cancel_charge(self, charge: Charge) -> Answer:
        if charge.status in ("PENDING", "DUE", "RESERVED"):
            self._cancel(charge, self.clock.now())
        elif charge.status != "CANCELLED":
            raise Problem(400, "cancel-charge-failed", f"charge {charge.id} is {charge.status}")
        return 204, None, {}

    def _refund(self, charge: Charge, body: Any) -> Answer:
        body = _object(body)
        amount = body.get("amount")
        _require(isinstance(amount, int) and amount > 0, "amount", "amount: a positive integer")
        _require(bool(body.get("description")), "description", "description is required")
        if charge.captured_at is None or amount > charge.captured - charge.refunded:
            raise Problem(400, "operation-failed", "refund above the captured amount")
        if self.clock.now() - charge.captured_at > timedelta(days=365):
            raise Problem(400, "operation-failed", "refunds are allowed up to 365 days after the capture")
        charge.refunded += amount
        charge.status = "REFUNDED" if charge.refunded == charge.captured else "PARTIALLY_REFUNDED"
        charge.history.append(_history("REFUND", amount, self.clock.now()))
        return 204, None, {}

    # ---- control and the payer's page ---------------------------------------------------------

    def _control(self, method: str, path: str, query: Mapping[str, list[str]], raw: bytes) -> Answer:
        parts = path.strip("/").split("/")
        body = _object(_parse(raw)) if raw.strip() else {}
        try:
            return self._control_route(method, parts, query, body)
        except (KeyError, ValueError) as exc:
            raise Problem(400 if isinstance(exc, ValueError) else 404, "validation-error", str(exc)) from None

    def _control_route(self, method: str, parts: list[str], query: Mapping[str, list[str]],
                       body: Mapping[str, Any]) -> Answer:
        match (method, parts):
            case ("GET", ["confirm", agreement_id]):
                return 200, self._page(self.agreements[agreement_id]), {}
            case ("POST", ["_sim", "agreements", agreement_id, action]):
                return self._payer_acts(agreement_id, action, "redirect" in query)
            case ("POST", ["_sim", "payers"]):
                self.payer(str(body["who"]), str(body["behaviour"]))
                return 200, {"ok": True}, {}
            case ("POST", ["_sim", "outcomes"]):
                self.charge_outcome(str(body["who"]), str(body["outcome"]), int(body.get("days", 0)))
                return 200, {"ok": True}, {}
            case ("POST", ["_sim", "faults"]):
                self.fail_next(int(body.get("times", 1)), int(body.get("status", 503)), str(body.get("path", "")),
                               float(body.get("retryAfter", 0)))
                return 200, {"ok": True}, {}
            case ("POST", ["_sim", "webhooks"]):
                return self._configure_webhooks(body)
            case ("POST", ["_sim", "process"]):
                day = date.fromisoformat(str(body["day"])) if body.get("day") else None
                return 200, self.process(day), {}
            case ("POST", ["_sim", "clock"]) if isinstance(self.clock, SettableClock):
                self.clock.set(datetime.fromisoformat(str(body["now"])))
                return 200, {"now": self.clock.now().isoformat()}, {}
            case ("POST", ["_sim", "flush"]):
                return 200, {"flushed": self.flush(float(body.get("timeout", 10)))}, {}
            case ("GET", ["_sim", report]) if report in ("state", "events"):
                with self._lock:
                    return 200, self.state() if report == "state" else list(self.events), {}
        raise Problem(404, "resource-not-found", "no such simulator control")

    def _payer_acts(self, agreement_id: str, action: str, redirect: bool) -> Answer:
        acts = {"approve": self.approve, "reject": self.reject, "expire": self.expire, "stop": self.user_stop}
        if action not in acts:
            raise KeyError(action)
        with self._lock:
            acts[action](agreement_id)
            agreement = self.agreements[agreement_id]
        if redirect:
            return 303, None, {"Location": str(agreement.body.get("merchantRedirectUrl"))}
        return 200, {"agreementId": agreement_id, "status": agreement.status}, {}

    def _configure_webhooks(self, body: Mapping[str, Any]) -> Answer:
        with self._lock:
            if "url" in body:
                table = dict(self.webhook_url) if isinstance(self.webhook_url, Mapping) else {}
                if body.get("msn"):
                    table[str(body["msn"])] = str(body["url"])
                    self.webhook_url = table
                else:
                    self.webhook_url = str(body["url"])
            if "secret" in body:
                self.secret = str(body["secret"])
            for name in ("duplicates", "reorder", "max_delay"):
                if name in body:
                    setattr(self, name, float(body[name]))
        return 200, {"ok": True}, {}

    def _page(self, agreement: Agreement) -> str:
        body = agreement.body
        price = body["pricing"]["amount"] / 100
        name = html.escape(str(body.get("productName")))
        action = f"/_sim/agreements/{agreement.id}"
        buttons = ("" if agreement.status != "PENDING" else
                   f'<form method="post" action="{action}/approve?redirect=1"><button>Godta</button></form>'
                   f'<form method="post" action="{action}/reject?redirect=1"><button>Avvis</button></form>')
        return (f"<!doctype html><html lang='nb'><head><meta charset='utf-8'><title>Vipps: {name}</title></head>"
                f"<body><h1>{name}</h1><p>{html.escape(str(body.get('productDescription') or ''))}</p>"
                f"<p>{price:.2f} {html.escape(str(body['pricing']['currency']))}</p>"
                f"<p>Status: {agreement.status}</p>{buttons}</body></html>")


# ---- helpers --------------------------------------------------------------------------------------


def _validate_draft(body: Mapping[str, Any]) -> None:
    pricing = _object(body.get("pricing"))
    _require(pricing.get("type", "LEGACY") == "LEGACY", "pricing.type", "only LEGACY pricing is simulated")
    amount = pricing.get("amount")
    _require(isinstance(amount, int) and amount >= 100, "pricing.amount", "amount: an integer of at least 100")
    _require(pricing.get("currency") in CURRENCIES, "pricing.currency", f"currency: one of {CURRENCIES}")
    interval = _object(body.get("interval"))
    _require(interval.get("unit") in UNITS, "interval.unit", f"unit: one of {UNITS}")
    count = interval.get("count")
    _require(isinstance(count, int) and 1 <= count <= 31, "interval.count", "count: 1-31")
    for name in ("merchantAgreementUrl", "merchantRedirectUrl"):
        value = body.get(name)
        _require(isinstance(value, str) and 0 < len(value) <= 1024, name, f"{name} is required")
    name = body.get("productName")
    _require(isinstance(name, str) and 0 < len(name) <= 45, "productName", "productName: 1-45 characters")
    _require(len(str(body.get("productDescription") or "")) <= 100, "productDescription", "at most 100 characters")
    external = body.get("externalId")
    _require(external is None or (isinstance(external, str) and 0 < len(external) <= 64), "externalId", "1-64")


def _require(ok: bool, field_name: str, detail: str) -> None:
    if not ok:
        raise Problem(400, "validation-error", detail, field_name)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Problem(400, "invalid-json", "a JSON object is required")
    return value


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise Problem(400, "invalid-json", "the body is not JSON") from None


def _target(setting: Any, msn: str) -> str:
    """The merchant's URL or secret: one for all (``{msn}`` in it is the MSN), a mapping by MSN
    (``*`` for the rest) or a function of the MSN."""
    if setting is None or isinstance(setting, str):
        return (setting or "").replace("{msn}", msn)
    if isinstance(setting, Mapping):
        return str(setting.get(msn) or setting.get("*") or "")
    return str(setting(msn) or "")


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _history(event: str, amount: int, at: datetime, success: bool = True) -> dict[str, Any]:
    return {"occurred": _stamp(at), "event": event, "amount": amount, "idempotencyKey": str(uuid.uuid4()),
            "success": success}


def _charge_json(charge: Charge) -> dict[str, Any]:
    return {"id": charge.id, "agreementId": charge.agreement_id, "amount": charge.amount,
            "currency": charge.currency, "description": charge.description,
            "due": f"{charge.due.isoformat()}T00:00:00Z", "status": charge.status, "type": charge.kind,
            "transactionType": charge.transaction_type, "retryDays": charge.retry_days,
            "externalId": charge.external_id or None, "transactionId": None,
            "failureReason": charge.failure_reason or None,
            "summary": {"captured": charge.captured, "refunded": charge.refunded, "cancelled": charge.cancelled},
            "history": list(charge.history)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--webhook-url", default=None,
                        help="where every merchant's webhooks go ({msn} in it: the merchant's MSN)")
    parser.add_argument("--secret", default="vipps-sim-secret")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--payer", default="ignore", choices=BEHAVIOURS, help="what payers do by default")
    args = parser.parse_args(argv)
    sim = VippsSimulator(SettableClock(running=True), args.secret, args.webhook_url, port=args.port, seed=args.seed,
                         default_payer=args.payer)
    print(f"Vipps simulator on {sim.start()} (controls under /_sim/; Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":
    main()
