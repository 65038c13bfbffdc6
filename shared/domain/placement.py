"""Where a subscriber's rows live: the tenant's storage layout (issue 13, decision 0012).

Two layouts of table ``Subscribers``:

* **2**, a partition per subscriber (the first shape, decision 0001);
* **3**, bucket partitions: a tenant's subscribers spread over buckets of at most
  ``bucket_size`` subscribers, so one query reads the hot rows of a whole bucket and one
  entity-group transaction of up to 100 rows commits the work of many subscribers.

The bucket is a stable function of the subscriber number alone. Numbers are dealt out
``stride`` at a time, like cards: ``n`` goes to bucket ``n mod stride`` of its block of
``bucket_size * stride`` numbers. So consecutive numbers (a burst of orders) land in
``stride`` different buckets, and no bucket ever holds more than ``bucket_size``
subscribers, however large the tenant grows::

    >>> layout = Layout(3, bucket_size=4, stride=2)
    >>> [layout.bucket(n) for n in range(10)]
    [0, 1, 0, 1, 0, 1, 0, 1, 2, 3]
    >>> layout.members(1)
    (1, 3, 5, 7)

``moving``: the tenant is being moved from layout 2 to 3 (``abonno layout``): new
subscribers start in buckets, and a subscriber is looked for in its bucket first, then
in its own partition of the first shape.
"""

from __future__ import annotations

from dataclasses import dataclass

BUCKET_SIZE = 64  # measured: docs/decisions/0012-bucket-partitions.md
STRIDE = 16
MAX_BUCKET_SIZE = 100  # one transaction per subscriber still fits beside the others' rows


@dataclass(frozen=True)
class Layout:
    version: int  # 2: a partition per subscriber; 3: bucket partitions
    bucket_size: int = BUCKET_SIZE
    stride: int = STRIDE
    moving: bool = False  # from 2 to 3, under way: buckets first, then the first shape

    def __post_init__(self) -> None:
        if self.version not in (2, 3):
            raise ValueError(f"layout version {self.version}: only 2 and 3 exist")
        if not 1 <= self.bucket_size <= MAX_BUCKET_SIZE or not 1 <= self.stride <= 4096:
            raise ValueError(f"bucket size {self.bucket_size} (1-{MAX_BUCKET_SIZE}), stride {self.stride} (1-4096)")
        if self.moving and self.version != 3:
            raise ValueError("only a move to layout 3 can be under way")

    @property
    def bucketed(self) -> bool:
        return self.version == 3

    def bucket(self, subscriber_no: int) -> int:
        block, within = divmod(subscriber_no, self.bucket_size * self.stride)
        return block * self.stride + within % self.stride

    def members(self, bucket: int) -> tuple[int, ...]:
        """Every subscriber number the bucket can hold (at most ``bucket_size``)."""
        block, lane = divmod(bucket, self.stride)
        first = block * self.bucket_size * self.stride + lane
        return tuple(first + k * self.stride for k in range(self.bucket_size))


FIRST = Layout(2)
BUCKETS = Layout(3)
