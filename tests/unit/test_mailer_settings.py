"""The composition root picks the mail adapter from the app settings: ACS Email by the
managed identity (an endpoint) or a key (a connection string), else SMTP."""

from __future__ import annotations

import pytest

from shared import bootstrap
from shared.adapters.mail import AcsMailer, SmtpMailer

SETTINGS = ("ABONNO_ACS_EMAIL_ENDPOINT", "ABONNO_ACS_EMAIL_CONNECTION", "ABONNO_SMTP_HOST", "ABONNO_SMTP_PORT",
            "ABONNO_SMTP_USER", "ABONNO_SMTP_PASSWORD", "ABONNO_SMTP_STARTTLS")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_settings_mail_goes_to_an_smtp_server_on_localhost(settings: pytest.MonkeyPatch) -> None:
    mailer = bootstrap.mailer_from_settings()
    assert isinstance(mailer, SmtpMailer) and (mailer.host, mailer.port, mailer.starttls) == ("localhost", 25, False)


def test_smtp_settings_name_the_server_its_login_and_starttls(settings: pytest.MonkeyPatch) -> None:
    for name, value in (("ABONNO_SMTP_HOST", "smtp.example.no"), ("ABONNO_SMTP_PORT", "587"),
                        ("ABONNO_SMTP_USER", "abonno"), ("ABONNO_SMTP_PASSWORD", "secret"),
                        ("ABONNO_SMTP_STARTTLS", "true")):
        settings.setenv(name, value)
    mailer = bootstrap.mailer_from_settings()
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.user, mailer.password, mailer.starttls) == (
        "smtp.example.no", 587, "abonno", "secret", True)


def test_acs_by_endpoint_or_connection_string_wins_over_smtp(settings: pytest.MonkeyPatch) -> None:
    settings.setenv("ABONNO_SMTP_HOST", "smtp.example.no")
    settings.setenv("ABONNO_ACS_EMAIL_CONNECTION", "endpoint=https://acs.example.communication.azure.com/;accesskey=a2V5")
    assert isinstance(bootstrap.mailer_from_settings(), AcsMailer)
    settings.setenv("ABONNO_ACS_EMAIL_ENDPOINT", "https://acs.example.communication.azure.com")
    mailer = bootstrap.mailer_from_settings()
    assert isinstance(mailer, AcsMailer)
    assert mailer.client._config.endpoint == "https://acs.example.communication.azure.com"
