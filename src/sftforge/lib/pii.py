"""PII detection and redaction: pure functions, no I/O, no models.

`detect(text, types)` finds personal data and secrets with precompiled regular expressions plus validation
(checksums, ranges, context), and returns non-overlapping `PiiSpan`s in text order. `redact(text, spans, mode,
salt)` replaces them. Everything is deterministic and linear-time on adversarial input: no pattern nests unbounded
quantifiers, and detectors that need a rare trigger (an '@', '::', 'PRIVATE KEY', 'eyJ', a digit) check for it
before scanning. Word boundaries are ASCII-only, so "手机13812345678" and "身份证号1101..." are found in
Chinese text.

Types (`REGEX_TYPES` are on by default, `HEURISTIC_TYPES` are opt-in):

- EMAIL        local@domain.tld (ASCII).
- PHONE        digit groups joined by single spaces, dots or dashes (+44 20 7946 0958, (555) 123-4567,
               555-123-4567, 555.123.4567, +1-555-123-4567, 041-412-293), optional x/ext extension, 7 to 15 digits;
               Chinese mobiles 1[3-9]xxxxxxxxx with optional +86/0086. Rejected: dates (also inside: "2.7.1
               2010-11-27"), IPv4-shaped and SSN-shaped (3-2-4) numbers, thousands groupings (1 000 000), decimals,
               dots mixed with other separators (versions), valid ISBN-13s, '+0...', numbers glued to a word or a
               '-'/'.'/'/'. Without a '+', a parenthesised area code or a phone word (phone, tel, call, mobile,
               fax, contact, 电话, 手机, ...) nearby, a number counts when its grouping fits a national plan
               (`national_plan`: a trunk 0 in 9-12 digits, ES/PL 612 345 678, NO/DK 91 234 567, IN 98765 43210,
               US 555 1234, MX 55 1234 5678, ...) and no quantity word is next to it ("population 612 345 678",
               "12 345 678 people", "$ 555 1234"); other bare digit runs and two-group numbers need the phone word.
- CREDIT_CARD  12-19 digits, compact or grouped as cards are printed (4-4-4-4, 4-4-4-4-3, Amex 4-6-5, Diners
               4-6-4, Maestro 4-4-4, ...) with one kind of separator; an issuer prefix and length of a major network
               (Visa, Mastercard incl. 2-series, Amex, Diners, JCB incl. 15-digit 2131/1800, Discover, UnionPay,
               Maestro 12-19, Mir, RuPay, Verve, Troy, Dankort, UATP, InterPayment); Luhn-valid. A bare 12-digit
               number or one starting with 1 counts only after a card word (card, credit, Visa, payment, 卡号).
- IBAN         country code + check digits + BBAN, compact or in groups of four, upper- or lowercase; the country's
               length and mod 97.
- IP_ADDRESS   IPv4 with octets 0-255, IPv6 (validated by `ipaddress`, IPv4-mapped included). Not counted, as not
               personal: loopback, unspecified, multicast, reserved, netmasks (255.x), documentation ranges
               (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32). A dotted quad right after "v", "version",
               "release", "kernel", "section", "python", or a comparison operator (>=, ==, ~=) is a version number;
               anywhere else "1.2.3.4" *is* an address (nothing in the text tells them apart, and missing an
               address is the worse error). IPv6 needs two groups and four hex digits (not "a::b", "2262::").
- CREDENTIAL   AWS access key ids (AKIA/ASIA...), GitHub (ghp_/gho_/ghu_/ghs_/ghr_, github_pat_), Slack (xox?-,
               webhooks), OpenAI/Anthropic-style sk-..., Stripe sk_live_/rk_live_, Google AIza..., GitLab glpat-,
               Hugging Face hf_ (the random part must mix letters and digits), JWTs (the header decodes to JSON with
               "alg"), and the value of `password=...`, `api_key: ...`, `"client_secret": "..."`, `密码：...`.
               Assignment values: quoted, anything of 4+ characters but placeholders (<...>, ${...}, ***, xxx,
               your_..., os.environ...); unquoted, not a bare identifier or word ("password: required",
               "token = tok"), not a call or index; after `token`, random-looking ("token = 'football'" is a lexer
               token).
- PRIVATE_KEY  -----BEGIN ... PRIVATE KEY----- through the matching END line (or the base64 lines that follow
               when the END line is missing).
- US_SSN       AAA-GG-SSSS or AAA GG SSSS; area not 000/666/9xx, group not 00, serial not 0000, not a known public
               number (078-05-1120, 219-09-9999, 123-45-6789). Nine bare digits count only after "SSN"/"social
               security".
- CN_ID        18-digit resident id: province code, a real birth date (1900..today), ISO 7064 MOD 11-2 check.
- ADDRESS      (heuristic, opt-in) street addresses with a house number and a street-type word: "12 Main Street,
               Apt 4", "8 wressle road" (lowercase names only with unambiguous suffixes: street, road, avenue...),
               "Hauptstraße 5", "Nassaustraat 123", "Kossuth Lajos utca 12", "107 Rue Abdelaziz Thâalbi",
               "Via Roma 10" (via/avenue/boulevard/plaza need a capitalised name), and units on their own
               ("Apt. 018", "Suite 246"). Not detected: cities, regions, countries, postcodes, street names
               without a number.

- PERSON, LOCATION, ORGANIZATION (opt-in) names of people, places and organisations, in English and Chinese, by
               a gazetteer with capitalisation and context rules, and jieba's part-of-speech tags for Chinese
               (`sftforge.lib.names`); `detect` needs a `NameFinder` for them (`sftforge.gazetteer.name_finder()`).

Overlaps: the longest span wins; at equal length, the more specific type (the order of `SPECIFICITY`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

from sftforge.lib.names import NameFinder

PiiType = Literal[
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "IP_ADDRESS",
    "CREDENTIAL",
    "PRIVATE_KEY",
    "US_SSN",
    "CN_ID",
    "ADDRESS",
    "PERSON",
    "LOCATION",
    "ORGANIZATION",
]
ALL_TYPES: tuple[PiiType, ...] = get_args(PiiType)
HEURISTIC_TYPES: tuple[PiiType, ...] = ("ADDRESS", "PERSON", "LOCATION", "ORGANIZATION")
NAME_TYPES: tuple[PiiType, ...] = ("PERSON", "LOCATION", "ORGANIZATION")  # found by a NameFinder (lib/names.py)
REGEX_TYPES: tuple[PiiType, ...] = tuple(t for t in ALL_TYPES if t not in HEURISTIC_TYPES)

# Most specific first: at equal span length, the earlier type wins.
SPECIFICITY: tuple[str, ...] = (
    "PRIVATE_KEY",
    "CREDENTIAL",
    "CN_ID",
    "IBAN",
    "CREDIT_CARD",
    "US_SSN",
    "EMAIL",
    "IP_ADDRESS",
    "PHONE",
    "ADDRESS",
    "ORGANIZATION",
    "PERSON",
    "LOCATION",
)
_RANK = {t: i for i, t in enumerate(SPECIFICITY)}

RedactMode = Literal["mask", "placeholder", "hash"]


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """`text[start:end]` is personal data of `type`."""

    start: int
    end: int
    type: str
    text: str


# Boundaries are ASCII-only on purpose: in Python every CJK character is \w, and "手机13812345678" must match.
_NB = r"(?<![0-9A-Za-z_])"  # not after a letter or digit
# A pattern that starts with a lookbehind makes `re` try every position; a leading lookahead on the first
# character's class lets it skip ahead quickly (about 2x faster on prose). `_D` is "a digit, not after a word".
_D = r"(?=\d)" + _NB
_NA = r"(?![0-9A-Za-z_])"  # not before a letter or digit


# ---------------------------------------------------------------------------------------------------- checks
def luhn_ok(digits: str) -> bool:
    """Luhn checksum over a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# ISO 13616 lengths (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_ok(value: str) -> bool:
    """Known country, the country's length, and the ISO 7064 mod 97-10 check (remainder 1)."""
    s = value.replace(" ", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit() or not s.isalnum():
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


_CN_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"


def cn_id_ok(value: str, today: _dt.date | None = None) -> bool:
    """18-digit PRC resident id: province code, real birth date in 1900..today, ISO 7064 MOD 11-2 check char."""
    v = value.upper()
    if len(v) != 18 or not v[:17].isdigit() or v[:2] not in _CN_PROVINCES:
        return False
    try:
        born = _dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    if not _dt.date(1900, 1, 1) <= born <= (today or _dt.date.today()):
        return False
    return _CN_CHECK[sum(int(c) * w for c, w in zip(v[:17], _CN_WEIGHTS)) % 11] == v[17]


# Numbers the SSA never issued or that were published in advertising.
_SSN_KNOWN_FAKE = frozenset({"078051120", "219099999", "123456789"})


def ssn_ok(value: str) -> bool:
    """US SSN rules: area not 000, 666 or 900-999; group not 00; serial not 0000; not a known public number."""
    d = re.sub(r"[ -]", "", value)
    if len(d) != 9 or not d.isdigit():
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return d not in _SSN_KNOWN_FAKE and len(set(d)) > 1


def isbn13_ok(digits: str) -> bool:
    if len(digits) != 13 or not digits.startswith(("978", "979")):
        return False
    return sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(digits)) % 10 == 0


