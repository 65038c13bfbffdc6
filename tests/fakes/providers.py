"""Vipps Recurring and Swedbank Pay in memory, for service tests (``ports.VippsRecurring``,
``ports.SwedbankPay``). They keep the providers' rules that the service depends on:
idempotency keys (the same key returns what the first call made; other content is refused
as 409), charges only on an ACTIVE agreement, a STOPPED agreement never active again,
refunds never above what was captured. A test moves them as the payer or the bank would
(``approve``, ``reject``, ``user_stop``, ``settle``, ``complete``, ``decline``). The
contract tests hold them to the same assertions as the HTTP adapters against the
simulators in ``devhost/``.
"""

from __future__ import annotations

import calendar
import itertools
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from shared.ports import (
    AgreementDraft,
    CardPaymentOrder,
    CardPurchase,
    ChargeRequest,
    NotFound,
    ProviderRefused,
    VippsAgreement,
    VippsCharge,
)

from .faults import Faults

_ids = itertools.count(1)


class _Keys:
    """Idempotency keys: the first call's answer, and the request it answered."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[Any, Any]] = {}

    def once(self, key: str, request: Any, make: Any) -> Any:
        if key in self.seen:
            first, answer = self.seen[key]
            if first != request:
                raise ProviderRefused(409, f"Idempotency-Key {key} was used for another request")
            if isinstance(answer, ProviderRefused):  # Vipps keeps a 4xx against its key, too
                raise answer
            return answer
        try:
            answer = make()
        except ProviderRefused as refused:
            self.seen[key] = (request, refused)
            raise
        self.seen[key] = (request, answer)
        return answer


class FakeVipps(Faults):
    def __init__(self, secret: str = "fake-webhook-secret") -> None:
        super().__init__()
        self.secret = secret
        self.agreements: dict[str, VippsAgreement] = {}
        self.drafts: dict[str, AgreementDraft] = {}
        self.charges_by_id: dict[str, VippsCharge] = {}
        self.refunds: list[tuple[str, int]] = []
        self.calls: list[str] = []
        self._keys = _Keys()
        self._lock = threading.RLock()

    # ---- the port ----------------------------------------------------------------------------

    def create_agreement(self, tenant: str, draft: AgreementDraft, idempotency_key: str) -> VippsAgreement:
        self.fault("create_agreement")
        with self._lock:
            self.calls.append("create_agreement")
            return self._keys.once(f"{tenant}:{idempotency_key}", draft, lambda: self._draft(draft))

    def _draft(self, draft: AgreementDraft) -> VippsAgreement:
        agreement_id = f"agr_{next(_ids)}"
        agreement = VippsAgreement(agreement_id, "PENDING", draft.external_id, draft.price_minor, draft.currency,
                                   f"https://fake.vipps/confirm/{agreement_id}")
        self.agreements[agreement_id] = agreement
        self.drafts[agreement_id] = draft
        if draft.initial_charge_minor is not None:
            self.charges_by_id[draft.initial_charge_id] = VippsCharge(
                draft.initial_charge_id, agreement_id, "PENDING", draft.initial_charge_minor, draft.currency,
                date.min)
        return agreement

    def agreement(self, tenant: str, agreement_id: str) -> VippsAgreement:
        self.fault("agreement")
        with self._lock:
            if agreement_id not in self.agreements:
                raise ProviderRefused(404, f"no agreement {agreement_id}")
            return self.agreements[agreement_id]

    def update_price(self, tenant: str, agreement_id: str, price_minor: int, idempotency_key: str) -> None:
        self.fault("update_price")
        with self._lock:
            def make() -> None:
                agreement = self.agreement(tenant, agreement_id)
                if agreement.status != "ACTIVE":
                    raise ProviderRefused(400, f"agreement {agreement_id} is {agreement.status}")
                self.agreements[agreement_id] = replace(agreement, price_minor=price_minor)

            self._keys.once(f"{tenant}:{idempotency_key}", ("price", agreement_id, price_minor), make)

    def stop_agreement(self, tenant: str, agreement_id: str, idempotency_key: str) -> None:
        self.fault("stop_agreement")
        with self._lock:
            def make() -> None:
                if self.agreement(tenant, agreement_id).status == "EXPIRED":
                    raise ProviderRefused(400, f"agreement {agreement_id} is EXPIRED")
                self._stop(agreement_id, "MERCHANT")

            self._keys.once(f"{tenant}:{idempotency_key}", ("stop", agreement_id), make)

    def create_charges(self, tenant: str, charges: Sequence[ChargeRequest]) -> dict[str, str]:
        self.fault("create_charges")
        with self._lock:
            self.calls.append(f"create_charges:{len(charges)}")
            return {c.charge_id: self._create(tenant, c) for c in charges}

    def _create(self, tenant: str, request: ChargeRequest) -> str:
        agreement = self.agreements.get(request.agreement_id)
        if agreement is None or agreement.status != "ACTIVE":
            return f"agreement {request.agreement_id} is not active"
        if not 0 <= request.retry_days <= 14:
            return "retryDays must be 0-14"
        if request.amount_minor > 5 * agreement.price_minor:  # LEGACY pricing: at most 5 times the price
            return f"amount above 5 times the agreement's price {agreement.price_minor}"
        try:
            self._keys.once(f"{tenant}:{request.charge_id}", request, lambda: self._new_charge(request))
        except ProviderRefused as exc:
            return exc.detail
        return ""

    def _new_charge(self, request: ChargeRequest) -> VippsCharge:
        charge = VippsCharge(request.charge_id, request.agreement_id, "PENDING", request.amount_minor,
                             request.currency, request.due, external_id=request.external_id)
        self.charges_by_id[request.charge_id] = charge
        return charge

    def charge(self, tenant: str, agreement_id: str, charge_id: str) -> VippsCharge:
        self.fault("charge")
        with self._lock:
            charge = self.charges_by_id.get(charge_id)
            if charge is None or charge.agreement_id != agreement_id:
                raise ProviderRefused(404, f"no charge {charge_id} on {agreement_id}")
            return charge

    def charges(self, tenant: str, agreement_id: str) -> list[VippsCharge]:
        with self._lock:
            return [c for c in self.charges_by_id.values() if c.agreement_id == agreement_id]

    def cancel_charge(self, tenant: str, agreement_id: str, charge_id: str, idempotency_key: str) -> None:
        with self._lock:
            def make() -> None:
                charge = self.charge(tenant, agreement_id, charge_id)
                if charge.status in ("PENDING", "DUE", "RESERVED"):
                    self.charges_by_id[charge_id] = replace(charge, status="CANCELLED",
                                                            cancelled_minor=charge.amount_minor)
                elif charge.status != "CANCELLED":
                    raise ProviderRefused(400, f"charge {charge_id} is {charge.status}")

            self._keys.once(f"{tenant}:{idempotency_key}", ("cancel", agreement_id, charge_id), make)

    def refund(self, tenant: str, agreement_id: str, charge_id: str, amount_minor: int, description: str,
               idempotency_key: str) -> None:
        self.fault("refund")
        with self._lock:
            charge = self.charge(tenant, agreement_id, charge_id)

            def make() -> str:
                if amount_minor <= 0 or charge.refunded_minor + amount_minor > charge.captured_minor:
                    raise ProviderRefused(400, "refund above the captured amount")
                refunded = charge.refunded_minor + amount_minor
                status = "REFUNDED" if refunded == charge.captured_minor else "PARTIALLY_REFUNDED"
                self.charges_by_id[charge_id] = replace(charge, status=status, refunded_minor=refunded)
                self.refunds.append((charge_id, amount_minor))
                return idempotency_key

            self._keys.once(f"{tenant}:{idempotency_key}", (charge_id, amount_minor), make)

    def webhook_secret(self, tenant: str) -> str:
        return self.secret

    # ---- what the payer and the bank do ----------------------------------------------------------

    def approve(self, agreement_id: str) -> None:
        """The payer approves: ACTIVE, and an initial charge is captured."""
        with self._lock:
            agreement = self.agreements[agreement_id]
            if agreement.status != "PENDING":
                raise ValueError(f"agreement {agreement_id} is {agreement.status}")
            self.agreements[agreement_id] = replace(agreement, status="ACTIVE")
            draft = self.drafts[agreement_id]
            if draft.initial_charge_minor is not None:
                self.settle(draft.initial_charge_id, "CHARGED")

    def reject(self, agreement_id: str) -> None:
        with self._lock:
            self._set_pending(agreement_id, "STOPPED")  # Vipps: a rejected draft reads as STOPPED

    def expire(self, agreement_id: str) -> None:
        with self._lock:
            self._set_pending(agreement_id, "EXPIRED")

    def _set_pending(self, agreement_id: str, status: str) -> None:
        agreement = self.agreements[agreement_id]
        if agreement.status != "PENDING":
            raise ValueError(f"agreement {agreement_id} is {agreement.status}")
        self.agreements[agreement_id] = replace(agreement, status=status)
        initial = self.charges_by_id.get(self.drafts[agreement_id].initial_charge_id)
        if initial is not None and initial.status == "PENDING":  # never taken: cancelled with its draft
            self.charges_by_id[initial.id] = replace(initial, status="CANCELLED", cancelled_minor=initial.amount_minor)

    def user_stop(self, agreement_id: str) -> None:
        """The payer stops the agreement in the app."""
        with self._lock:
            self._stop(agreement_id, "USER")

    def _stop(self, agreement_id: str, actor: str) -> None:
        agreement = self.agreements[agreement_id]
        if agreement.status == "STOPPED":
            return
        self.agreements[agreement_id] = replace(agreement, status="STOPPED", stopped_by=actor)
        for charge in list(self.charges_by_id.values()):
            if charge.agreement_id == agreement_id and charge.status in ("PENDING", "DUE"):
                self.charges_by_id[charge.id] = replace(charge, status="CANCELLED", cancelled_minor=charge.amount_minor)

    def settle(self, charge_id: str, status: str, failure_reason: str = "") -> None:
        """The charge's outcome: CHARGED (captured in full), RESERVED, FAILED or CANCELLED."""
        with self._lock:
            charge = self.charges_by_id[charge_id]
            captured = charge.amount_minor if status == "CHARGED" else charge.captured_minor
            self.charges_by_id[charge_id] = replace(charge, status=status, captured_minor=captured,
                                                    failure_reason=failure_reason)


