"""Limits on the public sales poster (S2): body size and a per-client rate limit.

The sales poster is anonymous, so it gets what an anonymous endpoint needs before any
parsing or storage work: a body larger than ``MAX_BODY`` bytes is refused with 413, one
nesting deeper than ``MAX_DEPTH`` with 400 (Python's parser would recurse), and
each client (its IP address and the tenant) has a token bucket of
``ABONNO_PUBLIC_RATE_LIMIT`` requests (``"{burst}/{seconds}"``: ``burst`` requests at
once, refilled evenly over ``seconds``; ``0`` turns the limit off); a client with an
empty bucket gets 429 with ``Retry-After``. The buckets live in the process, so with N
instances a client gets up to N times the rate: the edge rule (Front Door / API
Management, see README) is the global limit, this one protects each instance.

The client's IP comes from ``X-Forwarded-For``, counted from the end: each proxy
*appends* the address it saw, and everything before that is whatever the caller sent,
so the first hop is forgeable. Without ``ABONNO_TRUST_FORWARDED_FOR`` it is the *last*
hop, the address the Functions front end saw; with it (behind Front Door or API
Management, which append the caller's address before the front end appends theirs) the
hop before the last.
"""

from __future__ import annotations

import ipaddress
import math
import os
import threading
from dataclasses import dataclass

import azure.functions as func

from functions.http import Call, problem
from functions.validation import depth
from shared.service.context import Context

MAX_BODY = 16 * 1024
MAX_DEPTH = 8  # an order is a flat object; deeper JSON is refused before the parser recurses
DEFAULT_RATE = "60/60"
MAX_CLIENTS = 50_000
LINK_RATE, CODE_RATE = "5/900", "10/900"  # per login on My page: codes mailed, codes tried


@dataclass
class Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """``burst`` tokens per client, refilled at ``burst / seconds`` per second."""

    def __init__(self, burst: int, seconds: float) -> None:
        self.burst, self.rate = burst, burst / seconds
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float) -> float:
        """Take a token for ``client`` at time ``now`` (seconds); 0 if it had one, else the
        seconds until it will."""
        with self._lock:
            bucket = self._buckets.get(client) or Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.at) * self.rate)
            bucket.at = now
            if len(self._buckets) >= MAX_CLIENTS:
                self._forget_idle(now)
            self._buckets[client] = bucket
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]


_limits: dict[str, TokenBuckets | None] = {}
_guard = threading.Lock()


def limiter(setting: str) -> TokenBuckets | None:
    with _guard:
        if setting not in _limits:
            _limits[setting] = _parse(setting)
        return _limits[setting]


def _parse(setting: str) -> TokenBuckets | None:
    burst, _, seconds = setting.strip().partition("/")
    if not burst.isdigit() or int(burst) == 0:
        return None
    return TokenBuckets(int(burst), float(seconds) if seconds.replace(".", "", 1).isdigit() and float(seconds) > 0
                        else 60.0)


def client_ip(req: func.HttpRequest) -> str:
    hops = [h.strip() for h in (req.headers.get("x-forwarded-for") or "").split(",") if h.strip()]
    if not hops:
        return "direct"
    trusted = os.environ.get("ABONNO_TRUST_FORWARDED_FOR", "").lower() in ("1", "true", "yes")
    return network(without_port(hops[-2] if trusted and len(hops) > 1 else hops[-1]))[:64]  # hops[0]: forgeable


def network(address: str) -> str:
    """The client an address stands for: an IPv4 address, or the /64 an IPv6 address is in
    (one subscriber line gets a whole /64 and may use any of its 2^64 addresses, so a
    bucket per address is no limit at all)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def without_port(hop: str) -> str:
    """``203.0.113.7:52341`` -> ``203.0.113.7`` (Azure's front end adds the port), ``[::1]:80`` -> ``::1``."""
    if hop.startswith("["):
        return hop[1:].split("]", 1)[0]
    return hop.rsplit(":", 1)[0] if hop.count(":") == 1 else hop


def public_limits(req: func.HttpRequest, ctx: Context) -> func.HttpResponse | None:
    """413 for a body over ``MAX_BODY``, 429 for a client over its rate; None to go on."""
    size = req.headers.get("content-length")
    if len(req.get_body() or b"") > MAX_BODY or (size is not None and size.isdigit() and int(size) > MAX_BODY):
        return problem(413, "Payload too large", f"the body may be at most {MAX_BODY} bytes")
    form = (req.headers.get("content-type") or "").lower().startswith(("application/x-www-form", "multipart/"))
    if not form and depth(req.get_body() or b"") > MAX_DEPTH:
        return problem(400, "Malformed body", f"the body may nest at most {MAX_DEPTH} levels deep")
    buckets = limiter(os.environ.get("ABONNO_PUBLIC_RATE_LIMIT", DEFAULT_RATE))
    if buckets is None:
        return None
    tenant = req.route_params.get("tenant", "")[:40]
    wait = buckets.take(f"{client_ip(req)}|{tenant}", ctx.clock.now().timestamp())
    if wait > 0:
        return problem(429, "Too many requests", "too many orders from this client; try again later",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return None


def per_login(call: Call, setting: str, default: str, what: str) -> func.HttpResponse | None:
    """429 with Retry-After when the subscriber's login has used up its bucket for ``what``
    (None: go on). Buckets are per login and shared by every endpoint that names the same
    ``what`` and setting: code tries count together on all of My page's code endpoints."""
    buckets = limiter(os.environ.get(setting, default))
    if buckets is None:
        return None
    wait = buckets.take(f"{what}|{call.me.tenant}|{call.me.login}", call.ctx.clock.now().timestamp())
    if wait <= 0:
        return None
    return problem(429, "Too many requests", f"too many {what} requests; try again later",
                   headers={"Retry-After": str(max(1, math.ceil(wait)))})