# ---------------------------------------------------------------------------------------------------- detectors
Candidate = tuple[int, int, str]  # start, end, type
Detector = Callable[[str], Iterator[Candidate]]

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)


def _emails(text: str) -> Iterator[Candidate]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        yield m.start(), m.end(), "EMAIL"


# Phone candidates: an optional +country code, an optional (area) code, then digit groups joined by ONE separator
# each (space, dot or dash; the separator is required between groups, so group splits cannot backtrack
# combinatorially), and an optional extension.
_PHONE = re.compile(
    r"(?=[+(\d])(?<![0-9A-Za-z_.\-/])" + r"(?:(?P<plus>\+)\s?\d{1,4}[ .-]?)?"
    r"(?:(?P<paren>\(\d{1,5}\))[ .-]?)?"
    r"(?:\d{7,15}|\d{1,15}(?:[ .-]\d{1,15}){1,7}|(?<=[+)][ .-])\d{1,6}|(?<=[+)])\d{1,6})"
    r"(?:\s?(?:[xX]|[eE][xX][tT]\.?|[eE]xtension)\s?\d{1,6})?" + _NA
)
_PHONE_EXT = re.compile(r"\s?(?:[xX]|[eE][xX][tT]\.?|[eE]xtension)\s?\d{1,6}$")
_CN_MOBILE = re.compile(r"(?:(?:\+|00)?86)?1[3-9]\d{9}")  # over the digits of a candidate
_PHONE_CONTEXT = re.compile(
    r"(?:phone|tel|telephone|call|mobile|cell|fax|whatsapp|contact|电话|手机|联系|致电|传真)"
    r"[^0-9\n]{0,20}$",
    re.IGNORECASE,
)
_DATE_PREFIX = re.compile(
    r"^(?:(?:19|20)\d\d[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)?\d\d"
    r"|(?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])[-./](?:19|20)?\d\d)(?!\d)"
)
_ISO_DATE = re.compile(r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])")
_YEAR_RANGE = re.compile(r"^(?:1[5-9]|20)\d\d\s?[-–]\s?(?:1[5-9]|20)\d\d$")
_GROUPS = re.compile(r"\d+")


