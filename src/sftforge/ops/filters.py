"""Structural features used as filters: length, format, answer support."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field

from sftforge.lib.text import text_length
from sftforge.ops.base import BoundsConfig, Filter, register
from sftforge.sample import Record


class LengthConfig(BoundsConfig):
    name: Literal["length"] = "length"
    role: Literal["user", "assistant", "system", "all"] = "assistant"
    unit: Literal["chars", "words", "tokens"] = "chars"
    tokenizer: str | None = Field(
        None,
        description="GGUF file whose tokenizer counts `tokens` (relative to the recipe); default the bundled model's.",
    )


@register
class Length(Filter):
    """Length of one role's text in characters, words (a CJK character counts as one word) or model tokens."""

    name: ClassVar[str] = "length"
    Config = LengthConfig
    config: LengthConfig
    _tokenizer: Any = None

    @property
    def feature_name(self) -> str:
        return f"length_{self.config.role}_{self.config.unit}"

    def setup(self) -> None:
        if self.config.unit == "tokens" and self._tokenizer is None:
            from sftforge.llm.bundled import resolve_model_path
            from sftforge.llm.llamacpp import LlamaTokenizer

            self._tokenizer = LlamaTokenizer(resolve_model_path(self.config.tokenizer or "bundled", self.base_dir))

    def score(self, record: Record) -> float:
        text = record.text_of(self.config.role)
        if self.config.unit == "chars":
            return float(len(text.strip()))
        if self.config.unit == "words":
            return float(text_length(text))
        self.setup()
        return float(self._tokenizer.count(text))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokenizer": None}  # a llama.cpp handle does not pickle; workers reload it

    def reason(self, record: Record, score: float) -> str:
        return f"{self.config.role} length {score:g} {self.config.unit} outside [{self.config.min}, {self.config.max}]"


# Chat-template tokens and prompt labels that leak into outputs when a model misbehaves.
_LEAKS = re.compile(
    r"<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<s>|</s>|\[INST\]|^\s*(question|answer|问题|答案)\s*[:：]",
    re.IGNORECASE | re.MULTILINE,
)


class FormatConfig(BoundsConfig):
    name: Literal["format"] = "format"
    min: float | None = 1.0


@register
class Format(Filter):
    """1.0 when the conversation is well formed, 0.0 otherwise: roles in order, nothing empty, no leaked markup."""

    name: ClassVar[str] = "format"
    Config = FormatConfig

    @staticmethod
    def problem(record: Record) -> str | None:
        roles = [m["role"] for m in record.messages]
        body = roles[1:] if roles and roles[0] == "system" else roles
        if not body:
            return "no messages"
        if body[-1] != "assistant":
            return "does not end with an assistant message"
        for i, role in enumerate(body):
            if role != ("user" if i % 2 == 0 else "assistant"):
                return f"message {i} should be {'user' if i % 2 == 0 else 'assistant'}, is {role}"
        for m in record.messages:
            if not m["content"].strip():
                return f"empty {m['role']} message"
        for m in record.messages:
            if m["role"] == "assistant" and _LEAKS.search(m["content"]):
                return f"template markup or a prompt label in the {m['role']} message"
        return None

    def score(self, record: Record) -> float:
        return 0.0 if self.problem(record) else 1.0

    def reason(self, record: Record, score: float) -> str:
        return f"format: {self.problem(record)}"


class AnswerSupportConfig(BoundsConfig):
    name: Literal["answer_support"] = "answer_support"
    min: float | None = 0.5


@register
class AnswerSupport(Filter):
    """The generator's answer check score: span match (1 or 0) or token overlap with the source passage."""

    name: ClassVar[str] = "answer_support"
    Config = AnswerSupportConfig

    def score(self, record: Record) -> float:
        # Generators that cannot check their answers (self-instruct, dialogue) write no answer_check: nothing to fail.
        return record.answer_check.score if record.answer_check else 1.0

    def reason(self, record: Record, score: float) -> str:
        method = record.answer_check.method if record.answer_check else "none"
        return f"answer support ({method}) {score:.2f} < min {self.config.min}"
