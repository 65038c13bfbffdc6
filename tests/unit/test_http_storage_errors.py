"""Hostile review (issue 13): storage that cannot be reached, or whose answer cannot be read
(``adapters.batch`` raises ``ServiceResponseError`` for a transaction reply that does not say
whether it committed), reaching an HTTP function is a 503 problem document ("try again"), not
a 500, and never the library's text."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from functions.http import _expected


@pytest.mark.parametrize("exc", [
    ServiceResponseError("a $batch reply answering 0 of 3 operations: committed or not, unknown"),
    ServiceRequestError("<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new connection"),
])
def test_storage_unreachable_or_unreadable_is_503_try_again(exc: Exception) -> None:
    response = _expected(exc)
    assert response is not None and response.status_code == 503
    body = json.loads(response.get_body())
    assert body["status"] == 503 and "urllib3" not in body["detail"] and "$batch" not in body["detail"]
