"""The local host's development endpoints (``/_dev/...``) need no token, so they exist
only when the host runs on the settable clock; on the system clock (as in Azure) they
are 404. Unknown methods are 405 with ``Allow``; the host's own errors are problem+json."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from devhost.azurite import Azurite
from devhost.host import LocalHost
from shared.clock import SettableClock, SystemClock

DEV = [("GET", "/_dev/clock", b""), ("POST", "/_dev/clock", b'{"now": "2030-01-01T00:00:00+00:00"}'),
       ("POST", "/_dev/tick", b'{"to": "2000-01-01"}'), ("GET", "/_dev/jwks.json", b"")]


@pytest.mark.parametrize(("method", "path", "body"), DEV)
def test_dev_endpoints_are_404_on_the_system_clock(azurite: Azurite, method: str, path: str, body: bytes) -> None:
    host = LocalHost(SystemClock(), azurite.connection_string)
    status, headers, _ = host.handle_http(method, path, {}, body)
    assert (status, headers["Content-Type"]) == (404, "application/problem+json")


@pytest.mark.parametrize(("method", "path", "body"), DEV)
def test_dev_endpoints_exist_on_the_settable_clock(azurite: Azurite, method: str, path: str, body: bytes) -> None:
    clock = SettableClock(datetime(2026, 1, 5, 8, tzinfo=UTC))
    host = LocalHost(clock, azurite.connection_string)
    assert host.handle_http(method, path, {}, body)[0] == 200


@pytest.mark.parametrize("body", [b"", b"{}", b'{"now": "yesterday"}', b'{"now": "2030-01-01T00:00:00"}', b"[1]"])
def test_a_bad_clock_body_is_400_and_leaves_the_clock(azurite: Azurite, body: bytes) -> None:
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    host = LocalHost(SettableClock(start), azurite.connection_string)
    status, _headers, payload = host.handle_http("POST", "/_dev/clock", {}, body)
    assert status == 400 and "detail" in json.loads(payload)
    assert host.clock.now() == start


def test_an_undeclared_method_is_405_with_allow(azurite: Azurite) -> None:
    host = LocalHost(SystemClock(), azurite.connection_string)
    status, headers, _ = host.handle_http("TRACE", "/api/openapi.json", {}, b"")
    assert (status, headers["Allow"]) == (405, "GET")
