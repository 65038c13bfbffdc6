"""The payment providers' simulators, run beside the app in this process (the local host,
the tests), on the app's clock.

``start_simulators(clock, public_url)`` starts the Vipps MobilePay simulator
(``devhost.vipps_sim``) and the Swedbank Pay simulator (``devhost.swedbankpay_sim``) on
loopback; ``wire(ctx)`` points the app's provider adapters at them (the same HTTP clients
as in Azure: only the base URL and the credentials differ) and sets the app settings that
say so (``ABONNO_VIPPS_URL``, ``ABONNO_SWEDBANKPAY_URL``, ``ABONNO_PUBLIC_URL``).

Locally every tenant is a merchant of both simulators: its Vipps Merchant-Serial-Number is
the tenant id, whose webhooks the simulator signs with this process's random secret and
posts to ``{public_url}/api/vipps/{tenant}/webhook``; its Swedbank Pay payee is the tenant
id with a random token (``ABONNO_*_CREDENTIALS`` name the tenants' merchants in Azure). The
host's ``tick`` calls ``process(day)`` each day: the simulators run that day's batch (drafts
that expire, charges due) and deliver their webhooks and callbacks before the queues are
drained, so a tick's answer includes what the providers did that day.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from shared.adapters.swedbankpay import SwedbankPayClient, SwedbankPayCredentials
from shared.adapters.vipps import VippsClient, VippsCredentials
from shared.clock import Clock
from shared.ports import SwedbankPay, VippsRecurring
from shared.service.context import Context

from .swedbankpay_sim import SwedbankPaySimulator
from .vipps_sim import VippsSimulator


@dataclass
class Simulators:
    vipps: VippsSimulator
    swedbankpay: SwedbankPaySimulator
    public_url: str
    secret: str = field(repr=False)
    processed: dict[str, int] = field(default_factory=dict)

    def vipps_credentials(self, tenant: str) -> VippsCredentials:
        return VippsCredentials(client_id=f"local-{tenant}", client_secret="local", subscription_key="local",
                                msn=tenant, webhook_secret=self.secret)

    def swedbankpay_credentials(self, tenant: str) -> SwedbankPayCredentials:
        with self.swedbankpay._lock:  # each tenant its own payee: payee references are unique per payee
            token = self.swedbankpay.merchants.setdefault(tenant, f"local-{secrets.token_hex(8)}")
        return SwedbankPayCredentials(payee_id=tenant, token=token)

    def vipps_client(self) -> VippsRecurring:
        return VippsClient(self.vipps.base_url, self.vipps_credentials)  # type: ignore[return-value]

    def swedbankpay_client(self) -> SwedbankPay:
        return SwedbankPayClient(self.swedbankpay.base_url, self.swedbankpay_credentials)  # type: ignore[return-value]

    def wire(self, ctx: Context, settings: bool = True) -> Context:
        """Point ``ctx`` at the simulators (and, with ``settings``, the app settings a context
        built later in this process reads: the host; tests leave the environment alone)."""
        if settings:
            os.environ["ABONNO_VIPPS_URL"] = self.vipps.base_url
            os.environ["ABONNO_SWEDBANKPAY_URL"] = self.swedbankpay.base_url
            os.environ["ABONNO_PUBLIC_URL"] = self.public_url
        ctx.vipps = self.vipps_client()
        ctx.swedbankpay = self.swedbankpay_client()
        ctx.public_url = self.public_url
        return ctx

    def process(self, day: date) -> dict[str, Any]:
        """The providers' batch of ``day``, and every webhook and callback it made delivered."""
        done = self.vipps.process(day)
        self.vipps.flush()
        self.swedbankpay.drain()
        for status, count in done.items():
            self.processed[status] = self.processed.get(status, 0) + count
        return done

    def settle(self) -> None:
        """Wait until the webhooks and callbacks made so far have been delivered."""
        self.vipps.flush()
        self.swedbankpay.drain()

    def stop(self) -> None:
        self.vipps.stop()
        self.swedbankpay.stop()


def start_simulators(clock: Clock, public_url: str, *, seed: int = 0, **vipps_options: Any) -> Simulators:
    """Both simulators on loopback, their webhooks and callbacks to the app at ``public_url``."""
    base = public_url.rstrip("/")
    secret = secrets.token_urlsafe(32)
    vipps = VippsSimulator(clock, secret, lambda msn: f"{base}/api/vipps/{msn}/webhook", seed=seed, **vipps_options)
    swedbankpay = SwedbankPaySimulator(clock, seed=seed)
    vipps.start()
    swedbankpay.start()
    return Simulators(vipps, swedbankpay, base, secret)
