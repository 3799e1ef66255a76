"""Model-backed quality features: perplexity, instruction-following difficulty (IFD), the end-of-turn loss (a cut-off
answer) and an LLM-judge score.

All three run a reference causal LM through transformers (`sftforge.llm.hf`): the bundled SmolLM2-135M-Instruct by
default, or any GGUF file or transformers directory named by `model`. Operators naming the same model and dtype
share one loaded copy per process (`shared_model`), so perplexity + ifd + llm_judge load it once. Models load in
`setup()`, never at construction, so operators pickle cheaply to worker processes.

The conversation's *response* is its last assistant message; its *prompt* is every message before it (system
prompt, earlier turns, the instruction), rendered with the model's chat template exactly as for generation.
A record without an assistant message, or with an empty one, scores NaN (and so fails any bound).

Losses are per-token negative log-likelihoods (nats), from the shared reference model (`sftforge.llm.scoring`);
the judge's prompt and expected rating are `sftforge.llm.judge`.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from sftforge.config import OpenAIModel
from sftforge.errors import ModelError
from sftforge.llm import open_llm
from sftforge.llm.base import LLM, ChatRequest, SamplingParams
from sftforge.llm.judge import (
    JUDGE_REPLY_PREFIX,
    JUDGE_TEMPLATE,
    expected_score,
    judge_messages,
    question_text,
    score_from_alternatives,
    score_from_text,
    score_token_ids,
)
from sftforge.llm.scoring import (
    ReferenceModel,
    fit_context,
    mean_loss,
    shared_model,
    target_budget,
    token_limit,
    token_losses,
)
from sftforge.ops.base import BoundsConfig, Feature, register
from sftforge.sample import Record

log = logging.getLogger(__name__)

# How far the bundled model's scores agree with human preference: AUC of the human-chosen reply scoring better than
# the rejected one (0.5 is chance), on 500 pairs of Anthropic's HH-RLHF helpful test split, in the direction the
# filters use (benchmarks/scorers.py; 95% intervals there). The card quotes them where a dataset used these scores.
BUNDLED_PREFERENCE_AUC: dict[str, float] = {"llm_judge": 0.54, "ifd": 0.56, "perplexity": 0.55}


class ModelFeatureConfig(BoundsConfig):
    model: str | None = None  # a GGUF file or transformers directory; None = the bundled SmolLM2-135M-Instruct
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"  # float32: the same numbers on every CPU
    max_tokens: int = Field(1024, ge=32)  # prompt + response tokens per forward pass
    batch_size: int = Field(8, ge=1)  # sequences per forward pass (records are sorted by length first)


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
        self._shared: ReferenceModel | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_shared": None}

    def setup(self) -> None:
        if self._shared is None:
            self._shared = shared_model(self.config.model, self.config.dtype, self.base_dir)

    @property
    def shared(self) -> ReferenceModel:
        self.setup()
        if self._shared is None:  # setup() loads it or raises
            raise RuntimeError(f"{self.name}: setup() did not load the reference model")
        return self._shared

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        from sftforge.llm.hf import render_prompt

        shared = self.shared
        if not messages:
            return list(shared.header)
        tok = shared.llm.tokenizer
        return tok(render_prompt(tok, messages), add_special_tokens=False)["input_ids"]

    @property
    def feature_name(self) -> str:
        """The operator's name, tagged with a non-default model (scores of two models are two features)."""
        return self.name + _model_tag(self.config.model)

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
    as plain text (`Record.text_of("all")`), conditioned on nothing but the tokenizer's own start token, if any (the first
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
        limit = token_limit(shared, self.config.max_tokens)
        seqs = []
        for r in records:
            if self.config.of == "text":
                ids = shared.text_prefix + tok(r.text_of("all"), add_special_tokens=False)["input_ids"]
                seqs.append((ids[:1], ids[1:limit]))
                continue
            parts = split_response(r)
            if parts is None:
                seqs.append(([], []))
                continue
            messages, response = parts
            target = tok(response, add_special_tokens=False)["input_ids"]
            seqs.append(fit_context(self._prompt_ids(messages), target, limit))
        return seqs

    def score_batch(self, records: list[Record]) -> list[float]:
        losses = token_losses(self.shared, self.sequences(records), self.config.batch_size)
        return [math.exp(m) if not math.isnan(m := mean_loss(x)) else math.nan for x in losses]


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

    def sequences(
        self, records: list[Record]
    ) -> tuple[list[tuple[list[int], list[int]]], list[tuple[list[int], list[int]]]]:
        """(conditioned, direct) sequences: the same answer tokens after the prompt and after the bare header."""
        shared = self.shared
        tok = shared.llm.tokenizer
        limit = token_limit(shared, self.config.max_tokens)
        header = list(shared.header)
        cond: list[tuple[list[int], list[int]]] = []
        direct: list[tuple[list[int], list[int]]] = []
        for r in records:
            parts = split_response(r)
            if parts is None:
                cond.append(([], []))
                direct.append(([], []))
                continue
            messages, response = parts
            prompt = self._prompt_ids(messages)
            target = tok(response, add_special_tokens=False)["input_ids"]
            keep = target_budget(max(len(prompt), len(header)), len(target), limit)
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
            s_aq, s_a = mean_loss(a), mean_loss(b)
            out.append(s_aq / s_a if s_a > 0 else math.nan)
        return out


# --- end of turn ----------------------------------------------------------------------------------------------


class EndLossConfig(ModelFeatureConfig):
    name: Literal["end_loss"] = "end_loss"