class FakeSwedbankPay(Faults):
    """Swedbank Pay Payment Order v3.1 as ``devhost/swedbankpay_sim.py`` and the API have it
    (``tests/contract/test_swedbankpay.py`` holds both to the same assertions): a card
    payment is an authorization (``Paid`` with nothing captured) until it is captured;
    ``payeeReference`` is unique per payee, so a second payment order or transaction with
    a used one is refused (409) and nothing new is made (a capture or reversal tried
    again answers the order as it is, as the adapter does); an unscheduled purchase is
    ``Failed`` with the acquirer's reason when the card is declined or expired by ``clock``."""

    def __init__(self, clock: Any = None) -> None:
        super().__init__()
        self.clock = clock
        self.orders: dict[str, CardPaymentOrder] = {}
        self.purchases: dict[str, CardPurchase] = {}
        self.tokens: dict[str, tuple[str, date]] = {}  # token -> (card mask, expiry)
        self.declined: set[str] = set()  # tokens whose next purchases are declined
        self.decline_reasons: dict[str, str] = {}  # token -> the acquirer's reason (problem type)
        self.calls: list[str] = []
        self._by_reference: dict[str, str] = {}
        self._transactions: dict[str, tuple[str, str, int]] = {}  # tenant:reference -> (order, kind, amount)
        self._lock = threading.RLock()

    def create_purchase(self, tenant: str, purchase: CardPurchase) -> CardPaymentOrder:
        self.fault("create_purchase")
        with self._lock:
            self.calls.append("create_purchase")
            self._fresh(tenant, purchase.payee_reference)
            order_id = f"/psp/paymentorders/po-{next(_ids)}"
            order = CardPaymentOrder(order_id, "Initialized", purchase.amount_minor, purchase.currency,
                                     purchase.payee_reference, redirect_url=f"https://fake.swedbankpay/pay{order_id}")
            self.orders[order_id] = order
            self.purchases[order_id] = purchase
            self._by_reference[f"{tenant}:{purchase.payee_reference}"] = order_id
            return order

    def _fresh(self, tenant: str, payee_reference: str) -> None:
        if f"{tenant}:{payee_reference}" in self._by_reference:  # unique per payee: never a second order
            raise ProviderRefused(409, f"payeeReference {payee_reference} has already been used")

    def payment_order(self, tenant: str, payment_order_id: str) -> CardPaymentOrder:
        self.fault("payment_order")
        with self._lock:
            if payment_order_id not in self.orders:
                raise ProviderRefused(404, f"no payment order {payment_order_id}")
            return self.orders[payment_order_id]

    def unscheduled_purchase(self, tenant: str, token: str, payee_reference: str, amount_minor: int,
                             vat_minor: int, currency: str, description: str) -> CardPaymentOrder:
        self.fault("unscheduled_purchase")
        with self._lock:
            self.calls.append("unscheduled_purchase")
            self._fresh(tenant, payee_reference)
            if token not in self.tokens:
                raise ProviderRefused(400, "unknown unscheduled token")
            mask, expiry = self.tokens[token]
            reason = self.decline_reasons.get(token, "acquirercarddeclined") if token in self.declined else ""
            if not reason and self.clock is not None and expiry < self.clock.now().date():
                reason = "acquirercardexpired"
            order_id = f"/psp/paymentorders/po-{next(_ids)}"
            if reason:
                order = CardPaymentOrder(order_id, "Failed", amount_minor, currency, payee_reference,
                                         failure_reason=reason)
            else:
                order = CardPaymentOrder(order_id, "Paid", amount_minor, currency, payee_reference, card_mask=mask,
                                         card_expiry=expiry)
            self.orders[order_id] = order
            self._by_reference[f"{tenant}:{payee_reference}"] = order_id
            return order

    def capture(self, tenant: str, payment_order_id: str, amount_minor: int, vat_minor: int,
                payee_reference: str) -> CardPaymentOrder:
        self.fault("capture")
        with self._lock:
            order = self.payment_order(tenant, payment_order_id)
            if self._made(tenant, payee_reference, payment_order_id, "capture", amount_minor):
                return order
            available = order.amount_minor - order.captured_minor if order.status == "Paid" else 0
            self._check(order, available, amount_minor, "capture")
            self._transactions[f"{tenant}:tx:{payee_reference}"] = (payment_order_id, "capture", amount_minor)
            self.orders[payment_order_id] = order = replace(order, captured_minor=order.captured_minor + amount_minor)
            return order

    def _made(self, tenant: str, reference: str, order_id: str, kind: str, amount: int) -> bool:
        """True if this transaction was made before (a retry: nothing again); refused if its
        reference was used for another transaction."""
        made = self._transactions.get(f"{tenant}:tx:{reference}")
        if made is not None and made != (order_id, kind, amount):
            raise ProviderRefused(409, f"payeeReference {reference} has already been used")
        return made is not None

    @staticmethod
    def _check(order: CardPaymentOrder, available: int, amount: int, kind: str) -> None:
        if amount <= 0:
            raise ProviderRefused(400, f"{kind} amount must be positive")
        if available <= 0:
            raise ProviderRefused(403, f"payment order {order.id} is {order.status}: nothing to {kind}")
        if amount > available:
            raise ProviderRefused(400, f"{kind} of {amount} is above the {available} available")

    def reversal(self, tenant: str, payment_order_id: str, amount_minor: int, vat_minor: int,
                 payee_reference: str) -> CardPaymentOrder:
        self.fault("reversal")
        with self._lock:
            order = self.payment_order(tenant, payment_order_id)
            if self._made(tenant, payee_reference, payment_order_id, "reversal", amount_minor):
                return order
            available = order.captured_minor - order.reversed_minor if order.status == "Paid" else 0
            self._check(order, available, amount_minor, "reversal")
            self._transactions[f"{tenant}:tx:{payee_reference}"] = (payment_order_id, "reversal", amount_minor)
            reversed_ = order.reversed_minor + amount_minor
            status = "Reversed" if reversed_ == order.captured_minor == order.amount_minor else order.status
            self.orders[payment_order_id] = order = replace(order, reversed_minor=reversed_, status=status)
            return order

    # ---- what the payer and the card's bank do ------------------------------------------------------

    def complete(self, payment_order_id: str, card_expiry: date, mask: str = "492500******0004") -> None:
        """The payer pays on the payment page: ``Paid`` (authorized: the merchant captures it),
        and an unscheduled token made. A card says its expiry as MM/YYYY: it is valid through
        the last day of that month."""
        card_expiry = card_expiry.replace(day=calendar.monthrange(card_expiry.year, card_expiry.month)[1])
        with self._lock:
            order = self.orders[payment_order_id]
            token = f"tok-{next(_ids)}"
            self.tokens[token] = (mask, card_expiry)
            self.orders[payment_order_id] = replace(order, status="Paid", token=token, card_mask=mask,
                                                    card_expiry=card_expiry)

    def abort(self, payment_order_id: str) -> None:
        with self._lock:
            self.orders[payment_order_id] = replace(self.orders[payment_order_id], status="Aborted")

    def decline(self, token: str, reason: str = "acquirerinsufficientfunds") -> None:
        """The card behind ``token`` is declined from now on (the acquirer's problem type)."""
        with self._lock:
            self.declined.add(token)
            self.decline_reasons[token] = reason


__all__ = ["FakeSwedbankPay", "FakeVipps", "NotFound"]
