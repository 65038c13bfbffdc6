"""A fake of the print house's files (``shared.ports.PrintFiles``): in memory, each file
appearing whole when written (``open`` keeps nothing if its block raises), and a count
of the writes, so a test can see that a second run of a day wrote nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import BinaryIO

from .faults import Faults


class FakePrintFiles(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}
        self.types: dict[str, str] = {}
        self.writes = 0

    @staticmethod
    def name(tenant: str, day: date, name: str) -> str:
        return f"{tenant}/{day.isoformat()}/{name}"

    def get(self, tenant: str, day: date, name: str) -> bytes | None:
        self.fault("get", name)
        return self.files.get(self.name(tenant, day, name))

    def put(self, tenant: str, day: date, name: str, data: bytes, content_type: str) -> None:
        self.fault("put", name)
        self._keep(self.name(tenant, day, name), data, content_type)

    @contextmanager
    def open(self, tenant: str, day: date, name: str, content_type: str) -> Iterator[BinaryIO]:
        self.fault("open", name)
        out = io.BytesIO()
        yield out
        self._keep(self.name(tenant, day, name), out.getvalue(), content_type)

    def _keep(self, key: str, data: bytes, content_type: str) -> None:
        self.files[key] = data
        self.types[key] = content_type
        self.writes += 1
