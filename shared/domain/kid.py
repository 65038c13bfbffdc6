"""KID (kundeidentifikasjon): the payment reference on Norwegian giro payments (L2).

A KID is 2 to 25 digits; its last character is a check digit computed with MOD10
(Luhn) or MOD11 (weights 2, 3, 4, 5, 6, 7 repeating from the right). With MOD11 a
remainder that gives check value 10 is written ``-`` where the bank agreement allows
it; otherwise such numbers must be avoided (Nets OCR giro system manual, "KID";
AvtaleGiro system specification, "KID"). Such KIDs are issued and read back from every
bank file format: ``shared/formats`` reads the '-' that netsgiro's OCR pattern refuses
(``tests/unit/test_bank_file_reader.py`` proves it for every scheme). MOD10 uses
python-stdnum's ``luhn``; the MOD11 variant with these weights is not in python-stdnum,
so it is written here.

The module follows python-stdnum's shape (``compact``, ``validate``, ``is_valid``,
``format``), and adds ``KidScheme``, which lays out an organisation's KIDs as
``prefix + subscriber number + demand number + check digit`` so that a KID decodes
back to the subscriber and the invoice (or reminder) without a lookup (manual 7.23).

    The worked examples of the OCR giro system manual, chapter 5:

    >>> calc_check_digit('12345678', 'MOD10'), calc_check_digit('12345678', 'MOD11')
    ('2', '5')
    >>> validate('1234 5678 5', 'MOD11')
    '123456785'
    >>> is_valid('123456785', 'MOD10')
    False
    >>> scheme = KidScheme(length=15, modulus='MOD10', prefix='', subscriber_digits=7)
    >>> kid = scheme.encode(subscriber_no=4711, demand_no=3)
    >>> kid, scheme.decode(kid)
    ('000471100000036', KidRef(subscriber_no=4711, demand_no=3))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from stdnum import luhn
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from stdnum.util import clean, isdigits

Modulus = Literal["MOD10", "MOD11"]
MIN_LENGTH, MAX_LENGTH = 2, 25


class CheckDigitUnavailable(ValidationError):
    """MOD11 gives check value 10 for this number and the agreement does not allow '-'."""

    message = "MOD11 check value 10 ('-') not allowed by the agreement"


def compact(number: str) -> str:
    """Remove the spaces and dots used for readability. Dashes are kept: a ``-`` is the
    MOD11 check character (check value 10), so ``validate`` refuses one anywhere else.

    >>> compact(' 1234 5678.5 ')
    '123456785'
    >>> compact('12345678-')
    '12345678-'
    """
    number = clean(number, " .").strip()
    return number


def _mod11_value(digits: str) -> int:
    weights = (2, 3, 4, 5, 6, 7)
    total = sum(int(d) * weights[i % 6] for i, d in enumerate(reversed(digits)))
    return (11 - total % 11) % 11


def calc_check_digit(digits: str, modulus: Modulus, allow_dash: bool = True) -> str:
    """The check character for ``digits`` (the KID without its check character)."""
    if not isdigits(digits):
        raise InvalidFormat()
    if modulus == "MOD10":
        return luhn.calc_check_digit(digits)
    value = _mod11_value(digits)
    if value == 10:
        if not allow_dash:
            raise CheckDigitUnavailable()
        return "-"
    return str(value)


def validate(number: str, modulus: Modulus, allow_dash: bool = True) -> str:
    """Check length, characters and check digit; return the compact KID."""
    number = compact(number)
    if not MIN_LENGTH <= len(number) <= MAX_LENGTH:
        raise InvalidLength()
    body, check = number[:-1], number[-1]
    if not isdigits(body) or not (isdigits(check) or (check == "-" and modulus == "MOD11")):
        raise InvalidFormat()
    if check == "-" and not allow_dash:
        raise CheckDigitUnavailable()
    if calc_check_digit(body, modulus, allow_dash=True) != check:
        raise InvalidChecksum()
    return number


def is_valid(number: str, modulus: Modulus, allow_dash: bool = True) -> bool:
    try:
        return bool(validate(number, modulus, allow_dash))
    except ValidationError:
        return False


def format(number: str) -> str:
    """Group in blocks of five from the left, as printed on giro forms."""
    number = compact(number)
    return " ".join(number[i : i + 5] for i in range(0, len(number), 5))


@dataclass(frozen=True, slots=True)
class KidRef:
    subscriber_no: int
    demand_no: int


@dataclass(frozen=True, slots=True)
class KidScheme:
    """An organisation's KID agreement: total length, modulus, prefix, field widths."""

    length: int = 15
    modulus: Modulus = "MOD10"
    prefix: str = ""
    subscriber_digits: int = 7
    allow_dash: bool = False

    def __post_init__(self) -> None:
        if not MIN_LENGTH <= self.length <= MAX_LENGTH:
            raise InvalidLength()
        if self.prefix and not isdigits(self.prefix):
            raise InvalidFormat()
        if self.demand_digits < 1 or self.subscriber_digits < 1:
            raise InvalidLength()

    @property
    def demand_digits(self) -> int:
        return self.length - len(self.prefix) - self.subscriber_digits - 1

    def body(self, subscriber_no: int, demand_no: int) -> str:
        if not 0 < subscriber_no < 10**self.subscriber_digits:
            raise InvalidComponent()
        if not 0 < demand_no < 10**self.demand_digits:
            raise InvalidComponent()
        return f"{self.prefix}{subscriber_no:0{self.subscriber_digits}d}{demand_no:0{self.demand_digits}d}"

    def encode(self, subscriber_no: int, demand_no: int) -> str:
        body = self.body(subscriber_no, demand_no)
        return body + calc_check_digit(body, self.modulus, self.allow_dash)

    def usable(self, subscriber_no: int, demand_no: int) -> bool:
        """False where MOD11 would need '-' and the agreement forbids it: skip that demand number."""
        try:
            self.encode(subscriber_no, demand_no)
        except CheckDigitUnavailable:
            return False
        return True

    def decode(self, kid: str) -> KidRef:
        """Subscriber and demand numbers of a valid KID of this scheme (raises otherwise)."""
        number = validate(kid, self.modulus, self.allow_dash)
        if len(number) != self.length:
            raise InvalidLength()
        if not number.startswith(self.prefix):
            raise InvalidComponent()
        rest = number[len(self.prefix) : -1]
        return KidRef(int(rest[: self.subscriber_digits]), int(rest[self.subscriber_digits :]))
