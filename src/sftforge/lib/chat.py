"""A conversation as the text a transformers model reads: its tokenizer's chat template, or, for a model without
one (a base model), a plain layout of "role: content" lines, the same for training, scoring and generation."""

from __future__ import annotations

from typing import Any


def render_chat(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """The conversation rendered; with `add_generation_prompt`, followed by what opens the assistant's reply."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")
