"""Generated sentences with people, places and organisations, for tuning the name rules without touching the
Presidio file they are scored on.

Names, cities, countries and companies come from Faker (joke2k/faker, MIT) in 14 locales, so the names are as
international as the Presidio file's (Czech, Finnish, Dutch, Hungarian, ...); the sentence templates are ours and
differ from Presidio's. Spans are labelled like Presidio's (`{full_text, spans: [{entity_type, entity_value,
start_position, end_position}]}`), so `benchmarks/pii.py --names` scores both alike.

    python benchmarks/ner_cases.py [--n 600] [--seed 0] > dev.json
"""

from __future__ import annotations

import argparse
import json
import random
import re

LOCALES = ["en_US", "en_GB", "de_DE", "cs_CZ", "fi_FI", "nl_NL", "da_DK", "pl_PL", "hu_HU", "es_ES", "it_IT",
           "fr_FR", "sv_SE", "pt_PT"]  # fmt: skip
TEMPLATES = [
    "{PERSON} will call you back tomorrow.",
    "I met {PERSON} at the conference in {CITY}.",
    "Please forward the invoice to {PERSON}.",
    "{FIRST} said the parcel left {CITY} on Monday.",
    "Dr. {LAST} reviewed the results with {PERSON}.",
    "According to {PERSON}, the office in {COUNTRY} is closing.",
    "My name is {PERSON} and I work for {ORG}.",
    "We visited {CITY} and then drove to {CITY2}.",
    "{ORG} hired {PERSON} as head of sales.",
    "The contract between {ORG} and {ORG2} was signed in {CITY}.",
    "Ask {FIRST} whether the flight from {COUNTRY} is delayed.",
    "Mrs. {LAST} lives near the station.",
    "Thanks, {FIRST}! See you in {CITY}.",
    "{PERSON} moved from {CITY} to {COUNTRY} last year.",
    "The report was written by {PERSON} of {ORG}.",
    "Hi {FIRST}, can you send me the keys?",
    "She grew up in {CITY}, {COUNTRY}.",
    "{LAST} scored twice in the second half.",
    "I have worked at {ORG} since 2019.",
    "Mr. {PERSON} asked for a refund.",
]


def cases(n: int = 600, seed: int = 0) -> list[dict]:
    from faker import Faker

    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in LOCALES}
    for i, f in enumerate(fakers.values()):
        f.seed_instance(seed * 100 + i)
    out = []
    for _ in range(n):
        fake = fakers[rng.choice(LOCALES)]
        template = rng.choice(TEMPLATES)
        values = {
            "PERSON": (f"{fake.first_name()} {fake.last_name()}", "PERSON"),
            "FIRST": (fake.first_name(), "PERSON"),
            "LAST": (fake.last_name(), "PERSON"),
            "CITY": (fake.city(), "LOCATION"),
            "CITY2": (fake.city(), "LOCATION"),
            "COUNTRY": (fakers["en_US"].country(), "LOCATION"),
            "ORG": (fake.company(), "ORGANIZATION"),
            "ORG2": (fake.company(), "ORGANIZATION"),
        }
        text, spans, pos = "", [], 0
        for m in re.finditer(r"\{(\w+)\}", template):
            text += template[pos : m.start()]
            value, kind = values[m.group(1)]
            spans.append(
                {
                    "entity_type": kind,
                    "entity_value": value,
                    "start_position": len(text),
                    "end_position": len(text) + len(value),
                }
            )
            text += value
            pos = m.end()
        text += template[pos:]
        out.append({"full_text": text, "spans": spans})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(cases(args.n, args.seed), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
