"""Swedbank Pay Payment Order v3 (card) over HTTP (``ports.SwedbankPay``): helper "swedbank" writes it.

Interface fixed by the lead (others code against it):
- ``SwedbankPayCredentials(payee_id, token)`` (the merchant access token, a bearer token)
- ``SwedbankPayClient(base_url, credentials: Callable[[str], SwedbankPayCredentials], session=None, timeout=10.0)``
- ``swedbankpay_from_settings() -> SwedbankPayClient`` (``ABONNO_SWEDBANKPAY_URL``, ``ABONNO_SWEDBANKPAY_CREDENTIALS``)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ..ports import SwedbankPay


@dataclass(frozen=True)
class SwedbankPayCredentials:
    payee_id: str
    token: str


class SwedbankPayClient:
    def __init__(self, base_url: str, credentials: Callable[[str], SwedbankPayCredentials], session: Any = None,
                 timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.session = session
        self.timeout = timeout


def swedbankpay_from_settings() -> SwedbankPay:
    import json
    import os

    table = json.loads(os.environ.get("ABONNO_SWEDBANKPAY_CREDENTIALS") or "{}")

    def credentials(tenant: str) -> SwedbankPayCredentials:
        return SwedbankPayCredentials(**table[tenant])

    return cast(SwedbankPay, SwedbankPayClient(os.environ.get("ABONNO_SWEDBANKPAY_URL") or "https://api.externalintegration.payex.com",
                             credentials))
