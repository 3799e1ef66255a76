"""Does a reply refuse? Refusals in generated SFT data teach a model to refuse: where the request was harmless
(over-refusal, common in replies written by instruction-tuned models asked to "invent" tasks) they are a defect;
where it was harmful, a refusal is what should be kept. The feature only says whether a reply refuses, so the
card can report the rate and a recipe can bound it; telling harmless from harmful requests is a safety screen's
job, not this one's.

Refusals are recognised by their stock openings in English and Chinese ("I'm sorry, but I can't...", "As an AI
language model...", "I cannot help with that", "抱歉，我无法...", "作为一个人工智能..."), read at the start of each
reply, where models put them; a reply that mentions "cannot" in passing ("you cannot use tabs here") is not one.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from sftforge.ops.base import BoundsConfig, Feature, register
from sftforge.sample import Record

HEAD_CHARS = 240  # refusals open the reply

_EN = re.compile(
    r"^\W*(?:"
    r"(?:I'?m|I am) (?:sorry|afraid)\b[^.!?\n]{0,80}\b(?:can ?not|can't|cannot|unable|not able|won't|will not|"
    r"must decline|don't feel comfortable)"
    r"|I (?:can ?not|can't|won't|will not|am unable to|'m unable to|am not able to|must decline to|refuse to) "
    r"(?:help|assist|provide|answer|comply|do that|do this|fulfil|fulfill|create|write|generate|support|engage)"
    r"|(?:As|Being) an? (?:AI|artificial intelligence|language model|AI language model|AI assistant)\b"
    r"|(?:Sorry|Unfortunately),? (?:but )?I (?:can ?not|can't|won't|am unable to|'m unable to)"
    r")",
    re.I,
)
_EN_ANYWHERE = re.compile(
    r"\bI (?:can ?not|can't|won't) (?:help|assist) with (?:that|this|your request)\b"
    r"|\bI'?m not able to (?:help|assist|provide) (?:with )?(?:that|this)\b",
    re.I,
)
_ZH = re.compile(
    r"^\W*(?:(?:很|非常)?(?:抱歉|对不起)[，,。！!\s]*(?:但是?)?[，,\s]*我?(?:无法|不能|不可以|没有办法|不会)"
    r"|作为(?:一[个名])?(?:AI|人工智能|语言模型|AI语言模型|人工智能助手|AI助手)"
    r"|我(?:无法|不能|不可以|拒绝)(?:提供|回答|帮助|协助|满足|完成|生成|编写|参与))",
    re.I,
)


def refuses(reply: str) -> bool:
    """Whether the reply opens with a refusal (or says it will not help with the request anywhere)."""
    head = reply.strip()[:HEAD_CHARS]
    return bool(_EN.search(head) or _ZH.search(head) or _EN_ANYWHERE.search(reply))


class RefusalConfig(BoundsConfig):
    name: Literal["refusal"] = "refusal"


@register
class Refusal(Feature):
    """1.0 when any assistant reply of the record refuses, else 0.0; `max: 0` removes refusing records."""

    name: ClassVar[str] = "refusal"
    Config = RefusalConfig
    config: RefusalConfig

    def score(self, record: Record) -> float:
        return float(any(refuses(m["content"]) for m in record.messages if m["role"] == "assistant"))
