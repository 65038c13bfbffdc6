"""A route id the host passes with a decoded '/' (or any character Table Storage keys
refuse) is a 400 on every payments endpoint, never a storage error escaping as a 500."""

from __future__ import annotations

import pytest

from devhost import issuer
from shared.service.context import Context
from tests.integration.test_merchant import call


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "a#b", "a?b", "a\nb", "x" * 201])
@pytest.mark.parametrize(("name", "method", "param"), [
    ("payments_resolve", "POST", "payment_id"),
    ("payments_approve", "POST", "payment_id"),
    ("payments_import", "GET", "report_id"),
])
def test_a_route_id_storage_cannot_key_is_400(ctx: Context, shop: str, bad: str, name: str, method: str,
                                             param: str) -> None:
    body = {"subscriber_no": 1000, "organization_id": "avisa"} if name == "payments_resolve" else None
    status, problem = call(name, method, issuer.token(shop, ["admin"]), {param: bad}, body)
    assert status == 400, (status, problem)
