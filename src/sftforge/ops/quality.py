"""Cheap text-quality features: distinct-n, Gopher-style repetition, character-class ratios, language id.

Each reads one role's text (`role`, default the assistant's) and is language-aware through `sftforge.lib.text`: CJK
text counts characters as words. Thresholds live in the recipe (or the language presets in `ops/presets.py`), not
here.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from sftforge.lib.text import tokens
from sftforge.lib.text_stats import (
    char_class_ratios,
    distinct_n,
    duplicate_line_share,
    duplicate_ngram_share,
    top_ngram_share,
)
from sftforge.ops.base import BoundsConfig, Feature, register
from sftforge.sample import Record

Role = Literal["user", "assistant", "system", "all"]


class RoleConfig(BoundsConfig):
    role: Role = "assistant"


class DistinctNConfig(RoleConfig):
    name: Literal["distinct_n"] = "distinct_n"
    n: int = Field(2, ge=1, le=8)


@register
class DistinctN(Feature):
    """Lexical diversity inside one text: low values mean the text loops."""

    name: ClassVar[str] = "distinct_n"
    Config = DistinctNConfig
    config: DistinctNConfig

    @property
    def feature_name(self) -> str:
        return f"distinct_{self.config.n}_{self.config.role}"

    def score(self, record: Record) -> float:
        return distinct_n(tokens(record.text_of(self.config.role)), self.config.n)


class RepetitionConfig(RoleConfig):
    name: Literal["repetition"] = "repetition"
    kind: Literal["duplicate_lines", "top_ngram", "duplicate_ngram"] = "top_ngram"
    n: int = Field(2, ge=1, le=10, description="n-gram size for top_ngram / duplicate_ngram.")
    min_words: int = Field(20, ge=0, description="n-gram repetition of shorter texts scores 0: too short to judge.")


@register
class Repetition(Feature):
    """Gopher-style repetition: duplicate lines, the top n-gram's character share, or duplicated n-grams' share."""

    name: ClassVar[str] = "repetition"
    Config = RepetitionConfig
    config: RepetitionConfig

    @property
    def feature_name(self) -> str:
        c = self.config
        kind = "dup_lines" if c.kind == "duplicate_lines" else f"{'top' if c.kind == 'top_ngram' else 'dup'}_{c.n}gram"
        return f"{kind}_{c.role}"

    def score(self, record: Record) -> float:
        text = record.text_of(self.config.role)
        if self.config.kind == "duplicate_lines":
            return duplicate_line_share(text)
        words = tokens(text)
        if len(words) < self.config.min_words:
            return 0.0
        if self.config.kind == "top_ngram":
            return top_ngram_share(words, self.config.n)
        return duplicate_ngram_share(words, self.config.n)


class CharRatioConfig(RoleConfig):
    name: Literal["char_ratio"] = "char_ratio"
    kind: Literal["alnum", "symbol"] = "alnum"


@register
class CharRatio(Feature):
    """Share of alphanumeric (letters of any script, digits) or symbol characters among non-space characters."""

    name: ClassVar[str] = "char_ratio"
    Config = CharRatioConfig
    config: CharRatioConfig

    @property
    def feature_name(self) -> str:
        return f"{self.config.kind}_ratio_{self.config.role}"

    def score(self, record: Record) -> float:
        alnum, symbol = char_class_ratios(record.text_of(self.config.role))
        return alnum if self.config.kind == "alnum" else symbol


# py3langid labels that belong to the recipe's language (Wu and Cantonese are written in the same characters).
LANGUAGE_LABELS: dict[str, tuple[str, ...]] = {"zh": ("zh", "wuu", "yue"), "en": ("en",)}
# Candidate languages by default: widely used ones. Over all 97 of py3langid's languages, short English sentences
# often score below 0.3 for English (probability leaks to small languages); over these they do not.
MAJOR_LANGUAGES = [
    "en",
    "zh",
    "wuu",
    "yue",
    "ja",
    "ko",
    "fr",
    "de",
    "es",
    "it",
    "pt",
    "ru",
    "ar",
    "hi",
    "nl",
    "vi",
    "id",
    "tr",
    "pl",
]


class LanguageConfig(RoleConfig):
    name: Literal["language"] = "language"
    lang: str | None = Field(None, description="Expected language (ISO 639-1); default: the record's `lang`.")
    candidates: list[str] = Field(
        default_factory=lambda: list(MAJOR_LANGUAGES), description="Languages the identifier chooses among."
    )
    min_chars: int = Field(12, ge=0, description="Texts with fewer letters score 1.0: too short to identify.")


@register
class Language(Feature):
    """Probability that the text is in the expected language, from py3langid's offline model, among `candidates`.

    Catches the commonest failure of small generators in Chinese recipes: answering in English or copying an
    English passage (such text scores ~0 for Chinese). Identification of a few words is unreliable, so texts with
    fewer than `min_chars` letters score 1.0 and the presets' bound is low (0.2)."""

    name: ClassVar[str] = "language"
    Config = LanguageConfig
    config: LanguageConfig
    _identifier: Any = None

    @property
    def feature_name(self) -> str:
        return f"lang_prob_{self.config.role}"

    def setup(self) -> None:
        if self._identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(self.config.candidates)
            self._identifier = identifier

    def probabilities(self, text: str) -> dict[str, float]:
        self.setup()
        return dict(self._identifier.rank(text))

    def score(self, record: Record) -> float:
        text = record.text_of(self.config.role)
        if not text.strip():
            return 0.0
        if sum(c.isalpha() for c in text) < self.config.min_chars:
            return 1.0
        lang = self.config.lang or record.lang
        probs = self.probabilities(text)
        return float(min(1.0, sum(probs.get(label, 0.0) for label in LANGUAGE_LABELS.get(lang, (lang,)))))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_identifier": None}  # workers load their own copy
