"""CORS in the browser that enforces it: a page on one of the organisation's sites asks the
access API for the reader's products with a bearer token (a cross-origin call with an
Authorization header, so Chromium sends a preflight first) and reads the answer; the same
script on a site the organisation did not configure gets nothing (the browser refuses).

The publisher's sites are two small HTTP servers on loopback, reached as ``localhost`` while
the app is reached as ``127.0.0.1``: other origins, on loopback, so no network rule but CORS
is in play."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playwright.sync_api import Page

from devhost import issuer
from shared.service.catalogue import put_item
from tests.browser.conftest import Site

ASK = """async ([url, token]) => {
    try {
        const r = await fetch(url, {headers: {Authorization: 'Bearer ' + token}});
        return {status: r.status, body: await r.json()};
    } catch (e) {
        return {refused: String(e)};
    }
}"""


class Article(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><html lang='nb'><title>Avisa</title><p>Avisa</p></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def publisher_site() -> Iterator[str]:
    """A publisher's web site on a free loopback port: its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Article)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_only_the_organisation_s_own_sites_read_the_access_api(site: Site, page: Page) -> None:
    url = f"{site.url}/api/access/{site.tenant}/me"
    token = issuer.subscriber_token(site.tenant, "reader-1", email="reader-1@example.no")
    with publisher_site() as allowed, publisher_site() as other:
        org = site.ctx.catalogue.get(site.tenant).organizations["avisa"]
        put_item(site.ctx, site.tenant, "organization", replace(org, origins=(allowed,)))
        page.goto(f"{allowed}/artikkel")
        answer = page.evaluate(ASK, [url, token])
        assert answer.get("status") == 200, answer
        assert answer["body"]["products"] == [] and "as_of" in answer["body"]  # linked to nothing: no products

        page.goto(f"{other}/artikkel")
        refused = page.evaluate(ASK, [url, token])
        assert "refused" in refused and "status" not in refused, refused
