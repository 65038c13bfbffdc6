"""Test fixtures: one Azurite for the session (started here; if it cannot start, every
storage test errors loudly), and a fresh tenant per test so tests never share data.

``ctx`` is the context on Azurite; ``rails`` serves the app on a local host with the payment
providers' simulators, ``ctx`` pointed at them. A test marked ``@pytest.mark.fakes`` runs twice, with
``ctx`` on Azurite and on the in-memory fakes of ``tests/fakes`` (``-k in_memory`` runs only
the second: no Azurite is started for it); ``fake_ctx`` is the fakes' context alone."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest

from devhost import issuer
from devhost.azurite import Azurite
from devhost.builders import install_catalogue, oslo_morning
from devhost.mailbox import Mailbox
from shared import bootstrap
from shared.adapters.bus import QUEUES
from shared.bootstrap import AzureContext
from shared.clock import SettableClock
from shared.service.context import Context
from tests.fakes import FakeContext, fake_context

if TYPE_CHECKING:
    from devhost.host import LocalHost
    from devhost.providers import Simulators

BACKENDS = ("azurite", "in_memory")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fakes: also run the test with ctx on the in-memory fakes (tests/fakes)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("fakes") and "ctx" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session", autouse=True)
def dev_identity(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The development issuer's keys and every tenant's identity settings, set before the
    first test of the run: the app caches its authenticators when first asked, so a test on
    the fakes that asks first (a group invitation, say) must see the settings the rest see."""
    os.environ["ABONNO_DEV_DIR"] = str(tmp_path_factory.mktemp("abonno-dev"))
    issuer.configure_environment()


@pytest.fixture(scope="session")
def azurite(dev_identity: None, smtp_server: Mailbox) -> Iterator[Azurite]:
    """Azurite, and (``smtp_server``) the SMTP server every context built on it mails to."""
    server = Azurite.start(in_memory=True)  # raises AzuriteError: no skipping
    os.environ["AzureWebJobsStorage"] = server.connection_string
    os.environ["ABONNO_CLOCK"] = "settable"
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    """One real SMTP server (aiosmtpd) for the session: every context the tests build sends
    its mail there (``ABONNO_SMTP_HOST``/``PORT``); tests read the mails back by tenant."""
    box = Mailbox().up()
    os.environ["ABONNO_SMTP_HOST"], os.environ["ABONNO_SMTP_PORT"] = "127.0.0.1", str(box.port)
    yield box
    box.down()


@pytest.fixture
def mailbox(smtp_server: Mailbox) -> Iterator[Mailbox]:
    """The session's SMTP server, up, refusing nobody; as a test left it, put right after."""
    smtp_server.refuse.clear()
    smtp_server.up()
    yield smtp_server
    smtp_server.refuse.clear()
    smtp_server.up()


def make_context(conn: str, clock: SettableClock, pool_size: int = 64) -> AzureContext:
    """A Context on Azurite with tables and queues made (the composition root's ``connect``)."""
    return bootstrap.connect(conn, clock, pool_size)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(oslo_morning(date(2026, 1, 5)))


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Where ``ctx`` lives: Azurite, or (for a test marked ``fakes``) each in turn."""
    return str(getattr(request, "param", "azurite"))


@pytest.fixture
def fake_ctx(clock: SettableClock) -> Iterator[FakeContext]:
    """Every port on its in-memory fake, wired in as the app's context and notifier."""
    context = fake_context(clock)
    bootstrap.set_context(context)
    bootstrap.set_notifier(context.notifier)
    yield context
    bootstrap.set_context(None)
    bootstrap.set_notifier(None)


@pytest.fixture
def ctx(backend: str, request: pytest.FixtureRequest, clock: SettableClock) -> Iterator[Context]:
    if backend == "in_memory":
        yield request.getfixturevalue("fake_ctx")
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    context = make_context(azurite.connection_string, clock)
    for queue in QUEUES:  # no test sees messages another test left behind
        context.bus.service.get_queue_client(queue).clear_messages()  # type: ignore[attr-defined]
    bootstrap.set_context(context)
    yield context
    bootstrap.set_context(None)


@pytest.fixture
def tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def shop(ctx: Context, tenant: str) -> str:
    """A tenant with the demo newspaper catalogue installed; returns the tenant id."""
    install_catalogue(ctx, tenant)
    return tenant


@dataclass
class Rails:
    """The app served by a local host in this process, with the payment providers' simulators
    on the test's clock: ``ctx``'s Vipps and Swedbank Pay adapters talk HTTP to them, their
    webhooks and callbacks come to ``url`` signed as in Azure, ``tick`` runs days as ``abonno
    tick`` does (the providers' batch, the timers, the queues)."""

    host: LocalHost
    sims: Simulators
    url: str

    def tick(self, to: date) -> dict[str, Any]:
        return self.host.tick(to)

    def drain(self) -> int:
        """Let the providers' deliveries arrive, then run the queues until idle."""
        self.sims.settle()
        return self.host.drain()


@pytest.fixture
def rails(ctx: Context, clock: SettableClock, azurite: Azurite) -> Iterator[Rails]:
    from devhost.host import LocalHost
    from devhost.providers import start_simulators

    host = LocalHost(clock, azurite.connection_string)
    server = host.serve(0)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    sims = start_simulators(clock, url)
    sims.wire(ctx, settings=False)
    host.providers = sims
    host.daily.append(sims.process)
    yield Rails(host, sims, url)
    sims.stop()
    host.shutdown()
