"""Money as integer minor units plus an ISO 4217 currency, and VAT arithmetic.

No floats anywhere near money (PRODUCT.md, "What good looks like"). Prices in the
catalogue are gross (VAT included), as Nordic consumer prices are quoted; the VAT part
of a gross amount is computed with one explicit rounding rule (half away from zero)
so that ``net + vat == gross`` holds exactly for every line: VAT is never created or
lost by rounding.

    >>> Money(12500, "NOK") + Money(500, "NOK")
    Money(minor=13000, currency='NOK')
    >>> vat_of_gross(12500, 2500)   # 125.00 incl. 25 % VAT -> 25.00 VAT
    2500
    >>> [m.minor for m in Money(100, "NOK").allocate([1, 1, 1])]
    [34, 33, 33]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CURRENCIES = frozenset({"NOK", "SEK", "DKK", "EUR"})
BASIS_POINTS = 10_000  # a VAT rate of 25 % is 2500 basis points


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise TypeError(f"money is integer minor units, got {type(self.minor).__name__}")
        if self.currency not in CURRENCIES:
            raise ValueError(f"unsupported currency {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __mul__(self, factor: int) -> Money:
        if type(factor) is not int:
            raise TypeError("money is multiplied by whole numbers only")
        return Money(self.minor * factor, self.currency)

    def allocate(self, weights: Sequence[int]) -> list[Money]:
        """Split into parts proportional to ``weights``; the parts sum to ``self`` exactly."""
        return [Money(m, self.currency) for m in allocate(self.minor, weights)]

    def __str__(self) -> str:
        sign = "-" if self.minor < 0 else ""
        whole, cents = divmod(abs(self.minor), 100)
        return f"{sign}{whole}.{cents:02d} {self.currency}"


def total(amounts: Iterable[Money], currency: str) -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result


def divide_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding half away from zero (the rounding the tax authorities use)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def vat_of_gross(gross_minor: int, rate_bp: int) -> int:
    """The VAT contained in a gross amount: gross * rate / (1 + rate), rounded half up."""
    if not 0 <= rate_bp <= BASIS_POINTS:  # 0 to 100 %, as the catalogue takes
        raise ValueError(f"VAT rate {rate_bp} bp out of range")
    return divide_half_up(gross_minor * rate_bp, BASIS_POINTS + rate_bp)


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Largest-remainder split of ``amount`` by non-negative integer ``weights``.

    The parts always sum to ``amount``; with all-zero weights the amount is split evenly.
    """
    if not weights:
        raise ValueError("at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    basis = list(weights) if sum(weights) else [1] * len(weights)
    whole = sum(basis)
    sign = -1 if amount < 0 else 1
    magnitude = abs(amount)
    parts = [magnitude * w // whole for w in basis]
    remainders = sorted(range(len(basis)), key=lambda i: (-(magnitude * basis[i] % whole), i))
    for i in remainders[: magnitude - sum(parts)]:
        parts[i] += 1
    return [sign * p for p in parts]