# Numbers people write without a phone word, by national numbering plans. Each entry: the digit groups and the
# first digits allowed. A leading trunk 0 (DE 030 12345678, NL 06 12345678, UK 07700 900123, CN 010-12345678,
# IT, AU, ZA, JP, KR) marks a phone number in any grouping of 9-12 digits: quantities do not start with 0.
_PLANS: tuple[tuple[tuple[int, ...], str], ...] = (
    ((3, 3, 3), "[5-9]"),  # ES and PL mobiles: 612 345 678
    ((2, 3, 3), "[2-9]"),  # NO and DK: 91 234 567
    ((3, 2, 3), "[2-9]"),  # NO: 912 34 567
    ((5, 5), "[6-9]"),  # IN mobiles: 98765 43210
    ((3, 4), "[2-9]"),  # US local: 555 1234, 555-1234
    ((2, 4, 4), "[1-9]"),  # MX: 55 1234 5678
    ((3, 3, 4), "[2-9]"),  # US, ZA: 212 555 0188
    ((10,), "[6-9]"),  # IN mobiles written compact: 9876543210
)
# Words that make a grouped number a quantity, a range or an id rather than a phone number.
_QUANTITY_BEFORE = re.compile(
    r"(?:population|people|inhabitants|residents|total|budget|cost|costs|price|revenue|sales|about|around|"
    r"approximately|nearly|over|under|than|from|to|between|and|of|by|lines?|pages?|no\.|nr\.|number of|"
    r"[$€£¥]|\bUS\$|=)\s*$",
    re.IGNORECASE,
)
_QUANTITY_AFTER = re.compile(
    r"\s*(?:%|percent|people|persons|inhabitants|residents|visitors|users|copies|units|tons?|tonnes|km|m|kg|g|mi|"
    r"miles|metres|meters|euros?|dollars|yuan|yen|pounds|years|bytes|[kmg]b|items|votes|words|times|-)\b",
    re.IGNORECASE,
)


def national_plan(groups: list[str], seps: set[str]) -> bool:
    """Whether digit groups fit a national plan: a trunk-0 number of 9-12 digits in 2-4 groups, or a grouping and
    first digit in `_PLANS`, with one kind of separator (space or dash)."""
    if len(seps) > 1 or seps - {" ", "-"}:
        return False
    digits = "".join(groups)
    if digits[0] == "0" and digits[:2] != "00" and 9 <= len(digits) <= 12 and 2 <= len(groups) <= 4:
        return len(groups[0]) <= 5 and all(len(g) >= 2 for g in groups)
    shape = tuple(len(g) for g in groups)
    if shape == (3, 4) and seps == {"-"} and int(groups[0]) < int(groups[1]) <= 2100:
        return False  # a range of years or a standard's number: 973-1048, IEEE 854-1987
    return any(shape == plan and re.match(first, digits) for plan, first in _PLANS)


def _phone_ok(cand: str, has_plus: bool, has_paren: bool, context: bool, quantity: bool = False) -> bool:
    body = _PHONE_EXT.sub("", cand)
    has_ext = len(body) != len(cand)
    digits = "".join(_GROUPS.findall(body))
    if not 7 <= len(digits) <= 15 or len(set(digits)) == 1:
        return False
    if _CN_MOBILE.fullmatch(digits) and len(_GROUPS.findall(body)) <= 3:  # 13812345678, +86 138 1234 5678
        return True
    if _DATE_PREFIX.match(body) or _YEAR_RANGE.match(body) or _ISO_DATE.search(body):
        return False
    if has_plus and body.lstrip("+ ")[:1] == "0":  # country codes start with 1-9
        return False
    core = body.split(")", 1)[-1].strip(" .-") if has_paren else body
    if has_plus:
        core = re.sub(r"^\+\s?\d{1,4}[ .-]?", "", core)
    groups = _GROUPS.findall(core)
    seps = set(re.findall(r"[ .-]", core))
    if re.fullmatch(r"\d{3}-\d{2}-\d{4}", body):  # SSN-shaped
        return False
    if len(groups) >= 2 and len(groups[-1]) == 1:  # numbers end in groups of 2+ digits: "555 123 4567 2 times"
        return False
    if seps == {"."} and len(groups) == 4 and all(len(g) <= 3 for g in groups):  # IPv4-shaped
        return False
    if "." in seps and len(seps) > 1:  # "6.3.1 20161221": a version and a number, not one phone
        return False
    if isbn13_ok(digits):
        return False
    if not (has_plus or has_paren or has_ext):
        if national_plan(groups, seps) and not quantity:
            return True
        if len(groups) >= 2 and len(seps) == 1 and seps <= {" ", "."} and len(groups[0]) <= 3:
            if all(len(g) == 3 for g in groups[1:]):  # 1 000 000, 12.345.678
                return False
        if len(groups) == 2 and seps == {"."}:  # a decimal
            return False
        if len(groups) <= 2 and not context:  # 555-1234, 5551234567, "2020 1500": only near a phone word
            return False
    return True


