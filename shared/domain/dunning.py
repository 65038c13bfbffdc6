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
from enum import StrEnum


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
class BalanceInvoiceRule:
    """Manual 7.11: ``days_after_stop`` days after a stop, a subscriber who owes at least
    ``min_owed_minor`` that no invoice or reminder asks for gets one invoice for it."""

    days_after_stop: int = 1
    min_owed_minor: int = 0


class NoticeChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"  # manual 6.19: sent by e-mail instead when the phone number is missing


@dataclass(frozen=True, slots=True)
class Reminder:
    step: int  # 1 for the first reminder
    produced: date
    due_date: date
    fee_minor: int
    amount_minor: int  # what the reminder asks for, fees included
    demand_no: int = 0  # a reminder is a demand of its own, with its own KID
    kid: str = ""


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


def last_due(case: DunningCase) -> date:
    return case.reminders[-1].due_date if case.reminders else case.due_date


def next_reminder_on(steps: tuple[ReminderStep, ...], case: DunningCase) -> date | None:
    done = len(case.reminders)
    if done >= len(steps):
        return None
    when = last_due(case) + timedelta(days=steps[done].delay_days)
    return max(when, case.postponed_to) if case.postponed_to is not None else when


def stop_check_on(steps: tuple[ReminderStep, ...], stop: StopRule | None, case: DunningCase) -> date | None:
    """The day the stop rule looks at this case, once every reminder has been produced."""
    if stop is None or len(case.reminders) < len(steps):
        return None
    return last_due(case) + timedelta(days=stop.delay_days)


def evaluate(steps: tuple[ReminderStep, ...], stop: StopRule | None, consume_partial_payments: bool,
             case: DunningCase, owed_minor: int, today: date) -> Action | None:
    """What dunning does today for this invoice, if anything."""
    if case.open_minor <= 0:
        return None
    done = len(case.reminders)
    when = next_reminder_on(steps, case)
    if when is not None:
        if today < when:
            return None
        step = steps[done]
        fees = sum(r.fee_minor for r in case.reminders) + step.fee_minor
        base = case.open_minor if consume_partial_payments else case.invoice_total_minor
        return IssueReminder(Reminder(done + 1, today, today + timedelta(days=step.min_due_days), step.fee_minor,
                                      base + fees))
    check = stop_check_on(steps, stop, case)
    if stop is None or check is None or today < check:
        return None
    if owed_minor > 0 and owed_minor >= stop.threshold_minor:
        return PaymentStop(stop.cause)
    return None
