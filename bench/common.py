"""Shared by the benchmarks: a private Azurite, a context on it, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any

from devhost.azurite import Azurite
from shared.adapters.bus import StorageQueueBus
from shared.adapters.tables import Storage
from shared.clock import SettableClock
from shared.service.context import Context


def context(azurite: Azurite, clock: SettableClock) -> Context:
    storage = Storage.from_connection_string(azurite.connection_string, pool_size=128)
    storage.ensure_tables()
    bus = StorageQueueBus.from_connection_string(azurite.connection_string)
    bus.ensure_queues()
    return Context.build(storage, clock, bus)


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
