"""Generated PII cases for the classes the detector used to miss, with the look-alikes it must leave alone.

Each case is a sentence with labelled spans, in the same shape as Presidio's generated file
(`{full_text, spans: [{entity_type, entity_value, start_position, end_position}]}`), so `benchmarks/pii.py`
scores both alike. Positives:
- phone numbers as people write them in 20 countries, by each country's numbering plan (trunk prefix, mobile
  ranges, the usual digit grouping), with and without the international prefix, and with no phone word nearby;
- credit cards of every major network at each length it issues (Visa, Mastercard 51-55 and 2221-2720, Amex,
  Diners, Discover, JCB 3528-3589 and the 15-digit 2131/1800, UnionPay, Maestro 12-19 digits, Mir, RuPay,
  Verve, Troy, Dankort, UATP, InterPayment), Luhn-valid, compact or grouped as printed;
- IPv6 addresses with short (1-3 hex digit) groups, compressed or not;
- IBANs of 12 countries with valid check digits, upper- and lowercase, compact or in groups of four.
Negatives (sentences whose numbers are not PII): years and ranges, prices, populations grouped by thousands,
version numbers, ISBNs, dates, times, measurements, Luhn-invalid 16-digit numbers, section numbers; and n/6
sentences where a count grouped by thousands (612 345 678, 91 234 567, the shapes of ES, PL and NO mobiles)
is a population, a price or a total.

    python benchmarks/pii_cases.py [--n 1200] [--seed 0] > cases.json
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections.abc import Callable

# (country, calling code, formats): '#' a random digit, other characters as written.
PHONE_PLANS: list[tuple[str, str, list[str]]] = [
    ("ES", "34", ["6## ### ###", "7## ### ###", "91# ## ## ##", "93# ### ###"]),
    ("FR", "33", ["06 ## ## ## ##", "07 ## ## ## ##", "01 ## ## ## ##"]),
    ("DE", "49", ["030 ########", "089 #######", "0151 ########", "0171 #######", "040 ### ####"]),
    ("GB", "44", ["07### ######", "020 #### ####", "0161 ### ####", "0113 ### ####"]),
    ("IT", "39", ["3## ### ####", "06 #### ####", "02 #### ####"]),
    ("NL", "31", ["06 ########", "020 ### ####", "06-########"]),
    ("NO", "47", ["9# ## ## ##", "4## ## ###", "9# ### ###"]),
    ("DK", "45", ["2# ## ## ##", "3# ## ## ##"]),
    ("SE", "46", ["07#-### ## ##", "08-### ### ##"]),
    ("CH", "41", ["07# ### ## ##", "044 ### ## ##"]),
    ("PL", "48", ["5## ### ###", "6## ### ###", "22 ### ## ##"]),
    ("US", "1", ["(2##) 5##-####", "2##-5##-####", "3##.5##.####", "5##-####", "555 ####"]),
    ("JP", "81", ["090-####-####", "03-####-####", "080-####-####"]),
    ("AU", "61", ["04## ### ###", "(02) #### ####", "03 #### ####"]),
    ("IN", "91", ["9#### #####", "7#### #####", "8#########"]),
    ("BR", "55", ["(11) 9####-####", "(21) ####-####"]),
    ("MX", "52", ["55 #### ####", "33 #### ####"]),
    ("RU", "7", ["8 9## ###-##-##", "8 (495) ###-##-##"]),
    ("KR", "82", ["010-####-####", "02-###-####"]),
    ("ZA", "27", ["08# ### ####", "011 ### ####"]),
    ("CN", "86", ["138 #### ####", "010-########", "021-########"]),
]

# (network, prefixes, lengths, printed grouping per length)
CARD_NETWORKS: list[tuple[str, list[str], list[int]]] = [
    ("Visa", ["4"], [13, 16, 19]),
    ("Mastercard", ["51", "52", "53", "54", "55", "2221", "2500", "2720"], [16]),
    ("Amex", ["34", "37"], [15]),
    ("Diners", ["300", "305", "36", "38"], [14, 16]),
    ("Discover", ["6011", "644", "649", "65"], [16, 19]),
    ("JCB", ["3528", "3589"], [16, 19]),
    ("JCB", ["2131", "1800"], [15]),
    ("UnionPay", ["62", "81"], [16, 17, 18, 19]),
    ("Maestro", ["5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763"], [12, 13, 15, 16, 19]),
    ("Mir", ["2200", "2204"], [16]),
    ("RuPay", ["60", "6521", "508"], [16]),
    ("Verve", ["506099", "650002"], [16, 19]),
    ("Troy", ["9792"], [16]),
    ("Dankort", ["5019"], [16]),
    ("UATP", ["1"], [15]),  # printed grouped: a bare 15-digit number starting with 1 is not taken for a card
    ("InterPayment", ["636"], [16]),
]
_GROUPS = {12: [4, 4, 4], 13: [4, 4, 5], 14: [4, 6, 4], 15: [4, 6, 5], 16: [4, 4, 4, 4], 17: [4, 4, 4, 5],
           18: [4, 4, 4, 6], 19: [4, 4, 4, 4, 3]}  # fmt: skip

# (country, length, BBAN shape: 'n' digit, 'a' uppercase letter, 'c' either)
IBAN_FORMATS = [
    ("GB", 22, "aaaannnnnnnnnnnnnn"), ("DE", 22, "nnnnnnnnnnnnnnnnnn"), ("FR", 27, "nnnnnnnnnnccccccccccccc"),
    ("ES", 24, "nnnnnnnnnnnnnnnnnnnn"), ("IT", 27, "annnnnnnnnncccccccccccc"), ("NL", 18, "aaaannnnnnnnnn"),
    ("BE", 16, "nnnnnnnnnnnn"), ("CH", 21, "nnnnncccccccccccc"), ("AT", 20, "nnnnnnnnnnnnnnnn"),
    ("PL", 28, "nnnnnnnnnnnnnnnnnnnnnnnn"), ("SE", 24, "nnnnnnnnnnnnnnnnnnnn"), ("NO", 15, "nnnnnnnnnnn"),
]  # fmt: skip

PHONE_LEADS = ["You can reach Ana on {}.", "Her number: {}.", "{} is the one to ring after six.",
               "Leave a message at {} if nobody answers.", "Numbers: {} (home)."]  # fmt: skip
CARD_LEADS = ["Charge it to {} please.", "The card {} was declined.", "Payment with {} went through."]
IP_LEADS = ["The server listens on {}.", "Requests came from {} all night.", "Block {} at the firewall."]
IBAN_LEADS = ["Send the transfer to {}.", "My account is {} at the local branch.", "IBAN {}, thanks."]
NEGATIVES = [
    "The population grew from 612 345 678 to 650 000 000 in a decade.",
    "It was built between 1998 and 2004 and rebuilt in 2012-2015.",
    "Python 3.11.4 and version 2.7.18 are both installed.",
    "See ISBN 978-3-16-148410-0 for the second edition.",
    "The meeting is on 2024-03-15 at 10:30, room 1204.",
    "The bridge is 1 280 m long and 27 m wide.",
    "Section 4.2.1 covers the 16 cases in 3 groups.",
    "It cost $1,299.99, or 1 299 euros with tax.",
    "Order 4111 1111 1111 1112 was entered twice.",
    "Between 500 and 1500 people attended in 2019.",
    "The 2020 budget was 4 500 000 dollars.",
    "Lines 120-180 and 200 300 of the log were lost.",
    "The score was 21 to 17 after 45 minutes.",
    "Article 23 of regulation 2016/679 applies here.",
    "The year 1066 and the year 1492 are remembered.",
]


QUANTITY_LEADS = [
    "The city has a population of {}.", "About {} people watched the final.", "The budget was {} euros.",
    "Sales rose to {} units last year.", "It cost $ {} to build.", "The dam holds {} tons of water.",
    "Between {} and 900 000 visitors came.", "The survey counted {} residents.", "It is {} km from the coast.",
]  # fmt: skip


def _digits(pattern: str, rng: random.Random) -> str:
    return "".join(str(rng.randrange(10)) if c == "#" else c for c in pattern)


def luhn_complete(partial: str) -> str:
    """`partial` plus the Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return partial + str((10 - total % 10) % 10)


