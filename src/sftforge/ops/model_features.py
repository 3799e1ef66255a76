"""Model-backed quality features: perplexity, instruction-following difficulty (IFD) and an LLM-judge score.

All three run a reference causal LM through transformers (`sftforge.llm.hf`): the bundled SmolLM2-135M-Instruct by
default, or any GGUF file or transformers directory named by `model`. Operators naming the same model and dtype
share one loaded copy per process (`shared_model`), so perplexity + ifd + llm_judge load it once. Models load in
`setup()`, never at construction, so operators pickle cheaply to worker processes.

The conversation's *response* is its last assistant message; its *prompt* is every message before it (system
prompt, earlier turns, the instruction), rendered with the model's chat template exactly as for generation.
A record without an assistant message, or with an empty one, scores NaN (and so fails any bound).

Losses are per-token negative log-likelihoods (nats). Sequences longer than `max_tokens` are cut: the response is
kept from its start (at least half the budget), the prompt from its end. To keep memory flat, only the final hidden
states of the positions that are scored go through the output head (one `vocab`-wide row per scored token, in
chunks); a one-time check against the model's own logits falls back to a plain forward pass for architectures
whose head does more than a linear map.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from sftforge.errors import ModelError
from sftforge.ops.base import BoundsConfig, Feature, register
from sftforge.sample import Record

if TYPE_CHECKING:
    from sftforge.llm.hf import HFLLM

# The judge's rating instruction (after DEITA's quality scorer, Liu et al. 2023, arXiv 2312.15685), filled with
# str.format: {question}, {answer}, {scale}. The model's reply is prefilled with JUDGE_REPLY_PREFIX, and its next
# token is read as the score: with the prefill, the bundled model puts ~95% of its next-token probability on the
# score digits, against ~10% when the reply starts empty.
JUDGE_TEMPLATE = """\
Rate the quality of the Response to the Question on a scale from 1 to {scale}.
{scale} means the response is correct, relevant, complete and clearly written; 1 means it is wrong, irrelevant or \
unhelpful.

#Question#:
{question}

#Response#:
{answer}

Reply with a single digit from 1 to {scale}, nothing else."""
JUDGE_REPLY_PREFIX = "Rating:"  # followed by a space unless the tokenizer has single " 1".." N" tokens

_HEAD_ROWS = 512  # scored positions per output-head chunk (512 x vocab 49152 x 4 bytes = 100 MB)


class ModelFeatureConfig(BoundsConfig):
    model: str | None = None  # a GGUF file or transformers directory; None = the bundled SmolLM2-135M-Instruct
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"  # float32: the same numbers on every CPU
    max_tokens: int = Field(1024, ge=32)  # prompt + response tokens per forward pass
    batch_size: int = Field(8, ge=1)  # sequences per forward pass (records are sorted by length first)


# --- the shared model -----------------------------------------------------------------------------------------


@dataclass
class _Shared:
    llm: HFLLM
    fast_head: bool | None = None  # hidden states -> output head on scored rows only; checked on first use
    header: list[int] = field(default_factory=list)  # the bare assistant header: "no instruction" context
    text_prefix: list[int] = field(default_factory=list)  # what the tokenizer puts before plain text (BOS)
    # Recent (context, target) -> losses: perplexity and IFD's conditioned pass score the same sequences when both
    # are in a recipe, so the second one is free. Bounded: oldest entries go first.
    memo: dict[tuple[tuple[int, ...], tuple[int, ...]], np.ndarray] = field(default_factory=dict)


MEMO_SIZE = 4096


_MODELS: dict[tuple[str, str], _Shared] = {}
_LOCK = threading.Lock()


def _assistant_header(tok: Any) -> str:
    """The chat template's text that opens an assistant turn with no conversation before it (e.g.
    "<|im_start|>assistant\n"), after the template's BOS text where the template starts with one."""
    from sftforge.llm.hf import render_prompt

    probe = [{"role": "user", "content": "x"}]
    full = render_prompt(tok, probe)
    bare = tok.apply_chat_template(probe, tokenize=False, add_generation_prompt=False) if tok.chat_template else "user: x\n"
    header = full[len(bare) :] if full.startswith(bare) and len(full) > len(bare) else full[full.rfind("x") + 1 :]
    bos = tok.bos_token
    if bos and full.startswith(bos) and not header.startswith(bos):
        header = bos + header
    return header


