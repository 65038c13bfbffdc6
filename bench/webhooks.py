"""Benchmark Vipps Recurring: the renewal run's charges created at the simulator, then the
captured charges' webhooks booked end to end (issue 11).

N subscribers each with an active Vipps agreement (drafted at the simulator through the
adapter, approved there) and a renewal invoice whose charge is requested (the ``Charge``
row and ``ChargeRequested`` event ``account.issue`` writes). Then:

1. the charges worker's use case ``create_requested`` creates the N charges at the
   simulator (bulk calls over HTTP), timed: ``charges_created_per_s``;
2. the simulator processes them on their due date by its clock: all CHARGED;
3. one ``recurring.charge-captured.v1`` webhook per charge (the simulator's own event bodies,
   signed as Vipps signs them) is POSTed over HTTP to the local host's ``vipps_webhook``
   function (signature verified, the signal queued on ``provider-events``), 16 at a time,
   while the host drains the queue through ``provider_worker`` (``reconcile_vipps_charge``:
   the charge re-read at the simulator, the payment booked and the charge row deleted in
   one transaction), 16 messages at a time (the Functions host's Service Bus default).

Prints one JSON object:
  charges_created_per_s    charges created at the simulator per second by ``create_requested``
  webhooks_per_s           webhooks per second from the first POST to the last booking
  round_trips_per_webhook  storage calls counted at the adapter during step 3 / webhooks
                           (target <= 2: one partition read, one transaction)
  client_cpu_ms_per_webhook CPU time of this process during step 3 (the host's HTTP server, the
                           function, the worker; not the senders' threads, which play Vipps'
                           side; the simulator runs in a process of its own) / webhooks
  entities_per_transaction the mean size of the booking transactions (what the ceiling writes)
  ceiling_per_s            the same storage shape done directly with the SDK in this run: per
                           subscriber one partition read and one entity-group transaction of that
                           many entities, 16 at a time, on partitions seeded before the set-up;
                           half measured just before step 3, half just after, the mean
  ratio                    webhooks_per_s / ceiling_per_s (target >= 0.8)
  queue_sends_per_webhook  Azurite queue messages sent per webhook (the function's signal, the
                           booking's outbox), counted at the bus adapter: locally Azurite is the
                           bus too, on the same single thread as the tables
  ceiling_with_bus_per_s   the storage ceiling plus that bus work done directly with the SDK (per
                           webhook: the signal sent and deleted, the outbox messages sent), same
                           concurrency, measured like the ceiling; ``ratio_with_bus`` against it

    python -m bench.webhooks --webhooks 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import requests
from azure.storage.queue import QueueServiceClient
from tqdm import tqdm

from bench.common import emit
from bench.shape import PerSubscriber as Ceiling
from devhost.azurite import Azurite
from devhost.builders import install_catalogue, oslo_morning
from devhost.cli import start_host
from shared import bootstrap
from shared.adapters.bus import PROVIDER_EVENTS
from shared.adapters.vipps import sign_webhook
from shared.domain.account import Account, due_drafts, issue
from shared.domain.agreements import AgreementStatus, PaymentAgreement, Provider, agreement_key
from shared.domain.calendar import Frequency
from shared.domain.catalogue import PaymentType
from shared.domain.events import ChargeRequested
from shared.domain.subscriptions import Subscriber, Subscription
from shared.ports import AgreementDraft
from shared.service.charges import create_requested

DAY = date(2026, 1, 5)
CONCURRENCY = 16  # the Functions host's default for a Service Bus trigger, and Vipps' senders
MSN = "123456"
SECRET = "bench-webhook-secret"


# ---- the simulator, in a process of its own ------------------------------------------------------


class Simulator:
    """``python -m devhost.vipps_sim`` in its own process (its CPU is not ours), driven over
    its HTTP controls (``/_sim/...``)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "devhost.vipps_sim", "--port", "0", "--secret", SECRET,
                                         "--payer", "approve"], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "Vipps simulator on http://127.0.0.1:PORT (...)"
        self.url = next(word for word in line.split() if word.startswith("http://"))
        self.http = requests.Session()
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY))

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.url}/_sim/{path}", json=body, timeout=120)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def settings(tenant: str, sim_url: str) -> None:
    """The app's settings for the tenant's Vipps merchant at the simulator (before the app's context)."""
    os.environ["ABONNO_VIPPS_URL"] = sim_url
    os.environ["ABONNO_VIPPS_CREDENTIALS"] = json.dumps({tenant: {
        "client_id": "bench", "client_secret": "bench-secret", "subscription_key": "bench-key", "msn": MSN,
        "webhook_secret": SECRET}})


