"""kindly.toml: what is accepted, and errors that name the file and the field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from integrations.bookkeeping.ledger import LocalLedger
from plugin.config.settings import load_settings
from plugin.core.model import CustomerKind
from plugin.core.money import Money
from plugin.errors import ConfigError

MINIMAL = '[company]\nname = "Acme"\nemail = "ar@acme.example"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kindly.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_settings_get_sensible_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    first = next(s for s in settings.policies["default"].stages if s.name == "first")
    assert (first.days, first.business_days) == (3, True)
    assert settings.defaults.channels == ("email",)
    assert settings.defaults.tone == "friendly"
    assert settings.outbox == tmp_path / "outbox"
    assert "ledger" not in settings.sections and settings.store_url is None


def test_full_settings(tmp_path: Path) -> None:
    text = MINIMAL + (
        '[ledger]\npath = "books"\n[store]\nurl = "sqlite:///state/k.sqlite3"\n'
        '[policy]\nminimum = { EUR = "5.00", VND = 100000 }\n'
        '[clients.C1]\npause_until = 2026-12-01\ntone = "firm"\nkind = "consumer"\n'
        'channels = ["email", "sms"]\n'
    )
    settings = load_settings(write(tmp_path, text))
    assert LocalLedger.configured_folder(settings) == tmp_path / "books"
    assert settings.store_url == f"sqlite:///{tmp_path}/state/k.sqlite3"
    # Given currencies replace their defaults; the other defaults stay.
    assert settings.defaults.minimum["EUR"] == Money.of("5", "EUR")
    assert settings.defaults.minimum["VND"] == Money.of("100000", "VND")
    assert settings.defaults.minimum["NOK"] == Money.of("50", "NOK")
    client = settings.client("C1")
    assert client.pause_until == date(2026, 12, 1)
    assert client.kind is CustomerKind.CONSUMER and client.channels == ("email", "sms")
    assert settings.client("unknown").tone is None


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        (
            "[policy]\nfrist_reminder_after_days = 3\n",
            "policy.frist_reminder_after_days",
            "not a known setting",
        ),
        ('[clients.C1]\ntone = "rude"\n', "clients.C1.tone", "is not one of"),
        ('[clients.C1]\npause_until = "soon"\n', "clients.C1.pause_until", "is not a date"),
        ("[policy]\nminimum = { EUR = 5.5 }\n", "policy.minimum.EUR", "string"),
        ('[bank]\niban = "NL92ABNA0417164300"\n', "bank.iban", "checksum digits"),
        ('[policy]\nminimum = { XYZ = "1" }\n', "policy.minimum.XYZ", "ISO 4217"),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, extra: str, field: str, words: str
) -> None:
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert str(path) in message
    assert field in message
    assert words in message


def test_missing_required_company_email(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"company\.email.*required"):
        load_settings(write(tmp_path, '[company]\nname = "Acme"\n'))


def test_broken_toml_says_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_settings(write(tmp_path, '[company]\nname = "Acme\n'))


XERO_WITH_A_KEY = '[xero]\nclient_id = "abc"\nwebhook_key = "WEBHOOK-CANARY-1"\n'
CALDAV_WITH_A_PASSWORD = (
    '[calendar]\ntype = "caldav"\nurl = "ftp://kindly:CALDAV-CANARY-2@dav.example/cal/"\n'
)


@pytest.mark.parametrize(
    ("section", "canary"),
    [(XERO_WITH_A_KEY, "WEBHOOK-CANARY-1"), (CALDAV_WITH_A_PASSWORD, "CALDAV-CANARY-2")],
)
def test_a_secret_in_kindly_toml_is_never_printed_back(
    tmp_path: Path, section: str, canary: str
) -> None:
    """D27: the refusal names the field, not the value."""
    from plugin.app.wiring import load_settings as load_all

    top = 'connector = "xero"\n' if "[xero]" in section else ""
    path = write(tmp_path, top + MINIMAL + section)
    with pytest.raises(ConfigError) as caught:
        load_all(path)
    text = str(caught.value) + (caught.value.hint or "")
    assert canary not in text, text
    assert "not shown" in text


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('[bank]\niban = "NL91ABNA0417164300\\n"\n', "bank.iban"),
        ('[delivery]\noutbox = "out\\r\\nbox"\n', "delivery.outbox"),
    ],
)
def test_a_setting_with_a_line_break_is_refused_by_name(
    tmp_path: Path, line: str, field: str
) -> None:
    """D18: "$" in a pattern let a trailing newline through; no setting has one."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, MINIMAL + line))
    assert f"field {field!r} holds a line break" in str(caught.value)


