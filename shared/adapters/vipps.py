"""Vipps MobilePay Recurring v3 over HTTP (``ports.VippsRecurring``): helper "vipps" writes it.

Interface fixed by the lead (others code against it):
- ``VippsCredentials(client_id, client_secret, subscription_key, msn, webhook_secret)``
- ``VippsClient(base_url, credentials: Callable[[str], VippsCredentials], session=None, timeout=10.0)``
- ``vipps_from_settings() -> VippsClient`` (``ABONNO_VIPPS_URL``, ``ABONNO_VIPPS_CREDENTIALS``)
- ``sign_webhook(secret, path_and_query, host, date, body) -> dict[str, str]`` (the headers Vipps sends)
- ``verify_webhook(secret, path_and_query, headers, body, now, tolerance) -> None`` (``WebhookRejected``)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ..ports import VippsRecurring


@dataclass(frozen=True)
class VippsCredentials:
    client_id: str
    client_secret: str
    subscription_key: str  # Ocp-Apim-Subscription-Key
    msn: str  # Merchant-Serial-Number
    webhook_secret: str  # the secret of the tenant's webhook registration


class WebhookRejected(Exception):
    """A webhook request that is not Vipps' (bad signature, body hash or date): answer 401."""


class VippsClient:
    def __init__(self, base_url: str, credentials: Callable[[str], VippsCredentials], session: Any = None,
                 timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.session = session
        self.timeout = timeout


def vipps_from_settings() -> VippsRecurring:
    import json
    import os

    table = json.loads(os.environ.get("ABONNO_VIPPS_CREDENTIALS") or "{}")

    def credentials(tenant: str) -> VippsCredentials:
        return VippsCredentials(**table[tenant])

    base = os.environ.get("ABONNO_VIPPS_URL") or "https://apitest.vipps.no"
    return cast(VippsRecurring, VippsClient(base, credentials))
