"""Vipps MobilePay Recurring v3 over HTTP (``ports.VippsRecurring``), and the webhook signature.

References: ``shared/references/vipps/`` (recurring-api-guide.md, recurring-api-openapi.yaml,
access-token/, webhooks/request-authentication.md, agent-toolkit/recurring-charges.md).

- Access token: ``POST /accesstoken/get`` with ``client_id``, ``client_secret``,
  ``Ocp-Apim-Subscription-Key`` and ``Merchant-Serial-Number`` (no body); cached per tenant
  until shortly before ``expires_in`` runs out; a 401 on a call drops it and fetches a new one once.
- Every call sends ``Authorization: Bearer``, ``Ocp-Apim-Subscription-Key``,
  ``Merchant-Serial-Number``, the ``Vipps-System-*`` headers and a correlation id
  (``X-Request-Id``, the same for the retries of one call); ``POST``/``PATCH``/``DELETE`` send
  ``Idempotency-Key`` (ours: the charge id, the agreement key, the refund id), the same on
  every retry, so a retried call never makes anything twice.
- Retries with exponential back-off and jitter on connection errors, timeouts, 429 (its
  ``Retry-After`` honoured, bounded) and 5xx; after the last one ``ProviderUnavailable``
  (the bus tries again later). A 4xx answer (RFC 7807 problem) is ``ProviderRefused`` with
  its status and detail: Vipps caches a 4xx against the key, so it is never retried.
- Charges are created in bulk (``POST /recurring/v3/agreements/charges``, at most 2000 a
  call); the answer lists ``chargeSuccesses`` and ``chargeFailures`` item by item.
- ``GET`` of an agreement does not say who stopped it (only the webhook's ``actor`` does), so
  ``VippsAgreement.stopped_by`` is "" here: a STOPPED agreement we did not stop was stopped by
  the payer or by Vipps.
- Secrets (client secret, subscription key, token, webhook secret) are never logged.

``sign_webhook`` / ``verify_webhook``: the HMAC-SHA256 scheme of the Webhooks API: the
content hash ``x-ms-content-sha256`` = base64(sha256(raw body)), the string to sign
``POST\\n{path and query}\\n{x-ms-date};{host};{content hash}``, and
``Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=...``.
The secret is used as its UTF-8 bytes (the reference's worked example checks this).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, TypeVar, cast

import requests

from ..ports import (
    AgreementDraft,
    ChargeRequest,
    ProviderRefused,
    ProviderUnavailable,
    VippsAgreement,
    VippsCharge,
    VippsRecurring,
)

log = logging.getLogger("abonno.vipps")
T = TypeVar("T")

API = "/recurring/v3"
BULK_LIMIT = 2000  # charges per bulk call (agent-toolkit/recurring-charges.md)
SYSTEM_HEADERS = {"Vipps-System-Name": "abonno", "Vipps-System-Version": "1.0",
                  "Vipps-System-Plugin-Name": "abonno-recurring", "Vipps-System-Plugin-Version": "1.0"}
TOKEN_MARGIN = 60.0  # seconds: a token is renewed this long before it expires
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
# A request path of ours: segments of id characters, never "." or ".." (requests resolves those:
# ``agreements/..`` would be another resource) nor ``? # % /`` inside an id (an agreementId or
# chargeId from a webhook body is only as good as its signer).
SAFE_PATH = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._:-]{1,100})+")
SEGMENT = re.compile(r"(?!\.\.?$)[A-Za-z0-9._:-]{1,100}")


def _seg(value: str) -> str:
    """An agreement or charge id as one path segment; anything else is no resource of Vipps'
    (404, nothing sent)."""
    if not SEGMENT.fullmatch(value):
        raise ProviderRefused(404, "not a Vipps id")
    return value


@dataclass(frozen=True)
class VippsCredentials:
    client_id: str
    client_secret: str
    subscription_key: str  # Ocp-Apim-Subscription-Key
    msn: str  # Merchant-Serial-Number
    webhook_secret: str  # the secret of the tenant's webhook registration

    def __repr__(self) -> str:  # never the secrets, in a log line or a traceback
        return f"VippsCredentials(client_id={self.client_id!r}, msn={self.msn!r})"


class WebhookRejected(Exception):
    """A webhook request that is not Vipps' (bad signature, body hash or date): answer 401."""


@dataclass
class _Token:
    value: str
    renew_at: float  # monotonic seconds