def shared_model(path: str | None, dtype: str, base_dir: Path | None = None) -> _Shared:
    """One loaded reference model per (directory, dtype) per process. `path`: a GGUF file or transformers
    directory (relative to `base_dir`), or None / "bundled" for the bundled model."""
    from sftforge.llm.hf import HFLLM, model_dir, resolve_dtype

    directory = model_dir(path or "bundled", base_dir).resolve()
    resolved = str(resolve_dtype(dtype)).removeprefix("torch.")  # "auto" shares the copy of the dtype it picks
    key = (str(directory), resolved)
    with _LOCK:
        if key not in _MODELS:
            llm = HFLLM(directory, dtype=resolved)
            tok = llm.tokenizer
            _MODELS[key] = _Shared(
                llm,
                header=tok(_assistant_header(tok), add_special_tokens=False)["input_ids"],
                text_prefix=tok("", add_special_tokens=True)["input_ids"],
            )
        return _MODELS[key]


# --- losses ---------------------------------------------------------------------------------------------------


def _limit(shared: _Shared, max_tokens: int) -> int:
    cap = getattr(shared.llm.model.config, "max_position_embeddings", None)
    return min(max_tokens, cap) if cap else max_tokens


def _target_budget(context_len: int, target_len: int, limit: int) -> int:
    """Response tokens kept when context + response must fit in `limit`: all if they fit, else at least half."""
    if context_len + target_len <= limit:
        return target_len
    return min(target_len, max(limit - context_len, limit // 2))


def _fit(context: list[int], target: list[int], limit: int) -> tuple[list[int], list[int]]:
    keep = _target_budget(len(context), len(target), limit)
    target = target[:keep]
    return context[max(0, len(context) - (limit - keep)) :], target


def _forward_losses(shared: _Shared, seqs: list[tuple[list[int], list[int]]], fast: bool) -> list[np.ndarray]:
    """Per-token losses of each target given its context, one right-padded forward pass."""
    import torch

    model, tok = shared.llm.model, shared.llm.tokenizer
    full = [c + t for c, t in seqs]
    width = max(len(x) for x in full)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.tensor([x + [pad] * (width - len(x)) for x in full])
    attn = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in full])
    # (row, position predicting the token, target token) for every scored token
    rows, pos, tgt = [], [], []
    for i, (c, t) in enumerate(seqs):
        rows += [i] * len(t)
        pos += range(len(c) - 1, len(c) + len(t) - 1)
        tgt += t
    rows_t, pos_t, tgt_t = torch.tensor(rows), torch.tensor(pos), torch.tensor(tgt)
    nll = torch.empty(len(tgt))
    with torch.inference_mode():
        if fast:
            hidden = model.base_model(input_ids=ids, attention_mask=attn, use_cache=False).last_hidden_state
            picked = hidden[rows_t, pos_t]
            head = model.get_output_embeddings()
            for s in range(0, len(tgt), _HEAD_ROWS):
                logits = head(picked[s : s + _HEAD_ROWS]).float()
                nll[s : s + _HEAD_ROWS] = torch.nn.functional.cross_entropy(logits, tgt_t[s : s + _HEAD_ROWS], reduction="none")
        else:
            logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits
            picked = logits[rows_t, pos_t].float()
            nll[:] = torch.nn.functional.cross_entropy(picked, tgt_t, reduction="none")
    out, start = [], 0
    for _, t in seqs:
        out.append(nll[start : start + len(t)].numpy().astype(np.float64))
        start += len(t)
    return out