def _phones(text: str) -> Iterator[Candidate]:
    if not any(c.isdigit() for c in text):
        return
    for m in _PHONE.finditer(text):
        start, end = m.start(), m.end()
        if end - start < 7:  # fewer than 7 digits: most digit runs in prose stop here
            continue
        context = bool(_PHONE_CONTEXT.search(text, max(0, start - 30), start))
        quantity = bool(_QUANTITY_BEFORE.search(text, max(0, start - 25), start)) or bool(
            _QUANTITY_AFTER.match(text, end, min(len(text), end + 12))
        )
        cand = text[start:end]
        blocks = _GROUPS.findall(cand)
        if len(blocks) >= 4 and all(len(g) == 4 for g in blocks[:-1]):  # a card/account block, not a phone
            continue
        # A phone followed by another number ("call 555 123 4567 2 times"): drop space-separated trailing groups
        # until it fits. Groups joined by '-' or '.' are one token (a card, an ISBN) and are not cut.
        while True:
            if _phone_ok(cand, bool(m.group("plus")), bool(m.group("paren")), context, quantity):
                yield start, start + len(cand), "PHONE"
                break
            cut = cand.rfind(" ")
            if cut <= 0 or (m.group("paren") and cut < m.end("paren") - start):
                break
            cand = cand[:cut].rstrip(" .-")


# How card numbers are printed: Visa/Mastercard/Discover 4-4-4-4, 19-digit 4-4-4-4-3, Amex 4-6-5, Diners 4-6-4,
# 13-15 digit 4-4-4-x.
_CARD_GROUPINGS = (
    [4, 4, 4, 4],
    [4, 4, 4, 4, 3],
    [4, 6, 5],
    [4, 6, 4],
    [4, 4, 4],  # 12-digit Maestro
    [4, 4, 5],  # 13 digits
    [4, 4, 4, 1],
    [4, 4, 4, 2],
    [4, 4, 4, 3],
    [4, 4, 4, 5],
    [4, 4, 4, 6],
    [4, 4, 4, 4, 1],
    [4, 4, 4, 4, 2],
)
# Issuer prefixes (IIN ranges) and lengths of the major networks.
_ISSUERS: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (4, 4, (13, 16, 19)),  # Visa
    (51, 55, (16,)),  # Mastercard
    (2221, 2720, (16,)),  # Mastercard 2-series
    (34, 34, (15,)),  # Amex
    (37, 37, (15,)),
    (300, 305, (14, 16, 17, 18, 19)),  # Diners
    (36, 36, (14, 16, 17, 18, 19)),
    (38, 39, (14, 16, 17, 18, 19)),
    (3528, 3589, (16, 17, 18, 19)),  # JCB
    (2131, 2131, (15,)),  # JCB's older 15-digit ranges
    (1800, 1800, (15,)),
    (2200, 2204, (16, 17, 18, 19)),  # Mir
    (9792, 9792, (16,)),  # Troy
    (1, 1, (15,)),  # UATP
    (81, 82, (16, 17, 18, 19)),  # UnionPay 81, RuPay 82
    (60, 60, (16, 19)),  # RuPay
    (508, 508, (16,)),
    (5018, 5020, (12, 13, 14, 15, 16, 17, 18, 19)),  # Maestro (5019: Dankort, 16)
    (5038, 5038, (12, 13, 14, 15, 16, 17, 18, 19)),
    (5893, 5893, (12, 13, 14, 15, 16, 17, 18, 19)),
    (6304, 6304, (12, 13, 14, 15, 16, 17, 18, 19)),
    (6759, 6763, (12, 13, 14, 15, 16, 17, 18, 19)),
    (506099, 506198, (16, 18, 19)),  # Verve
    (650002, 650027, (16, 18, 19)),
    (636, 636, (16, 17, 18, 19)),  # InterPayment
    (6011, 6011, (16, 17, 18, 19)),  # Discover
    (644, 649, (16, 17, 18, 19)),
    (65, 65, (16, 17, 18, 19)),
    (62, 62, (16, 17, 18, 19)),  # UnionPay
    (50, 50, (13, 14, 15, 16, 17, 18, 19)),  # Maestro
    (56, 69, (13, 14, 15, 16, 17, 18, 19)),
)


def _issuer_ok(digits: str) -> bool:
    for lo, hi, lengths in _ISSUERS:
        prefix = int(digits[: len(str(lo))])
        if lo <= prefix <= hi and len(digits) in lengths:
            return True
    return False


_CARD = re.compile(_D + r"\d(?:[ -]?\d){11,18}" + _NA)


_CARD_CONTEXT = re.compile(
    r"(?:card|credit|debit|visa|mastercard|amex|jcb|maestro|unionpay|rupay|payment|pay with|paid with|charge|"
    r"卡号|信用卡|银行卡)[^0-9\n]{0,20}$",
    re.IGNORECASE,
)


def _card_ok(s: str, context: bool = False) -> bool:
    seps = set(re.findall(r"[ -]", s))
    if len(seps) > 1:
        return False
    groups = re.split(r"[ -]", s)
    if seps and [len(g) for g in groups] not in _CARD_GROUPINGS:
        return False
    digits = "".join(groups)
    if not seps and not context and (len(digits) == 12 or digits[0] == "1"):
        # a bare 12-digit number, or 15 digits starting with 1 (UATP, JCB 1800), is an id or a list of primes far
        # more often than a card: those count only when printed in groups or next to a card word
        return False
    return _issuer_ok(digits) and len(set(digits)) > 1 and luhn_ok(digits)


