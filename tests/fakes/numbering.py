"""In-memory invoice and subscriber numbering with the adapter's guarantees: a series is
gapless (issued and free numbers are exactly ``1 .. next - 1``), a claim key keeps its
number until it is released, released numbers are handed out again lowest first, and a
void claim is never handed to anyone (a claimer meeting one waits for its release to end,
and takes a new number only if it stays void ``RELEASE_WAIT_S``)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.adapters.numbering import RELEASE_POLL_S, RELEASE_WAIT_S
from shared.ports import NumberClaim

from .faults import Faults

_tags = itertools.count(1)


def _tag() -> str:
    return f'W/"claim-{next(_tags)}"'


@dataclass
class _Row:
    number: int
    etag: str
    claimed: int
    void: bool = False
    voided: int = 0


@dataclass
class _Series:
    next: int = 1
    free: list[int] = field(default_factory=list)
    claims: dict[str, _Row] = field(default_factory=dict)


class FakeInvoiceNumbers(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.series: dict[str, _Series] = {}
        self._lock = threading.Lock()

    def _of(self, pk: str) -> _Series:
        return self.series.setdefault(pk, _Series())

    def claim(self, pk: str, keys: Sequence[str]) -> dict[str, int]:
        self.fault("claim")
        met = time.monotonic()
        while True:
            with self._lock:
                s, now = self._of(pk), int(time.time())
                mid_release = [k for k in keys if (row := s.claims.get(k)) is not None and row.void]
                if not mid_release or time.monotonic() - met >= RELEASE_WAIT_S:
                    return self._claim(s, keys, now)
            time.sleep(RELEASE_POLL_S)  # a release under way: it restores the number or frees it

    def _claim(self, s: _Series, keys: Sequence[str], now: int) -> dict[str, int]:
        found: dict[str, int] = {}
        for key in dict.fromkeys(keys):
            row = s.claims.get(key)
            if row is not None and not row.void:
                found[key] = row.number
                continue
            if s.free:
                number = s.free.pop(0)
            else:
                number, s.next = s.next, s.next + 1
            s.claims[key] = _Row(number, _tag(), now)
            found[key] = number
        return found

    def claims(self, pk: str, older_than: float | None = None) -> dict[str, int]:
        with self._lock:
            return {k: r.number for k, r in self._of(pk).claims.items()
                    if not r.void and (older_than is None or r.claimed < older_than)}

    def stale_voids(self, pk: str, older_than: float) -> dict[str, NumberClaim]:
        with self._lock:
            return {k: NumberClaim(r.number, True, r.etag) for k, r in self._of(pk).claims.items()
                    if r.void and (r.voided or r.claimed) < older_than}

    def free_numbers(self, pk: str) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._of(pk).free)

    def void(self, pk: str, held: Mapping[str, int]) -> dict[str, NumberClaim]:
        self.fault("void")
        with self._lock:
            voided: dict[str, NumberClaim] = {}
            for key, number in held.items():
                row = self._of(pk).claims.get(key)
                if row is None or row.void or row.number != number:
                    continue
                row.void, row.voided, row.etag = True, int(time.time()), _tag()
                voided[key] = NumberClaim(row.number, True, row.etag)
            return voided

    def restore(self, pk: str, voided: Mapping[str, NumberClaim]) -> None:
        with self._lock:
            for key, claim in voided.items():
                row = self._of(pk).claims.get(key)
                if row is not None and row.etag == claim.etag:  # else a claimer replaced it: its own now
                    row.void, row.voided, row.claimed, row.etag = False, 0, int(time.time()), _tag()

    def free(self, pk: str, voided: Mapping[str, NumberClaim]) -> None:
        self.fault("free")
        with self._lock:
            s = self._of(pk)
            numbers = {c.number for k, c in voided.items() if k in s.claims}  # gone: freed by someone else
            for key, claim in voided.items():
                if key in s.claims and s.claims[key].etag == claim.etag:
                    del s.claims[key]
            free, top = {*s.free, *numbers}, s.next
            while top - 1 in free:  # released numbers at the top: the counter steps back instead
                top -= 1
                free.discard(top)
            s.free, s.next = sorted(free), top


class FakeSubscriberNumbers:
    """Customer numbers from 1000, increasing per tenant (the adapter's first number)."""

    def __init__(self, first: int = 1000) -> None:
        self.first = first
        self.issued: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, tenant: str) -> int:
        with self._lock:
            number = self.issued.get(tenant, self.first - 1) + 1
            self.issued[tenant] = number
            return number
