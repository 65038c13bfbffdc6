"""The development identity provider (``devhost.dev_idp``) must not be an open redirect on
the developer's machine: it sends the browser (with a sign-in code) only to this host's own
My page callback, and after sign-out only to this host."""

from __future__ import annotations

import urllib.parse

import pytest

from devhost import dev_idp

PREFIX = "/_dev/idp/shop-a/v2.0/"
AWAY = ["http://localhost.evil.example/", "http://127.0.0.1.evil.example/", "http://localhost@evil.example/",
        "//evil.example/", "/\\evil.example/", "https://evil.example/api/my/shop-a/auth", "javascript:alert(1)"]


@pytest.mark.parametrize("away", AWAY)
def test_sign_out_never_sends_the_browser_to_another_site(away: str) -> None:
    status, headers, _ = dev_idp.handle("GET", PREFIX + "logout", {"post_logout_redirect_uri": away}, b"")
    assert (status, headers["Location"]) == (302, "/")


@pytest.mark.parametrize("away", [*AWAY, "http://localhost:7071/api/my/shop-b/auth", "http://localhost:7071/x"])
def test_the_sign_in_code_goes_only_to_this_hosts_callback_of_the_tenant(away: str) -> None:
    form = {"email": "kari@example.no", "redirect_uri": away, "state": "s", "client_id": "abonno-my-page",
            "code_challenge": "c" * 43, "code_challenge_method": "S256", "response_type": "code"}
    status, headers, _ = dev_idp.handle("POST", PREFIX + "authorize", {},
                                        urllib.parse.urlencode(form).encode())
    assert status == 400 and "Location" not in headers


def test_this_hosts_callback_gets_the_code() -> None:
    form = {"email": "kari@example.no", "redirect_uri": "http://127.0.0.1:7071/api/my/shop-a/auth", "state": "s"}
    status, headers, _ = dev_idp.handle("POST", PREFIX + "authorize", {},
                                        urllib.parse.urlencode(form).encode())
    assert status == 302 and headers["Location"].startswith("http://127.0.0.1:7071/api/my/shop-a/auth?code=")
    back = dev_idp.handle("GET", PREFIX + "logout", {"post_logout_redirect_uri": "http://localhost:7071/api/x"}, b"")
    assert back[1]["Location"] == "http://localhost:7071/api/x"
