"""``Layout.bucket`` / ``members`` (issue 13): where a subscriber number lives is a stable,
bounded deal of numbers over buckets, consecutive numbers apart, and ``members`` its inverse."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.placement import BUCKET_SIZE, BUCKETS, FIRST, MAX_BUCKET_SIZE, STRIDE, Layout

layouts = st.builds(Layout, st.just(3), st.integers(1, MAX_BUCKET_SIZE), st.integers(1, 64))
numbers = st.integers(0, 10**9)


@given(layouts, numbers)
def test_the_bucket_of_a_number_is_stable_and_the_number_is_among_its_members(layout: Layout, n: int) -> None:
    bucket = layout.bucket(n)
    assert bucket == layout.bucket(n) == Layout(3, layout.bucket_size, layout.stride).bucket(n)
    assert bucket >= 0 and n in layout.members(bucket)


@given(layouts, st.integers(0, 10**6))
def test_members_is_the_inverse_of_bucket_and_never_holds_more_than_the_bucket_size(layout: Layout, b: int) -> None:
    members = layout.members(b)
    assert len(members) == len(set(members)) == layout.bucket_size
    assert all(layout.bucket(n) == b for n in members)


@given(layouts, st.integers(0, 10**6), st.integers(1, 3000))
def test_a_run_of_numbers_never_puts_more_than_the_bucket_size_in_one_bucket(layout: Layout, start: int,
                                                                            count: int) -> None:
    per_bucket = Counter(layout.bucket(n) for n in range(start, start + count))
    assert max(per_bucket.values()) <= layout.bucket_size
    # every bucket but the first and last of the run is dealt full before the next block
    assert sum(per_bucket.values()) == count


@given(st.builds(Layout, st.just(3), st.integers(1, MAX_BUCKET_SIZE), st.integers(2, 64)), numbers)
def test_consecutive_numbers_land_in_different_buckets_when_the_stride_is_more_than_one(layout: Layout,
                                                                                       n: int) -> None:
    window = [layout.bucket(m) for m in range(n, n + layout.stride)]
    assert len(set(window)) == layout.stride  # a burst of ``stride`` new subscribers: as many buckets


def test_the_default_layout_deals_the_first_numbers_sixteen_ways_and_fills_each_bucket_to_sixty_four() -> None:
    assert (BUCKETS.bucket_size, BUCKETS.stride) == (BUCKET_SIZE, STRIDE) == (64, 16)
    assert [BUCKETS.bucket(n) for n in range(1, 18)] == [*range(1, 16), 0, 1]
    assert Counter(BUCKETS.bucket(n) for n in range(64 * 16)) == dict.fromkeys(range(16), 64)
    assert BUCKETS.bucket(64 * 16) == 16  # the next block starts new buckets
    assert BUCKETS.bucketed and not FIRST.bucketed


@pytest.mark.parametrize("args", [(1,), (4,), (3, 0), (3, MAX_BUCKET_SIZE + 1), (3, 8, 0), (3, 8, 4097),
                                  (2, 64, 16, True)])
def test_a_layout_that_cannot_be_is_refused(args: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        Layout(*args)  # type: ignore[arg-type]
