"""A hostile client against the public sales poster (issue 8 part 7), called as the
Functions host calls it: whatever it sends, the answer is a 4xx problem document or an
order, never an exception (which the host turns into a 500)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.service.context import Context
from tests.integration.test_salesposter import post, stored

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
