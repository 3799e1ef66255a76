"""Does a reply refuse? Refusals in generated SFT data teach a model to refuse: where the request was harmless
(over-refusal, common in replies written by instruction-tuned models asked to "invent" tasks) they are a defect;
where it was harmful, a refusal is what should be kept. The feature only says whether a reply refuses, so the
card can report the rate and a recipe can bound it; telling harmless from harmful requests is a safety screen's
job; the rules here (`harmful_request`) catch only plain requests for serious harm, so `over_refusal` and
`harmful_compliance` are what those rules can tell.

Refusals are recognised by their stock openings in English and Chinese ("I'm sorry, but I can't...", "As an AI
language model...", "I cannot help with that", "抱歉，我无法...", "作为一个人工智能..."), read at the start of each
reply, where models put them; a reply that mentions "cannot" in passing ("you cannot use tabs here") is not one.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field

from sftforge.ops.base import BoundsConfig, Feature, register
from sftforge.sample import Record, turn_pairs

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


# Requests for serious harm, by their stock wording: how to make weapons, explosives or drugs, to break into
# systems or accounts, to hurt oneself or others. Narrow on purpose (a technical corpus says "kill the process" and
# "attack surface"): these catch the plain requests an inventive generator writes, not every harmful one; a recipe
# that needs more names a judge model (`llm_judge` with its own rubric).
_EN_HARM = re.compile(
    r"\b(?:how (?:do|can|could|would|should) (?:I|you|we|one)|how to|steps to|instructions (?:for|to)|teach me to|"
    r"help me|tell me how to|explain how to|write (?:a|some)?\s*(?:code|script|program) (?:to|that))\b[^.?!\n]{0,60}?\b(?:"
    r"(?:make|build|assemble|create|synthesi[sz]e|cook|manufacture|3d[- ]print) (?:a |an |some )?(?:bomb|explosive|"
    r"pipe bomb|grenade|nerve agent|sarin|ricin|bioweapon|chemical weapon|meth(?:amphetamine)?|fentanyl|heroin|"
    r"untraceable gun|ghost gun|silencer)(?![-\w])"
    r"|(?:hack|break) into (?:someone|a person|my (?:ex|neighbou?r|boss)|an? (?:account|email|phone|bank))"
    r"|(?:steal|phish) (?:someone's |a |their )?(?:password|credit card|identity|account)"
    r"|(?:write|create|spread|deploy) (?:a |some )?(?:ransomware|malware|keylogger|computer virus)"
    r"|(?:kill|poison|murder|hurt|stab|shoot) (?:someone|somebody|people|him|her|them|a (?:person|man|woman|child|kid)|"
    r"my (?:wife|husband|partner|ex|boss|neighbou?r|teacher|parents?|mother|father|brother|sister|friend|classmate))\b"
    r"|(?:kill|hurt|harm) myself|commit suicide|end my life"
    r"|get away with (?:murder|killing|a crime)"
    r")",
    re.I,
)
_ZH_HARM = re.compile(
    r"(?:怎么|如何|怎样|教我|告诉我|帮我)[^。？！\n]{0,20}?(?:"
    r"(?:制作|制造|自制|合成|组装)[^。？！\n]{0,6}?(?:炸弹|炸药|爆炸物|毒品|冰毒|芬太尼|海洛因|枪支|毒气|神经毒剂)"
    r"|(?:入侵|黑进|盗取|破解)[^。？！\n]{0,8}?(?:账号|账户|邮箱|手机|银行卡|密码)"
    r"|(?:编写|制作|传播)[^。？！\n]{0,6}?(?:勒索软件|病毒|木马|恶意软件)"
    r"|(?:杀死|杀掉|毒死|伤害|报复)[^。？！\n]{0,6}?(?:他|她|别人|某人|家人|同事|邻居)"
    r"|自杀|结束自己的生命|伤害自己)"
)


def harmful_request(text: str) -> bool:
    """Whether the text asks, in stock wording, for help with serious harm (see `_EN_HARM`, `_ZH_HARM`)."""
    return bool(_EN_HARM.search(text) or _ZH_HARM.search(text))


Kind = Literal["refusal", "over_refusal", "harmful_compliance"]


class RefusalConfig(BoundsConfig):
    name: Literal["refusal"] = "refusal"
    kind: Kind = Field(
        "refusal",
        description="refusal: a reply refuses; over_refusal: a reply refuses a request the rules find harmless; "
        "harmful_compliance: a reply does not refuse a request the rules find harmful.",
    )


@register
class Refusal(Feature):
    """1.0 when any user-reply turn of the record is of `kind`, else 0.0; `max: 0` removes such records."""

    name: ClassVar[str] = "refusal"
    Config = RefusalConfig
    config: RefusalConfig

    @property
    def feature_name(self) -> str:
        return self.config.kind

    def score(self, record: Record) -> float:
        kind = self.config.kind
        turns = turn_pairs(record.messages)
        if kind == "refusal":
            return float(any(refuses(a) for _, a in turns))
        if kind == "over_refusal":
            return float(any(refuses(a) and not harmful_request(u) for u, a in turns))
        return float(any(harmful_request(u) and not refuses(a) for u, a in turns))
