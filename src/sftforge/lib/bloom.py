"""The Bloom level a question asks at, read from its cue words: the proxy that checks exercises made for an
audience's `level` (1 remember, 2 understand, 3 apply, 4 analyse, 5 evaluate, 6 create; Anderson & Krathwohl's
revision of Bloom's taxonomy).

The cues are the taxonomy's own verb lists, narrowed to the words that start or frame a question ("compare",
"what would happen if", "which is best"), in English and Chinese; a question takes the highest level whose cue it
holds, and a plain what/who/when question is level 1. It is a proxy: it reads how a question is framed, not the
thinking it takes, so the figures built on it (`level_agreement`) say how often the model framed the question as
asked. Pure: no I/O.
"""

from __future__ import annotations

import re

_EN: dict[int, re.Pattern[str]] = {
    6: re.compile(
        r"\b(design|devise|propose|invent|compose|create|construct|formulate|plan a|how could you|what would you"
        r" change|come up with)\b",
        re.I,
    ),
    5: re.compile(
        r"\b(best|better|worse|justify|assess|evaluate|judge|recommend|should|most (appropriate|important|"
        r"effective|likely)|agree|criticis\w*|critiqu\w*|valid)\b",
        re.I,
    ),
    4: re.compile(
        r"\b(compare|contrast|differ\w*|distinguish|relat(e|es|ed|ion|ionship)|analy[sz]e|categori[sz]e|"
        r"which (of the following )?is not|cause|effect of|in common|versus|vs)\b",
        re.I,
    ),
    3: re.compile(
        r"\b(if (you|a|an|the|we)|what (would|will) happen|how would|how (do|can|should) you (use|apply)|apply|"
        r"calculate|compute|solve|use .* to|in which situation|for example|example of|demonstrate)\b",
        re.I,
    ),
    2: re.compile(
        r"\b(why|explain\w*|mean(s|ing)?|describe|purpose|summari[sz]e|main idea|interpret|in other words|"
        r"paraphrase|illustrate|what does .* (mean|imply|suggest)|reason)\b",
        re.I,
    ),
}
_ZH: dict[int, re.Pattern[str]] = {
    6: re.compile(r"设计|提出.*方案|创作|构想|编写一个|如何改进|想出"),
    5: re.compile(r"最好|最合适|最重要|最有效|评价|判断|是否合理|应该|推荐|同意|批评"),
    4: re.compile(r"比较|区别|不同|异同|关系|分析|分类|不属于|不是.*的是|原因与|影响"),
    3: re.compile(r"如果|假如|应用|计算|举例|怎样使用|如何使用|会发生|哪种情况下|用.*来"),
    2: re.compile(r"为什么|为何|解释|意思|含义|说明|目的|概括|主要|意味着|理由"),
}
_OPTION = re.compile(r"^\s*[A-Fa-f][.)．、]\s")


def bloom_level(question: str, lang: str) -> int:
    """1-6: the highest Bloom level whose cue the question holds (1 when none does)."""
    cues = _ZH if lang == "zh" else _EN
    for level in (6, 5, 4, 3, 2):
        if cues[level].search(question):
            return level
    return 1


def question_of(user_text: str) -> str:
    """The question in a user turn: an exercise's stem (the line before its first option), else the last line
    with a question mark, else the last line."""
    lines = [line.strip() for line in user_text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if _OPTION.match(line) and i > 0:
            return lines[i - 1]
    asked = [line for line in lines if "?" in line or "？" in line]
    return asked[-1] if asked else (lines[-1] if lines else "")
