"""Payments in (P1, P2, P4, P5): bank files imported, every record accounted for exactly once.

Importing a bank file:

1. the file is read (``formats.payments.read_bank_file``): its format told by the content,
   its control totals checked; a file that cannot be read is refused whole;
2. the transmission's identity (what the bank guarantees: Nets data sender and
   transmission number, BgMax bankgiro and creation time) is taken once per tenant with
   the digest of the decoded, line-ending-normalised content: the same transmission again
   (any encoding or line ending) books nothing and is reported as a duplicate; the same
   identity with other content is refused;
3. each record is identified: the organisation by the account paid to and the currency,
   the subscriber and demand by the KID decoded with that organisation's scheme. Payments
   are booked per subscriber in one transaction each (``account.receive_payment``);
   reversals are booked against the payment they take back (``account.reverse_payment``);
   whatever cannot be identified, every deduction and every unreadable record goes to
   *requires processing* with its reason and raw line;
4. an import report (``domain.import_report``) says where each record landed, per
   currency, and checks that against the file's control totals; it is stored, served by
   the merchant API and logged.

Idempotent and crash-safe: a payment's id is the transmission's identity plus the
record's position in the file, and its row is *created* in the subscriber's partition,
so an import that died half-way, run again, books only what is missing.

The use cases, by concern:

- ``intake``: the blob trigger's ``receive_bank_file`` (quarantine, rejection, attempts);
- ``bank_file``: ``import_bank_file``: identify each record, book it, set it aside or put
  it to approval, and report where it landed;
- ``identification``: ``identify``: the organisation by account and currency, the
  subscriber and demand by the KID;
- ``booking``: booking onto a subscriber's ledger (payments, reversals, mandates);
- ``desk``: customer service's lists: ``requires_processing`` and ``resolve``,
  ``awaiting_approval`` and ``approve``;
- ``manual``: ``register_payment`` and ``book_refund`` by hand, ``search`` over booked
  payments.

The records awaiting approval or set aside live in the payments inbox
(``ports.PaymentsInboxPort``, ``ctx.inbox``); transmissions, reports and attempts in the
import log (``ctx.imports``).
"""

from .bank_file import TransmissionConflict, import_bank_file
from .booking import book
from .desk import approve, awaiting_approval, requires_processing, resolve
from .identification import identify
from .intake import receive_bank_file
from .manual import ImportResult, PaymentRefused, book_refund, register_payment, search

__all__ = ["ImportResult", "PaymentRefused", "TransmissionConflict", "approve", "awaiting_approval", "book",
           "book_refund", "identify", "import_bank_file", "receive_bank_file", "register_payment",
           "requires_processing", "resolve", "search"]
