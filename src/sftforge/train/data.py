"""Records -> token ids with labels on the assistant's tokens only, through the model's own chat template.

The assistant spans are found by rendering prefixes of the conversation: the text up to an assistant turn with the
generation prompt, and the text through that turn. The difference is exactly what the model must learn to write
(the reply and its end-of-turn marker); everything else gets the label -100 and costs no loss. This needs a
template whose rendering of a prefix is a prefix of the rendering of the whole, which is checked, not assumed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sftforge.errors import SftforgeError
from sftforge.lib.chat import render_chat
from sftforge.lib.token_loss import IGNORE, pad_right
from sftforge.sample import Record

log = logging.getLogger(__name__)


class TrainingError(SftforgeError):
    """Training cannot go on: a bad model, template, configuration or checkpoint."""


@dataclass(frozen=True, slots=True)
class Example:
    """One tokenised record: ids and labels (-100 outside assistant turns)."""

    record_id: str
    input_ids: list[int]
    labels: list[int]

    @property
    def target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of the assistant turns in it."""
    full = render_chat(tokenizer, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render_chat(tokenizer, messages[:i], add_generation_prompt=True)
        through = render_chat(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (through.startswith(before) and full.startswith(through)):
            raise TrainingError(
                "the model's chat template does not render a conversation's beginning as a prefix of the whole, so "
                "assistant tokens cannot be told apart; use a model whose template is prefix-consistent"
            )
        spans.append((len(before), len(through)))
    return full, spans


def encode(tokenizer: Any, record: Record, max_len: int) -> Example | None:
    """Token ids and labels for one record, cut to `max_len` tokens; None when no assistant token survives the cut."""
    text, spans = assistant_spans(tokenizer, record.messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"][:max_len]
    offsets = enc["offset_mapping"][:max_len]
    labels = [IGNORE] * len(ids)
    for j, (start, end) in enumerate(offsets):
        if end > start and any(s <= start < e for s, e in spans):
            labels[j] = ids[j]
    if not any(x != IGNORE for x in labels[1:]):
        return None
    return Example(record.id, ids, labels)


def encode_all(tokenizer: Any, records: list[Record], max_len: int) -> tuple[list[Example], list[str]]:
    """Examples for the records that keep an assistant token after the cut, and the ids of those that do not."""
    examples, dropped = [], []
    for r in records:
        ex = encode(tokenizer, r, max_len)
        if ex is None:
            dropped.append(r.id)
        else:
            examples.append(ex)
    if dropped:
        log.warning(
            "%d records have no assistant tokens within %d tokens and are not trained on", len(dropped), max_len
        )
    return examples, dropped


def collate(examples: list[Example], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels."""
    ids, attn, labels = pad_right([e.input_ids for e in examples], [e.labels for e in examples], pad_id)
    return {"input_ids": ids, "attention_mask": attn, "labels": labels}


def content_only(examples: list[Example], special_ids: set[int]) -> list[Example]:
    """The examples with special tokens (end of turn, end of text) taken out of the labels: what the answers say,
    not where they stop. Examples left with no label are dropped."""
    out = []
    for e in examples:
        labels = [IGNORE if t in special_ids else t for t in e.labels]
        if any(t != IGNORE for t in labels):
            out.append(Example(e.record_id, e.input_ids, labels))
    return out
