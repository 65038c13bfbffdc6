"""Hostile review (issue 11): a payment provider's refusal or silence reaching any HTTP
function is a problem document (502 / 503), never a 500, and never the provider's own text
(which may name a tenant's configuration or the provider's internals)."""

from __future__ import annotations

import json

import pytest

from functions.http import _expected
from shared.ports import ProviderRefused, ProviderUnavailable


@pytest.mark.parametrize(("exc", "status"), [(ProviderRefused(403, "no Vipps credentials for tenant acme"), 502),
                                             (ProviderRefused(404, "no agreement agr_1"), 502),
                                             (ProviderUnavailable("Vipps GET /x: HTTP 503 after 5 tries"), 503)])
def test_a_provider_failure_is_a_problem_without_the_providers_text(exc: Exception, status: int) -> None:
    response = _expected(exc)
    assert response is not None and response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_body())
    assert body["status"] == status and "acme" not in body["detail"] and "agr_1" not in body["detail"]
    assert "Vipps" not in body["detail"]
