"""A hostile client against the public sales poster (issue 8 part 7), called as the
Functions host calls it: whatever it sends, the answer is a 4xx problem document or an
order, never an exception (which the host turns into a 500)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.azurite import Azurite, free_port
from devhost.host import LocalHost
from shared.service.context import Context
from tests.integration.test_salesposter import ORDER, post, stored

# Content types a client may send: the parser reads anything but a form as JSON, so the
# depth guard must not trust a prefix ("application/x-www-form-foo", "multipart/mixed").
CONTENT_TYPES = st.one_of(
    st.sampled_from(["application/json", "application/x-www-form-foo", "multipart/mixed", "multipart/",
                     "application/x-www-form-urlencodedX", "APPLICATION/X-WWW-FORM", " multipart/form-data ; x",
                     "text/plain", "", "application/x-www-form-urlencoded; charset=utf-8"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
DEEP = st.sampled_from(["[" * 5000 + "]" * 5000, '{"a":' * 2000 + "1" + "}" * 2000,
                        '{"name": ' + "[" * 3000 + "]" * 3000 + "}"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ctype=CONTENT_TYPES, body=DEEP)
def test_deep_json_under_any_content_type_is_4xx_never_an_exception(ctx: Context, shop: str,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     ctype: str, body: str) -> None:
    monkeypatch.setenv("ABONNO_PUBLIC_RATE_LIMIT", "0")
    response: Any = post(shop, body, headers={"Content-Type": ctype})  # raised RecursionError: a 500
    assert 400 <= response.status_code < 500 and response.mimetype == "application/problem+json"
    assert stored(ctx, shop) == []


@pytest.fixture
def served(ctx: Context, azurite: Azurite) -> Iterator[str]:
    """The local host serving the app over HTTP, on the test's storage and clock."""
    host = LocalHost(ctx.clock, azurite.connection_string)  # type: ignore[arg-type]
    port = free_port()
    host.serve(port)
    yield f"http://127.0.0.1:{port}"
    host.shutdown()


HOP = st.one_of(st.ip_addresses().map(str), st.sampled_from(["unknown", "127.0.0.1", "10.0.0.1:443", "[::1]:80"]))
_settings = iter(range(10**6))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(forged=st.lists(st.lists(HOP, min_size=1, max_size=3), min_size=3, max_size=6), trusted=st.booleans())
def test_forged_forwarded_for_headers_do_not_dodge_the_rate_limit(shop: str, served: str,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  forged: list[list[str]], trusted: bool) -> None:
    """One client over real HTTP, a new X-Forwarded-For every request (as if behind the
    edge, which appends the caller's address, when trusted): still one bucket."""
    monkeypatch.setenv("ABONNO_PUBLIC_RATE_LIMIT", f"2/{3600 + next(_settings)}")  # a fresh bucket per example
    monkeypatch.setenv("ABONNO_TRUST_FORWARDED_FOR", "true" if trusted else "false")
    statuses = []
    for hops in forged:
        sent = ", ".join(hops + (["198.51.100.77"] if trusted else []))  # the edge appends what it saw
        response = requests.post(f"{served}/api/salesposter/{shop}/orders", json={},
                                 headers={"X-Forwarded-For": sent}, timeout=30)
        statuses.append(response.status_code)
    assert statuses[:2] == [422, 422] and set(statuses[2:]) == {429}, statuses


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.integers(0, 2**64 - 1), hosts=st.lists(st.integers(0, 2**64 - 1), min_size=3, max_size=5,
                                                        unique=True))
def test_rotating_ipv6_addresses_within_one_64_does_not_dodge_the_rate_limit(ctx: Context, shop: str,
                                                                              monkeypatch: pytest.MonkeyPatch,
                                                                              prefix: int, hosts: list[int]) -> None:
    """One subscriber line has a /64: a new address per request is still one client."""
    monkeypatch.setenv("ABONNO_PUBLIC_RATE_LIMIT", f"2/{3600 + next(_settings)}")
    monkeypatch.delenv("ABONNO_TRUST_FORWARDED_FOR", raising=False)
    addresses = [str(ipaddress.IPv6Address((prefix << 64) | host)) for host in hosts]
    statuses = [post(shop, {}, headers={"X-Forwarded-For": f"[{a}]:443"}).status_code for a in addresses]
    assert statuses[:2] == [422, 422] and set(statuses[2:]) == {429}, statuses


REF = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,20}\Z")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=REF, key=REF)
def test_an_order_ref_and_an_idempotency_key_that_differ_are_refused(ctx: Context, shop: str,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     ref: str, key: str) -> None:
    """Two identities for one order: whichever were taken, a retry keeping the other would
    place it twice."""
    monkeypatch.setenv("ABONNO_PUBLIC_RATE_LIMIT", "0")
    before = stored(ctx, shop)
    response = post(shop, ORDER | {"order_ref": ref}, headers={"Idempotency-Key": key})
    if ref != key:
        assert response.status_code == 400 and response.mimetype == "application/problem+json"
        assert stored(ctx, shop) == before
    else:
        assert response.status_code in (200, 201, 202)


def test_an_idempotency_key_with_a_trailing_newline_is_refused(ctx: Context, shop: str) -> None:
    assert post(shop, ORDER, headers={"Idempotency-Key": "abc\n"}).status_code == 400
    assert stored(ctx, shop) == []
