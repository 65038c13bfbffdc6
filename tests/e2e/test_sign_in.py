"""End to end: My page's sign-in through ``abonno host`` and its development identity
provider, as a browser does it (redirects followed by hand, cookies kept by hand so their
flags can be read): msal's authorization-code flow with PKCE on the server, the session
cookie's flags, a new cookie after sign-in (no fixation), CSRF on changes, sign-out."""

from __future__ import annotations

import html
import re
import time
import urllib.parse
from collections.abc import Iterator

import pytest
import requests

from devhost.azurite import Azurite
from tests.e2e import running_host

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_host(azurite, tmp_path_factory.mktemp("host")) as url:
        yield url


def cookie_of(response: requests.Response) -> tuple[str, str]:
    """The ``abonno_session`` value the response sets, and the whole Set-Cookie header."""
    header = response.headers["Set-Cookie"]
    match = re.match(r"abonno_session=([^;]*);", header)
    assert match, header
    return match.group(1), header


def sign_in(host: str, tenant: str, email: str, name: str = "Ada Lovelace") -> tuple[str, requests.Response]:
    """Through the login redirect, the development provider's page and the callback: the
    signed-in cookie and the callback's response."""
    start = requests.get(f"{host}/api/my/{tenant}/login", params={"return_to": f"/api/pages/{tenant}/my"},
                         allow_redirects=False, timeout=30)
    assert start.status_code == 302, start.text
    pending, _ = cookie_of(start)
    page = requests.get(start.headers["Location"], timeout=30)
    assert page.status_code == 200 and '<label for="email">' in page.text and 'lang="en"' in page.text
    fields = {k: html.unescape(v) for k, v in re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text)}
    posted = requests.post(start.headers["Location"].split("?")[0], data=fields | {"email": email, "name": name},
                           allow_redirects=False, timeout=30)
    assert posted.status_code == 302 and "/api/my/" in posted.headers["Location"], posted.text
    back = requests.get(posted.headers["Location"], headers={"Cookie": f"abonno_session={pending}"},
                        allow_redirects=False, timeout=60)
    assert back.status_code == 302, back.text
    signed_in, _ = cookie_of(back)
    return signed_in, back


def test_sign_in_sets_a_new_httponly_secure_lax_cookie_and_the_session_tells_who(host: str) -> None:
    tenant = f"si{int(time.time())}"
    start = requests.get(f"{host}/api/my/{tenant}/login", params={"return_to": f"/api/pages/{tenant}/my"},
                         allow_redirects=False, timeout=30)
    pending, header = cookie_of(start)
    assert all(flag in header for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/api"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(start.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0] and query["state"][0]
    assert requests.get(f"{host}/api/my/{tenant}/session", headers={"Cookie": f"abonno_session={pending}"},
                        timeout=30).json()["signed_in"] is False  # a sign-in under way is nobody yet

    cookie, back = sign_in(host, tenant, "ada@example.com")
    assert back.headers["Location"] == f"/api/pages/{tenant}/my"
    assert cookie != pending and all(f in back.headers["Set-Cookie"] for f in ("HttpOnly", "Secure", "SameSite=Lax"))
    me = requests.get(f"{host}/api/my/{tenant}/session", headers={"Cookie": f"abonno_session={cookie}"}, timeout=30)
    body = me.json()
    assert me.status_code == 200 and me.headers["Cache-Control"] == "no-store"
    assert (body["signed_in"], body["email"], body["name"], body["subscribers"]) == (
        True, "ada@example.com", "Ada Lovelace", [])
    assert body["csrf"] and len(body["csrf"]) >= 24
    fixed = requests.get(f"{host}/api/my/{tenant}/session", headers={"Cookie": f"abonno_session={pending}"},
                         timeout=30).json()
    assert fixed["signed_in"] is False  # the cookie from before sign-in is worth nothing after it


def test_the_callback_replayed_or_without_the_flow_signs_nobody_in(host: str) -> None:
    tenant = f"sr{int(time.time())}"
    sign_in(host, tenant, "bob@example.com")
    replay = requests.get(f"{host}/api/my/{tenant}/auth?code=x&state=y", allow_redirects=False, timeout=30)
    assert replay.status_code == 400 and "Set-Cookie" not in replay.headers


def test_changes_with_the_cookie_need_the_csrf_token_and_logout_ends_the_session(host: str) -> None:
    tenant = f"sc{int(time.time())}"
    cookie, _ = sign_in(host, tenant, "cy@example.com")
    jar = {"Cookie": f"abonno_session={cookie}"}
    csrf = requests.get(f"{host}/api/my/{tenant}/session", headers=jar, timeout=30).json()["csrf"]
    no_token = requests.post(f"{host}/api/my/{tenant}/links", json={"email": "cy@example.com"}, headers=jar, timeout=30)
    wrong = requests.post(f"{host}/api/my/{tenant}/links", json={"email": "cy@example.com"},
                          headers=jar | {"X-CSRF-Token": csrf[:-1] + "x"}, timeout=30)
    assert (no_token.status_code, wrong.status_code) == (403, 403)
    sent = requests.post(f"{host}/api/my/{tenant}/links", json={"email": "cy@example.com"},
                         headers=jar | {"X-CSRF-Token": csrf}, timeout=30)
    assert sent.status_code == 202 and sent.json() == {"status": "sent"}
    assert requests.post(f"{host}/api/my/{tenant}/logout", headers=jar, timeout=30).status_code == 403
    out = requests.post(f"{host}/api/my/{tenant}/logout", headers=jar | {"X-CSRF-Token": csrf}, timeout=30)
    assert out.status_code == 204 and "Max-Age=0" in out.headers["Set-Cookie"]
    after = requests.get(f"{host}/api/my/{tenant}/session", headers=jar, timeout=30).json()
    assert after["signed_in"] is False


def test_return_to_is_only_ever_a_path_of_ours(host: str) -> None:
    tenant = f"st{int(time.time())}"
    for evil in ("https://evil.example/", "//evil.example/api/", "/api/../../x", "/\\evil.example", "javascript:x"):
        start = requests.get(f"{host}/api/my/{tenant}/login", params={"return_to": evil}, allow_redirects=False,
                             timeout=30)
        assert start.status_code == 302
        pending, _ = cookie_of(start)
        page = requests.get(start.headers["Location"], timeout=30)
        fields = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
        fields = {k: html.unescape(v) for k, v in fields.items()}
        posted = requests.post(start.headers["Location"].split("?")[0], data=fields | {"email": "e@example.com"},
                               allow_redirects=False, timeout=30)
        back = requests.get(posted.headers["Location"], headers={"Cookie": f"abonno_session={pending}"},
                            allow_redirects=False, timeout=60)
        assert back.headers["Location"] == f"/api/pages/{tenant}/my", evil
