"""Shared by the benchmarks: a private Azurite, a context on it, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any

from devhost.azurite import Azurite
from shared.clock import SettableClock
from shared.service.context import Context
from tests.conftest import make_context


def context(azurite: Azurite, clock: SettableClock) -> Context:
    return make_context(azurite.connection_string, clock, pool_size=128)


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
