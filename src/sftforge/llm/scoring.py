"""A reference causal LM for scoring records: per-token losses of (context, target) token sequences, the model
shared by every operator that names the same model and dtype in a process (perplexity, IFD and the judge load it
once), with a memo so that two features scoring the same sequences pay once.

Sequences longer than the budget are cut: the target is kept from its start (at least half the budget), the context
from its end. Losses come from `sftforge.lib.token_loss`; the fast path runs only the scored positions through the
output head, after a one-time check against the model's own logits (architectures whose head does more than a
linear map fall back to the plain forward pass).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sftforge.lib.chat import render_chat
from sftforge.lib.token_loss import IGNORE, fast_head_matches, pad_right, per_row, token_nll
from sftforge.llm.hf import HFLLM, model_dir, render_prompt, resolve_dtype


@dataclass
class ReferenceModel:
    """A loaded reference model and what scoring with it needs: its tokenizer's bare assistant header (the "no
    instruction" context of IFD) and start-of-text tokens, whether the fast head path is valid, and a memo."""

    llm: HFLLM
    fast_head: bool | None = None  # hidden states -> output head on scored rows only; checked on first use
    header: list[int] = field(default_factory=list)  # the bare assistant header: "no instruction" context
    text_prefix: list[int] = field(default_factory=list)  # what the tokenizer puts before plain text (BOS)
    # The token that closes an assistant turn (end_loss scores it); empty if the chat template has none.
    end: list[int] = field(default_factory=list)
    # Recent (context, target) -> losses: perplexity and IFD's conditioned pass score the same sequences when both
    # are in a recipe, so the second one is free. Bounded: oldest entries go first.
    memo: dict[tuple[tuple[int, ...], tuple[int, ...]], np.ndarray] = field(default_factory=dict)


MEMO_SIZE = 4096


_MODELS: dict[tuple[str, str], ReferenceModel] = {}
_LOCK = threading.Lock()


def assistant_header(tok: Any) -> str:
    """The chat template's text that opens an assistant turn with no conversation before it (e.g.
    "<|im_start|>assistant\n"), after the template's BOS text where the template starts with one."""
    probe = [{"role": "user", "content": "x"}]
    full = render_prompt(tok, probe)
    bare = render_chat(tok, probe, add_generation_prompt=False)
    header = full[len(bare) :] if full.startswith(bare) and len(full) > len(bare) else full[full.rfind("x") + 1 :]
    bos = tok.bos_token
    if bos and full.startswith(bos) and not header.startswith(bos):
        header = bos + header
    return header


def end_of_turn(tok: Any) -> list[int]:
    """The first token the chat template puts after an assistant message's content (e.g. "<|im_end|>"): the one a
    model emits to stop. Empty when the template adds nothing there."""
    reply = "\u2063"  # a character no template writes, to find where the reply's text ends
    probe = [{"role": "user", "content": "x"}, {"role": "assistant", "content": reply}]
    full = render_chat(tok, probe, add_generation_prompt=False)
    after = full[full.rfind(reply) + len(reply) :] if reply in full else ""
    return tok(after, add_special_tokens=False)["input_ids"][:1] if after.strip() else []


def shared_model(path: str | None, dtype: str, base_dir: Path | None = None) -> ReferenceModel:
    """One loaded reference model per (directory, dtype) per process. `path`: a GGUF file or transformers
    directory (relative to `base_dir`), or None / "bundled" for the bundled model."""
    directory = model_dir(path or "bundled", base_dir).resolve()
    resolved = str(resolve_dtype(dtype)).removeprefix("torch.")  # "auto" shares the copy of the dtype it picks
    key = (str(directory), resolved)
    with _LOCK:
        if key not in _MODELS:
            llm = HFLLM(directory, dtype=resolved)
            tok = llm.tokenizer
            _MODELS[key] = ReferenceModel(
                llm,
                header=tok(assistant_header(tok), add_special_tokens=False)["input_ids"],
                text_prefix=tok("", add_special_tokens=True)["input_ids"],
                end=end_of_turn(tok),
            )
        return _MODELS[key]


def token_limit(shared: ReferenceModel, max_tokens: int) -> int:
    cap = getattr(shared.llm.model.config, "max_position_embeddings", None)
    return min(max_tokens, cap) if cap else max_tokens


def target_budget(context_len: int, target_len: int, limit: int) -> int:
    """Response tokens kept when context + response must fit in `limit`: all if they fit, else at least half."""
    if context_len + target_len <= limit:
        return target_len
    return min(target_len, max(limit - context_len, limit // 2))


def fit_context(context: list[int], target: list[int], limit: int) -> tuple[list[int], list[int]]:
    keep = target_budget(len(context), len(target), limit)
    target = target[:keep]
    return context[max(0, len(context) - (limit - keep)) :], target


def _forward_losses(shared: ReferenceModel, seqs: list[tuple[list[int], list[int]]], fast: bool) -> list[np.ndarray]:
    """Per-token losses of each target given its context, one right-padded forward pass."""
    import torch

    model, tok = shared.llm.model, shared.llm.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    labels = [[IGNORE] * len(c) + t for c, t in seqs]
    with torch.inference_mode():
        nll, rows = token_nll(model, *pad_right([c + t for c, t in seqs], labels, pad), fast_head=fast)
    return [x.numpy().astype(np.float64) for x in per_row(nll, rows, len(seqs))]


def _check_fast_head(shared: ReferenceModel) -> bool:
    """Whether base model + output head reproduces the model's logits (not so with logit soft-capping or scaling)."""
    import torch

    if shared.fast_head is None:
        probe = [*shared.header, *shared.llm.tokenizer("a short probe sentence", add_special_tokens=False)["input_ids"]]
        shared.fast_head = fast_head_matches(shared.llm.model, torch.tensor([probe], dtype=torch.int64))
    return shared.fast_head


def token_losses(shared: ReferenceModel, seqs: list[tuple[list[int], list[int]]], batch_size: int) -> list[np.ndarray]:
    """Per-token losses (nats) of each (context ids, target ids): contexts must be non-empty; empty targets give
    empty arrays. Sorted by length and run `batch_size` sequences per forward pass."""
    fast = _check_fast_head(shared)
    out: list[np.ndarray] = [np.zeros(0)] * len(seqs)
    keys = [(tuple(c), tuple(t)) for c, t in seqs]
    todo = []
    for i, (c, t) in enumerate(seqs):
        if t and c:
            if keys[i] in shared.memo:
                out[i] = shared.memo[keys[i]]
            else:
                todo.append(i)
    todo.sort(key=lambda i: len(seqs[i][0]) + len(seqs[i][1]))
    for s in range(0, len(todo), batch_size):
        idx = todo[s : s + batch_size]
        for i, losses in zip(idx, _forward_losses(shared, [seqs[i] for i in idx], fast)):
            out[i] = losses
            shared.memo[keys[i]] = losses
            if len(shared.memo) > MEMO_SIZE:
                del shared.memo[next(iter(shared.memo))]
    return out


def mean_loss(losses: np.ndarray) -> float:
    return float(losses.mean()) if len(losses) else math.nan
