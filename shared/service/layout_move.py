"""Moving a tenant from layout 2 (a partition per subscriber) to layout 3 (bucket
partitions) while it runs: ``abonno layout --move`` (issue 13, decision 0012).

The protocol (the accounts adapter reads a tenant under way this way):

1. **Announce.** The tenant's layout becomes 3 with ``moving`` set; then the move waits
   ``wait_s`` (the layouts' cache time and some) so no process still creates subscribers in
   the first shape. New subscribers start in buckets from then on.
2. **Move each subscriber** (each partition of the first shape): read it whole; if its head
   says ``Moved`` and its bucket head exists, it is done (so a move can be run again, and
   resumed after it died anywhere). Else fence it (``Moved`` merged into the head under its
   ETag: a writer that loaded before now conflicts, reloads and is sent to the bucket; a
   conflict here means a writer got in first: read again), read it again (frozen now), copy
   every row but the head into the bucket (history first), read the copy back and compare
   rows and money per kind. Equal: create the bucket head last (its existence is "here
   now"). Not equal: the copy is deleted and the fence lifted, so the subscriber stays
   where it was, and the move fails loudly (stderr, report, exit code).
3. **Catch up** rows written outside the head's guard (the delivery log) to a partition
   after its copy was read: carried over at the end of the pass.
4. **Again** until a pass finds nothing to move, then **verify** every subscriber (moved,
   head present, every history row in the bucket with the same ``Body``); when it passes
   the layout becomes 3 for good (no more looking in the first shape).

The report (counts and sums per row kind per subscriber, before and after, and the run's
totals) is stored with ``LayoutRows.store_report``; one mover at a time holds the tenant's
lease.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from ..adapters.accounts import HEAD, Place
from ..adapters.layout_rows import FirstShape, LayoutRows, Tally, new_run, tally
from ..adapters.layouts import TTL_S, Layouts
from ..domain.placement import BUCKET_SIZE, MAX_BUCKET_SIZE, STRIDE, Layout
from ..ports import ConcurrencyConflict

MAX_PASSES = 5
WORKERS = 8  # subscribers moved at once
FENCE_ATTEMPTS = 20


class MoveRefused(Exception):
    """The move cannot start as asked (another bucket size under way, another mover)."""


@dataclass
class Moved:
    """What the move did with one subscriber."""

    subscriber: int
    status: str  # moved | already | failed
    before: Tally
    after: Tally
    carried: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"subscriber": self.subscriber, "status": self.status, "carried": self.carried,
                "before": {k: list(v) for k, v in self.before.items()},
                "after": {k: list(v) for k, v in self.after.items()}}


@dataclass
class Verified:
    subscribers: int = 0
    history_rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class MoveReport:
    tenant: str
    run: str
    layout: Layout
    by_subscriber: dict[int, Moved] = field(default_factory=dict)
    passes: int = 0
    verified: Verified | None = None

    @property
    def subscribers(self) -> list[Moved]:
        return [self.by_subscriber[n] for n in sorted(self.by_subscriber)]

    def count(self, status: str) -> int:
        return sum(1 for s in self.subscribers if s.status == status)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0 and self.verified is not None and self.verified.ok

    def totals(self) -> dict[str, Any]:
        before: dict[str, list[int]] = {}
        after: dict[str, list[int]] = {}
        for s in self.subscribers:
            if s.status == "moved":
                _add(before, s.before)
                _add(after, s.after)
        return {"tenant": self.tenant, "run": self.run, "layout": self.layout.version,
                "bucket_size": self.layout.bucket_size, "stride": self.layout.stride,
                "moving": self.layout.moving, "passes": self.passes, "moved": self.count("moved"),
                "already": self.count("already"), "failed": self.count("failed"),
                "carried": sum(s.carried for s in self.subscribers),
                "before": before, "after": after,
                "verified": None if self.verified is None else {
                    "subscribers": self.verified.subscribers, "history_rows": self.verified.history_rows,
                    "problems": self.verified.problems[:100], "ok": self.verified.ok},
                "ok": self.ok}


def _add(into: dict[str, list[int]], t: Tally) -> None:
    for k, v in t.items():
        acc = into.setdefault(k, [0, 0, 0])
        for i in range(3):
            acc[i] += v[i]


def status(rows: LayoutRows, layouts: Layouts, tenant: str) -> dict[str, Any]:
    """The tenant's layout, its partitions of the first shape (moved or not) and its last run."""
    layouts.forget(tenant)
    layout = layouts.get(tenant)
    with ThreadPoolExecutor(WORKERS) as pool:
        moved = list(pool.map(rows.moved, rows.first_shape(tenant)))
    reports = rows.reports(tenant)
    return {"tenant": tenant, "layout": layout.version, "bucket_size": layout.bucket_size, "stride": layout.stride,
            "moving": layout.moving, "first_shape_partitions": len(moved),
            "moved": sum(moved), "left": len(moved) - sum(moved), "last_run": reports[-1] if reports else None}


