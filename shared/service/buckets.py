"""Many subscribers per storage round trip: the batch runner's fast path by partition (issue 13).

A run's batch is grouped by the partition its subscribers live in (``Accounts.partition_of``:
a bucket of up to 64 subscribers in layout 3, a subscriber's own partition in layout 2).
For each group, ``in_partition``:

1. has the group read (``UnitOfWork.read_many``: one query for a bucket's hot rows);
2. runs the pure decision for each subscriber in it, with the invoice numbers claimed for
   the whole message up front (or claimed by the decision itself);
3. writes the indexes the runs need ahead of the commit (the next dunning visits in one
   write per day); a write that fails holds back only the subscribers it was for;
4. commits every subscriber's changes in as few entity-group transactions as the 100-row
   and 4 MiB limits allow (``Accounts.commit_many``), each subscriber's rows whole in one.

Concurrency stays per subscriber: each commit is guarded by the subscriber's own head row
ETag. A transaction refused for one subscriber is sent again without it; that subscriber
is *conflicted* and the caller redoes it alone (``UnitOfWork.change``, with retries), as it
does every subscriber whose decision or commit *failed* (``isolation.settle``). A decision
that wants more than one transaction (``parts``) has its first committed here and goes on
alone (``more``). So one subscriber never loses or delays the others' work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..domain.account import Changes
from ..domain.dunning_visit import next_visit
from ..ports import ConcurrencyConflict, Loaded
from .access import marked
from .context import Context
from .unit_of_work import Decision, Seen, UnitOfWork, unchanged_or_new

log = logging.getLogger(__name__)


@dataclass
class PartitionOutcome:
    committed: dict[int, Changes] = field(default_factory=dict)  # subscriber -> what committed here
    conflicted: list[int] = field(default_factory=list)  # its ETag (or a row it creates) refused: redo alone
    failed: dict[int, Exception] = field(default_factory=dict)  # its decision or commit raised
    more: list[int] = field(default_factory=list)  # committed a part; its decision goes on alone
    untouched: list[int] = field(default_factory=list)  # nothing to do


def grouped(ctx: Context, tenant: str, subscribers: Sequence[int]) -> list[list[int]]:
    """``subscribers`` by the partition they live in, partitions in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for n in dict.fromkeys(subscribers):
        groups.setdefault(ctx.accounts.partition_of(tenant, n), []).append(n)
    return list(groups.values())


def in_partition(uow: UnitOfWork, seen: Mapping[int, Seen], decide: Callable[[int], Decision], *,
                 numbers: Mapping[int, Mapping[str, int]] | None = None, parts: int = 1, touch: bool = False,
                 visits: bool = True) -> PartitionOutcome:
    """One partition's subscribers (``seen``, as ``read_many`` gave them): decide each, index,
    commit together (see the module docstring). ``decide(n)``: the decision for subscriber n."""
    out = PartitionOutcome()
    work: list[tuple[Seen, Changes]] = []
    for n, one in seen.items():
        try:
            changes = uow.decide(one, decide(n), None if numbers is None else numbers.get(n, {}))
        except Exception as exc:  # this subscriber's alone
            out.failed[n] = exc
            continue
        work.append((one, changes))
    _index_ahead(uow, work, out, touch=touch, visits=visits)
    commits: list[tuple[Seen, Changes]] = []
    for one, changes in work:
        if one.account.number in out.failed:  # its index was not written: it may not commit
            continue
        if unchanged_or_new(one.loaded, changes):
            out.untouched.append(one.account.number)
            if touch and one.loaded is not None:
                uow.publish(one.loaded.outbox)  # a visit that changes nothing still sends what it found
        else:
            commits.append((one, marked(one.loaded, changes)))
    answers = uow.ctx.accounts.commit_many(uow.tenant, [(one.loaded, changes) for one, changes in commits])
    for (one, changes), answer in zip(commits, answers, strict=True):
        n = one.account.number
        if isinstance(answer, Loaded):
            uow.claims.committed(changes)
            out.committed[n] = changes
            uow.publish([*(one.loaded.outbox if one.loaded else []), *changes.events])
            if parts > 1 and _goes_on(uow, one, answer, decide, n):
                out.more.append(n)
        elif isinstance(answer, ConcurrencyConflict):
            out.conflicted.append(n)
        else:
            out.failed[n] = answer
    return out


def _index_ahead(uow: UnitOfWork, work: list[tuple[Seen, Changes]], out: PartitionOutcome, *, touch: bool,
                 visits: bool) -> None:
    """Write what the runs must find ahead of the commits (``UnitOfWork.index``), each
    subscriber's own write guarded alone, and the next dunning visits of all in one write per
    day. A write that fails fails only the subscribers it was for: they may not commit without
    it; one with nothing to write (nothing to commit, no visit) is not held back by another's."""
    indexed: list[tuple[Seen, Changes]] = []
    for one, changes in work:
        if not touch and unchanged_or_new(one.loaded, changes):
            continue
        try:
            uow.index(one.loaded, changes, visits=False)
        except Exception as exc:  # this subscriber's alone
            out.failed[one.account.number] = exc
            continue
        indexed.append((one, changes))
    if not visits:
        return
    due = [(day, changes.account.number) for _one, changes in indexed
           if (day := next_visit(changes.account, uow.catalogue, uow.today)) is not None]
    if not due:
        return
    try:
        uow.ctx.dunning_index.add_many(uow.tenant, due)
    except Exception as exc:  # one write for them all: none of them may commit
        out.failed |= {n: exc for _day, n in due}


def _goes_on(uow: UnitOfWork, seen: Seen, now: Loaded, decide: Callable[[int], Decision], n: int) -> bool:
    """Whether a decision taken in parts has more to do after what just committed (asked with
    no numbers claimed: the redo alone claims what it needs). Its first part is committed: a
    decision that raises on asking goes on alone too, where its failure is its own, instead
    of failing the partition's subscribers whose work is already done."""
    after = replace(seen, account=now.account, loaded=now, part=1, number=lambda _org, _key: 0)
    try:
        return not unchanged_or_new(now, decide(n)(after))
    except Exception:  # this subscriber's alone: the redo meets it again
        log.warning("%s: subscriber %s: asking what is left failed; it goes on alone", uow.tenant, n, exc_info=True)
        return True
