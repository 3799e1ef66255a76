"""Language presets of cleaning filters: what a careful team would start from for English or Chinese SFT data.

Thresholds follow Gopher's quality rules (Rae et al. 2021), which were made for documents: its n-gram repetition
rules judge turns of 50 words or more only (a 30-word answer that says "conventions are" twice fails them), and
distinct 2-grams catch loops in shorter turns. English replies that ignore their instruction fail `relevance`. Plus
structural checks. A recipe entry for the same feature replaces the preset's.
"""

from __future__ import annotations

from sftforge.ops.base import BoundsConfig
from sftforge.ops.filters import AnswerSupportConfig, FormatConfig, LengthConfig
from sftforge.ops.quality import CharRatioConfig, DistinctNConfig, LanguageConfig, RepetitionConfig
from sftforge.ops.refusal import RefusalConfig
from sftforge.ops.relevance import RelevanceConfig
from sftforge.ops.toxicity import ToxicityConfig


def _common() -> list[BoundsConfig]:
    return structural_filters() + [
        AnswerSupportConfig(),
        RepetitionConfig(kind="duplicate_lines", max=0.3),
        DistinctNConfig(n=2, min=0.5),
        CharRatioConfig(kind="symbol", max=0.1),
        LanguageConfig(role="assistant", min=0.2),
        # refusals measured, not bounded (the card reports the shares); a reply that goes along with a plain
        # request for serious harm is removed
        RefusalConfig(),
        RefusalConfig(kind="over_refusal"),
        RefusalConfig(kind="harmful_compliance", max=0),
        # offensive language (benchmarks/safety.py); English by alt-profanity-check, other languages only with a
        # model the recipe names (not screened otherwise, and counted so)
        ToxicityConfig(max=0.45),
    ]


def preset_filters(name: str) -> list[BoundsConfig]:
    """Fresh filter configs of the preset `name` ('en', 'zh' or 'none')."""
    if name == "none":
        return []
    if name == "en":
        return _common() + [
            RepetitionConfig(kind="top_ngram", n=2, max=0.2, min_words=50),
            RepetitionConfig(kind="top_ngram", n=4, max=0.16, min_words=50),
            RepetitionConfig(kind="duplicate_ngram", n=5, max=0.15, min_words=50),
            CharRatioConfig(kind="alnum", min=0.5),
            # a reply that ignores its instruction (benchmarks/degenerate.py: 2.1% of human replies flagged,
            # 56% of replies to another task caught); English only, the packaged MiniLM does not read Chinese
            RelevanceConfig(min=0.03),
        ]
    if name == "zh":
        # Chinese is compared by characters: n-grams of characters repeat more than n-grams of words.
        return _common() + [
            RepetitionConfig(kind="top_ngram", n=4, max=0.2, min_words=50),
            RepetitionConfig(kind="duplicate_ngram", n=10, max=0.2, min_words=50),
            CharRatioConfig(kind="alnum", min=0.4),
        ]
    raise ValueError(f"unknown preset {name!r}: use en, zh or none")


def structural_filters() -> list[BoundsConfig]:
    return [FormatConfig(), LengthConfig(role="user", min=3), LengthConfig(role="assistant", min=1, max=4000)]


def merged_filters(
    preset: str, language: str, filters: list[BoundsConfig], templated: bool = False
) -> list[BoundsConfig]:
    """The preset's filters (auto = `language`'s, none for languages without one) with recipe entries replacing
    preset entries of the same operator and parameters, then the remaining recipe entries in their order.

    `templated`: the records' text is built from templates, not written by a model (KG walks); repetition and
    n-gram filters would judge the template ("X is located in Y." hop after hop), so `auto` keeps only the
    structural checks."""
    if preset == "auto" and templated:
        base = structural_filters()
    else:
        name = (language if language in ("en", "zh") else "none") if preset == "auto" else preset
        base = preset_filters(name)

    def identity(c: BoundsConfig) -> str:
        return c.model_copy(update={"min": None, "max": None}).model_dump_json()

    own = {identity(c): c for c in filters}
    merged = [own.pop(identity(c), c) for c in base]
    return merged + [c for c in filters if identity(c) in own]
