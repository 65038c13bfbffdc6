"""Letters (L7): what a document says besides the demand itself.

Who sells (``Seller``: name, organisation number, VAT registration, address, bank
account, branding), to whom (``Party``), in which language, and how the demand is paid
(``PaymentMethod``): taken from the catalogue and the subscriber when a demand is issued
(``letter_for``) and stored on the demand with the ``TEMPLATE_VERSION`` it was issued
under, so a later change of the organisation's address or the subscriber's name does not
change a document already issued.

How a document reaches the subscriber (``Channel``) is chosen when it is delivered
(``choose_channel``), from the subscription's choice, the organisation's default and
what the subscriber can receive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .catalogue import Branding, Channel, Organization, PaymentType
from .subscriptions import Subscriber, SubscriberError, Subscription

TEMPLATE_VERSION = 1  # the layout and texts documents are issued under; a renderer keeps every version it knew


class Language(StrEnum):
    NB = "nb"  # Norwegian bokmål
    SV = "sv"  # Swedish
    EN = "en"


LANGUAGE_OF_COUNTRY = {"NO": Language.NB, "SE": Language.SV}


class PaymentMethod(StrEnum):
    """What the payment part of a document shows."""

    GIRO = "giro"  # pay to the account with the KID/OCR reference by the due date
    AVTALEGIRO = "avtalegiro"  # "the amount is charged to your account" on the due date
    VIPPS = "vipps"  # charged in Vipps on the charge date
    CARD = "card"  # charged to the card on the charge date


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    address: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str = "NO"
    organization_number: str | None = None


@dataclass(frozen=True, slots=True)
class Seller:
    party: Party
    vat_registered: bool = True  # "MVA" after the organisation number (NO); a VAT number (SE)
    company: bool = True  # "Foretaksregisteret" (NO: registered in the Register of Business Enterprises)
    vat_number: str | None = None  # SE: "SE" + organisation number + "01"; NO: derived when None
    bank_account: str | None = None  # NO: an account number; SE: a bankgiro number
    branding: Branding = field(default_factory=Branding)


@dataclass(frozen=True, slots=True)
class Letter:
    """What a document says besides the demand: stored on the demand when it is issued."""

    template_version: int
    language: Language
    seller: Seller
    buyer: Party
    subscriber_no: int
    payment: PaymentMethod = PaymentMethod.GIRO
    buyer_reference: str = ""  # the order reference the subscriber gave (EHF BuyerReference)
    currency: str = "NOK"


def payment_method(payment_type: PaymentType | None, mandate_active: bool) -> PaymentMethod:
    if payment_type is PaymentType.VIPPS:
        return PaymentMethod.VIPPS
    if payment_type is PaymentType.CARD:
        return PaymentMethod.CARD
    if payment_type is PaymentType.AVTALEGIRO or mandate_active:
        return PaymentMethod.AVTALEGIRO
    return PaymentMethod.GIRO


def seller_of(org: Organization) -> Seller:
    return Seller(Party(org.name, org.address, org.postal_code, org.city, org.country, org.organization_number),
                  org.vat_registered, org.company, org.vat_number, org.bank_account, org.branding)


def buyer_of(subscriber: Subscriber) -> Party:
    return Party(subscriber.name, subscriber.address, subscriber.postal_code, subscriber.city, subscriber.country,
                 subscriber.organization_number)


def language_of(org: Organization) -> Language:
    return Language(org.language) if org.language else LANGUAGE_OF_COUNTRY.get(org.country, Language.EN)


def letter_for(subscriber: Subscriber, org: Organization, subscription: Subscription | None,
               mandate_active: bool = False) -> Letter:
    """The letter of a demand issued now by ``org`` to ``subscriber`` (for ``subscription``, if any)."""
    return Letter(TEMPLATE_VERSION, language_of(org), seller_of(org), buyer_of(subscriber), subscriber.number,
                  payment_method(subscription.payment_type if subscription else None, mandate_active),
                  subscription.buyer_reference if subscription else "", org.currency)


def choose_channel(org: Organization, subscriber: Subscriber, subscription: Subscription | None,
                   can_receive_ehf: bool) -> Channel:
    """The channel a document goes by: the subscription's choice (its payment agreement, or
    the delivery it asked for), else the organisation's default. EHF only to an organisation
    (an organisation number) that can receive it, with EHF enabled for the seller; SMS only
    to a phone number. What cannot be had falls back to e-mail."""
    wanted = subscription.delivery if subscription and subscription.delivery else None
    if wanted is None and subscription is not None and subscription.payment_type is PaymentType.EHF:
        wanted = Channel.EHF
    if wanted is None and org.ehf_enabled and subscriber.organization_number and can_receive_ehf:
        wanted = Channel.EHF
    wanted = Channel(wanted or org.document_channel)
    if wanted is Channel.EHF and not (org.ehf_enabled and subscriber.organization_number and can_receive_ehf):
        return Channel.EMAIL
    if wanted is Channel.SMS and not subscriber.phone:
        return Channel.EMAIL
    return wanted


def receivable(channel: Channel, subscriber: Subscriber, org: Organization | None) -> None:
    """Refuse (``SubscriberError``) a channel chosen for a subscription that the subscriber
    cannot be sent documents by, rather than let ``choose_channel`` quietly fall back:
    EHF needs an organisation number and an organisation that sends EHF, SMS a phone."""
    if channel is Channel.EHF and not subscriber.organization_number:
        raise SubscriberError("EHF goes to organisations only: the subscriber has no organisation number")
    if channel is Channel.EHF and not (org is not None and org.ehf_enabled):
        raise SubscriberError("the subscription's organisation does not send EHF (ehf_enabled is off)")
    if channel is Channel.SMS and not subscriber.phone:
        raise SubscriberError("SMS needs a phone number: the subscriber has none")