def _cards(text: str) -> Iterator[Candidate]:
    for m in _CARD.finditer(text):
        context = bool(_CARD_CONTEXT.search(text, max(0, m.start() - 30), m.start()))
        if _card_ok(m.group(), context):
            yield m.start(), m.end(), "CREDIT_CARD"
            continue
        # "+1 4111 1111 1111 1111": the card may start at the second group (tried once, so the scan stays linear)
        sep = re.search(r"[ -]", m.group())
        if sep and (m2 := _CARD.match(text, m.start() + sep.end())) is not None and _card_ok(m2.group(), context):
            yield m2.start(), m2.end(), "CREDIT_CARD"


_IBAN = re.compile(
    r"(?=[A-Z])(?<![0-9A-Za-z])[A-Z]{2}\d{2}"
    r"(?:(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?|[A-Z0-9]{7,30})(?![0-9A-Za-z])"
)


# The same shape in lowercase ("gb82 west 1234 5698 7654 32"), as people type it; the mod-97 check keeps words out.
_IBAN_LOWER = re.compile(
    r"(?=[a-z])(?<![0-9A-Za-z])[a-z]{2}\d{2}"
    r"(?:(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,3})?|[a-z0-9]{7,30})(?![0-9A-Za-z])"
)


def _ibans(text: str) -> Iterator[Candidate]:
    for pattern in (_IBAN, _IBAN_LOWER):
        for m in pattern.finditer(text):
            cand = m.group()
            # the next word may look like a last group ("... 0559 at the branch"): drop trailing groups until valid
            while not iban_ok(cand) and " " in cand[4:]:
                cand = cand[: cand.rindex(" ")]
            if iban_ok(cand):
                yield m.start(), m.start() + len(cand), "IBAN"


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(r"(?=\d)(?<![0-9A-Za-z_.])" + _OCTET + r"(?:\." + _OCTET + r"){3}(?![0-9A-Za-z_]|\.\d)")
_IPV6 = re.compile(
    r"(?=[0-9A-Fa-f:])(?<![0-9A-Za-z_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:" + _OCTET + r"(?:\." + _OCTET + r"){3}|[0-9A-Fa-f]{1,4})?"
    r"(?![0-9A-Za-z_:]|\.\d)"
)
# A dotted quad right after these is a version or a section number, not an address.
_VERSION_BEFORE = re.compile(
    r"(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\bkernel|\bsection|\bchapter|§|[=<>~!]=|[<>]|\bpython|\bgcc)"
    r"\s*$",
    re.IGNORECASE,
)
# Not personal: documentation ranges (RFC 5737, RFC 3849), loopback, unspecified, multicast, reserved.
_DOC_NETS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def _public_ip(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback or addr.is_unspecified or addr.is_multicast or addr.is_reserved:
        return False
    return not any(addr.version == n.version and addr in n for n in _DOC_NETS)


def _ips(text: str) -> Iterator[Candidate]:
    if "." in text:
        for m in _IPV4.finditer(text):
            s = m.group()
            if s.startswith("255.") or not _public_ip(ipaddress.IPv4Address(s)):  # 255.x: a netmask
                continue
            if _VERSION_BEFORE.search(text, max(0, m.start() - 12), m.start()):
                continue
            yield m.start(), m.end(), "IP_ADDRESS"
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            s = m.group()
            if len(s) < 6:
                continue
            try:
                addr = ipaddress.IPv6Address(s)
            except ValueError:
                continue
            # "a::b" and "2262::" (a year before a reStructuredText '::') are not addresses: two groups and four
            # hex digits at least.
            if sum(1 for g in s.split(":") if g) < 2 or sum(c in "0123456789abcdefABCDEF" for c in s) < 4:
                continue
            if not _public_ip(addr):
                continue
            yield m.start(), m.end(), "IP_ADDRESS"


_TOKEN_PATTERNS = re.compile(
    r"(?=[AghxsrpG])(?<![0-9A-Za-z_-])(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub
    r"|xox[abprse]-[A-Za-z0-9-]{10,250}"  # Slack
    r"|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,200}"  # Slack webhook
    r"|sk-[A-Za-z0-9_-]{20,250}"  # OpenAI / Anthropic style (sk-proj-..., sk-ant-...)
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,250}"  # Stripe
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r")(?![0-9A-Za-z_-])"
)
_JWT = re.compile(
    r"eyJ(?<![0-9A-Za-z_-]eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?![0-9A-Za-z_-])"
)
_KEYWORDS = (
    r"password|passwd|passphrase|pwd|secret|secret[_-]?key|client[_-]?secret|api[_-]?key|apikey|api[_-]?secret"
    r"|access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token"
    r"|bearer|token|private[_-]?key|credentials?"
)
_ASSIGN = re.compile(
    r"(?=[pPsScCaAtTbBrR密口令])"
    r"(?P<key>(?<![A-Za-z0-9])(?:" + _KEYWORDS + r")(?![A-Za-z0-9])|密码|口令|密钥|令牌)"
    r"[\"']?[ \t]*(?P<op>[:=：]|=>|:=)[ \t]*"
    r"(?:(?P<q>[\"'`])(?P<qvalue>[^\"'`\n]{4,200})(?P=q)|(?P<value>[^\s\"'`,;<>(){}\[\]]{4,200}))",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"^(?:\$|%|\*+$|x+$|\.+$|none$|null$|nil$|true$|false$|undefined$|required$|optional$|string$|str$|env\b"
    r"|os\.|process\.env|getenv|your[_-]|my[_-]|example|placeholder|redacted|\[|<|\{)",
    re.IGNORECASE,
)


def _jwt_ok(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def _random_looking(token: str) -> bool:
    """Generated keys mix digits and letters; hyphenated words (sk-learn-style names) do not."""
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token) and "--" not in token