# ---- set-up: active agreements, renewal invoices with charges requested ------------------------------


def subscribers(ctx: Any, tenant: str, sim: Simulator, n: int) -> list[ChargeRequested]:
    """N subscribers (10,001 ...) on the monthly plan charged on an active Vipps agreement, each
    with a renewal invoice issued and its charge requested; returns the ``ChargeRequested`` events."""
    catalogue = ctx.catalogue.get(tenant)

    def one(i: int) -> list[ChargeRequested]:
        number = 10_000 + i
        sub_id = f"s{number}"
        key = agreement_key(number, sub_id)
        draft = AgreementDraft(external_id=key, product_name="Avisa Nordvest digital", product_description="Monthly",
                               price_minor=34800, currency="NOK", interval_unit="MONTH", interval_count=1,
                               merchant_agreement_url="https://example.no/min-side",
                               merchant_redirect_url="https://example.no/takk", phone=f"47{40_000_000 + i}")
        made = ctx.vipps.create_agreement(tenant, draft, key)
        sim.control("POST", f"agreements/{made.id}/approve")
        # the subscription started a month ago; today its second period is invoiced (a renewal)
        sub = Subscription(sub_id, "digital-monthly", "avisa", Frequency.MONTHLY, DAY - timedelta(days=31),
                           PaymentType.VIPPS, agreement=key)
        agreement = PaymentAgreement(key, Provider.VIPPS, "avisa", sub_id, AgreementStatus.ACTIVE,
                                     DAY - timedelta(days=31), 34800, "NOK", provider_id=made.id)
        account = replace(Account(Subscriber(number, f"Payer {i}", f"payer{i}@example.no")).with_subscription(sub),
                          agreements={key: agreement})
        drafts = due_drafts(account, catalogue, DAY)[-1:]  # the renewal only (the first period was charged at approval)
        changes = issue(account, drafts, {drafts[0].natural_key: number}, catalogue, DAY)
        ctx.accounts.commit(tenant, None, changes)
        return [e for e in changes.events if isinstance(e, ChargeRequested)]

    requested = []
    with ThreadPoolExecutor(CONCURRENCY) as pool, tqdm(total=n, desc="subscribers", file=sys.stderr,
                                                      disable=None) as bar:
        for events in pool.map(one, range(1, n + 1)):
            requested += events
            bar.update()
    return requested


class BusCeiling:
    """The storage ceiling's work plus the bus work a webhook costs on Azurite, via the SDK:
    per partition the signal sent, the read and the transaction, ``sends`` outbox messages
    sent, and the signal deleted (its receive, one per 32 messages, left out)."""

    def __init__(self, ceiling: Ceiling, queues: QueueServiceClient, sends: int) -> None:
        self.ceiling, self.sends = ceiling, sends
        self.signals = queues.get_queue_client(f"ceiling-in-{uuid.uuid4().hex[:6]}")
        self.outbox = queues.get_queue_client(f"ceiling-out-{uuid.uuid4().hex[:6]}")
        self.signals.create_queue()
        self.outbox.create_queue()

    def measure(self, pks: list[str]) -> float:
        with ThreadPoolExecutor(self.ceiling.threads) as pool:
            started = time.perf_counter()
            list(pool.map(self._work, pks))
            return len(pks) / (time.perf_counter() - started)

    def _work(self, pk: str) -> None:
        signal = self.signals.send_message("x" * 200)
        self.ceiling._work(pk)
        for _ in range(self.sends):
            self.outbox.send_message("y" * 600)
        self.signals.delete_message(signal.id, signal.pop_receipt)


