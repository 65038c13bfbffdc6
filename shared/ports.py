"""What the service layer needs from the world, and the errors it must understand.

The use cases speak to storage, the bus and notifiers through these; the adapters in
``shared/adapters`` implement them against Azure (and tests may supply their own). The
errors live here, beside the ports, so a use case never imports an adapter to learn
what went wrong, and an adapter raises them without importing the service layer.
"""

from __future__ import annotations


class ConcurrencyConflict(Exception):
    """Someone else changed the partition since it was read (ETag mismatch or insert race)."""


class NotFound(LookupError):
    """What a call names does not exist (a subscriber, an invoice, a report)."""