def _credentials(text: str) -> Iterator[Candidate]:
    for m in _TOKEN_PATTERNS.finditer(text):
        if _random_looking(m.group()[4:]):
            yield m.start(), m.end(), "CREDENTIAL"
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            if _jwt_ok(m.group()):
                yield m.start(), m.end(), "CREDENTIAL"
    for m in _ASSIGN.finditer(text):
        quoted = m.group("q") is not None
        value = m.group("qvalue") if quoted else m.group("value")
        if not quoted:
            if text[m.end() : m.end() + 1] in ("(", "["):  # a call or an index: code, not a literal
                continue
            value = value.rstrip(".")
            # Unquoted, the value must look generated: an identifier or a word ("token = tok",
            # "password: required") is code or prose.
            if re.fullmatch(r"[A-Za-z_.]+", value):
                continue
        if len(value) < 4 or _PLACEHOLDER.match(value):
            continue
        key = m.group("key").lower()
        if "token" in key and key not in ("access_token", "auth_token", "refresh_token") and len(value) < 16:
            if not _random_looking(value):  # lexer and NLP tokens: token = 'football'
                continue
        start = m.start("qvalue" if quoted else "value")
        yield start, start + len(value), "CREDENTIAL"


_KEY_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ ){0,3})PRIVATE KEY( BLOCK)?-----")
_KEY_BODY_LINE = re.compile(r"[ \t]*\r?\n[ \t]*(?:[A-Za-z0-9+/=]{4,}|[A-Za-z-]+: [^\n]*)(?=\r?\n|$)")


def _private_keys(text: str) -> Iterator[Candidate]:
    if "PRIVATE KEY" not in text:
        return
    pos = 0
    while (m := _KEY_BEGIN.search(text, pos)) is not None:
        end_marker = f"-----END {m.group(1)}PRIVATE KEY{m.group(2) or ''}-----"
        e = text.find(end_marker, m.end())
        nxt = text.find("-----BEGIN ", m.end())
        if e != -1 and (nxt == -1 or e < nxt):
            end = e + len(end_marker)
        else:  # no END line: take the base64 (and header) lines that follow
            end = m.end()
            while (b := _KEY_BODY_LINE.match(text, end)) is not None:
                end = b.end()
        yield m.start(), end, "PRIVATE_KEY"
        pos = end


_SSN = re.compile(_D + r"(?<!\d[ -])\d{3}(?P<sep>[- ])\d{2}(?P=sep)\d{4}(?![0-9A-Za-z_]|[ -]\d)")
_SSN_WORDS = ("SSN", "ssn", "Ssn", "ocial security", "ocial Security", "OCIAL SECURITY", "社会安全号")
_SSN_BARE = re.compile(
    r"(?=[sS社])(?:ssn|social security(?: number| no\.?| #)?|社会安全号)"
    r"[^0-9\n]{0,12}(?P<v>\d{9})(?![0-9A-Za-z_])",
    re.IGNORECASE,
)


def _ssns(text: str) -> Iterator[Candidate]:
    for m in _SSN.finditer(text):
        if ssn_ok(m.group()):
            yield m.start(), m.end(), "US_SSN"
    if not any(k in text for k in _SSN_WORDS):
        return
    for m in _SSN_BARE.finditer(text):
        if ssn_ok(m.group("v")):
            yield m.start("v"), m.end("v"), "US_SSN"


_CN_ID = re.compile(
    r"(?=[1-9])(?<![0-9A-Za-z_])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
    r"(?![0-9A-Za-z_])"
)


def _cn_ids(text: str) -> Iterator[Candidate]:
    for m in _CN_ID.finditer(text):
        if cn_id_ok(m.group()):
            yield m.start(), m.end(), "CN_ID"


