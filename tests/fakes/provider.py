"""A payment provider in memory: the shape Vipps MobilePay Recurring and Swedbank Pay
adapters will have (``shared.ports.PaymentProvider``), with their idempotency: a call
repeated with the same key returns what the first made; the same key with other content
is refused, as the providers answer 409."""

from __future__ import annotations

import itertools
import threading
from datetime import date
from typing import Any

from shared.ports import Agreement, Charge, NotFound, Refund

_ids = itertools.count(1)


class IdempotencyKeyReused(ValueError):
    """The same idempotency key with other content."""


class FakePaymentProvider:
    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.agreements: dict[str, Agreement] = {}
        self.charges: dict[str, Charge] = {}
        self.refunds: dict[str, Refund] = {}
        self._keys: dict[str, tuple[tuple[Any, ...], Any]] = {}
        self._lock = threading.Lock()

    def _once(self, key: str, request: tuple[Any, ...]) -> Any:
        if key in self._keys:
            first, result = self._keys[key]
            if first != request:
                raise IdempotencyKeyReused(key)
            return result
        return None

    def create_agreement(self, tenant: str, subscriber_no: int, product: str, amount_minor: int, currency: str,
                         idempotency_key: str) -> Agreement:
        request = ("agreement", tenant, subscriber_no, product, amount_minor, currency)
        with self._lock:
            if (done := self._once(idempotency_key, request)) is not None:
                return done  # type: ignore[no-any-return]
            agreement = Agreement(self.name, f"agr-{next(_ids)}", subscriber_no, "pending",
                                  f"https://provider.example/approve/{idempotency_key}")
            self.agreements[agreement.id] = agreement
            self._keys[idempotency_key] = (request, agreement)
            return agreement

    def approve(self, agreement_id: str) -> Agreement:
        """The payer approves the agreement in the provider's app (a test's move)."""
        agreement = self.agreements[agreement_id]
        self.agreements[agreement_id] = approved = Agreement(agreement.provider, agreement.id,
                                                             agreement.subscriber_no, "active")
        return approved

    def create_charge(self, tenant: str, agreement_id: str, amount_minor: int, currency: str, due: date,
                      description: str, idempotency_key: str) -> Charge:
        request = ("charge", tenant, agreement_id, amount_minor, currency, due, description)
        with self._lock:
            if (done := self._once(idempotency_key, request)) is not None:
                return done  # type: ignore[no-any-return]
            agreement = self.agreements.get(agreement_id)
            if agreement is None:
                raise NotFound(f"no agreement {agreement_id}")
            if agreement.status != "active" or amount_minor <= 0:
                raise ValueError(f"agreement {agreement_id} is {agreement.status}; amount {amount_minor}")
            charge = Charge(self.name, f"chg-{next(_ids)}", agreement_id, amount_minor, currency, due, "charged")
            self.charges[charge.id] = charge
            self._keys[idempotency_key] = (request, charge)
            return charge

    def refund(self, tenant: str, charge_id: str, amount_minor: int, currency: str,
               idempotency_key: str) -> Refund:
        request = ("refund", tenant, charge_id, amount_minor, currency)
        with self._lock:
            if (done := self._once(idempotency_key, request)) is not None:
                return done  # type: ignore[no-any-return]
            charge = self.charges.get(charge_id)
            if charge is None:
                raise NotFound(f"no charge {charge_id}")
            refunded = sum(r.amount_minor for r in self.refunds.values() if r.charge_id == charge_id)
            if currency != charge.currency or not 0 < amount_minor <= charge.amount_minor - refunded:
                raise ValueError(f"cannot refund {amount_minor} {currency} of charge {charge_id}")
            refund = Refund(self.name, f"ref-{next(_ids)}", charge_id, amount_minor, currency)
            self.refunds[refund.id] = refund
            self._keys[idempotency_key] = (request, refund)
            return refund