class VippsClient:
    """``ports.VippsRecurring`` over ``requests``. ``retries`` is how many times a call is
    repeated after the first try; ``backoff`` the first wait (doubled each time, with jitter);
    ``max_wait`` bounds every wait, also a server's ``Retry-After``."""

    def __init__(self, base_url: str, credentials: Callable[[str], VippsCredentials], session: Any = None,
                 timeout: float = 10.0, *, retries: int = 4, backoff: float = 0.25, max_wait: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
                 seed: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.session: requests.Session = session or requests.Session()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self._monotonic = monotonic
        self._random = random.Random(seed)
        self._tokens: dict[str, _Token] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # ---- the port: agreements ----------------------------------------------------------------

    def create_agreement(self, tenant: str, draft: AgreementDraft, idempotency_key: str) -> VippsAgreement:
        answer = self._call(tenant, "POST", f"{API}/agreements", draft_body(draft), idempotency_key)
        agreement_id = readable(lambda a: str(a["agreementId"]), answer)
        return VippsAgreement(agreement_id, "PENDING", draft.external_id, draft.price_minor,
                              draft.currency, answer.get("vippsConfirmationUrl") or "")

    def agreement(self, tenant: str, agreement_id: str) -> VippsAgreement:
        return readable(agreement_of, self._call(tenant, "GET", f"{API}/agreements/{_seg(agreement_id)}"))

    def update_price(self, tenant: str, agreement_id: str, price_minor: int, idempotency_key: str) -> None:
        self._call(tenant, "PATCH", f"{API}/agreements/{_seg(agreement_id)}", {"pricing": {"amount": price_minor}},
                   idempotency_key)

    def stop_agreement(self, tenant: str, agreement_id: str, idempotency_key: str) -> None:
        self._call(tenant, "PATCH", f"{API}/agreements/{_seg(agreement_id)}", {"status": "STOPPED"}, idempotency_key)

    # ---- the port: charges -------------------------------------------------------------------

    def create_charges(self, tenant: str, charges: Sequence[ChargeRequest]) -> dict[str, str]:
        outcome: dict[str, str] = {}
        for batch in batches(charges, BULK_LIMIT):
            outcome.update(self._create_batch(tenant, batch))
        return outcome

    def _create_batch(self, tenant: str, batch: Sequence[ChargeRequest]) -> dict[str, str]:
        body = [charge_body(c) for c in batch]
        answer = self._call(tenant, "POST", f"{API}/agreements/charges", body, bulk_key(body))
        created, refused = readable(bulk_answer, answer)
        wanted = {c.charge_id: c for c in batch}
        outcome = {charge_id: "" for charge_id in created if charge_id in wanted}
        for charge_id, problem in refused:
            if charge_id in wanted:
                outcome[charge_id] = self._failure(tenant, wanted[charge_id], problem)
        for request in batch:  # not named in the answer: what Vipps has is the answer
            if request.charge_id not in outcome:
                outcome[request.charge_id] = self._failure(tenant, request, {"status": 409, "detail":
                                                                             "not named in Vipps' answer"})
        return outcome

    def _failure(self, tenant: str, request: ChargeRequest, problem: Mapping[str, Any]) -> str:
        """Why one charge of a bulk call was refused; "" if it is refused because it exists
        already as we asked for it (a repeated run): the same charge id is the same charge.
        (A charge the answer does not name at all is looked up the same way.)"""
        detail = problem_text(problem)
        if "conflict" in str(problem.get("type", "")) or problem.get("status") == 409:
            try:
                existing = self.charge(tenant, request.agreement_id, request.charge_id)
            except ProviderRefused:
                return detail
            if (existing.amount_minor, existing.due) == (request.amount_minor, request.due):
                return ""
        return detail

    def charge(self, tenant: str, agreement_id: str, charge_id: str) -> VippsCharge:
        path = f"{API}/agreements/{_seg(agreement_id)}/charges/{_seg(charge_id)}"
        return readable(charge_of, self._call(tenant, "GET", path))

    def charges(self, tenant: str, agreement_id: str) -> list[VippsCharge]:
        """Every charge of the agreement, the initial one too, page by page (``Continuation-Token``)."""
        found: list[VippsCharge] = []
        token = ""
        for _page in range(10_000):
            response = self._send(tenant, "GET", f"{API}/agreements/{_seg(agreement_id)}/charges", None, None,
                                  {"Continuation-Token": token} if token else {})
            found.extend(readable(lambda a: [charge_of(c) for c in a], _body(response)))
            token = response.headers.get("Continuation-Token") or ""
            if not token:
                break
        return found

    def cancel_charge(self, tenant: str, agreement_id: str, charge_id: str, idempotency_key: str) -> None:
        path = f"{API}/agreements/{_seg(agreement_id)}/charges/{_seg(charge_id)}"
        self._call(tenant, "DELETE", path, None, idempotency_key)

    def refund(self, tenant: str, agreement_id: str, charge_id: str, amount_minor: int, description: str,
               idempotency_key: str) -> None:
        self._call(tenant, "POST", f"{API}/agreements/{_seg(agreement_id)}/charges/{_seg(charge_id)}/refund",
                   {"amount": amount_minor, "description": description[:100] or "Refund"}, idempotency_key)

    def webhook_secret(self, tenant: str) -> str:
        return self.credentials(tenant).webhook_secret

    # ---- HTTP: token, headers, retries -------------------------------------------------------

    def _call(self, tenant: str, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        return _body(self._send(tenant, method, path, body, key))

    def _send(self, tenant: str, method: str, path: str, body: Any, key: str | None,
              extra: Mapping[str, str] | None = None) -> requests.Response:
        if not SAFE_PATH.fullmatch(path):  # an id that is no single path segment: no such resource, nothing sent
            raise ProviderRefused(404, "not a Vipps id")
        creds = self.credentials(tenant)
        headers = {"Ocp-Apim-Subscription-Key": creds.subscription_key, "Merchant-Serial-Number": creds.msn,
                   "X-Request-Id": str(uuid.uuid4()), "Content-Type": "application/json", **SYSTEM_HEADERS,
                   **(extra or {})}
        if key is not None:
            headers["Idempotency-Key"] = key

        def once() -> requests.Response | None:
            response = self._try(method, path, headers | {"Authorization": f"Bearer {self._token(tenant, creds)}"},
                                 body)
            if response is not None and response.status_code == 401:  # expired early or revoked: once more
                self._drop_token(tenant)
                response = self._try(method, path,
                                     headers | {"Authorization": f"Bearer {self._token(tenant, creds)}"}, body)
            return response

        return self._with_retries(once, method, path, headers["X-Request-Id"])

    def _with_retries(self, once: Callable[[], requests.Response | None], method: str, path: str,
                      request_id: str) -> requests.Response:
        """``once`` until it answers 2xx (returned) or 4xx (``ProviderRefused``); a lost
        connection, 429 or 5xx is tried again after a back-off, ``retries`` times at most."""
        for attempt in range(self.retries + 1):
            response = once()
            wait = None if response is None else self._verdict(response)
            if wait is None and response is not None:
                return response
            if attempt < self.retries:
                pause = wait or min(self.max_wait, self.backoff * 2 ** attempt * (0.5 + self._random.random()))
                log.info("vipps %s %s: retry %d in %.2fs (request %s)", method, path, attempt + 1, pause,
                         request_id)
                self._sleep(pause)
        raise ProviderUnavailable(f"Vipps {method} {path}: no answer after {self.retries + 1} tries "
                                  f"(request {request_id})")

    def _try(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> requests.Response | None:
        try:
            response = self.session.request(method, self.base_url + path, headers=dict(headers),
                                            data=None if body is None else json.dumps(body), timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            log.warning("vipps %s %s: %s (request %s)", method, path, type(exc).__name__, headers["X-Request-Id"])
            return None
        log.info("vipps %s %s -> %d (request %s)", method, path, response.status_code, headers["X-Request-Id"])
        return response

    def _verdict(self, response: requests.Response) -> float | None:
        """None if the answer is final (2xx); a 4xx raises ``ProviderRefused``; for 429 and 5xx
        the wait the server asks for (``Retry-After``, bounded), 0.0 for our own back-off."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        if status == 429 or status >= 500:
            return retry_after(response.headers.get("Retry-After"), self.max_wait)
        raise ProviderRefused(status, problem_text(_json(response)))

    def _token(self, tenant: str, creds: VippsCredentials) -> str:
        """The tenant's cached token, or a new one: one fetch at a time per tenant, so calls
        made together while there is none wait for the one fetch instead of each fetching."""
        with self._lock:
            fetching = self._fetching.setdefault(tenant, threading.Lock())
        with fetching:
            with self._lock:
                token = self._tokens.get(tenant)
                if token is not None and self._monotonic() < token.renew_at:
                    return token.value
            value, lifetime = self._fetch_token(creds)
            with self._lock:
                self._tokens[tenant] = _Token(value, self._monotonic() + max(0.0, lifetime - TOKEN_MARGIN))
            return value

    def _drop_token(self, tenant: str) -> None:
        with self._lock:
            self._tokens.pop(tenant, None)

    def _fetch_token(self, creds: VippsCredentials) -> tuple[str, float]:
        headers = {"client_id": creds.client_id, "client_secret": creds.client_secret,
                   "Ocp-Apim-Subscription-Key": creds.subscription_key, "Merchant-Serial-Number": creds.msn,
                   "X-Request-Id": str(uuid.uuid4()), **SYSTEM_HEADERS}
        response = self._with_retries(lambda: self._try("POST", "/accesstoken/get", headers, None), "POST",
                                      "/accesstoken/get", headers["X-Request-Id"])
        return readable(lambda a: (str(a["access_token"]), float(a.get("expires_in") or 0)), _body(response))


# ---- the bodies and answers of the v3 API ---------------------------------------------------------


def draft_body(draft: AgreementDraft) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pricing": {"type": "LEGACY", "amount": draft.price_minor, "currency": draft.currency},
        "interval": {"unit": draft.interval_unit, "count": draft.interval_count},
        "merchantAgreementUrl": draft.merchant_agreement_url,
        "merchantRedirectUrl": draft.merchant_redirect_url,
        "productName": draft.product_name[:45],
        "externalId": draft.external_id,
    }
    if draft.product_description:
        body["productDescription"] = draft.product_description[:100]
    if draft.phone:
        body["phoneNumber"] = draft.phone
    if draft.initial_charge_minor is not None:
        body["initialCharge"] = {"amount": draft.initial_charge_minor,
                                 "description": (draft.initial_charge_description or draft.product_name)[:45],
                                 "transactionType": "DIRECT_CAPTURE", "orderId": draft.initial_charge_id}
    return body


def charge_body(charge: ChargeRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"agreementId": charge.agreement_id, "amount": charge.amount_minor,
                            "transactionType": "DIRECT_CAPTURE", "description": charge.description[:45],
                            "due": charge.due.isoformat(), "retryDays": charge.retry_days,
                            "orderId": charge.charge_id, "type": "RECURRING"}
    if charge.external_id:
        body["externalId"] = charge.external_id
    return body


def bulk_key(body: Sequence[Mapping[str, Any]]) -> str:
    """The Idempotency-Key of one bulk call: the same charges make the same key (40 hex digits)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:40]


def batches(items: Sequence[ChargeRequest], size: int) -> Iterator[Sequence[ChargeRequest]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def bulk_answer(answer: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, Mapping[str, Any]]]]:
    """The charge ids a bulk call created, and those it refused with their problem."""
    created = [str(s["chargeId"]) for s in answer.get("chargeSuccesses") or []]
    refused = [(str(f.get("chargeId") or f.get("orderId")), f.get("error") or {})
               for f in answer.get("chargeFailures") or []]
    return created, refused


AGREEMENT_STATUSES = ("PENDING", "ACTIVE", "STOPPED", "EXPIRED")
CHARGE_STATUSES = ("PENDING", "DUE", "PROCESSING", "UNKNOWN", "RESERVED", "CHARGED", "PARTIALLY_CAPTURED", "FAILED",
                   "REFUNDED", "PARTIALLY_REFUNDED", "CANCELLED")


def agreement_of(answer: Mapping[str, Any]) -> VippsAgreement:
    pricing = answer["pricing"]
    return VippsAgreement(_text(answer, "id"), _one_of(answer, "status", AGREEMENT_STATUSES),
                          str(answer.get("externalId") or ""), _minor(pricing["amount"]),
                          str(pricing.get("currency") or ""), str(answer.get("vippsConfirmationUrl") or ""))


def charge_of(answer: Mapping[str, Any]) -> VippsCharge:
    summary = answer.get("summary") or {}
    return VippsCharge(_text(answer, "id"), _text(answer, "agreementId"),
                       _one_of(answer, "status", CHARGE_STATUSES), _minor(answer.get("amount")),
                       str(answer.get("currency") or ""), day_of(answer.get("due")),
                       captured_minor=_minor(summary.get("captured")),
                       refunded_minor=_minor(summary.get("refunded")),
                       cancelled_minor=_minor(summary.get("cancelled")),
                       failure_reason=str(answer.get("failureReason") or ""),
                       external_id=str(answer.get("externalId") or ""))


def _text(answer: Mapping[str, Any], name: str) -> str:
    value = answer[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is not a text")
    return value


def _one_of(answer: Mapping[str, Any], name: str, allowed: Sequence[str]) -> str:
    value = _text(answer, name)
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of Vipps' values")
    return value


def _minor(value: Any) -> int:
    """An amount in minor units: an integer (never a float), 0 where absent."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("an amount is not a whole number of minor units")
    return value


def day_of(value: Any) -> date:
    """``due`` as v3 answers it (``2019-06-01T00:00:00Z``) or as a plain date."""
    text = str(value or "")[:10]
    return date.fromisoformat(text) if text else date.min


def problem_text(problem: Mapping[str, Any]) -> str:
    """An RFC 7807 problem in one line: its detail (or title) and the fields it names."""
    if not isinstance(problem, Mapping):
        return str(problem)[:300]
    text = str(problem.get("detail") or problem.get("title") or problem.get("type") or "refused")
    extra = problem.get("extraDetails") or []
    fields = [f"{e.get('field')}: {e.get('text')}" for e in extra if isinstance(e, Mapping)]
    return "; ".join([text, *fields])[:500]


def retry_after(value: str | None, bound: float) -> float:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), within ``[0, bound]``; 0 if absent."""
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, IndexError):
            return 0.0
    return max(0.0, min(bound, seconds)) or 0.001


def _body(response: requests.Response) -> Any:
    """A 2xx answer's JSON ({} for none); an answer that is not JSON is Vipps failing, for now."""
    if response.status_code in (202, 204) or not response.content:
        return {}
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"Vipps answered {response.status_code} with a body that is not JSON") from exc


def readable(read: Callable[[Any], T], answer: Any) -> T:
    """``read(answer)``; an answer without the fields the API promises is Vipps failing, for now."""
    try:
        return read(answer)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderUnavailable(f"Vipps answered without what the API promises ({type(exc).__name__})") from exc


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"detail": response.text[:300] or response.reason}


