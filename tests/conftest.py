"""Test fixtures: one Azurite for the session (started here; if it cannot start, every
storage test errors loudly), and a fresh tenant per test so tests never share data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date

import pytest

from devhost import issuer
from devhost.azurite import Azurite
from devhost.builders import install_catalogue, oslo_morning
from shared import bootstrap
from shared.adapters.bus import QUEUES, StorageQueueBus
from shared.adapters.tables import Storage
from shared.clock import SettableClock
from shared.service.context import Context


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    os.environ["ABONNO_DEV_DIR"] = str(tmp_path_factory.mktemp("abonno-dev"))
    server = Azurite.start(in_memory=True)  # raises AzuriteError: no skipping
    os.environ["AzureWebJobsStorage"] = server.connection_string
    os.environ["ABONNO_CLOCK"] = "settable"
    issuer.configure_environment()
    yield server
    server.stop()


def make_context(conn: str, clock: SettableClock, pool_size: int = 64) -> Context:
    """A Context on Azurite with tables and queues made (tests and benchmarks)."""
    storage = Storage.from_connection_string(conn, pool_size=pool_size)
    storage.ensure_tables()
    bus = StorageQueueBus.from_connection_string(conn)
    bus.ensure_queues()
    return Context.build(storage, clock, bus)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(oslo_morning(date(2026, 1, 5)))


@pytest.fixture
def ctx(azurite: Azurite, clock: SettableClock) -> Iterator[Context]:
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