@pytest.mark.parametrize(
    ("bank", "words"),
    [
        ('iban = "NL91ABNA04171643000"', "Invalid IBAN length"),  # one digit too many for NL
        ('iban = "NL91ABNA0417164300"\nbic = "ABNA-NL2A"', "bank.bic"),
    ],
)
def test_an_iban_of_the_wrong_length_for_its_country_is_refused(
    tmp_path: Path, bank: str, words: str
) -> None:
    """D19: valid check digits are not enough; schwifty knows each country's length."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, MINIMAL + "[bank]\n" + bank + "\n"))
    assert words in str(caught.value)


def test_a_minimum_too_large_to_compute_is_named(tmp_path: Path) -> None:
    """D16: 30 digits were an unexpected InvalidOperation on every command."""
    text = MINIMAL + '[policy]\nminimum = { EUR = "' + "1" * 30 + '" }\n'
    with pytest.raises(ConfigError, match=r"policy\.minimum\.EUR"):
        load_settings(write(tmp_path, text))


@pytest.mark.parametrize(
    "website",
    [
        "javascript:alert(document.cookie)",
        "data:text/html,<b>",
        "noordlicht.example",
        'https://a" onclick="x',
    ],
)
def test_a_website_is_an_http_or_https_address(tmp_path: Path, website: str) -> None:
    """The footer's link may only lead to a web page (the review's javascript: website)."""
    text = MINIMAL + f"website = '{website}'\n"  # a literal string: no escapes
    with pytest.raises(ConfigError, match=r"field 'company\.website': .* starting with https://"):
        load_settings(write(tmp_path, text))
    assert load_settings(write(tmp_path, MINIMAL + 'website = "https://acme.example/contact"\n'))


def test_a_toml_date_where_text_is_expected_is_named(tmp_path: Path) -> None:
    """Found by the fuzzing campaign (docs/testing.md): a TOML date passed the schema as its
    ISO text, and `folder = 2000-01-01` then failed with an unexpected TypeError."""
    with pytest.raises(ConfigError, match=r"field 'templates\.folder': 2000-01-01 is a date"):
        load_settings(write(tmp_path, MINIMAL + "[templates]\nfolder = 2000-01-01\n"))
    paused = load_settings(write(tmp_path, MINIMAL + "[clients.C1]\npause_until = 2026-12-31\n"))
    assert str(paused.client("C1").pause_until) == "2026-12-31"


def test_a_minimum_with_more_decimals_than_its_currency_is_named(tmp_path: Path) -> None:
    """Found by an independent check: "5.001" euro was taken as 5.00."""
    text = MINIMAL + '[policy]\nminimum = { EUR = "5.001" }\n'
    with pytest.raises(ConfigError, match=r"policy\.minimum\.EUR': 5\.001 has more decimals"):
        load_settings(write(tmp_path, text))


def test_a_fresh_kindly_toml_applies_the_documented_minimums(tmp_path: Path) -> None:
    """Issue 17: the documented defaults were not applied without a [policy] minimum."""
    minimum = load_settings(write(tmp_path, MINIMAL)).defaults.minimum
    assert minimum["EUR"] == Money.of("5", "EUR") and minimum["NOK"] == Money.of("50", "NOK")
    off = load_settings(write(tmp_path, MINIMAL + '[policy]\nminimum = { EUR = "0" }\n'))
    assert off.defaults.minimum["EUR"] == Money.of("0", "EUR")


def test_the_default_policy_may_write_its_stages_out(tmp_path: Path) -> None:
    stages = (
        "[policy]\nstages = [\n"
        '  { name = "first", after = "due", days = 8, tone = "neutral" },\n'
        '  { name = "final", after = "previous", days = 10, channels = ["letter"] },\n]\n'
    )
    policy = load_settings(write(tmp_path, MINIMAL + stages)).policies["default"]
    assert [(s.name, s.days, s.tone, s.channels) for s in policy.stages] == [
        ("first", 8, "neutral", None),
        ("final", 10, None, ("letter",)),
    ]
    both = MINIMAL + stages.replace("[policy]\n", "[policy]\ncourtesy = true\n")
    with pytest.raises(ConfigError, match=r"'policy\.courtesy': the stages are written out"):
        load_settings(write(tmp_path, both))
    unworded = stages.replace('name = "final"', 'name = "last"')
    with pytest.raises(ConfigError, match=r"'policy\.stages\.1\.template': Kindly has no words"):
        load_settings(write(tmp_path, MINIMAL + unworded))