# Street addresses, conservatively: a house number and a recognised street-type word are required in every form.
# Every form is found from its house number (digits are rarer than letters, so this scans fast).
_SUFFIXES = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|terrace|ter|way|parkway"
    r"|pkwy|highway|hwy|circle|cir|square|sq|crescent|cres|close|grove|gardens|mews|row|alley|trail|trl"
    r"|plaza|walk"
)
# Street-type words that are unambiguous enough to follow an all-lowercase name ("8 wressle road").
_LOWERCASE_OK_SUFFIXES = frozenset("street avenue road boulevard lane drive highway parkway terrace".split())
# Street-type word first: French, Italian, Spanish, Portuguese, Catalan, Polish. "via", "avenue", "boulevard",
# "bd" and "plaza" are English words too, so after them the name must be capitalised ("via email 2" is not).
_TYPE_WORDS = (
    "rue",
    "chemin",
    "allée",
    "quai",
    "viale",
    "piazza",
    "corso",
    "vicolo",
    "calle",
    "avenida",
    "avda",
    "paseo",
    "carrer",
    "rua",
    "travessa",
    "largo",
    "ulica",
    "ul.",
    "via",
    "avenue",
    "boulevard",
    "bd",
    "plaza",
)
_NEEDS_CAPITAL = frozenset({"via", "avenue", "boulevard", "bd", "plaza"})
# Compound street names: German, Dutch, Scandinavian, Finnish, Hungarian, Slavic, Turkish ("Hauptstraße 5").
_COMPOUND_SUFFIXES = (
    "strasse",
    "straße",
    "str.",
    "gasse",
    "weg",
    "allee",
    "platz",
    "damm",
    "straat",
    "laan",
    "gracht",
    "plein",
    "singel",
    "vej",
    "gatan",
    "gata",
    "vägen",
    "veien",
    "katu",
)
# The same as separate words after the name: "Alter Weg 3", "Kossuth Lajos utca 12", "Atatürk caddesi 5".
_STREET_WORDS = frozenset(
    "strasse straße str. gasse weg allee platz damm straat laan gracht plein vej gatan gata vägen veien katu "
    "utca út útja ulica ulice sokak sokağı caddesi cad.".split()
)
_UNIT = r"(?:,?[ \t]*(?i:apt|apartment|suite|ste|unit|flat|#)\.?[ \t]*#?[ \t]*\d{1,5}[A-Za-z]?(?!\w))?"
_UNIT_AFTER = re.compile(_UNIT)
_WORD = r"[^\W\d_]+(?:['’-][^\W\d_]+)?"  # letters, optionally O'Brien / Saint-Denis
_TYPE_RE = "|".join(re.escape(t) for t in _TYPE_WORDS)
# After a type word: up to two particles (de la, del, d'), a name word, up to three capitalised words.
_TYPE_NAME = (
    r"(?:(?i:de|du|des|la|le|les|del|della|di|da|do|dos|das)[ \t]+|(?i:d['’])){0,2}"
    r"(?P<tname>[^\W\d_][\w'’-]*(?:[ \t]+[A-ZÀ-ÞΑ-Ω][\w'’-]*){0,3})"
)
_STREET_NUM_FIRST = re.compile(  # "12 Main Street, Apt 4", "8 wressle road", "107 Rue Abdelaziz Thâalbi"
    r"(?=\d)(?<![\w.,-])(?P<num>\d{1,6}[A-Za-z]?(?:-\d{1,4})?)(?:[ \t]+"
    r"(?P<name>(?:[NSEWnsew]\.?[ \t]+)?(?:" + _WORD + r"|\d{1,3}(?:st|nd|rd|th))(?:[ \t]+" + _WORD + r"){0,3})"
    r"[ \t]+(?P<suffix>(?i:" + _SUFFIXES + r"))\.?(?![\w'’])"
    r"|,?[ \t]+(?P<type>(?i:" + _TYPE_RE + r"))[ \t]+" + _TYPE_NAME + r"(?!\w)"
    r")" + _UNIT
)
_NUM_AFTER_WORD = re.compile(  # the house number of "Hauptstraße 5", "Via Roma 10", "rue de la Paix, 12"
    r"(?=[ \t.,])(?<=[^\W\d_])\.?,?[ \t]+\d{1,5}[A-Za-z]?(?:[-/]\d{1,4})?(?:\.(?!\d))?(?!\w)"
)
_TYPE_FIRST_BEFORE = re.compile(r"(?<![\w-])(?P<type>(?i:" + _TYPE_RE + r"))[ \t]+" + _TYPE_NAME + r"$")
_NAME_BEFORE = re.compile(r"(?<![\w-])" + _WORD + r"(?:[ \t]+" + _WORD + r")?[ \t]+$")
# A unit on its own: "Apt. 018", "Suite 246", "suite 771". Lowercase "suite" with one digit is too often software
# ("test suite 1", "<suite 1>").
_UNIT_ALONE = re.compile(
    r"(?=[aAsS])(?<![\w<-])"
    r"(?:(?i:apt\.?|apartment)[ \t]*#?[ \t]*\d{1,5}|Suite[ \t]*#?[ \t]*\d{1,5}|(?i:suite)[ \t]*#?[ \t]*\d{2,5})"
    r"[A-Za-z]?(?![\w>])"
)
_YEAR_PREPOSITIONS = frozenset("in on since by until till from of to after before around circa c. during year".split())
_NOT_STREET_NAME = frozenset(
    "a an the of on in at to for from by with and or but down up over into onto off out is are was were be "
    "been my your his her its our their this that these those some any no all each every other more most "
    "than then miles mile km minutes hours days years times percent people am pm we you they he she it i".split()
)


def _with_unit(text: str, start: int, end: int) -> Candidate:
    unit = _UNIT_AFTER.match(text, end)
    return start, (unit.end() if unit else end), "ADDRESS"


def _type_ok(typ: str, name: str) -> bool:
    """ "Via Roma", "rue de la Paix"; not "via email", "via PEP 8", "another avenue"."""
    if typ.lower() not in _NEEDS_CAPITAL:
        return True
    return typ[:1].isupper() and name[:1].isupper() and not name.split()[0].isupper()


def _addresses(text: str) -> Iterator[Candidate]:
    if not any(c.isdigit() for c in text):
        return
    for m in _STREET_NUM_FIRST.finditer(text):
        num = m.group("num")
        if len(num) == 4 and num.isdigit() and 1500 <= int(num) <= 2099:  # "in 1886 Robert Lane": a year
            before = text[max(0, m.start() - 12) : m.start()].split()
            if before and before[-1].lower() in _YEAR_PREPOSITIONS:
                continue
        if m.group("type"):
            if not _type_ok(m.group("type"), m.group("tname")):
                continue
        else:
            words = m.group("name").split()
            if any(w.lower().strip(".") in _NOT_STREET_NAME for w in words):
                continue
            suffix = m.group("suffix")
            if suffix.islower() and not any(w[:1].isupper() for w in words) and suffix not in _LOWERCASE_OK_SUFFIXES:
                continue
        yield m.start(), m.end(), "ADDRESS"
    for m in _NUM_AFTER_WORD.finditer(text):
        s = m.start()
        j = s
        while j > 0 and (text[j - 1].isalpha() or text[j - 1] in "-'’"):
            j -= 1
        if j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
            continue
        word = (text[j:s] + ("." if text.startswith(".", s) else "")).lower()
        if any(word.endswith(c) and len(word) >= len(c) + 2 for c in _COMPOUND_SUFFIXES):
            yield _with_unit(text, j, m.end())
            continue
        if word in _STREET_WORDS:  # the name is the one or two words before
            name = _NAME_BEFORE.search(text, max(0, j - 40), j)
            if name and not any(w.lower() in _NOT_STREET_NAME for w in name.group().split()):
                yield _with_unit(text, name.start(), m.end())
            continue
        window_start = max(0, j - 60)
        low = text[window_start:s].lower()
        if any(t in low for t in _TYPE_WORDS):
            b = _TYPE_FIRST_BEFORE.search(text, window_start, s)
            if b and _type_ok(b.group("type"), b.group("tname")):
                yield _with_unit(text, b.start(), m.end())
    for m in _UNIT_ALONE.finditer(text):
        yield m.start(), m.end(), "ADDRESS"


