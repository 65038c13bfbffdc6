"""Site access by IP (issue 12) against addresses written another way: an IPv4 address in
its IPv4-mapped IPv6 form (what a dual-stack proxy hands the publisher's server) is the same
visitor, and a range written in the mapped form is the IPv4 range it stands for (so the
width limit applies to it)."""

from __future__ import annotations

import ipaddress
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.identity import Grant, SiteEntry, SiteTable, normalise_network

DAY = date(2026, 1, 5)
GRANT = Grant(7, "s1", ("avis",), date(2026, 1, 1))


@given(st.ip_addresses(v=4), st.integers(min_value=8, max_value=32))
def test_a_mapped_address_is_the_ipv4_visitor(address: ipaddress.IPv4Address, prefix: int) -> None:
    network = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    table = SiteTable((SiteEntry(7, network, (GRANT,)),))
    mapped = f"::ffff:{address}"
    assert table.products_for(mapped, DAY) == table.products_for(str(address), DAY) == ("avis",)


@pytest.mark.parametrize("wide", ["::ffff:0:0/96", "::ffff:0.0.0.0/100", "::ffff:10.0.0.0/103"])
def test_a_range_in_the_mapped_form_is_held_to_the_ipv4_width_limit(wide: str) -> None:
    with pytest.raises(ValueError, match="too wide"):
        normalise_network(wide)


def test_a_narrow_mapped_range_is_stored_as_its_ipv4_range() -> None:
    assert normalise_network("::ffff:192.0.2.0/120") == "192.0.2.0/24"
    table = SiteTable((SiteEntry(7, normalise_network("::ffff:192.0.2.0/120"), (GRANT,)),))
    assert table.products_for("192.0.2.9", DAY) == ("avis",)
    assert table.products_for("192.0.3.9", DAY) == ()