def card_number(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    return luhn_complete(body)


def iban(country: str, shape: str, rng: random.Random) -> str:
    bban = "".join(
        str(rng.randrange(10)) if c == "n" else rng.choice(string.ascii_uppercase if c == "a" else string.digits)
        for c in shape
    )
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


def ipv6_short(rng: random.Random) -> str:
    groups = [f"{rng.randrange(1 << (4 * rng.choice((1, 2, 3)))):x}" for _ in range(8)]
    groups[0] = rng.choice(["2a00", "2600", "2001", "fd12", "2c0f"])
    if groups[0] == "2001":
        groups[1] = f"{rng.randrange(0x100):x}"  # not 2001:db8 (documentation)
    text = ":".join(groups)
    if rng.random() < 0.5:  # compress a run of zeros
        i = rng.randrange(2, 6)
        groups[i : i + 2] = ["0", "0"]
        text = ":".join(groups[:i]) + "::" + ":".join(groups[i + 2 :])
    return text


def _case(lead: str, value: str, kind: str) -> dict:
    text = lead.format(value)
    start = text.index(value)
    return {
        "full_text": text,
        "spans": [
            {"entity_type": kind, "entity_value": value, "start_position": start, "end_position": start + len(value)}
        ],
    }


def cases(n: int = 1200, seed: int = 0) -> list[dict]:
    """`n` positive cases spread over the classes, plus every negative sentence, shuffled."""
    rng = random.Random(seed)
    makers: list[Callable[[], dict]] = []

    def phone() -> dict:
        country, code, formats = rng.choice(PHONE_PLANS)
        number = _digits(rng.choice(formats), rng)
        if rng.random() < 0.25 and sum(c.isdigit() for c in number) >= 9:  # international: +code, no trunk prefix
            national = number[2:] if country == "RU" and number.startswith("8 ") else number
            national = national.replace("(", "").replace(")", "")
            national = national[1:] if national.startswith("0") else national
            number = f"+{code} {national}"
        return _case(rng.choice(PHONE_LEADS), number, "PHONE_NUMBER")

    def card() -> dict:
        _, prefixes, lengths = rng.choice(CARD_NETWORKS)
        length = rng.choice(lengths)
        digits = card_number(rng.choice(prefixes), length, rng)
        if rng.random() < 0.5:
            out, i = [], 0
            for g in _GROUPS[length]:
                out.append(digits[i : i + g])
                i += g
            digits = rng.choice([" ", "-"]).join(out)
        return _case(rng.choice(CARD_LEADS), digits, "CREDIT_CARD")

    def ip() -> dict:
        return _case(rng.choice(IP_LEADS), ipv6_short(rng), "IP_ADDRESS")

    def bank() -> dict:
        country, _, shape = rng.choice(IBAN_FORMATS)
        value = iban(country, shape, rng)
        if rng.random() < 0.5:
            value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        if rng.random() < 0.4:
            value = value.lower()
        return _case(rng.choice(IBAN_LEADS), value, "IBAN_CODE")

    def quantity() -> dict:  # a count grouped by thousands, shaped like ES/PL/NO mobiles: not PII
        groups = [str(rng.randint(1, 999))] + [f"{rng.randrange(1000):03d}" for _ in range(rng.choice((1, 2)))]
        number = " ".join(groups)
        lead = rng.choice(QUANTITY_LEADS)
        return {"full_text": lead.format(number), "spans": []}

    makers = [phone, phone, phone, card, card, ip, bank]  # phones are the most varied class
    out = [rng.choice(makers)() for _ in range(n)]
    out += [{"full_text": t, "spans": []} for t in NEGATIVES]
    out += [quantity() for _ in range(n // 6)]
    rng.shuffle(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(cases(args.n, args.seed), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