def _check_fast_head(shared: _Shared) -> bool:
    """Whether base model + output head reproduces the model's logits (not so with logit soft-capping or scaling)."""
    if shared.fast_head is None:
        probe = [([*shared.header], shared.llm.tokenizer("a short probe sentence", add_special_tokens=False)["input_ids"])]
        a = _forward_losses(shared, probe, fast=True)[0]
        b = _forward_losses(shared, probe, fast=False)[0]
        shared.fast_head = bool(np.allclose(a, b, rtol=1e-3, atol=1e-3))
    return shared.fast_head


def token_losses(shared: _Shared, seqs: list[tuple[list[int], list[int]]], batch_size: int) -> list[np.ndarray]:
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


def _mean(losses: np.ndarray) -> float:
    return float(losses.mean()) if len(losses) else math.nan


# --- conversation parts ---------------------------------------------------------------------------------------


def split_response(record: Record) -> tuple[list[dict[str, str]], str] | None:
    """(messages before the last assistant message, its content), or None without an assistant message."""
    for i in range(len(record.messages) - 1, -1, -1):
        if record.messages[i]["role"] == "assistant":
            return record.messages[:i], record.messages[i]["content"]
    return None


def _model_tag(model: str | None) -> str:
    if model is None:
        return ""
    stem = Path(model).name.removesuffix(".gguf")
    return "_" + (re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "model")


