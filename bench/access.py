"""Benchmark the access lookups through the local host (M1; issue 12).

N subscribers on the monthly plan, each linked to a login of its own (``reader-{i}`` at the
development identity provider), their access rows built. Then, through the local host over
HTTP (``abonno host`` in this process, on a private in-memory Azurite):

1. ``GET /api/access/{tenant}/me`` with each reader's bearer token (signature, issuer and
   audience checked as in Azure), ``CONCURRENCY`` at a time, ``--lookups`` in all: the
   publisher's paywall asking what a signed-in reader may access;
2. ``GET /api/access/{tenant}/sites?ip=`` with the tenant's connector credentials, for
   addresses inside and outside a campus subscriber's range;
3. the same number of point reads of the same rows done directly with the SDK, at the same
   concurrency, in the same run (the floor a lookup can reach on this storage).

Prints one JSON object:
  lookups, lookups_per_s, p50_ms, p99_ms    step 1, latency as the client sees it
  round_trips_per_lookup   storage calls counted at the adapter during step 1 / lookups (target 1)
  direct_reads_per_s, direct_p50_ms, direct_p99_ms   step 3
  ratio                    lookups_per_s / direct_reads_per_s
  site_lookups_per_s, site_p50_ms, site_p99_ms, site_round_trips_per_lookup   step 2
  correct                  every answer named exactly the products its reader (or site) has
  p99_under_50ms           the issue's target

    python -m bench.access --subscribers 200 --lookups 4000 [--concurrency 8]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import Any

import requests
from tqdm import tqdm

from bench.common import emit
from devhost import issuer
from devhost.azurite import Azurite
from devhost.builders import install_catalogue, oslo_morning
from devhost.cli import start_host
from shared import bootstrap
from shared.adapters.access_records import RECORD, TABLE, record_key
from shared.domain.account import Account, Changes
from shared.domain.calendar import Frequency
from shared.domain.catalogue import PaymentType
from shared.domain.identity import LoginLink, Role, login_key
from shared.domain.subscriptions import Subscriber, Subscription
from shared.service import access

DAY = date(2026, 1, 5)
CONCURRENCY = 8
PRODUCTS = ["avis", "kryssord"]
USER, PASSWORD = "bench-connector", "bench-connector-password"


def subscribers(ctx: Any, tenant: str, n: int) -> list[str]:
    """N subscribers (10,001 ...) each linked to login ``reader-{i}``, rows built; returns the logins."""
    login_issuer = issuer.SUBSCRIBER_ISSUER.format(tenant=tenant)

    def one(i: int) -> str:
        number = 10_000 + i
        login = login_key(login_issuer, f"reader-{i}")
        sub = Subscription(f"s{number}", "digital-monthly", "avisa", Frequency.MONTHLY, DAY, PaymentType.INVOICE)
        link = LoginLink(login, Role.HOLDER, f"reader{i}@example.no", DAY)
        account = replace(Account(Subscriber(number, f"Reader {i}", f"reader{i}@example.no")).with_subscription(sub),
                          logins={link.key: link})
        ctx.accounts.commit(tenant, None, Changes(account, subscriptions=(sub,)))
        access.refresh_login(ctx, tenant, login, (number,))
        return login

    with ThreadPoolExecutor(CONCURRENCY) as pool, tqdm(total=n, desc="subscribers", file=sys.stderr,
                                                      disable=None) as bar:
        logins = []
        for login in pool.map(one, range(1, n + 1)):
            logins.append(login)
            bar.update()
    return logins


def timed(calls: list[Callable[[], bool]], desc: str) -> tuple[float, list[float], bool]:
    """Run ``calls`` ``CONCURRENCY`` at a time; (calls per second, latencies in ms, all correct)."""
    def run(call: Callable[[], bool]) -> tuple[float, bool]:
        started = time.perf_counter()
        ok = call()
        return (time.perf_counter() - started) * 1000, ok

    with ThreadPoolExecutor(CONCURRENCY) as pool, tqdm(total=len(calls), desc=desc, file=sys.stderr,
                                                      disable=None) as bar:
        started = time.perf_counter()
        results = []
        for result in pool.map(run, calls):
            results.append(result)
            bar.update()
        elapsed = time.perf_counter() - started
    return len(calls) / elapsed, [ms for ms, _ in results], all(ok for _, ok in results)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--lookups", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="requests in flight (a paywall's)")
    args = parser.parse_args()
    global CONCURRENCY
    CONCURRENCY = args.concurrency
    n, lookups = args.subscribers, args.lookups
    os.environ["ABONNO_CONNECTOR_CREDENTIALS"] = json.dumps({"*": {"username": USER, "password": PASSWORD}})
    azurite = Azurite.start(in_memory=True)
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    try:
        host, port = start_host(azurite, oslo_morning(DAY), running=False, port=0)
        ctx = bootstrap.context()
        install_catalogue(ctx, tenant)
        logins = subscribers(ctx, tenant, n)
        access.set_ip_ranges(ctx, tenant, 10_001, ["192.0.2.0/24"])
        host.drain()  # what the set-up queued (the IP ranges' AccessChanged) is done before the timing
        tokens = [issuer.subscriber_token(tenant, f"reader-{i}") for i in range(1, n + 1)]
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY))
        base = f"http://127.0.0.1:{port}/api/access/{tenant}"

        def me(i: int) -> Callable[[], bool]:
            def call() -> bool:
                answer = session.get(f"{base}/me", headers={"Authorization": f"Bearer {tokens[i % n]}"}, timeout=30)
                return answer.status_code == 200 and answer.json()["products"] == PRODUCTS
            return call

        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

        def site(i: int) -> Callable[[], bool]:
            inside = i % 2 == 0
            ip = f"192.0.2.{i % 250 + 1}" if inside else f"198.51.100.{i % 250 + 1}"

            def call() -> bool:
                answer = session.get(f"{base}/sites", params={"ip": ip}, headers={"Authorization": basic}, timeout=30)
                return answer.status_code == 200 and answer.json()["products"] == (PRODUCTS if inside else [])
            return call

        table = ctx.storage.table(TABLE)

        def direct(i: int) -> Callable[[], bool]:
            def call() -> bool:
                return table.get_entity(record_key(tenant, logins[i % n]), RECORD) is not None
            return call

        timed([me(i) for i in range(min(200, lookups))], "warm-up")  # connections, token keys, catalogue cached
        trips = ctx.storage.round_trips.count
        per_s, latencies, correct = timed([me(i) for i in range(lookups)], "lookups")
        trips = ctx.storage.round_trips.count - trips
        site_trips = ctx.storage.round_trips.count
        sites = max(lookups // 4, 1)
        site_per_s, site_latencies, sites_correct = timed([site(i) for i in range(sites)], "site lookups")
        site_trips = ctx.storage.round_trips.count - site_trips
        direct_per_s, direct_latencies, direct_ok = timed([direct(i) for i in range(lookups)], "direct reads")
        host.shutdown()
    finally:
        azurite.stop()
    p99 = percentile(latencies, 99)
    emit({"subscribers": n, "lookups": lookups, "lookups_per_s": round(per_s, 1),
          "p50_ms": percentile(latencies, 50), "p99_ms": p99, "round_trips_per_lookup": round(trips / lookups, 3),
          "direct_reads_per_s": round(direct_per_s, 1), "direct_p50_ms": percentile(direct_latencies, 50),
          "direct_p99_ms": percentile(direct_latencies, 99), "ratio": round(per_s / direct_per_s, 3),
          "site_lookups": sites, "site_lookups_per_s": round(site_per_s, 1),
          "site_p50_ms": percentile(site_latencies, 50), "site_p99_ms": percentile(site_latencies, 99),
          "site_round_trips_per_lookup": round(site_trips / sites, 3),
          "mean_ms": round(statistics.fmean(latencies), 2), "concurrency": CONCURRENCY,
          "correct": correct and sites_correct and direct_ok, "p99_under_50ms": p99 < 50})


if __name__ == "__main__":
    main()
