"""Dunning: when a reminder is due, for how much, and when a payment stop is (D1, D2;
manual 7.7 "Payment stop", 7.9 "Reminders", 7.19 "Dunning process", steps 3 and 5).

State is data and ``evaluate(process, case, owed, today)`` is pure (Kill Bill's overdue
module): run it twice for the same day and it says the same thing, so the dunning
timer is idempotent once the action it returned has been recorded.

* Reminder *k* is produced ``delay`` days after the due date of what came before it
  (the invoice for the first, reminder *k-1* for the next: "the delay of the second
  reminder follows minimum due days of the first one"), and falls due ``min_due_days``
  after it is produced. A postponed reminder waits for its new date.
* Its amount is what direct payments left unpaid of the invoice ("Direct payments will
  exclusively decrease reminder amount and no other form of credits or corrections"),
  or the whole invoice when the process does not consume partial payments, plus the
  fees of this and every earlier reminder ("the fee will accumulate").
* After the last reminder's due date (or the invoice's, without reminders) and the stop
  rule's delay, a subscriber who owes at least the threshold, and more than nothing, is
  payment-stopped ("Billing plan + Dunning process + Payment stopdate").
* Without a dunning process there are no reminders and no stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class ReminderStep:
    delay_days: int
    min_due_days: int
    fee_minor: int = 0


@dataclass(frozen=True, slots=True)
class StopRule:
    delay_days: int
    threshold_minor: int
    cause: str = "Stopped due to lack of payment"


@dataclass(frozen=True, slots=True)
class Reminder:
    step: int  # 1 for the first reminder
    produced: date
    due_date: date
    fee_minor: int
    amount_minor: int  # what the reminder asks for, fees included


@dataclass(frozen=True, slots=True)
class DunningCase:
    """One unpaid invoice and what dunning has done about it."""

    invoice_total_minor: int
    open_minor: int  # unpaid after direct payments
    due_date: date
    reminders: tuple[Reminder, ...] = ()
    postponed_to: date | None = None  # of the next reminder (manual 7.9 "Postpone reminder")


@dataclass(frozen=True, slots=True)
class IssueReminder:
    reminder: Reminder


@dataclass(frozen=True, slots=True)
class PaymentStop:
    cause: str


Action = IssueReminder | PaymentStop


def evaluate(steps: tuple[ReminderStep, ...], stop: StopRule | None, consume_partial_payments: bool,
             case: DunningCase, owed_minor: int, today: date) -> Action | None:
    """What dunning does today for this invoice, if anything."""
    if case.open_minor <= 0:
        return None
    done = len(case.reminders)
    last_due = case.reminders[-1].due_date if case.reminders else case.due_date
    if done < len(steps):
        step = steps[done]
        when = last_due + timedelta(days=step.delay_days)
        if case.postponed_to is not None:
            when = max(when, case.postponed_to)
        if today < when:
            return None
        fees = sum(r.fee_minor for r in case.reminders) + step.fee_minor
        base = case.open_minor if consume_partial_payments else case.invoice_total_minor
        return IssueReminder(Reminder(done + 1, today, today + timedelta(days=step.min_due_days), step.fee_minor,
                                      base + fees))
    if stop is None or today < last_due + timedelta(days=stop.delay_days):
        return None
    if owed_minor > 0 and owed_minor >= stop.threshold_minor:
        return PaymentStop(stop.cause)
    return None