# ---- the webhooks ----------------------------------------------------------------------------------


def post_all(url: str, path: str, host: str, bodies: Sequence[bytes], now: Callable[[], Any]) -> tuple[int, float]:
    """POST each body signed as Vipps signs it, ``CONCURRENCY`` at a time; returns (answers that
    were 2xx, CPU seconds the senders' threads spent)."""
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY))
    spent: list[float] = []
    lock = threading.Lock()

    def post(body: bytes) -> bool:
        started = time.thread_time()
        headers = sign_webhook(SECRET, path, host, now(), body)
        headers.pop("host")
        answer = session.post(url, data=body, headers=headers | {"Content-Type": "application/json"}, timeout=60)
        with lock:
            spent.append(time.thread_time() - started)
        return 200 <= answer.status_code < 300

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        ok = sum(pool.map(post, bodies))
    return ok, sum(spent)


def deliver(host: Any, url: str, path: str, address: str, bodies: Sequence[bytes], now: Callable[[], Any],
            bar: Any = None) -> tuple[int, float]:
    """Send ``bodies`` while the host drains ``provider-events``, until all are sent and the
    queues are empty; returns (2xx answers, the senders' CPU seconds)."""
    outcome: list[tuple[int, float]] = []
    failures: list[BaseException] = []

    def send() -> None:
        try:
            outcome.append(post_all(url, path, address, bodies, now))
        except BaseException as exc:  # said by the caller, not lost in the thread
            failures.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    while True:
        handled = host.drain()
        if bar is not None:
            bar.update(handled)
        if not sender.is_alive() and handled == 0:
            if host.drain() == 0:  # what arrived between the last drain and the sender's end
                break
        elif handled == 0:
            time.sleep(0.005)
    sender.join()
    if failures:
        raise failures[0]
    return outcome[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=1000)
    n = parser.parse_args().webhooks
    warm = max(1, min(50, n // 20))  # booked before the timed run: code paths warm, the transactions' size known


    azurite = Azurite.start(in_memory=True)
    sim = Simulator()
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    settings(tenant, sim.url)
    try:
        host, port = start_host(azurite, oslo_morning(DAY), running=False, port=0)
        host.workers = CONCURRENCY
        ctx = bootstrap.context()
        clock = bootstrap.settable_clock
        sim.control("POST", "clock", {"now": oslo_morning(DAY).isoformat()})
        install_catalogue(ctx, tenant)
        ceiling = Ceiling(ctx.storage, n, entities=7)
        ceiling.threads = CONCURRENCY
        ceiling.seed()
        requested = subscribers(ctx, tenant, sim, n)

        # 1. the renewal run's charges, created at the simulator (what charges_worker does)
        started = time.perf_counter()
        create_requested(ctx, tenant, requested)
        created_s = time.perf_counter() - started
        state = sim.control("GET", "state")

        # what the set-up's commits sent (the invoices to deliver, the charges worker's messages,
        # sent again by create_requested's commits) is done before the webhooks, as it would
        # have been days before; Service Bus drops the copies a later commit sends again
        host.drain()

        # 2. the simulator charges them on their due date
        due = max(r.due for r in requested)
        clock.set(oslo_morning(due))
        sim.control("POST", "clock", {"now": oslo_morning(due).isoformat()})
        processed = sim.control("POST", "process", {"day": due.isoformat()})
        bodies = [json.dumps(e).encode() for e in sim.control("GET", "events")
                  if e["eventType"] == "recurring.charge-captured.v1"]

        # 3. their webhooks, end to end
        path = f"/api/vipps/{tenant}/webhook"
        url, address = f"http://127.0.0.1:{port}{path}", f"127.0.0.1:{port}"
        sizes: list[int] = []
        transact = ctx.storage.transact

        def counted(table: str, operations: Sequence[Any]) -> list[dict[str, Any]]:
            sizes.append(len(operations))
            return transact(table, operations)

        # only the webhooks' own work: what a booking publishes (receipts, events) is other
        # consumers' work, run after the measurement
        everyone = host.consumers
        host.consumers = [c for c in everyone if c.queue == PROVIDER_EVENTS]
        sends: list[int] = []
        send = ctx.bus.send

        def sent(queue: str, messages: Sequence[Any]) -> None:
            sends.append(1 if messages else 0)
            send(queue, messages)

        ctx.storage.transact, ctx.bus.send = counted, sent  # type: ignore[method-assign]
        deliver(host, url, path, address, bodies[:warm], clock.now)
        ctx.storage.transact, ctx.bus.send = transact, send  # type: ignore[method-assign]
        ceiling.entities = round(sum(sizes) / max(len(sizes), 1))
        queue_sends = sum(sends) / warm
        with_bus = BusCeiling(ceiling, QueueServiceClient.from_connection_string(azurite.connection_string),
                              max(round(queue_sends) - 1, 0))
        quarter = len(ceiling.pks) // 4
        before = ceiling.measure(ceiling.pks[:quarter])
        bus_before = with_bus.measure(ceiling.pks[quarter:2 * quarter])

        trips = ctx.storage.round_trips.count
        cpu, started = time.process_time(), time.perf_counter()
        with tqdm(total=len(bodies) - warm, desc="webhooks", file=sys.stderr, disable=None) as bar:
            accepted, sender_cpu = deliver(host, url, path, address, bodies[warm:], clock.now, bar)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu - sender_cpu
        trips = ctx.storage.round_trips.count - trips

        after = ceiling.measure(ceiling.pks[2 * quarter:3 * quarter])
        bus_after = with_bus.measure(ceiling.pks[3 * quarter:])
        host.consumers = everyone
        host.drain()
        booked = [p for _, p in ctx.inbox.booked_payments(tenant) if p.payment.source == Provider.VIPPS.value]
        left = sum(len(loaded.account.charges) for i in range(1, n + 1)
                   if (loaded := ctx.accounts.load(tenant, 10_000 + i)) is not None)
        host.shutdown()
    finally:
        sim.stop()
        azurite.stop()
    timed = len(bodies) - warm
    rate = timed / elapsed
    ceiling_rate = (before + after) / 2
    bus_rate = (bus_before + bus_after) / 2
    complete = len(booked) == n and left == 0
    emit({
        "all_booked": complete,
        "subscribers": n,
        "charges_requested": len(requested),
        "charges_created": state["charges"],
        "charges_created_s": round(created_s, 2),
        "charges_created_per_s": round(len(requested) / created_s, 1),
        "simulator_processed": processed,
        "webhooks": len(bodies),
        "webhooks_timed": timed,
        "webhooks_accepted": accepted + warm,
        "payments_booked": len(booked),
        "charge_rows_left": left,
        "elapsed_s": round(elapsed, 2),
        "webhooks_per_s": round(rate, 1),
        "round_trips_per_webhook": round(trips / max(timed, 1), 3),
        "client_cpu_ms_per_webhook": round(1000 * cpu / max(timed, 1), 2),
        "entities_per_transaction": ceiling.entities,
        "ceiling_per_s": round(ceiling_rate, 1),
        "ceiling_before_after_per_s": [round(before, 1), round(after, 1)],
        "ratio": round(rate / ceiling_rate, 3),
        "queue_sends_per_webhook": round(queue_sends, 2),
        "ceiling_with_bus_per_s": round(bus_rate, 1),
        "ratio_with_bus": round(rate / bus_rate, 3),
        "concurrency": CONCURRENCY,
    })
    if not complete:  # a figure of a run that did not book every charge measures nothing
        sys.exit("not every captured charge was booked exactly once")


if __name__ == "__main__":
    main()