DETECTORS: dict[str, Detector] = {
    "EMAIL": _emails,
    "PHONE": _phones,
    "CREDIT_CARD": _cards,
    "IBAN": _ibans,
    "IP_ADDRESS": _ips,
    "CREDENTIAL": _credentials,
    "PRIVATE_KEY": _private_keys,
    "US_SSN": _ssns,
    "CN_ID": _cn_ids,
    "ADDRESS": _addresses,
}


def resolve_overlaps(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Keep the longest span of each overlapping group (more specific type on ties), in text order."""
    chosen: list[Candidate] = []
    taken: list[tuple[int, int]] = []
    for start, end, typ in sorted(set(candidates), key=lambda c: (-(c[1] - c[0]), _RANK.get(c[2], 99), c[0])):
        if start >= end or any(start < e and s < end for s, e in taken):
            continue
        chosen.append((start, end, typ))
        taken.append((start, end))
    return sorted(chosen)


def detect(text: str, types: Iterable[str] | None = None, names: NameFinder | None = None) -> list[PiiSpan]:
    """Non-overlapping PII spans in `text`, in order. `types` defaults to `REGEX_TYPES` (ADDRESS and the name types
    are opt-in); PERSON, LOCATION and ORGANIZATION need `names` (`sftforge.gazetteer.name_finder()`)."""
    wanted = REGEX_TYPES if types is None else tuple(types)
    unknown = [t for t in wanted if t not in DETECTORS and t not in NAME_TYPES]
    if unknown:
        raise ValueError(f"unknown PII type(s) {unknown}; known: {list(ALL_TYPES)}")
    asked = tuple(t for t in wanted if t in NAME_TYPES)
    if asked and names is None:
        raise ValueError(f"{', '.join(asked)} need a name finder: pass names=sftforge.gazetteer.name_finder()")
    if not text:
        return []
    candidates = [c for t in wanted if t in DETECTORS for c in DETECTORS[t](text)]
    if asked and names is not None:
        candidates += names.find(text, asked)
    return [PiiSpan(s, e, t, text[s:e]) for s, e, t in resolve_overlaps(candidates)]


# ---------------------------------------------------------------------------------------------------- redaction
def normalise(span: PiiSpan) -> str:
    """The value that identifies a span, so that one value written two ways hashes the same."""
    if span.type in ("PHONE", "CREDIT_CARD", "US_SSN"):
        return re.sub(r"[^0-9+x]", "", span.text.lower())
    if span.type in ("IBAN", "CN_ID"):
        return span.text.replace(" ", "").upper()
    if span.type in ("EMAIL", "IP_ADDRESS"):
        return span.text.lower()
    return span.text


def hash_token(span: PiiSpan, salt: str) -> str:
    """8 hex digits of HMAC-BLAKE2b(salt, type + normalised value): stable per salt, not reversible without it."""
    mac = hmac.new(salt.encode("utf-8"), f"{span.type}\x00{normalise(span)}".encode(), hashlib.blake2b)
    return mac.hexdigest()[:8]


def redact(text: str, spans: Iterable[PiiSpan], mode: RedactMode = "placeholder", salt: str = "") -> str:
    """Replace each span: "mask" -> '*' per character (same length); "placeholder" -> "[EMAIL]";
    "hash" -> "[EMAIL:1a2b3c4d]", a salted HMAC of the value (equal values give equal tokens; needs a salt)."""
    if mode not in ("mask", "placeholder", "hash"):
        raise ValueError(f"unknown redaction mode {mode!r}; use mask, placeholder or hash")
    if mode == "hash" and not salt:
        raise ValueError("hash mode needs a non-empty salt (without one, hashed phone numbers can be brute-forced)")
    out: list[str] = []
    pos = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < pos:
            raise ValueError(f"overlapping spans at {span.start}: resolve overlaps first (detect() does)")
        if text[span.start : span.end] != span.text:
            raise ValueError(f"span {span.start}:{span.end} does not match the text ({span.text!r})")
        out.append(text[pos : span.start])
        if mode == "mask":
            out.append("*" * (span.end - span.start))
        elif mode == "placeholder":
            out.append(f"[{span.type}]")
        else:
            out.append(f"[{span.type}:{hash_token(span, salt)}]")
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def redact_text(
    text: str, types: Iterable[str] | None = None, mode: RedactMode = "placeholder", salt: str = ""
) -> tuple[str, list[PiiSpan]]:
    """detect() then redact(): the redacted text and the spans found."""
    spans = detect(text, types)
    return (redact(text, spans, mode, salt) if spans else text), spans