def move(rows: LayoutRows, layouts: Layouts, tenant: str, bucket_size: int | None = None,
         wait_s: float | None = None, progress: Callable[[str], None] = lambda _: None,
         sleep: Callable[[float], None] = time.sleep, workers: int = WORKERS) -> MoveReport:
    """Move the tenant to buckets (see the module doc); the report is stored before it returns,
    also when a subscriber failed (the layout then stays ``moving``; run the move again)."""
    if wait_s is not None and not (math.isfinite(wait_s) and wait_s >= 0):  # sleep() would raise once announced
        raise MoveRefused(f"wait {wait_s}: a number of seconds, 0 or more")
    layouts.forget(tenant)
    current = layouts.get(tenant)
    target = _target(current, bucket_size)
    try:
        lease = rows.lease(tenant, f"mover-{uuid.uuid4().hex[:8]}")
    except ConcurrencyConflict as held:
        raise MoveRefused(str(held)) from held
    report = MoveReport(tenant, new_run(), target)
    try:
        if current != replace(target, moving=False):  # not in buckets for good yet: announce, then wait
            layouts.set(tenant, target)
            pause = TTL_S + 5 if wait_s is None else wait_s
            progress(f"{tenant}: layout 3 (buckets of {target.bucket_size}) announced; waiting {pause:.0f} s")
            sleep(pause)
        while report.passes < MAX_PASSES:
            report.passes += 1
            done = _pass(rows, tenant, target, report, progress, lease.renew, workers)
            if done == 0:
                break
        report.verified = verify(rows, layouts, tenant, target)
        if report.ok:
            report.layout = replace(target, moving=False)
            layouts.set(tenant, report.layout)
        progress(f"{tenant}: moved {report.count('moved')}, already {report.count('already')}, "
                 f"failed {report.count('failed')}, verify {'ok' if report.verified.ok else 'FAILED'}; "
                 f"layout {report.layout.version}{' (moving)' if report.layout.moving else ''}")
    finally:
        rows.store_report(tenant, report.run, report.totals(), [s.as_json() for s in report.subscribers])
        lease.release()
    return report


def _target(current: Layout, bucket_size: int | None) -> Layout:
    if current.bucketed and bucket_size not in (None, current.bucket_size):
        raise MoveRefused(f"the tenant is in buckets of {current.bucket_size} already; "
                          f"--bucket-size {bucket_size} would put subscribers elsewhere")
    if current.bucketed:
        return replace(current, moving=True)
    if bucket_size is not None and not 1 <= bucket_size <= MAX_BUCKET_SIZE:  # 0 is not "the default"
        raise MoveRefused(f"bucket size {bucket_size}: 1-{MAX_BUCKET_SIZE}")
    return Layout(3, BUCKET_SIZE if bucket_size is None else bucket_size, STRIDE, moving=True)