# ---- webhooks -------------------------------------------------------------------------------------


def content_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def _signature(secret: str, path_and_query: str, date_text: str, host: str, hashed: str) -> str:
    to_sign = f"POST\n{path_and_query}\n{date_text};{host};{hashed}"
    digest = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).digest()
    return f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={base64.b64encode(digest).decode()}"


def sign_webhook(secret: str, path_and_query: str, host: str, date: datetime | str, body: bytes) -> dict[str, str]:
    """The headers Vipps sends with a webhook ``body`` to ``host`` + ``path_and_query``."""
    date_text = date if isinstance(date, str) else format_datetime(date.astimezone(UTC), usegmt=True)
    hashed = content_hash(body)
    return {"x-ms-date": date_text, "x-ms-content-sha256": hashed, "host": host,
            "Authorization": _signature(secret, path_and_query, date_text, host, hashed)}


def verify_webhook(secret: str, path_and_query: str, headers: Mapping[str, str], body: bytes, now: datetime,
                   tolerance: timedelta = timedelta(minutes=5)) -> None:
    """Raise ``WebhookRejected`` unless ``body`` came signed with ``secret`` for this path, with
    its own content hash, and dated within ``tolerance`` of ``now`` (either way). Header names
    are case-insensitive; the signature is compared in constant time."""
    lower = {k.lower(): v for k, v in headers.items()}
    date_text, hashed = lower.get("x-ms-date", ""), lower.get("x-ms-content-sha256", "")
    host, authorization = lower.get("host", ""), lower.get("authorization", "")
    if not (date_text and hashed and host and authorization and secret):
        raise WebhookRejected("missing signature headers")
    if not hmac.compare_digest(hashed.encode(), content_hash(body).encode()):
        raise WebhookRejected("the body does not match its content hash")
    expected = _signature(secret, path_and_query, date_text, host, hashed)
    if not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise WebhookRejected("bad signature")
    try:
        sent = parsedate_to_datetime(date_text)
    except (TypeError, ValueError, IndexError) as exc:
        raise WebhookRejected("x-ms-date is not an HTTP date") from exc
    if sent.tzinfo is None or abs(sent - now) > tolerance:
        raise WebhookRejected("x-ms-date is outside the tolerance")


def vipps_from_settings() -> VippsRecurring:
    """``ABONNO_VIPPS_URL`` (default Vipps' test environment) and ``ABONNO_VIPPS_CREDENTIALS``:
    JSON ``{tenant: {client_id, client_secret, subscription_key, msn, webhook_secret}}`` (a Key
    Vault reference in Azure)."""
    import os

    table = json.loads(os.environ.get("ABONNO_VIPPS_CREDENTIALS") or "{}")

    def credentials(tenant: str) -> VippsCredentials:
        if tenant not in table:
            raise ProviderRefused(403, f"no Vipps credentials for tenant {tenant}")
        return VippsCredentials(**table[tenant])

    base = os.environ.get("ABONNO_VIPPS_URL") or "https://apitest.vipps.no"
    return cast(VippsRecurring, VippsClient(base, credentials))