@register
class EndLoss(_ModelFeature):
    """Does the answer end where an answer would? The loss (nats) of the chat template's end-of-turn token right
    after the response, given the conversation and the response: -log P(<|im_end|> | prompt, answer).

    A complete answer ends where the reference model expects the turn to close (a loss around 1 nat); one cut off
    mid-sentence, as when generation hits its token limit, does not (the model would go on: tens of nats). IFD and
    perplexity cannot see this, because they score only the answer's own tokens. Measured on human-written replies
    and the same replies cut after 20-50% of their words (`benchmarks/degenerate.py`): with the bundled model, AUC
    0.985 in English and 0.977 in Chinese, but on different scales (a whole Chinese reply's median is 9 nats), so
    the bound is per language: `max: 8` for English, 20 for Chinese. `selection.max_end_loss` keeps such records
    out of the score-ranked strategies and the bandit's queues.

    A response longer than `max_tokens` with its prompt keeps its last tokens (its ending is what is scored); a
    model whose chat template closes no turn cannot score this and is an error.
    """

    name: ClassVar[str] = "end_loss"
    Config = EndLossConfig
    config: EndLossConfig

    def sequences(self, records: list[Record]) -> list[tuple[list[int], list[int]]]:
        shared = self.shared
        if not shared.end:
            raise ModelError(
                f"end_loss: the chat template of model {self.config.model or 'bundled'} puts nothing after an "
                "assistant message, so there is no end-of-turn token to score; use a chat model"
            )
        tok = shared.llm.tokenizer
        limit = token_limit(shared, self.config.max_tokens)
        seqs: list[tuple[list[int], list[int]]] = []
        for r in records:
            parts = split_response(r)
            if parts is None or not parts[1].strip():
                seqs.append(([], []))
                continue
            messages, response = parts
            target = tok(response, add_special_tokens=False)["input_ids"] + shared.end
            prompt = self._prompt_ids(messages)
            keep = target_budget(len(prompt), len(target), limit)
            seqs.append((prompt[max(0, len(prompt) - (limit - keep)) :], target[len(target) - keep :]))
        return seqs

    def score_batch(self, records: list[Record]) -> list[float]:
        losses = token_losses(self.shared, self.sequences(records), self.config.batch_size)
        return [float(x[-1]) if len(x) else math.nan for x in losses]


# --- LLM judge ------------------------------------------------------------------------------------------------


class LLMJudgeConfig(ModelFeatureConfig):
    name: Literal["llm_judge"] = "llm_judge"
    scale: int = Field(5, ge=2, le=9)  # scores 1..scale; each must be a single token
    # A bigger judge on an OpenAI-compatible server, for this step alone (the bundled model is a weak judge:
    # benchmarks/scorers.py). The rating is the expectation under the server's first-token logprobs where it
    # returns them, else the digit parsed from its reply; a reply with neither scores NaN (fails any bound).
    server: OpenAIModel | None = None


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

    def __init__(self, config: LLMJudgeConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        self._server: LLM | None = None
        self.without_logprobs = 0  # server replies scored from their text: the server sent no logprobs

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_server": None}

    @property
    def feature_name(self) -> str:
        model = self.config.server.model if self.config.server else self.config.model
        return "llm_judge" + (f"_{self.config.scale}" if self.config.scale != 5 else "") + _model_tag(model)

    def setup(self) -> None:
        if self.config.server is None:
            super().setup()
        elif self._server is None:
            self._server = open_llm(self.config.server, self.base_dir or Path.cwd(), None)

    def prompts(self, records: list[Record]) -> list[str | None]:
        from sftforge.llm.hf import render_prompt

        tok = self.shared.llm.tokenizer
        budget = max(
            64, token_limit(self.shared, self.config.max_tokens) - 128
        )  # room for the instruction around the texts

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
        """ "Rating:" where the scores are single tokens with a leading space (the model then writes " 4"),
        "Rating: " where a space is a token of its own (the model then writes the bare digit)."""
        tok = self.shared.llm.tokenizer
        spaced = all(
            len(tok(f" {k}", add_special_tokens=False)["input_ids"]) == 1 for k in range(1, self.config.scale + 1)
        )
        return JUDGE_REPLY_PREFIX if spaced else JUDGE_REPLY_PREFIX + " "

    def score_batch(self, records: list[Record]) -> list[float]:
        if self.config.server is not None:
            return self._score_on_server(records)
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

    def _score_on_server(self, records: list[Record]) -> list[float]:
        """Ratings from the judge server: the expectation under its first-token logprobs over the score digits,
        else the digit its reply starts with; NaN (which fails any bound) for a reply with neither."""
        self.setup()
        server = self._server
        if server is None:  # setup() opens it or raises
            raise RuntimeError("llm_judge: setup() did not open the judge server")
        chars = 4 * max(64, self.config.max_tokens - 128)  # about 4 characters a token
        sampling = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=3, seed=0, top_logprobs=20)
        out = [math.nan] * len(records)
        for i, r in enumerate(records):
            parts = split_response(r)
            if parts is not None and parts[1].strip():
                question, response = question_text(parts[0])[: chars // 3], parts[1][: chars - chars // 3]
                server.submit(ChatRequest.of(str(i), judge_messages(question, response, self.config.scale), sampling))
        while server.pending():
            for c in server.poll():
                score = score_from_alternatives(c.top_logprobs, self.config.scale)
                if score is None:
                    if c.top_logprobs is None and not self.without_logprobs:
                        log.warning(
                            "llm_judge: the judge server (model %s) returns no logprobs; ratings are parsed from "
                            "the replies' digits",
                            self.config.server.model if self.config.server else "?",
                        )
                    self.without_logprobs += c.top_logprobs is None
                    score = score_from_text(c.text, self.config.scale)
                out[int(c.request.id)] = math.nan if score is None else score
        return out