def _pass(rows: LayoutRows, tenant: str, layout: Layout, report: MoveReport, progress: Callable[[str], None],
          renew: Callable[[], None], workers: int) -> int:
    """One pass over the first shape, ``workers`` subscribers at a time; how many it moved."""
    keys = rows.first_shape(tenant)
    progress(f"{tenant}: pass {report.passes}: {len(keys)} partitions of the first shape")
    frozen: list[tuple[FirstShape, Place, dict[str, str], Moved]] = []
    acted = 0
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for i, outcome in enumerate(pool.map(lambda pk: move_one(rows, tenant, layout, pk), keys), start=1):
            renew()
            if i % 100 == 0:
                progress(f"{tenant}: pass {report.passes}: {i}/{len(keys)}")
            if outcome is None:
                continue
            moved, part, place, etags = outcome
            if moved.status != "already" or moved.subscriber not in report.by_subscriber:
                report.by_subscriber[moved.subscriber] = moved
            if moved.status == "moved":
                acted += 1
                frozen.append((part, place, etags, moved))
            if moved.status == "failed":
                progress(f"{tenant}: subscriber {moved.subscriber} NOT moved: before {moved.before} "
                         f"!= after {moved.after}; it stays in its partition")
        carried = pool.map(lambda f: rows.catch_up(f[0], f[1], f[2]), frozen)
        for (*_, moved), n in zip(frozen, carried, strict=True):
            moved.carried = n
    return acted


def move_one(rows: LayoutRows, tenant: str, layout: Layout, pk: str
             ) -> tuple[Moved, FirstShape, Place, dict[str, str]] | None:
    """Steps 2 of the protocol for one partition of the first shape (None: not a subscriber's)."""
    for _ in range(FENCE_ATTEMPTS):
        part = rows.read(pk)
        if part.head is None:
            return None
        place = rows.bucket_place(tenant, part.number, layout)
        if part.moved and rows.bucket_head(place) is not None:
            return Moved(part.number, "already", tally(part.items), {}), part, place, {}
        if not part.moved:
            if not rows.fence(part):
                continue  # a writer got in first
            part = rows.read(pk)  # frozen: every guarded writer now conflicts
        return _copy(rows, part, place)
    raise RuntimeError(f"subscriber of {pk} kept changing; run the move again")


def _copy(rows: LayoutRows, part: FirstShape, place: Place) -> tuple[Moved, FirstShape, Place, dict[str, str]]:
    head = part.head
    assert head is not None
    etags = rows.copy(part.items, place)
    before, after = tally(part.items), tally(rows.read_back(place))
    if before != after:
        rows.remove(place, list(etags))
        rows.unfence(part)
        return Moved(part.number, "failed", before, after), part, place, etags
    rows.write_head(head, place)  # False: another mover wrote it (it holds the same rows)
    return Moved(part.number, "moved", before | {HEAD: (1, 0, 0)}, after | {HEAD: (1, 0, 0)}), part, place, etags


def verify(rows: LayoutRows, layouts: Layouts, tenant: str, layout: Layout | None = None) -> Verified:
    """Every partition of the first shape moved, its subscriber's head in the bucket, and every
    history row there with the same ``Body`` (the bucket may have more: activity since)."""
    if layout is None:
        layouts.forget(tenant)
        layout = layouts.get(tenant)
    found = Verified()
    if not layout.bucketed:
        found.problems.append(f"{tenant} is in layout {layout.version}: nothing moved yet")
        return found
    with ThreadPoolExecutor(WORKERS) as pool:
        for problems, history in pool.map(lambda pk: _verify_one(rows, tenant, layout, pk), rows.first_shape(tenant)):
            found.subscribers += 1
            found.history_rows += history
            found.problems += problems
    return found


def _verify_one(rows: LayoutRows, tenant: str, layout: Layout, pk: str) -> tuple[list[str], int]:
    """One partition of the first shape against its subscriber's bucket: (problems, history rows)."""
    part = rows.read(pk)
    if part.head is None:
        return [f"{pk}: rows without a subscriber row"], 0
    n = part.number
    if not part.moved:
        return [f"subscriber {n}: not moved"], 0
    back = {r["RowKey"]: r for r in rows.read_back(rows.bucket_place(tenant, n, layout))}
    problems = [] if HEAD in back else [f"subscriber {n}: no subscriber row in its bucket"]
    problems += _history_problems(n, part, back)
    return problems, sum(1 for r in part.items if r["RowKey"].startswith("1|"))


def _history_problems(n: int, part: FirstShape, back: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems = []
    for r in part.items:
        if not r["RowKey"].startswith("1|"):
            continue
        there = back.get(r["RowKey"])
        if there is None:
            problems.append(f"subscriber {n}: {r['RowKey']} missing in its bucket")
        elif there.get("Body") != r.get("Body"):
            problems.append(f"subscriber {n}: {r['RowKey']} differs in its bucket")
    return problems
