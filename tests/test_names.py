"""PERSON, LOCATION and ORGANIZATION in English and Chinese (lib/names.py with the packaged gazetteer), and the
pii_redact operator with them turned on one by one."""

from __future__ import annotations

import pytest

from sftforge.gazetteer import gazetteer, is_common, name_finder
from sftforge.lib.pii import detect
from sftforge.ops.pii import PiiRedact, PiiRedactConfig
from sftforge.sample import Record

NAMES = ("PERSON", "LOCATION", "ORGANIZATION")


def found(text: str, types=NAMES) -> list[tuple[str, str]]:
    return [(s.type, s.text) for s in detect(text, types, name_finder())]


def test_the_gazetteer_comes_from_the_packages():
    g = gazetteer()
    assert {"Megan", "Zoltán", "Jan"} <= g.first and {"Payne", "Horváth", "Nielsen"} <= g.last
    assert {"France", "Texas", "Östersund"} <= g.places and "France" in g.countries
    assert is_common("may") and is_common("sales") and not is_common("megan")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Megan Payne was a huge fan.", [("PERSON", "Megan Payne")]),
        ("Please forward it to Dr. Nielsen today.", [("PERSON", "Nielsen")]),
        ("I'd like to join accounts with ms. Wijtze", [("PERSON", "Wijtze")]),
        (
            "My name is Patricia Jeknić but everyone calls me Lauren.",
            [("PERSON", "Patricia Jeknić"), ("PERSON", "Lauren")],
        ),
        ("Frank had given Tyler his address.", [("PERSON", "Frank"), ("PERSON", "Tyler")]),
        ("She grew up in Östersund and moved to Hungary.", [("LOCATION", "Östersund"), ("LOCATION", "Hungary")]),
        ("I work for Geoscape now.", [("ORGANIZATION", "Geoscape")]),
        (
            "Kristensen & Søn A/S hired Randi Søndergaard.",
            [("ORGANIZATION", "Kristensen & Søn A/S"), ("PERSON", "Randi Søndergaard")],
        ),
        ("The contract with Tesař s.r.o. was signed.", [("ORGANIZATION", "Tesař s.r.o.")]),
        ("According to the Hubbard, Fox and Gillespie website.", [("ORGANIZATION", "Hubbard, Fox and Gillespie")]),
    ],
)
def test_english_names(text: str, expected: list[tuple[str, str]]):
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "May I ask a question? Will you answer it?",  # first names that are ordinary words, in ordinary use
        "Sales rose to 35 689 units last year.",
        "We moved here last spring.",
        "For my take, see Guilty Pleasures: Musicians You Love.",  # a title in title case
        "I live at 88 Whittaker Street.",  # a street is ADDRESS's business
    ],
)
def test_not_names(text: str):
    assert [t for t, _ in found(text) if t == "PERSON"] == []


def test_chinese_names_by_part_of_speech():
    text = "我叫王小明，住在北京市海淀区，在华为技术有限公司工作。"
    assert found(text) == [
        ("PERSON", "王小明"),
        ("LOCATION", "北京市"),
        ("LOCATION", "海淀区"),
        ("ORGANIZATION", "华为技术有限公司"),
    ]


def test_name_types_need_the_finder_and_each_can_be_asked_alone():
    with pytest.raises(ValueError, match="need a name finder"):
        detect("Megan Payne", ["PERSON"])
    text = "Megan Payne moved to Hungary to work for Geoscape Inc."
    assert found(text, ["LOCATION"]) == [("LOCATION", "Hungary")]
    assert found(text, ["PERSON", "EMAIL"]) == [("PERSON", "Megan Payne")]


def test_operator_redacts_names_when_asked():
    op = PiiRedact(PiiRedactConfig(types=["PERSON", "LOCATION", "EMAIL"]))
    op.setup()
    rec = Record(
        id="r",
        task="qa",
        lang="en",
        messages=[
            {"role": "user", "content": "Write to Megan Payne in Hungary at megan@example.org."},
            {"role": "assistant", "content": "Done."},
        ],
    )
    out = op.map(rec)
    assert out.messages[0]["content"] == "Write to [PERSON] in [LOCATION] at [EMAIL]."
    assert out.features["pii_PERSON"] == 1 and out.features["pii_LOCATION"] == 1
    plain = PiiRedact(PiiRedactConfig()).map(rec)  # names are opt-in: the default leaves them
    assert plain.messages[0]["content"] == "Write to Megan Payne in Hungary at [EMAIL]."
