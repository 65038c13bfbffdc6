"""The sales poster's per-client limits (issue 8 part 7): the token bucket never lets a
client exceed its burst plus the refill, and the client's address is read as configured."""

from __future__ import annotations

import azure.functions as func
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.salesposter_http.guard import TokenBuckets, client_ip
from functions.validation import depth as nesting


@given(st.lists(st.floats(0, 600, allow_nan=False), max_size=200))
def test_a_client_never_gets_more_than_its_burst_plus_the_refill(times: list[float]) -> None:
    buckets = TokenBuckets(burst=5, seconds=60)  # 5 at once, one more every 12 s
    accepted = [t for t in sorted(times) if buckets.take("c", t) == 0]
    for i, start in enumerate(accepted):
        in_window = [t for t in accepted[i:] if t - start <= 60]
        assert len(in_window) <= 5 + 5 + 1  # the burst, 60 s of refill, and the edge


def test_an_empty_bucket_says_how_long_to_wait_and_other_clients_are_untouched() -> None:
    buckets = TokenBuckets(burst=2, seconds=10)
    assert [buckets.take("a", 0.0) for _ in range(2)] == [0, 0]
    assert buckets.take("a", 0.0) == pytest.approx(5.0)
    assert buckets.take("b", 0.0) == 0
    assert buckets.take("a", 5.0) == 0


def request(forwarded: str | None) -> func.HttpRequest:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return func.HttpRequest("POST", "/api/salesposter/t/orders", headers=headers, body=b"")


def test_the_client_is_the_first_hop_only_when_forwarding_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABONNO_TRUST_FORWARDED_FOR", raising=False)
    assert client_ip(request("198.51.100.9, 203.0.113.7:52341")) == "203.0.113.7"  # the hop our front end added
    monkeypatch.setenv("ABONNO_TRUST_FORWARDED_FOR", "true")
    assert client_ip(request("198.51.100.9:1234, 203.0.113.7")) == "198.51.100.9"
    assert client_ip(request("[2001:db8::1]:443")) == "2001:db8::/64"  # an IPv6 client is its /64
    assert client_ip(request(None)) == "direct"


def test_nesting_counts_brackets_outside_strings() -> None:
    assert nesting(b'{"a": [1, {"b": "[[[\\"["}]}') == 3
    assert nesting(b'"[[["') == 0 and nesting(b"[" * 20) == 20
