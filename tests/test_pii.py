"""PII detection (positive and negative cases per type), redaction modes, and the pii_redact operator."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

import sftforge.ops.pii as pii_op
from sftforge.errors import RecipeError
from sftforge.lib.pii import (
    ALL_TYPES,
    NAME_TYPES,
    REGEX_TYPES,
    PiiSpan,
    cn_id_ok,
    detect,
    iban_ok,
    luhn_ok,
    redact,
    redact_text,
    ssn_ok,
)
from sftforge.ops.base import OPERATORS
from sftforge.sample import Record

PATTERN_TYPES = tuple(t for t in ALL_TYPES if t not in NAME_TYPES)  # every type a regular expression finds


def found(text: str, types=PATTERN_TYPES) -> list[tuple[str, str]]:
    return [(s.type, s.text) for s in detect(text, types)]


def texts_of(text: str, typ: str) -> list[str]:
    return [s.text for s in detect(text, PATTERN_TYPES) if s.type == typ]


# ------------------------------------------------------------------------------------------------ EMAIL
def test_email():
    assert found("write to Jane.Doe+sft@mail.example.co.uk, thanks") == [("EMAIL", "Jane.Doe+sft@mail.example.co.uk")]
    assert found("联系邮箱：zhang.san@example.cn。") == [("EMAIL", "zhang.san@example.cn")]
    assert found("not emails: user@localhost, @handle, a@b, foo@bar.c") == []


# ------------------------------------------------------------------------------------------------ PHONE
@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "+1-555-123-4567",
        "+1 (555) 123-4567",
        "555-123-4567 ext. 89",
        "+33 1 42 68 53 00",
        "+86 138 0013 8000",
    ],
)
def test_phone_formats(phone):
    assert found(f"Call {phone} today.") == [("PHONE", phone)]


def test_chinese_mobile_in_chinese_text():
    text = "我的手机号是13812345678，座机请打+86-10-8888-6666。"
    assert found(text) == [("PHONE", "13812345678"), ("PHONE", "+86-10-8888-6666")]
    # 1[3-9]: 12xxxxxxxxx is not a mobile number; without a phone word it is just a number.
    assert found("编号12812345678") == []


def test_short_numbers_need_a_phone_word():
    assert found("In 2020 1500 people came; see 555-1234.") == []
    assert found("Tel: 555-1234") == [("PHONE", "555-1234")]
    assert found("phone 5551234567") == [("PHONE", "5551234567")]


@pytest.mark.parametrize(
    "text",
    [
        "on 2024-01-15 we met",  # dates
        "born 12/27/1986",
        "at 1998-06-28 14:48:14",
        "from 1990-2020",  # a year range
        "a population of 1 000 000 people",  # thousands
        "pi is 3.14159265",  # decimals
        "ISBN 978-3-16-148410-0",  # a valid ISBN-13
        "released 2.7.1 2010-11-27",  # a version and a date
        "chapter 3.2.1.4",
        "GCC 6.3.1 20161221",
    ],
)
def test_not_phones(text):
    assert texts_of(text, "PHONE") == []


@pytest.mark.parametrize(
    "phone",
    [
        "612 345 678",  # ES mobile
        "512 345 678",  # PL mobile
        "91 234 567",  # NO/DK
        "912 34 567",  # NO
        "555 1234",  # US local
        "573-5990",
        "030 12345678",  # DE, trunk 0
        "0171 1234567",
        "07700 900123",  # UK mobile
        "06 12345678",  # NL
        "010-12345678",  # CN landline
        "98765 43210",  # IN mobile
        "9876543210",
        "55 1234 5678",  # MX
        "0412 345 678",  # AU
        "06 12 34 56 78",  # FR
        "090-1234-5678",  # JP
    ],
)
def test_national_numbers_without_a_phone_word(phone):
    assert found(f"You can reach Ana on {phone} after six.") == [("PHONE", phone)]


@pytest.mark.parametrize(
    "text",
    [
        "The population grew from 612 345 678 to 650 000 000.",  # a quantity, not a Spanish mobile
        "It has 91 234 567 inhabitants.",
        "ANSI/IEEE standard 854-1987 defines it.",  # a standard's number and year
        "Al-Biruni (973-1048 CE) wrote on geology.",  # a range of years
        "It cost $ 555 1234 in total.",
        "The 2020 budget was 4 500 000 dollars.",
    ],
)
def test_plan_shaped_quantities_are_not_phones(text):
    assert texts_of(text, "PHONE") == []


# ------------------------------------------------------------------------------------------------ CREDIT_CARD
def test_cards_of_every_network():
    # each network's prefix and length, zeros, then the Luhn check digit (asserted Luhn-valid below)
    cards = {
        "2131 000000 00001": "JCB 15",
        "1800 000000 00002": "JCB 15 (1800)",
        "5018 0000 0009": "Maestro 12",
        "6759 0000 0000 0000 005": "Maestro 19",
        "2200 0000 0000 0004": "Mir",
        "9792 0000 0000 0003": "Troy",
    }
    for card, network in cards.items():
        assert luhn_ok(card.replace(" ", "")), network
        assert found(f"The card {card} was declined.") == [("CREDIT_CARD", card)], network
    # bare: 15 digits starting with 1 and 12 digits count only next to a card word
    assert found("Charge it to 213100000000001 please.") == [("CREDIT_CARD", "213100000000001")]
    assert texts_of("PRIMES = [180000000000002, 112272535095293]", "CREDIT_CARD") == []
    assert texts_of("order 501800000009 shipped", "CREDIT_CARD") == []
    assert found("pay with 501800000009 now") == [("CREDIT_CARD", "501800000009")]


def test_luhn():
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_credit_cards():
    assert texts_of("card 4111 1111 1111 1111 exp 12/27", "CREDIT_CARD") == ["4111 1111 1111 1111"]
    assert texts_of("card 4111-1111-1111-1111.", "CREDIT_CARD") == ["4111-1111-1111-1111"]
    assert texts_of("amex 378282246310005 or 3782 822463 10005", "CREDIT_CARD") == [
        "378282246310005",
        "3782 822463 10005",
    ]
    assert texts_of("mc 5555555555554444, 2-series 2223003122003222", "CREDIT_CARD") == [
        "5555555555554444",
        "2223003122003222",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn fails
        "card 4111111111111112",
        "card 4111 1111-1111 1111",  # mixed separators
        "id 1234567812345670",  # Luhn-valid, but no card network starts with 1
        "archive 20170224195724",  # a timestamp that happens to pass Luhn
        "zeros 0000000000000000",
    ],
)
def test_not_credit_cards(text):
    assert texts_of(text, "CREDIT_CARD") == []


# ------------------------------------------------------------------------------------------------ IBAN
def test_iban():
    assert iban_ok("DE89370400440532013000") and iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not iban_ok("DE89370400440532013001")  # checksum
    assert not iban_ok("DE8937040044053201300")  # length for DE
    assert not iban_ok("XX89370400440532013000")  # unknown country
    text = "Pay to DE89 3704 0044 0532 0130 00 or FR1420041010050500013M02606; not DE89 3704 0044 0532 0130 01."
    assert texts_of(text, "IBAN") == ["DE89 3704 0044 0532 0130 00", "FR1420041010050500013M02606"]
    assert found("not DE89 3704 0044 0532 0130 01.") == []  # and its digits are nothing else either


# ------------------------------------------------------------------------------------------------ IP_ADDRESS
def test_lowercase_iban_and_a_word_after_it():
    assert found("my account is gb82 west 1234 5698 7654 32 at the branch") == [("IBAN", "gb82 west 1234 5698 7654 32")]
    assert found("iban gb82west12345698765432, thanks") == [("IBAN", "gb82west12345698765432")]
    assert found("see gb83 west 1234 5698 7654 32 at the branch") == []  # bad check digits


def test_ipv4():
    text = "from 8.8.8.8 and 10.0.0.5, and 172.16.254.1."
    assert texts_of(text, "IP_ADDRESS") == ["8.8.8.8", "10.0.0.5", "172.16.254.1"]
    assert texts_of("bogus 999.1.1.1, 10.0.0.256, 1.2.3, 1.2.3.4.5", "IP_ADDRESS") == []


def test_ip_version_numbers_decision():
    # A dotted quad after "version", "v", a comparison operator or "section" is a version/section number; anywhere
    # else it is an address (nothing in the text tells them apart, and missing an address is the worse error).
    assert texts_of("version 1.2.3.4, v1.2.3.4, pip>=1.2.3.4, section 6.3.2.3", "IP_ADDRESS") == []
    assert texts_of("server at 1.2.3.4", "IP_ADDRESS") == ["1.2.3.4"]


def test_ip_not_personal():
    # loopback, unspecified, netmasks, multicast, documentation ranges (RFC 5737 / 3849)
    text = "127.0.0.1 0.0.0.0 255.255.255.0 224.0.0.1 192.0.2.1 ::1 2001:db8::1"
    assert texts_of(text, "IP_ADDRESS") == []


def test_ipv6():
    assert texts_of("peer 2606:4700:4700::1111 up", "IP_ADDRESS") == ["2606:4700:4700::1111"]
    assert texts_of("link fe80::1ff:fe23:4567:890a%eth0", "IP_ADDRESS") == ["fe80::1ff:fe23:4567:890a"]
    assert texts_of("mapped ::ffff:8.8.4.4.", "IP_ADDRESS") == ["::ffff:8.8.4.4"]
    assert texts_of("at 12:30:45, std::vector, a::b, year 2262::", "IP_ADDRESS") == []
    # groups of one to three hex digits, in full and compressed
    assert texts_of("from 2a00:1:2f:3:a:0:7:9 today", "IP_ADDRESS") == ["2a00:1:2f:3:a:0:7:9"]
    assert texts_of("from 2600:5:e::3a:1 today", "IP_ADDRESS") == ["2600:5:e::3a:1"]


# ------------------------------------------------------------------------------------------------ CREDENTIAL
@pytest.mark.parametrize(
    "secret",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "sk-proj-abc123DEF456ghi789JKL012mno345",
        "sk-ant-api03-Abc123dEf456gHi789jKl",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
)
def test_token_formats(secret):
    assert found(f"key: {secret} end") == [("CREDENTIAL", secret)]


def test_credential_assignments():
    text = (
        'password=hunter22\napi_key: "A1b2C3d4"\nDB_PASSWORD = "correct horse"\n'
        '"client_secret": "s3cr3t!"\n密码：abc123'
    )
    assert texts_of(text, "CREDENTIAL") == ["hunter22", "A1b2C3d4", "correct horse", "s3cr3t!", "abc123"]


@pytest.mark.parametrize(
    "text",
    [
        "Your password: must be at least 12 characters.",  # prose after a colon
        'token = os.environ["TOKEN"]',  # code that reads a secret
        "password = get_password()",
        "api_key = ${API_KEY}",
        "password: <your password>",
        'secret = "********"',
        "token = 'football'",  # a lexer/NLP token, not an auth token
        "sk-learn-is-a-hyphenated-library-name",  # no digits: not a generated key
        "eyJhbGciOiJ.eyJzdWIiOiIxMj.not-a-jwt-at-all",  # header is not JSON
    ],
)
def test_not_credentials(text):
    assert texts_of(text, "CREDENTIAL") == []


# ------------------------------------------------------------------------------------------------ PRIVATE_KEY
def test_private_key_block():
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\nabcd+/==\n-----END RSA PRIVATE KEY-----"
    assert found(f"here:\n{key}\nthanks") == [("PRIVATE_KEY", key)]
    truncated = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACB"
    assert found(truncated + "\n\nmore text") == [("PRIVATE_KEY", truncated)]
    assert found("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----") == []


# ------------------------------------------------------------------------------------------------ US_SSN
def test_ssn():
    assert ssn_ok("531-21-7351")
    for bad in ("000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "078-05-1120"):
        assert not ssn_ok(bad), bad
    assert texts_of("SSN 531-21-7351 or 531 21 7351", "US_SSN") == ["531-21-7351", "531 21 7351"]
    assert texts_of("ids 000-12-3456 666-12-3456 900-12-3456 123-00-4567 531-21-0000", "US_SSN") == []
    assert texts_of("mixed 531-21 7351", "US_SSN") == []
    # nine bare digits only after "SSN" / "social security"
    assert texts_of("ssn: 531217351; order 531217351", "US_SSN") == ["531217351"]


# ------------------------------------------------------------------------------------------------ CN_ID
def test_cn_id():
    assert cn_id_ok("11010519491231002X") and cn_id_ok("11010519491231002x")
    assert cn_id_ok("440306199003071232")
    assert not cn_id_ok("110105194912310021")  # check character
    assert not cn_id_ok("110105194902300020")  # 30 February, check character right
    assert not cn_id_ok("990306199003071232")  # no province 99
    text = "身份证号11010519491231002X，错误的110105194912310021，日期不对的110105194902300020。"
    assert found(text) == [("CN_ID", "11010519491231002X")]


# ------------------------------------------------------------------------------------------------ ADDRESS
def test_addresses_opt_in():
    text = "Send it to 221B Baker Street, Apt 4 or 8 wressle road suite 771."
    assert detect(text) == []  # not a default type
    assert texts_of(text, "ADDRESS") == ["221B Baker Street, Apt 4", "8 wressle road suite 771"]
    more = "Hauptstraße 5, Kossuth Lajos utca 12, 107 Rue Abdelaziz Thâalbi, Via Roma 10; Suite 246"
    assert texts_of(more, "ADDRESS") == [
        "Hauptstraße 5",
        "Kossuth Lajos utca 12",
        "107 Rue Abdelaziz Thâalbi",
        "Via Roma 10",
        "Suite 246",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "I walked 5 miles down the road.",
        "Sent via email 2 times, via PEP 8.",
        "the string 12 and offering 3",
        "In 1886 Robert Lane founded it.",
        "try: <suite 1> except: <suite 2>",
        "another avenue 3 times",
    ],
)
def test_not_addresses(text):
    assert texts_of(text, "ADDRESS") == []


# ------------------------------------------------------------------------------------------------ overlaps, API
def test_overlaps_keep_longest_then_most_specific():
    # The digits of the email are not a phone; the card's digits are not a phone.
    assert found("mail 5551234567@example.com") == [("EMAIL", "5551234567@example.com")]
    assert found("tel +1 4111 1111 1111 1111") == [("CREDIT_CARD", "4111 1111 1111 1111")]
    # An SSN-shaped number is an SSN, not a phone.
    assert found("call 531-21-7351") == [("US_SSN", "531-21-7351")]


def test_detect_types_and_spans():
    text = "a@b.co and 8.8.8.8"
    assert [s.type for s in detect(text, ["IP_ADDRESS"])] == ["IP_ADDRESS"]
    spans = detect(text)
    assert all(text[s.start : s.end] == s.text for s in spans)
    assert "ADDRESS" not in REGEX_TYPES
    with pytest.raises(ValueError, match="unknown PII type"):
        detect(text, ["NAME"])
    with pytest.raises(ValueError, match="PERSON need a name finder"):
        detect(text, ["PERSON"])
    assert detect("") == []


@pytest.mark.timeout(120)  # a hang guard: a catastrophically backtracking pattern would run for hours on these
def test_no_catastrophic_backtracking():
    # ~25 KB each, built to make a naive pattern backtrack; every one is scanned, and only the real key and the
    # street addresses are found.
    nasty = {
        "1-" * 12_500: set(),
        "a." * 12_500 + "@": set(),
        ("1 " * 20 + "x") * 600: set(),
        "password=" + "a" * 25_000: set(),
        "-----BEGIN RSA PRIVATE KEY-----\n" + "A" * 25_000: {"PRIVATE_KEY"},
        "::" * 12_500: set(),
        ("12 Main " * 5 + "Road ") * 600: {"ADDRESS"},
        "eyJ" + "a" * 12_500 + ".eyJ" + "b" * 12_500: set(),
        "4111 " * 5_000: set(),
    }
    for text, types in nasty.items():
        assert {s.type for s in detect(text, PATTERN_TYPES)} == types, text[:30]


# ------------------------------------------------------------------------------------------------ redaction
TEXT = "Mail ann@example.com or call +1 555-123-4567; again ann@example.com."


def test_redact_placeholder_and_mask():
    out, spans = redact_text(TEXT)
    assert out == "Mail [EMAIL] or call [PHONE]; again [EMAIL]."
    masked = redact(TEXT, spans, "mask")
    assert len(masked) == len(TEXT)
    assert masked == "Mail *************** or call ***************; again ***************."


def test_redact_hash_is_stable_and_salted():
    out, _ = redact_text(TEXT, mode="hash", salt="s1")
    tokens = [w.strip(".;") for w in out.split() if w.startswith("[")]
    # 8 hex digits of hmac.new(b"s1", b"EMAIL\x00ann@example.com", hashlib.blake2b)
    assert tokens[0] == tokens[2] == "[EMAIL:ca12a0fa]"
    assert tokens[1].startswith("[PHONE:")
    assert "ann" not in out and "555" not in out
    # same value, another record: same token; another salt: another token
    assert redact_text("ann@example.com", mode="hash", salt="s1")[0] == tokens[0]
    assert redact_text("ann@example.com", mode="hash", salt="s2")[0] != tokens[0]
    # the same number written two ways links; case does not matter in an email
    a = redact_text("call +1 555-123-4567", mode="hash", salt="s1")[0]
    b = redact_text("call +1 (555) 123 4567", mode="hash", salt="s1")[0]
    assert a == b
    assert redact_text("ANN@EXAMPLE.COM", mode="hash", salt="s1")[0] == tokens[0]


def test_redact_errors():
    spans = detect(TEXT)
    with pytest.raises(ValueError, match="salt"):
        redact(TEXT, spans, "hash", salt="")
    with pytest.raises(ValueError, match="mode"):
        redact(TEXT, spans, "erase")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlapping"):
        redact("abcdef", [PiiSpan(0, 4, "EMAIL", "abcd"), PiiSpan(2, 6, "PHONE", "cdef")])
    with pytest.raises(ValueError, match="does not match"):
        redact("abcdef", [PiiSpan(0, 2, "EMAIL", "xx")])


# ------------------------------------------------------------------------------------------------ operator
def make_record() -> Record:
    return Record(
        id="r1",
        messages=[
            {"role": "system", "content": "Support bot. Escalate to ops@example.com."},
            {"role": "user", "content": "My card 4111 1111 1111 1111 was charged twice, mail me at ann@example.com"},
            {"role": "assistant", "content": "Sorry! We will write to ann@example.com within a day."},
        ],
        task="qa",
        lang="en",
        features={"length": 3.0},
    )


def test_operator_redacts_counts_and_does_not_mutate():
    op = pii_op.PiiRedact(pii_op.PiiRedactConfig())
    op.setup()
    record = make_record()
    before = copy.deepcopy(record)
    out = op.map(record)
    assert record == before  # input untouched
    assert out is not record
    assert out.messages[0]["content"] == "Support bot. Escalate to [EMAIL]."
    assert out.messages[1]["content"] == "My card [CREDIT_CARD] was charged twice, mail me at [EMAIL]"
    assert out.messages[2]["content"] == "Sorry! We will write to [EMAIL] within a day."
    assert out.features == {"length": 3.0, "pii_CREDIT_CARD": 1.0, "pii_EMAIL": 3.0}
    assert out.id == record.id and out.task == record.task

    clean = Record(id="r2", messages=[{"role": "user", "content": "hello"}], task="qa", lang="en")
    assert op.map(clean).features == {}
    assert op.stats() == {"found_by_type": {"EMAIL": 3, "CREDIT_CARD": 1}, "records_changed": 1}


def test_operator_roles_and_types():
    op = pii_op.PiiRedact(pii_op.PiiRedactConfig(roles=["user"], types=["CREDIT_CARD"], mode="mask"))
    out = op.map(make_record())
    assert out.messages[0]["content"] == make_record().messages[0]["content"]
    assert out.messages[1]["content"].startswith("My card " + "*" * 19 + " was")
    assert "ann@example.com" in out.messages[1]["content"]
    assert out.features == {"length": 3.0, "pii_CREDIT_CARD": 1.0}


def test_operator_hash_mode_salt(monkeypatch):
    with pytest.raises(ValidationError, match="salt_env"):
        pii_op.PiiRedactConfig(mode="hash")
    cfg = pii_op.PiiRedactConfig(mode="hash", salt_env="SFTFORGE_TEST_PII_SALT")
    monkeypatch.delenv("SFTFORGE_TEST_PII_SALT", raising=False)
    with pytest.raises(RecipeError, match="SFTFORGE_TEST_PII_SALT"):
        pii_op.PiiRedact(cfg).setup()
    with pytest.raises(RecipeError, match="SFTFORGE_TEST_PII_SALT"):
        pii_op.PiiRedact(cfg).map(make_record())  # without setup() too
    monkeypatch.setenv("SFTFORGE_TEST_PII_SALT", "pepper")
    op = pii_op.PiiRedact(cfg)
    op.setup()
    out = op.map(make_record())
    # hmac.new(b"pepper", b"EMAIL\x00ann@example.com", hashlib.blake2b).hexdigest()[:8]
    token = "[EMAIL:c2f6eae0]"
    assert token in out.messages[1]["content"] and token in out.messages[2]["content"]


def test_operator_config_and_registry():
    assert OPERATORS["pii_redact"] is pii_op.PiiRedact
    cfg = pii_op.PiiRedactConfig()
    assert cfg.types == list(REGEX_TYPES) and cfg.mode == "placeholder" and cfg.roles == ["system", "user", "assistant"]
    with pytest.raises(ValidationError):
        pii_op.PiiRedactConfig(types=["NAME"])
    assert pii_op.PiiRedactConfig(types=["PERSON", "EMAIL"]).types == ["PERSON", "EMAIL"]  # the name types opt in
    with pytest.raises(ValidationError):
        pii_op.PiiRedactConfig(roles=["tool"])
    with pytest.raises(ValidationError):
        pii_op.PiiRedactConfig(unknown=1)
