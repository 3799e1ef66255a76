"""Parse the labelled plain-text format the prompts ask for ("Question: ...", "Answer: ...").

Small models follow a labelled format far more reliably than JSON. Labels are matched case-insensitively, with
ASCII or full-width colons, in English or Chinese; a value runs until the next known label.
"""

from __future__ import annotations

import re
from functools import cache

from sftforge.errors import SftforgeError
from sftforge.lib.text import cjk_ratio


class ParseError(SftforgeError):
    """A model output that does not have the requested form; the message is the rejection reason. `final`: asking
    again cannot help (the work item itself is unfit), so the item is rejected without further attempts."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


LABELS: dict[str, tuple[str, ...]] = {
    "question": ("question", "问题", "题目"),
    "answer": ("answer", "答案", "回答"),
    "summary": ("summary", "摘要", "总结"),
    "explanation": ("explanation", "解析", "解释"),
}


@cache
def _label_pattern(labels: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[dict[str, str], re.Pattern[str]]:
    aliases = {alias: key for key, names in labels for alias in names}
    pattern = re.compile(
        r"^[ \t>*#-]*\**("
        + "|".join(sorted(map(re.escape, aliases), key=len, reverse=True))
        + r")\**[ \t]*[:：]\**[ \t]*",
        re.IGNORECASE | re.MULTILINE,
    )
    return aliases, pattern


_OPTION_LINE = re.compile(r"^[ \t*-]*\(?([A-Fa-f])[.)．、：:][ \t]*(.+?)[ \t]*$", re.MULTILINE)


def parse_fields(text: str, labels: dict[str, tuple[str, ...]] = LABELS) -> dict[str, str]:
    """Map canonical label -> value for each labelled section; the first occurrence of a label wins. `labels` maps
    each canonical label to its names (default: question, answer, summary, explanation)."""
    aliases, pattern = _label_pattern(tuple(labels.items()))
    fields: dict[str, str] = {}
    matches = list(pattern.finditer(text))
    for i, m in enumerate(matches):
        key = aliases[m.group(1).lower()]
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[m.end() : end].strip()
        if key not in fields:
            fields[key] = value
    return fields


def split_options(block: str, letters: list[str]) -> tuple[str, list[str]]:
    """Split a question block into the stem and its lettered options (which must be A, B, C... in order)."""
    found = [(m.start(), m.group(1).upper(), m.group(2)) for m in _OPTION_LINE.finditer(block)]
    options: list[str] = []
    stem_end = len(block)
    for start, letter, value in found:
        if len(options) < len(letters) and letter == letters[len(options)]:
            if not options:
                stem_end = start
            options.append(value.strip())
    if len(options) != len(letters):
        raise ParseError(f"expected options {', '.join(letters)}; found {len(options)}")
    return block[:stem_end].strip(), options


def strip_quotes(value: str) -> str:
    value = value.strip()
    pairs = [('"', '"'), ("'", "'"), ("“", "”"), ("「", "」"), ("<", ">")]
    for a, b in pairs:
        if len(value) >= 2 and value.startswith(a) and value.endswith(b):
            return value[1:-1].strip()
    return value


def first_paragraph(value: str) -> str:
    """Text up to the first blank line: small models append unrelated text after an answer."""
    return re.split(r"\n[ \t]*\n", value.strip(), maxsplit=1)[0].strip()


def first_line(value: str) -> str:
    return value.strip().splitlines()[0].strip() if value.strip() else ""


def question_text(value: str) -> str:
    """A question field's text: its lines up to and including the first with a question mark, joined (small
    models wrap long questions); just the first line if none has one."""
    lines = [ln.strip() for ln in value.strip().splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "?" in line or "？" in line:
            return " ".join(lines[: i + 1])
    return lines[0] if lines else ""


def check_language(value: str, lang: str) -> None:
    """Raise ParseError when an output is not in the task's language (Chinese: at least 30% CJK characters;
    English: at most 30%)."""
    if lang == "zh" and cjk_ratio(value) < 0.3:
        raise ParseError("output is not in Chinese")
    if lang == "en" and cjk_ratio(value) > 0.3:
        raise ParseError("output is not in English")
