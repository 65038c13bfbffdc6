"""The browser tests' harness: the app on the local host (Azurite, the payment providers'
simulators, the test clock) and Debian's Chromium driven by Playwright for Python.

Playwright's own browser builds are never downloaded: it launches ``/usr/bin/chromium``
(``scripts/setup.sh`` installs it from Debian's packages). axe-core (npm, pinned in
package.json) is added to every page as an init script, which the pages' strict
Content-Security-Policy does not govern, so the pages are tested with their CSP on.
Screenshots go to ``docs/screenshots/`` (the README shows them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from devhost.azurite import Azurite
from devhost.builders import install_catalogue, oslo_morning
from devhost.demo import logo
from shared import bootstrap
from shared.clock import SettableClock
from shared.service.catalogue import put_logo
from shared.service.context import Context
from tests.conftest import make_context

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
TODAY = date(2026, 1, 5)


@dataclass
class Site:
    """The app served on a free port with a tenant that has the demo catalogue and a logo."""

    url: str
    tenant: str
    ctx: Context
    host: Any
    sims: Any
    clock: SettableClock
    console: list[str] = field(default_factory=list)

    def settle(self) -> None:
        """The providers' webhooks arrive and the queues run until idle."""
        self.sims.settle()
        self.host.drain()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (apt-get install chromium)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(azurite: Azurite) -> Iterator[Site]:
    """The host, as ``abonno host`` runs it: its public URL is where the browser reaches it, so
    My page's sign-in (msal against the development identity provider) redirects there."""
    from devhost.host import LocalHost
    from devhost.providers import start_simulators

    clock = SettableClock(oslo_morning(TODAY))
    ctx = make_context(azurite.connection_string, clock)
    tenant = "browser"
    install_catalogue(ctx, tenant)
    put_logo(ctx, tenant, "avisa", logo(), "image/png")
    host = LocalHost(clock, azurite.connection_string)
    server = host.serve(0)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    before = os.environ.get("ABONNO_PUBLIC_URL")
    os.environ["ABONNO_PUBLIC_URL"] = url
    bootstrap.reset()  # the sign-in is made anew for this public URL
    sims = start_simulators(clock, url)
    sims.wire(ctx, settings=False)
    ctx.public_url = url
    bootstrap.set_context(ctx)
    host.providers = sims
    host.daily.append(sims.process)
    yield Site(url, tenant, ctx, host, sims, clock)
    sims.stop()
    host.shutdown()
    if before is None:
        os.environ.pop("ABONNO_PUBLIC_URL", None)
    else:
        os.environ["ABONNO_PUBLIC_URL"] = before
    bootstrap.reset()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(locale="nb-NO", viewport={"width": 900, "height": 1000}, accept_downloads=True)
    made.add_init_script(path=str(AXE))
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab that records what the console says: a CSP violation or a script error fails the test."""
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: problems.append(str(e)))
    yield opened
    refused = [p for p in problems if "Content Security Policy" in p or "Uncaught" in p or "Error" in p]
    assert not refused, refused


def accessibility(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA violations of the page as it is now (rule id, impact, nodes)."""
    result = page.evaluate("""async () => {
        const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
        const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}));
    }""")
    return list(result)


def assert_accessible(page: Page) -> None:
    violations = accessibility(page)
    assert violations == [], json.dumps(violations, indent=1)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