class _ModelFeature(Feature):
    """Shared plumbing: lazy shared model, pickling without it, batching."""

    config: ModelFeatureConfig
    batch_size: ClassVar[int] = 16

    def __init__(self, config: ModelFeatureConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        self._shared: _Shared | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_shared": None}

    def setup(self) -> None:
        if self._shared is None:
            self._shared = shared_model(self.config.model, self.config.dtype, self.base_dir)

    @property
    def shared(self) -> _Shared:
        self.setup()
        assert self._shared is not None
        return self._shared

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        from sftforge.llm.hf import render_prompt

        shared = self.shared
        if not messages:
            return list(shared.header)
        tok = shared.llm.tokenizer
        return tok(render_prompt(tok, messages), add_special_tokens=False)["input_ids"]

    def score(self, record: Record) -> float:
        return self.score_batch([record])[0]


# --- perplexity -----------------------------------------------------------------------------------------------


class PerplexityConfig(ModelFeatureConfig):
    name: Literal["perplexity"] = "perplexity"
    of: Literal["response", "text"] = "response"


@register
class Perplexity(_ModelFeature):
    """Perplexity exp(mean token loss) under the reference model. `of: response` (default): the last assistant
    message given the conversation before it, rendered with the chat template. `of: text`: the whole conversation
    as plain text (`Record.text()`), conditioned on nothing but the tokenizer's own start token, if any (the first
    token is then context, not scored).

    Low perplexity = fluent, predictable text; very high = garbled text or noise. Typical filter: `max`.
    """

    name: ClassVar[str] = "perplexity"
    Config = PerplexityConfig
    config: PerplexityConfig

    @property
    def feature_name(self) -> str:
        return "perplexity" + ("_text" if self.config.of == "text" else "") + _model_tag(self.config.model)

    def sequences(self, records: list[Record]) -> list[tuple[list[int], list[int]]]:
        shared = self.shared
        tok = shared.llm.tokenizer
        limit = _limit(shared, self.config.max_tokens)
        seqs = []
        for r in records:
            if self.config.of == "text":
                ids = shared.text_prefix + tok(r.text(), add_special_tokens=False)["input_ids"]
                seqs.append((ids[:1], ids[1:limit]))
                continue
            parts = split_response(r)
            if parts is None:
                seqs.append(([], []))
                continue
            messages, response = parts
            target = tok(response, add_special_tokens=False)["input_ids"]
            seqs.append(_fit(self._prompt_ids(messages), target, limit))
        return seqs

    def score_batch(self, records: list[Record]) -> list[float]:
        losses = token_losses(self.shared, self.sequences(records), self.config.batch_size)
        return [math.exp(m) if not math.isnan(m := _mean(x)) else math.nan for x in losses]


# --- IFD ------------------------------------------------------------------------------------------------------


class IFDConfig(ModelFeatureConfig):
    name: Literal["ifd"] = "ifd"


@register
class IFD(_ModelFeature):
    """Instruction-Following Difficulty (Li et al. 2023, "From Quantity to Quality: Boosting LLM Performance with
    Self-Guided Data Selection for Instruction Tuning", arXiv 2308.12032, eq. 4-5):

        IFD(Q, A) = s(A | Q) / s(A),   s(A | Q) = -1/N sum_i log P(a_i | Q, a_<i),   s(A) = -1/N sum_i log P(a_i | a_<i)

    a ratio of mean token losses (log-perplexities, not perplexities) of the answer A: with the instruction Q (the
    conditioned answer score) and without it (the direct answer score), over the same N answer tokens. Q is every
    message before the last assistant message, rendered with the chat template; "without" keeps only the template's
    bare assistant header (as the paper's code keeps its "### Response:" marker), with no system prompt.

    IFD < 1: the instruction makes the answer easier to predict; IFD >= 1: it does not help, a sign of a misaligned
    pair (the paper drops those). The paper selects the highest IFD below 1: filter with `max: 1` (and rank).
    """

    name: ClassVar[str] = "ifd"
    Config = IFDConfig
    config: IFDConfig

    @property
    def feature_name(self) -> str:
        return "ifd" + _model_tag(self.config.model)

    def sequences(self, records: list[Record]) -> tuple[list[tuple[list[int], list[int]]], list[tuple[list[int], list[int]]]]:
        """(conditioned, direct) sequences: the same answer tokens after the prompt and after the bare header."""
        shared = self.shared
        tok = shared.llm.tokenizer
        limit = _limit(shared, self.config.max_tokens)
        header = list(shared.header)
        cond, direct = [], []
        for r in records:
            parts = split_response(r)
            if parts is None:
                cond.append(([], []))
                direct.append(([], []))
                continue
            messages, response = parts
            prompt = self._prompt_ids(messages)
            target = tok(response, add_special_tokens=False)["input_ids"]
            keep = _target_budget(max(len(prompt), len(header)), len(target), limit)
            target = target[:keep]
            cond.append((prompt[max(0, len(prompt) - (limit - keep)) :], target))
            direct.append((header[max(0, len(header) - (limit - keep)) :], target))
        return cond, direct

    def score_batch(self, records: list[Record]) -> list[float]:
        cond, direct = self.sequences(records)
        losses = token_losses(self.shared, cond + direct, self.config.batch_size)
        n = len(records)
        out = []
        for a, b in zip(losses[:n], losses[n:]):
            s_aq, s_a = _mean(a), _mean(b)
            out.append(s_aq / s_a if s_a > 0 else math.nan)
        return out


# --- LLM judge ------------------------------------------------------------------------------------------------


class LLMJudgeConfig(ModelFeatureConfig):
    name: Literal["llm_judge"] = "llm_judge"
    scale: int = Field(5, ge=2, le=9)  # scores 1..scale; each must be a single token


def score_token_ids(tok: Any, scale: int) -> list[list[int]]:
    """Per score k = 1..scale, the single tokens that spell it ("k", and " k" where that is one token too)."""
    out = []
    for k in range(1, scale + 1):
        ids = []
        for variant in (str(k), f" {k}"):
            enc = tok(variant, add_special_tokens=False)["input_ids"]
            if len(enc) == 1 and enc[0] not in ids:
                ids.append(enc[0])
        if not ids:
            raise ModelError(f"the judge model's tokenizer has no single token for the score {k}; use a smaller scale")
        out.append(ids)
    return out


def expected_score(logits: np.ndarray, groups: list[list[int]]) -> float:
    """sum_k k * p_k with p = softmax over the scores, each score's logit the log-sum-exp of its tokens' logits
    (`logits` are indexed by position in the flattened `groups`)."""
    per_k, pos = [], 0
    for ids in groups:
        chunk = logits[pos : pos + len(ids)].astype(np.float64)
        top = chunk.max()
        per_k.append(top + math.log(np.exp(chunk - top).sum()))
        pos += len(ids)
    z = np.asarray(per_k)
    p = np.exp(z - z.max())
    p /= p.sum()
    return float((np.arange(1, len(groups) + 1) * p).sum())


def question_text(messages: list[dict[str, str]]) -> str:
    """The conversation before the response, for the judge: the instruction alone for a single turn, otherwise
    every turn labelled with its role."""
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


@register
class LLMJudge(_ModelFeature):
    """A DEITA-style quality score (Liu et al. 2023, "What Makes Good Data for Alignment?", arXiv 2312.15685): the
    reference model is asked to rate the response 1..`scale` (`JUDGE_TEMPLATE`, the reply prefilled with
    `JUDGE_REPLY_PREFIX`), and the score is the expectation
    of the rating under the model's next-token distribution restricted to the score tokens,
    sum_k k * softmax(logit("1"), ..., logit("scale"))_k, a real number in [1, scale].

    DEITA uses a scorer fine-tuned for this; a small general model (the bundled 135M) is a weak judge, so prefer a
    larger `model` when this score decides what is kept.
    """

    name: ClassVar[str] = "llm_judge"
    Config = LLMJudgeConfig
    config: LLMJudgeConfig
    batch_size: ClassVar[int] = 16

    @property
    def feature_name(self) -> str:
        return "llm_judge" + (f"_{self.config.scale}" if self.config.scale != 5 else "") + _model_tag(self.config.model)

    def prompts(self, records: list[Record]) -> list[str | None]:
        from sftforge.llm.hf import render_prompt

        tok = self.shared.llm.tokenizer
        budget = max(64, _limit(self.shared, self.config.max_tokens) - 128)  # room for the instruction around the texts

        def clip(text: str, n: int) -> str:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            return text if len(ids) <= n else tok.decode(ids[:n]) + " ..."

        out: list[str | None] = []
        for r in records:
            parts = split_response(r)
            if parts is None or not parts[1].strip():
                out.append(None)
                continue
            messages, response = parts
            text = JUDGE_TEMPLATE.format(
                question=clip(question_text(messages), budget // 3),
                answer=clip(response, budget - budget // 3),
                scale=self.config.scale,
            )
            reply = [{"role": "assistant", "content": self._reply_prefix()}]
            out.append(render_prompt(tok, [{"role": "user", "content": text}, *reply]))
        return out

    def _reply_prefix(self) -> str:
        """"Rating:" where the scores are single tokens with a leading space (the model then writes " 4"),
        "Rating: " where a space is a token of its own (the model then writes the bare digit)."""
        tok = self.shared.llm.tokenizer
        spaced = all(len(tok(f" {k}", add_special_tokens=False)["input_ids"]) == 1 for k in range(1, self.config.scale + 1))
        return JUDGE_REPLY_PREFIX if spaced else JUDGE_REPLY_PREFIX + " "

    def score_batch(self, records: list[Record]) -> list[float]:
        llm = self.shared.llm
        groups = score_token_ids(llm.tokenizer, self.config.scale)
        flat = [t for ids in groups for t in ids]
        prompts = self.prompts(records)
        todo = sorted((i for i, p in enumerate(prompts) if p is not None), key=lambda i: len(prompts[i] or ""))
        out = [math.nan] * len(records)
        if todo:
            logits = llm.next_token_logits([prompts[i] or "" for i in todo], flat, batch_size=self.config.batch_size)
            for row, i in enumerate(todo):
                out[i] = expected_score(logits[row], groups)
        return out
